/*
 * aggvm DSM: unit tests for the home directory state machine
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/*
 * Two kinds of test.  Scripted ones drive one home through a scenario
 * and compare every message it emits with the expected one.  A random
 * one simulates whole fragments: each keeps its own page states (I/S/E)
 * and values, reacts to INV/FWD/DATA/GRANT as the corrected protocol's
 * requester and holder do, and every message crosses a per-pair FIFO
 * link through the wire codec, delivered in random order across links.
 * A reference value per page checks that every read sees the last
 * write, and the run must drain with no transaction left open.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "migration/dsm/directory.h"

#define R   DSM_ACCESS_READ
#define W   DSM_ACCESS_WRITE
#define S   DSM_MODE_SHARED
#define E   DSM_MODE_EXCL

/* Scripted tests: home 0 of 4 fragments, pages 16..23. */

#define HOME        0
#define NR_FRAGS    4
#define FIRST       16
#define NR_PAGES    8
#define P           17

typedef struct Fixture {
    DSMDirectory *dir;
    GArray *out;
} Fixture;

static void fixture_init(Fixture *f, uint32_t nr_frags)
{
    f->dir = dsm_dir_new(HOME, nr_frags, FIRST, NR_PAGES);
    f->out = g_array_new(false, true, sizeof(DSMAction));
}

static void fixture_destroy(Fixture *f)
{
    g_assert_cmpuint(f->out->len, ==, 0);
    dsm_dir_free(f->dir);
    g_array_free(f->out, true);
}

/*
 * One expected action.  `arg` is the mode of GRANT and DATA (DATA from
 * the home is always ZERO) and the access of FWD.
 */
typedef struct Want {
    uint32_t to;
    DSMMsgType type;
    uint32_t tid;
    int arg;
    uint32_t target;
} Want;

#define INV_TO(to, tid)             { to, DSM_MSG_INV, tid, 0, 0 }
#define GRANT_TO(to, tid, mode)     { to, DSM_MSG_GRANT, tid, mode, 0 }
#define ZERO_TO(to, tid, mode)      { to, DSM_MSG_DATA, tid, mode, 0 }
#define FWD_TO(to, tid, acc, tgt)   { to, DSM_MSG_FWD, tid, acc, tgt }
#define END                         { 0, 0, 0, 0, 0 }

/* Compare and consume the actions of the last events; @want ends at END. */
static void expect(Fixture *f, uint64_t page, const Want *want)
{
    guint i;

    for (i = 0; want[i].type; i++) {
        const DSMAction *a;

        g_assert_cmpuint(i, <, f->out->len);
        a = &g_array_index(f->out, DSMAction, i);
        g_assert_cmpuint(a->to, ==, want[i].to);
        g_assert_cmpstr(dsm_msg_type_name(a->msg.type), ==,
                        dsm_msg_type_name(want[i].type));
        g_assert_cmpuint(a->msg.page, ==, page);
        g_assert_cmpuint(a->msg.tid, ==, want[i].tid);
        if (a->msg.type == DSM_MSG_GRANT || a->msg.type == DSM_MSG_DATA) {
            g_assert_cmpint(a->msg.mode, ==, want[i].arg);
            g_assert(a->msg.type != DSM_MSG_DATA || a->msg.zero);
        } else if (a->msg.type == DSM_MSG_FWD) {
            g_assert_cmpint(a->msg.access, ==, want[i].arg);
            g_assert_cmpuint(a->msg.target, ==, want[i].target);
        }
    }
    g_assert_cmpuint(f->out->len, ==, i);
    g_array_set_size(f->out, 0);
}

static void expect_none(Fixture *f)
{
    g_assert_cmpuint(f->out->len, ==, 0);
}

static void req(Fixture *f, uint64_t page, uint32_t from, DSMAccess access)
{
    g_assert(dsm_dir_request(f->dir, page, from, access, f->out,
                             &error_abort));
}

static void ack(Fixture *f, uint64_t page, uint32_t tid, uint32_t from)
{
    g_assert(dsm_dir_ack(f->dir, page, tid, from, f->out, &error_abort));
}

static void done(Fixture *f, uint64_t page, uint32_t tid, uint32_t from)
{
    g_assert(dsm_dir_done(f->dir, page, tid, from, f->out, &error_abort));
}

static void expect_page(Fixture *f, uint64_t page, DSMDirMode mode,
                        uint64_t holders, bool zero, uint32_t busy)
{
    DSMDirPageInfo info;

    dsm_dir_page_info(f->dir, page, &info);
    g_assert_cmpstr(dsm_dir_mode_name(info.mode), ==,
                    dsm_dir_mode_name(mode));
    g_assert_cmphex(info.holders, ==, holders);
    g_assert_cmpint(info.zero, ==, zero);
    g_assert_cmpuint(info.busy, ==, busy);
}

/* Bring page @page to EXCL at @owner: a write on a zero page. */
static void make_owner(Fixture *f, uint64_t page, uint32_t owner)
{
    DSMDirPageInfo info;

    dsm_dir_page_info(f->dir, page, &info);
    req(f, page, owner, W);
    g_assert_cmpuint(f->out->len, ==, 1);
    done(f, page, info.tid + 1, owner);
    g_array_set_size(f->out, 0);
}

/* Add @reader as a sharer of a written page. */
static void add_reader(Fixture *f, uint64_t page, uint32_t reader)
{
    DSMDirPageInfo info;

    dsm_dir_page_info(f->dir, page, &info);
    req(f, page, reader, R);
    g_assert_cmpuint(f->out->len, ==, 1);
    done(f, page, info.tid + 1, reader);
    g_array_set_size(f->out, 0);
}

static void test_read_zero_page(void)
{
    Fixture f;

    fixture_init(&f, NR_FRAGS);
    expect_page(&f, P, DSM_DIR_NONE, 0, true, 0);
    req(&f, P, 1, R);
    expect(&f, P, (Want[]) { ZERO_TO(1, 1, S), END });
    expect_page(&f, P, DSM_DIR_NONE, 0, true, 1);
    done(&f, P, 1, 1);
    expect_none(&f);
    expect_page(&f, P, DSM_DIR_SHARED, 0x2, true, 0);

    /* A second reader of a zero page gets zeros too, not a FWD. */
    req(&f, P, 2, R);
    expect(&f, P, (Want[]) { ZERO_TO(2, 2, S), END });
    done(&f, P, 2, 2);
    expect_page(&f, P, DSM_DIR_SHARED, 0x6, true, 0);
    g_assert_cmpuint(dsm_dir_stats(f.dir)->zero_fills, ==, 2);
    fixture_destroy(&f);
}

static void test_write_then_remote_read(void)
{
    Fixture f;

    fixture_init(&f, NR_FRAGS);
    req(&f, P, 1, W);
    expect(&f, P, (Want[]) { ZERO_TO(1, 1, E), END });
    done(&f, P, 1, 1);
    expect_page(&f, P, DSM_DIR_EXCL, 0x2, false, 0);

    req(&f, P, 2, R);
    expect(&f, P, (Want[]) { FWD_TO(1, 2, R, 2), END });
    done(&f, P, 2, 2);
    expect_page(&f, P, DSM_DIR_SHARED, 0x6, false, 0);
    fixture_destroy(&f);
}

/* One sharer besides the supplier: one INV, FWD(W) after its ACK. */
static void test_write_one_sharer(void)
{
    Fixture f;

    fixture_init(&f, NR_FRAGS);
    make_owner(&f, P, 1);
    add_reader(&f, P, 2);                       /* tid 2, SHARED {1,2} */

    req(&f, P, 3, W);
    expect(&f, P, (Want[]) { INV_TO(2, 3), END });
    ack(&f, P, 3, 2);
    expect(&f, P, (Want[]) { FWD_TO(1, 3, W, 3), END });
    done(&f, P, 3, 3);
    expect_page(&f, P, DSM_DIR_EXCL, 0x8, false, 0);
    fixture_destroy(&f);
}

/* Two sharers, the home among the holders: it supplies, both others go. */
static void test_write_two_sharers(void)
{
    Fixture f;

    fixture_init(&f, NR_FRAGS);
    make_owner(&f, P, 1);
    add_reader(&f, P, 2);
    add_reader(&f, P, HOME);                    /* tid 3, {0,1,2} */

    req(&f, P, 3, W);
    expect(&f, P, (Want[]) { INV_TO(1, 4), INV_TO(2, 4), END });
    ack(&f, P, 4, 2);
    expect_none(&f);                            /* not after the first */
    ack(&f, P, 4, 1);
    expect(&f, P, (Want[]) { FWD_TO(HOME, 4, W, 3), END });
    done(&f, P, 4, 3);
    expect_page(&f, P, DSM_DIR_EXCL, 0x8, false, 0);
    g_assert_cmpuint(dsm_dir_stats(f.dir)->invalidations, ==, 2);
    fixture_destroy(&f);
}

/* A zero page with sharers: no supplier, all go, the writer gets zeros. */
static void test_write_zero_page_with_sharers(void)
{
    Fixture f;

    fixture_init(&f, NR_FRAGS);
    req(&f, P, 1, R);
    done(&f, P, 1, 1);
    req(&f, P, 2, R);
    done(&f, P, 2, 2);
    g_array_set_size(f.out, 0);

    req(&f, P, 3, W);
    expect(&f, P, (Want[]) { INV_TO(1, 3), INV_TO(2, 3), END });
    ack(&f, P, 3, 1);
    ack(&f, P, 3, 2);
    expect(&f, P, (Want[]) { ZERO_TO(3, 3, E), END });
    done(&f, P, 3, 3);
    expect_page(&f, P, DSM_DIR_EXCL, 0x8, false, 0);
    fixture_destroy(&f);
}

static void test_upgrade(void)
{
    Fixture f;

    fixture_init(&f, NR_FRAGS);
    make_owner(&f, P, 1);
    add_reader(&f, P, 2);                       /* SHARED {1,2} */

    req(&f, P, 1, W);
    expect(&f, P, (Want[]) { INV_TO(2, 3), END });
    ack(&f, P, 3, 2);
    expect(&f, P, (Want[]) { GRANT_TO(1, 3, E), END });
    done(&f, P, 3, 1);
    expect_page(&f, P, DSM_DIR_EXCL, 0x2, false, 0);

    /* The only sharer upgrades at once, even of a zero page. */
    req(&f, P + 1, 3, R);
    expect(&f, P + 1, (Want[]) { ZERO_TO(3, 1, S), END });
    done(&f, P + 1, 1, 3);
    req(&f, P + 1, 3, W);
    expect(&f, P + 1, (Want[]) { GRANT_TO(3, 2, E), END });
    done(&f, P + 1, 2, 3);
    expect_page(&f, P + 1, DSM_DIR_EXCL, 0x8, false, 0);
    fixture_destroy(&f);
}

/*
 * Decide on the directory, not on the requester's guess: fragment 1
 * asks to upgrade while fragment 2's upgrade is invalidating its copy.
 * By the time 1's REQ is served it holds nothing, so it gets FWD(W).
 */
static void test_upgrade_after_invalidation(void)
{
    Fixture f;

    fixture_init(&f, NR_FRAGS);
    make_owner(&f, P, 1);
    add_reader(&f, P, 2);                       /* SHARED {1,2}, tid 2 */

    req(&f, P, 2, W);
    expect(&f, P, (Want[]) { INV_TO(1, 3), END });
    req(&f, P, 1, W);                           /* queued: 1 thinks S */
    expect_none(&f);
    ack(&f, P, 3, 1);
    expect(&f, P, (Want[]) { GRANT_TO(2, 3, E), END });
    done(&f, P, 3, 2);
    expect(&f, P, (Want[]) { FWD_TO(2, 4, W, 1), END });
    done(&f, P, 4, 1);
    expect_page(&f, P, DSM_DIR_EXCL, 0x2, false, 0);
    fixture_destroy(&f);
}

/* A REQ(R) from a holder (a stale fault hint) is answered by GRANT(S). */
static void test_read_by_holder(void)
{
    Fixture f;

    fixture_init(&f, NR_FRAGS);
    make_owner(&f, P, 1);
    add_reader(&f, P, 2);
    req(&f, P, 2, R);
    expect(&f, P, (Want[]) { GRANT_TO(2, 3, S), END });
    done(&f, P, 3, 2);
    expect_page(&f, P, DSM_DIR_SHARED, 0x6, false, 0);

    /* The EXCL owner keeps EXCL: its rights are not taken by a GRANT(S). */
    make_owner(&f, P + 1, 3);
    req(&f, P + 1, 3, R);
    expect(&f, P + 1, (Want[]) { GRANT_TO(3, 2, S), END });
    done(&f, P + 1, 2, 3);
    expect_page(&f, P + 1, DSM_DIR_EXCL, 0x8, false, 0);
    req(&f, P + 1, 3, W);
    expect(&f, P + 1, (Want[]) { GRANT_TO(3, 3, E), END });
    done(&f, P + 1, 3, 3);
    fixture_destroy(&f);
}

/* The home's own copy is preferred over any other sharer. */
static void test_home_supplies(void)
{
    Fixture f;

    fixture_init(&f, NR_FRAGS);
    make_owner(&f, P, 2);
    add_reader(&f, P, 3);
    add_reader(&f, P, HOME);                    /* {0,2,3}, tid 3 */
    req(&f, P, 1, R);
    expect(&f, P, (Want[]) { FWD_TO(HOME, 4, R, 1), END });
    done(&f, P, 4, 1);

    /* And the home's own requests take the same path. */
    req(&f, P + 2, HOME, W);
    expect(&f, P + 2, (Want[]) { ZERO_TO(HOME, 1, E), END });
    done(&f, P + 2, 1, HOME);
    req(&f, P + 2, 1, W);
    expect(&f, P + 2, (Want[]) { FWD_TO(HOME, 2, W, 1), END });
    done(&f, P + 2, 2, 1);
    expect_page(&f, P + 2, DSM_DIR_EXCL, 0x2, false, 0);
    fixture_destroy(&f);
}

static void test_fifo(void)
{
    Fixture f;

    fixture_init(&f, NR_FRAGS);
    req(&f, P, 1, W);
    expect(&f, P, (Want[]) { ZERO_TO(1, 1, E), END });
    req(&f, P, 2, R);
    req(&f, P, 3, W);
    req(&f, P, HOME, R);
    expect_none(&f);
    g_assert_cmpuint(dsm_dir_stats(f.dir)->queued, ==, 3);

    done(&f, P, 1, 1);
    expect(&f, P, (Want[]) { FWD_TO(1, 2, R, 2), END });
    done(&f, P, 2, 2);                          /* SHARED {1,2} */
    expect(&f, P, (Want[]) { INV_TO(2, 3), END });
    ack(&f, P, 3, 2);
    expect(&f, P, (Want[]) { FWD_TO(1, 3, W, 3), END });
    done(&f, P, 3, 3);                          /* EXCL {3} */
    expect(&f, P, (Want[]) { FWD_TO(3, 4, R, HOME), END });
    done(&f, P, 4, HOME);
    expect_none(&f);
    expect_page(&f, P, DSM_DIR_SHARED, 0x9, false, 0);
    g_assert_cmpuint(dsm_dir_stats(f.dir)->requests, ==, 4);
    g_assert_cmpuint(dsm_dir_stats(f.dir)->commits, ==, 4);
    fixture_destroy(&f);
}

/* All 64 fragments: bit 63 of the holder bitmap works like any other. */
static void test_64_fragments(void)
{
    Fixture f;
    uint32_t i;

    fixture_init(&f, DSM_MAX_FRAGMENTS);
    make_owner(&f, P, 63);
    for (i = 1; i < 63; i++) {
        add_reader(&f, P, i);
    }
    expect_page(&f, P, DSM_DIR_SHARED, ~1ULL, false, 0);
    req(&f, P, HOME, W);                        /* tid 64 */
    g_assert_cmpuint(f.out->len, ==, 62);       /* the lowest supplies */
    g_assert_cmpuint(g_array_index(f.out, DSMAction, 61).to, ==, 63);
    g_array_set_size(f.out, 0);
    for (i = 63; i > 1; i--) {
        ack(&f, P, 64, i);
    }
    expect(&f, P, (Want[]) { FWD_TO(1, 64, W, HOME), END });
    done(&f, P, 64, HOME);
    expect_page(&f, P, DSM_DIR_EXCL, 0x1, false, 0);
    fixture_destroy(&f);
}

/*
 * Protocol violations.  Every case starts from the same state: page P
 * was written by 1 and read by 2 (SHARED {1,2}), then 3 asked for W
 * (tid 3: INV to 2 outstanding, supplier 1) and 2 queued a REQ(R).
 */

typedef enum BadEvent { BAD_REQ, BAD_ACK, BAD_DONE, BAD_MSG } BadEvent;

typedef struct BadCase {
    const char *name;
    BadEvent event;
    uint64_t page;
    uint32_t from;
    uint32_t arg;           /* REQ: access; ACK, DONE: tid; MSG: type */
    const char *error;
} BadCase;

static const BadCase bad_cases[] = {
    { "dup-req-open", BAD_REQ, P, 3, W, "duplicate REQ(W) for page 0x11 "
      "from fragment 3, expected none while its earlier one is open" },
    { "dup-req-queued", BAD_REQ, P, 2, R, "its earlier one is queued" },
    { "dup-req-other-access", BAD_REQ, P, 2, W, "duplicate REQ(W)" },
    { "req-not-home", BAD_REQ, 8, 1, R, "REQ for page 0x8 from fragment 1, "
      "expected a page in 0x10..0x17 (homed at fragment 0)" },
    { "req-past-home", BAD_REQ, FIRST + NR_PAGES, 1, R,
      "expected a page in 0x10..0x17" },
    { "req-bad-fragment", BAD_REQ, P, 4, R,
      "REQ for page 0x11 from fragment 4, expected a fragment below 4" },
    { "req-bad-access", BAD_REQ, P, 1, 2, "has access 2, expected 0" },
    { "ack-old-tid", BAD_ACK, P, 2, 2,
      "ACK for page 0x11 from fragment 2 has tid 2, expected 3" },
    { "ack-future-tid", BAD_ACK, P, 2, 4, "has tid 4, expected 3" },
    { "ack-not-invalidated", BAD_ACK, P, 1, 3, "ACK for page 0x11 tid 3 "
      "from fragment 1, expected one only from fragments 0x4" },
    { "ack-from-requester", BAD_ACK, P, 3, 3, "from fragment 3, expected "
      "one only from fragments 0x4" },
    { "ack-idle-page", BAD_ACK, P + 1, 2, 1, "no transaction is open" },
    { "ack-bad-fragment", BAD_ACK, P, 9, 3, "expected a fragment below 4" },
    { "done-before-acks", BAD_DONE, P, 3, 3, "DONE for page 0x11 tid 3 "
      "from fragment 3 before the ACKs of fragments 0x4" },
    { "done-not-requester", BAD_DONE, P, 2, 3,
      "from fragment 2, expected it from the requester 3" },
    { "done-wrong-tid", BAD_DONE, P, 3, 7, "has tid 7, expected 3" },
    { "done-idle-page", BAD_DONE, P + 1, 3, 1, "no transaction is open" },
    { "done-not-home", BAD_DONE, 0, 3, 1, "expected a page in" },
    { "msg-inv", BAD_MSG, P, 1, DSM_MSG_INV,
      "INV from fragment 1 sent to the home directory, expected REQ" },
    { "msg-data", BAD_MSG, P, 1, DSM_MSG_DATA, "DATA from fragment 1" },
};

static void bad_case_setup(Fixture *f)
{
    make_owner(f, P, 1);
    add_reader(f, P, 2);
    req(f, P, 3, W);
    expect(f, P, (Want[]) { INV_TO(2, 3), END });
    req(f, P, 2, R);
    expect_none(f);
}

static bool bad_case_fire(Fixture *f, const BadCase *c, Error **errp)
{
    DSMMsg msg = { .type = c->arg, .page = c->page, .tid = 1 };

    switch (c->event) {
    case BAD_REQ:
        return dsm_dir_request(f->dir, c->page, c->from, c->arg, f->out,
                               errp);
    case BAD_ACK:
        return dsm_dir_ack(f->dir, c->page, c->arg, c->from, f->out, errp);
    case BAD_DONE:
        return dsm_dir_done(f->dir, c->page, c->arg, c->from, f->out, errp);
    case BAD_MSG:
        return dsm_dir_handle_msg(f->dir, c->from, &msg, f->out, errp);
    }
    g_assert_not_reached();
}

static void assert_info_equal(const DSMDirPageInfo *a,
                              const DSMDirPageInfo *b)
{
    g_assert_cmpint(a->mode, ==, b->mode);
    g_assert_cmphex(a->holders, ==, b->holders);
    g_assert_cmpuint(a->tid, ==, b->tid);
    g_assert_cmpuint(a->busy, ==, b->busy);
    g_assert_cmpint(a->zero, ==, b->zero);
    g_assert_cmpuint(a->requester, ==, b->requester);
    g_assert_cmpint(a->access, ==, b->access);
    g_assert_cmphex(a->inv_pending, ==, b->inv_pending);
    g_assert_cmpuint(a->queued, ==, b->queued);
}

static void test_bad_case(gconstpointer opaque)
{
    const BadCase *c = opaque;
    DSMDirPageInfo before[2], after[2];
    DSMDirStats stats;
    Error *err = NULL;
    Fixture f;
    int i;

    fixture_init(&f, NR_FRAGS);
    bad_case_setup(&f);
    for (i = 0; i < 2; i++) {
        dsm_dir_page_info(f.dir, P + i, &before[i]);
    }
    stats = *dsm_dir_stats(f.dir);

    g_assert_false(bad_case_fire(&f, c, &err));
    g_assert_nonnull(err);
    if (!strstr(error_get_pretty(err), c->error)) {
        g_test_message("got \"%s\", want \"%s\"", error_get_pretty(err),
                       c->error);
        g_test_fail();
    }
    error_free(err);

    /* Nothing changed, nothing to send, one more rejection counted. */
    expect_none(&f);
    for (i = 0; i < 2; i++) {
        dsm_dir_page_info(f.dir, P + i, &after[i]);
        assert_info_equal(&after[i], &before[i]);
    }
    stats.rejected++;
    g_assert_cmpmem(dsm_dir_stats(f.dir), sizeof(stats),
                    &stats, sizeof(stats));

    /* And the transaction still completes normally. */
    ack(&f, P, 3, 2);
    expect(&f, P, (Want[]) { FWD_TO(1, 3, W, 3), END });
    done(&f, P, 3, 3);
    expect(&f, P, (Want[]) { FWD_TO(3, 4, R, 2), END });
    done(&f, P, 4, 2);
    expect_page(&f, P, DSM_DIR_SHARED, 0xc, false, 0);
    fixture_destroy(&f);
}

/* A second ACK from the same fragment is refused. */
static void test_duplicate_ack(void)
{
    Error *err = NULL;
    Fixture f;

    fixture_init(&f, NR_FRAGS);
    make_owner(&f, P, 1);
    add_reader(&f, P, 2);
    add_reader(&f, P, 3);
    req(&f, P, HOME, W);
    g_assert_cmpuint(f.out->len, ==, 2);        /* INV 2 and 3 */
    g_array_set_size(f.out, 0);
    ack(&f, P, 3 + 1, 2);
    g_assert_false(dsm_dir_ack(f.dir, P, 4, 2, f.out, &err));
    error_free_or_abort(&err);
    expect_none(&f);
    ack(&f, P, 4, 3);
    expect(&f, P, (Want[]) { FWD_TO(1, 4, W, HOME), END });
    done(&f, P, 4, HOME);
    fixture_destroy(&f);
}

/*
 * The random test: a whole aggregate of simulated fragments.
 */

#define MAX_FRAGS   DSM_MAX_FRAGMENTS
#define MAX_PAGES   16

typedef enum LocalState { ST_I, ST_S, ST_E } LocalState;
typedef enum Pend { PEND_NONE, PEND_R, PEND_W } Pend;

typedef struct SimPage {
    LocalState state;
    Pend pend;
    uint64_t value;             /* meaningful unless ST_I */
    unsigned want_r, want_w;    /* local threads waiting for rights */
} SimPage;

typedef struct SimFrag {
    DSMDirectory *dir;          /* home of [lo, hi) */
    uint64_t lo, hi;
    SimPage page[MAX_PAGES];
} SimFrag;

typedef struct SimConfig {
    const char *name;
    unsigned nr_frags;
    unsigned nr_pages;
    unsigned ops;
    unsigned write_pct;
} SimConfig;

typedef struct Sim {
    const SimConfig *cfg;
    SimFrag frag[MAX_FRAGS];
    GQueue *link;               /* [from * nr_frags + to]: GByteArray */
    unsigned in_flight;
    uint64_t ref[MAX_PAGES];    /* value of the last write */
    uint64_t ops_issued, ops_done, reqs_sent;
    GArray *out;
} Sim;

static unsigned sim_home(const Sim *sim, uint64_t page)
{
    unsigned f;

    for (f = 0; f < sim->cfg->nr_frags; f++) {
        if (page >= sim->frag[f].lo && page < sim->frag[f].hi) {
            return f;
        }
    }
    g_assert_not_reached();
}

/* Every message crosses the link encoded, as it will on a socket. */
static void sim_send(Sim *sim, unsigned from, unsigned to, const DSMMsg *msg)
{
    GByteArray *buf = g_byte_array_new();

    dsm_msg_encode(dsm_codec_find(&dsm_page_codec, msg->type), msg, buf);
    g_queue_push_tail(&sim->link[from * sim->cfg->nr_frags + to], buf);
    sim->in_flight++;
}

static void sim_send_page_tid(Sim *sim, unsigned from, unsigned to,
                              DSMMsgType type, uint64_t page, uint32_t tid)
{
    DSMMsg msg = { .type = type, .page = page, .tid = tid };

    sim_send(sim, from, to, &msg);
}

static void sim_send_req(Sim *sim, unsigned f, uint64_t page, Pend pend)
{
    DSMMsg msg = {
        .type = DSM_MSG_REQ, .page = page,
        .access = pend == PEND_W ? W : R,
    };

    sim->frag[f].page[page].pend = pend;
    sim->reqs_sent++;
    sim_send(sim, f, sim_home(sim, page), &msg);
}

static void sim_read(Sim *sim, SimPage *pg, uint64_t page)
{
    g_assert(pg->state != ST_I);
    g_assert_cmpuint(pg->value, ==, sim->ref[page]);
    sim->ops_done++;
}

static void sim_write(Sim *sim, SimPage *pg, uint64_t page)
{
    g_assert(pg->state == ST_E);
    pg->value = ++sim->ref[page];
    sim->ops_done++;
}

/* A local thread reads or writes: at once if rights suffice, else wait. */
static void sim_issue(Sim *sim, unsigned f, uint64_t page, bool write)
{
    SimPage *pg = &sim->frag[f].page[page];

    sim->ops_issued++;
    if (!write && pg->state != ST_I) {
        sim_read(sim, pg, page);
    } else if (write && pg->state == ST_E) {
        sim_write(sim, pg, page);
    } else if (write) {
        pg->want_w++;
        /* pend R: REQ(W) goes right after that REQ's DONE. */
        if (pg->pend == PEND_NONE) {
            sim_send_req(sim, f, page, PEND_W);
        }
    } else {
        pg->want_r++;
        if (pg->pend == PEND_NONE) {
            sim_send_req(sim, f, page, PEND_R);
        }
    }
}

/* DATA or GRANT installed: wake the waiters the rights now satisfy. */
static void sim_installed(Sim *sim, unsigned f, uint64_t page, uint32_t tid)
{
    SimPage *pg = &sim->frag[f].page[page];

    pg->pend = PEND_NONE;
    for (; pg->want_r; pg->want_r--) {
        sim_read(sim, pg, page);
    }
    for (; pg->want_w && pg->state == ST_E; pg->want_w--) {
        sim_write(sim, pg, page);
    }
    sim_send_page_tid(sim, f, sim_home(sim, page), DSM_MSG_DONE, page, tid);
    if (pg->want_w) {
        sim_send_req(sim, f, page, PEND_W);
    }
}

static void sim_on_inv(Sim *sim, unsigned f, const DSMMsg *msg)
{
    SimPage *pg = &sim->frag[f].page[msg->page];

    g_assert(pg->state == ST_S);            /* never E: owners get FWD */
    pg->state = ST_I;
    pg->value = UINT64_MAX;                 /* discarded */
    sim_send_page_tid(sim, f, sim_home(sim, msg->page), DSM_MSG_ACK,
                      msg->page, msg->tid);
}

/* The supplier: R downgrades (WP) before copying, W discards after. */
static void sim_on_fwd(Sim *sim, unsigned f, const DSMMsg *msg)
{
    SimPage *pg = &sim->frag[f].page[msg->page];
    uint8_t bytes[DSM_PAGE_SIZE] = { 0 };
    DSMMsg data = {
        .type = DSM_MSG_DATA, .page = msg->page, .tid = msg->tid,
        .mode = msg->access == W ? E : S, .data = bytes,
    };

    g_assert(pg->state != ST_I);
    g_assert_cmpuint(msg->target, !=, f);
    if (pg->state == ST_E) {
        pg->state = ST_S;
    }
    stq_be_p(bytes, pg->value);
    if (msg->access == W) {
        pg->state = ST_I;
        pg->value = UINT64_MAX;
    }
    sim_send(sim, f, msg->target, &data);
}

static void sim_on_data(Sim *sim, unsigned f, const DSMMsg *msg)
{
    SimPage *pg = &sim->frag[f].page[msg->page];

    /* The directory lists no copy here, or it would have sent GRANT. */
    g_assert(pg->pend != PEND_NONE && pg->state == ST_I);
    g_assert(msg->mode == E || pg->pend == PEND_R);
    pg->state = msg->mode == E ? ST_E : ST_S;
    pg->value = msg->zero ? 0 : ldq_be_p(msg->data);
    sim_installed(sim, f, msg->page, msg->tid);
}

static void sim_on_grant(Sim *sim, unsigned f, const DSMMsg *msg)
{
    SimPage *pg = &sim->frag[f].page[msg->page];

    /* Requesters never send REQ(R) with a copy, so only upgrades. */
    g_assert(pg->pend == PEND_W && pg->state == ST_S && msg->mode == E);
    pg->state = ST_E;
    sim_installed(sim, f, msg->page, msg->tid);
}

static void sim_on_home(Sim *sim, unsigned f, unsigned from,
                        const DSMMsg *msg)
{
    guint i;

    g_array_set_size(sim->out, 0);
    g_assert(dsm_dir_is_home(sim->frag[f].dir, msg->page));
    g_assert(dsm_dir_handle_msg(sim->frag[f].dir, from, msg, sim->out,
                                &error_abort));
    for (i = 0; i < sim->out->len; i++) {
        const DSMAction *a = &g_array_index(sim->out, DSMAction, i);

        sim_send(sim, f, a->to, &a->msg);
    }
}

static void sim_dispatch(Sim *sim, unsigned from, unsigned to,
                         const DSMMsg *msg)
{
    switch (msg->type) {
    case DSM_MSG_REQ:
    case DSM_MSG_ACK:
    case DSM_MSG_DONE:
        sim_on_home(sim, to, from, msg);
        break;
    case DSM_MSG_INV:
        sim_on_inv(sim, to, msg);
        break;
    case DSM_MSG_FWD:
        sim_on_fwd(sim, to, msg);
        break;
    case DSM_MSG_DATA:
        sim_on_data(sim, to, msg);
        break;
    case DSM_MSG_GRANT:
        sim_on_grant(sim, to, msg);
        break;
    default:
        g_assert_not_reached();
    }
}

static const DSMFamilyCodec *sim_codec_of(void *opaque, DSMMsgFamily family)
{
    return family == DSM_FAMILY_DSM ? &dsm_page_codec : NULL;
}

/* Deliver the oldest message of a random link; return its page. */
static uint64_t sim_deliver(Sim *sim)
{
    unsigned nr_links = sim->cfg->nr_frags * sim->cfg->nr_frags;
    unsigned pick = g_test_rand_int_range(0, sim->in_flight);
    unsigned l;
    g_autoptr(GByteArray) buf = NULL;
    const DSMLimits lim = { sim->cfg->nr_pages, sim->cfg->nr_frags };
    const DSMMsgDesc *desc;
    DSMHeader hdr;
    DSMMsg msg;

    /* Pick a message at random, deliver its link's oldest one. */
    for (l = 0; pick >= g_queue_get_length(&sim->link[l]); l++) {
        pick -= g_queue_get_length(&sim->link[l]);
        g_assert_cmpuint(l + 1, <, nr_links);
    }
    buf = g_queue_pop_head(&sim->link[l]);
    sim->in_flight--;
    g_assert(dsm_msg_decode(sim_codec_of, NULL, buf->data, buf->len, &lim,
                            &hdr, &desc, &msg, &error_abort));
    sim_dispatch(sim, l / sim->cfg->nr_frags, l % sim->cfg->nr_frags, &msg);
    return msg.page;
}

/* Single writer, no E beside S, and every copy holds the last write. */
static void sim_check_page(const Sim *sim, uint64_t page)
{
    unsigned shared = 0, excl = 0, f;

    for (f = 0; f < sim->cfg->nr_frags; f++) {
        const SimPage *pg = &sim->frag[f].page[page];

        shared += pg->state == ST_S;
        excl += pg->state == ST_E;
        if (pg->state != ST_I) {
            g_assert_cmpuint(pg->value, ==, sim->ref[page]);
        }
    }
    g_assert_cmpuint(excl, <=, 1);
    g_assert(!excl || !shared);
}

static void sim_init(Sim *sim, const SimConfig *cfg)
{
    unsigned n = cfg->nr_frags, f;

    memset(sim, 0, sizeof(*sim));
    sim->cfg = cfg;
    sim->link = g_new0(GQueue, n * n);
    sim->out = g_array_new(false, true, sizeof(DSMAction));
    for (f = 0; f < n; f++) {
        SimFrag *sf = &sim->frag[f];

        sf->lo = (uint64_t)f * cfg->nr_pages / n;
        sf->hi = (uint64_t)(f + 1) * cfg->nr_pages / n;
        sf->dir = dsm_dir_new(f, n, sf->lo, sf->hi - sf->lo);
    }
}

/* The run drained: no waiter, no REQ, no open transaction anywhere. */
static void sim_finish(Sim *sim)
{
    DSMDirStats sum = { 0 };
    unsigned f, p;

    g_assert_cmpuint(sim->in_flight, ==, 0);
    g_assert_cmpuint(sim->ops_done, ==, sim->ops_issued);
    for (f = 0; f < sim->cfg->nr_frags; f++) {
        const SimFrag *sf = &sim->frag[f];
        const DSMDirStats *st = dsm_dir_stats(sf->dir);

        for (p = 0; p < sim->cfg->nr_pages; p++) {
            g_assert(sf->page[p].pend == PEND_NONE);
            g_assert(!sf->page[p].want_r && !sf->page[p].want_w);
        }
        for (p = sf->lo; p < sf->hi; p++) {
            DSMDirPageInfo info;

            dsm_dir_page_info(sf->dir, p, &info);
            g_assert_cmpuint(info.busy, ==, 0);
        }
        sum.requests += st->requests;
        sum.commits += st->commits;
        sum.queued += st->queued;
        sum.invalidations += st->invalidations;
        sum.forwards += st->forwards;
        sum.rejected += st->rejected;
        dsm_dir_free(sim->frag[f].dir);
    }
    g_assert_cmpuint(sum.requests, ==, sim->reqs_sent);
    g_assert_cmpuint(sum.commits, ==, sum.requests);
    g_assert_cmpuint(sum.rejected, ==, 0);
    g_test_message("%s: %" PRIu64 " ops, %" PRIu64 " REQs, %" PRIu64
                   " queued, %" PRIu64 " INVs, %" PRIu64 " FWDs",
                   sim->cfg->name, sim->ops_done, sum.requests, sum.queued,
                   sum.invalidations, sum.forwards);
    g_free(sim->link);
    g_array_free(sim->out, true);
}

static void test_random(gconstpointer opaque)
{
    const SimConfig *cfg = opaque;
    g_autofree Sim *sim = g_new(Sim, 1);
    /* An op costs at most a REQ, INVs and ACKs, FWD, DATA, DONE. */
    uint64_t max_steps = (uint64_t)cfg->ops * (2 * cfg->nr_frags + 5);
    uint64_t steps = 0, page;

    sim_init(sim, cfg);
    while (sim->ops_issued < cfg->ops || sim->in_flight) {
        bool issue = sim->ops_issued < cfg->ops &&
                     (!sim->in_flight || g_test_rand_int_range(0, 3) == 0);

        if (issue) {
            page = g_test_rand_int_range(0, cfg->nr_pages);
            sim_issue(sim, g_test_rand_int_range(0, cfg->nr_frags), page,
                      g_test_rand_int_range(0, 100) < cfg->write_pct);
        } else {
            page = sim_deliver(sim);
        }
        sim_check_page(sim, page);
        /* Every op completes within its messages: no stuck page. */
        g_assert_cmpuint(++steps, <, max_steps);
    }
    for (page = 0; page < cfg->nr_pages; page++) {
        sim_check_page(sim, page);
    }
    sim_finish(sim);
}

static const SimConfig sim_configs[] = {
    { "2-frags-1-page", 2, 1, 20000, 50 },
    { "3-frags-2-pages", 3, 2, 20000, 30 },
    { "4-frags-8-pages", 4, 8, 20000, 50 },
    { "4-frags-4-pages-read-mostly", 4, 4, 20000, 5 },
    { "8-frags-3-pages-write-mostly", 8, 3, 20000, 90 },
    { "64-frags-16-pages", 64, 16, 20000, 40 },
};

int main(int argc, char **argv)
{
    size_t i;

    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/dsm/directory/read-zero-page", test_read_zero_page);
    g_test_add_func("/dsm/directory/write-then-remote-read",
                    test_write_then_remote_read);
    g_test_add_func("/dsm/directory/write-one-sharer",
                    test_write_one_sharer);
    g_test_add_func("/dsm/directory/write-two-sharers",
                    test_write_two_sharers);
    g_test_add_func("/dsm/directory/write-zero-page-with-sharers",
                    test_write_zero_page_with_sharers);
    g_test_add_func("/dsm/directory/upgrade", test_upgrade);
    g_test_add_func("/dsm/directory/upgrade-after-invalidation",
                    test_upgrade_after_invalidation);
    g_test_add_func("/dsm/directory/read-by-holder", test_read_by_holder);
    g_test_add_func("/dsm/directory/home-supplies", test_home_supplies);
    g_test_add_func("/dsm/directory/fifo", test_fifo);
    g_test_add_func("/dsm/directory/64-fragments", test_64_fragments);
    g_test_add_func("/dsm/directory/duplicate-ack", test_duplicate_ack);
    for (i = 0; i < ARRAY_SIZE(bad_cases); i++) {
        g_autofree char *path =
            g_strdup_printf("/dsm/directory/reject/%s", bad_cases[i].name);

        g_test_add_data_func(path, &bad_cases[i], test_bad_case);
    }
    for (i = 0; i < ARRAY_SIZE(sim_configs); i++) {
        g_autofree char *path =
            g_strdup_printf("/dsm/directory/random/%s", sim_configs[i].name);

        g_test_add_data_func(path, &sim_configs[i], test_random);
    }
    return g_test_run();
}
