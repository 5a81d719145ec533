/*
 * aggvm DSM: unit tests for the local page state machine (local.c)
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/*
 * Apart from userfaultfd and the links: every transition from every
 * state the invariants allow, against a table of what it must do; a
 * refused message must change nothing; and long random walks must keep
 * the invariants after every step.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "migration/dsm/local.h"

#define HOLD_NS     1000
#define PAGE        0x42

typedef enum Event {
    EV_READ_FAULT,
    EV_WRITE_FAULT,
    EV_DATA_S,
    EV_DATA_E,
    EV_GRANT_S,
    EV_GRANT_E,
    EV_INV,
    EV_FWD_R,
    EV_FWD_W,
    EV_CUT_OFF,
    EV__MAX,
} Event;

static const char *const event_names[] = {
    "read-fault", "write-fault", "data-s", "data-e", "grant-s", "grant-e",
    "inv", "fwd-r", "fwd-w", "cut-off",
};

/* Apply @ev at time @now; false if the transition refused it. */
static bool apply(DSMLocalPage *p, Event ev, int64_t now, DSMLocalResult *r,
                  Error **errp)
{
    switch (ev) {
    case EV_READ_FAULT:
        dsm_local_fault(p, DSM_PEND_R, now, r);
        return true;
    case EV_WRITE_FAULT:
        dsm_local_fault(p, DSM_PEND_W, now, r);
        return true;
    case EV_DATA_S:
    case EV_DATA_E:
        return dsm_local_data(p, PAGE, ev == EV_DATA_S ? DSM_MODE_SHARED
                                                       : DSM_MODE_EXCL,
                              now, HOLD_NS, r, errp);
    case EV_GRANT_S:
    case EV_GRANT_E:
        return dsm_local_grant(p, PAGE, ev == EV_GRANT_S ? DSM_MODE_SHARED
                                                         : DSM_MODE_EXCL,
                               now, HOLD_NS, r, errp);
    case EV_INV:
        dsm_local_inv(p, now, r);
        return true;
    case EV_FWD_R:
    case EV_FWD_W:
        return dsm_local_fwd(p, PAGE, ev == EV_FWD_R ? DSM_ACCESS_READ
                                                     : DSM_ACCESS_WRITE,
                             now, r, errp);
    case EV_CUT_OFF:
        dsm_local_cut_off(p, r);
        return true;
    default:
        g_assert_not_reached();
    }
}

#define I DSM_LOCAL_I
#define S DSM_LOCAL_S
#define E DSM_LOCAL_E
#define NO DSM_PEND_NONE
#define R DSM_PEND_R
#define W DSM_PEND_W

#define DEFER       DSM_STEP_DEFER
#define PROTECT     DSM_STEP_PROTECT
#define COPY        DSM_STEP_COPY
#define DISCARD     DSM_STEP_DISCARD
#define INSTALL     DSM_STEP_INSTALL
#define ZERO        DSM_STEP_INSTALL_ZERO
#define UNPROTECT   DSM_STEP_UNPROTECT
#define WAKE        DSM_STEP_WAKE
#define DONE        DSM_STEP_SEND_DONE
#define REQ         DSM_STEP_SEND_REQ
#define ACK         DSM_STEP_SEND_ACK
#define DATA        DSM_STEP_SEND_DATA
#define REFUSED     (~0u)

typedef struct Case {
    /* before */
    uint8_t state, pend;
    bool want_write;
    bool held;                  /* installed within the hold time */
    Event ev;
    /* after */
    unsigned steps;             /* REFUSED: an error, nothing changed */
    uint8_t state2, pend2;
    bool want_write2;
} Case;

static const Case cases[] = {
    /* Faults: a hint, a request, or a write remembered. */
    { I, NO, 0, 0, EV_READ_FAULT, REQ, I, R, 0 },
    { I, NO, 0, 0, EV_WRITE_FAULT, REQ, I, W, 0 },
    { I, R, 0, 0, EV_READ_FAULT, 0, I, R, 0 },
    { I, R, 0, 0, EV_WRITE_FAULT, 0, I, R, 1 },
    { I, R, 1, 0, EV_WRITE_FAULT, 0, I, R, 1 },
    { I, W, 0, 0, EV_READ_FAULT, 0, I, W, 0 },
    { S, NO, 0, 0, EV_READ_FAULT, WAKE, S, NO, 0 },
    { S, NO, 0, 0, EV_WRITE_FAULT, REQ, S, W, 0 },
    { S, W, 0, 0, EV_WRITE_FAULT, 0, S, W, 0 },
    { S, W, 0, 0, EV_READ_FAULT, WAKE, S, W, 0 },
    { E, NO, 0, 0, EV_READ_FAULT, WAKE, E, NO, 0 },
    { E, NO, 0, 0, EV_WRITE_FAULT, WAKE, E, NO, 0 },
    /* DATA: only for an open request on a page not held. */
    { I, R, 0, 0, EV_DATA_S, INSTALL | DONE, S, NO, 0 },
    { I, R, 0, 0, EV_DATA_E, INSTALL | DONE, E, NO, 0 },
    { I, R, 1, 0, EV_DATA_S, INSTALL | DONE | REQ, S, W, 0 },
    { I, R, 1, 0, EV_DATA_E, INSTALL | DONE, E, NO, 0 },
    { I, W, 0, 0, EV_DATA_E, INSTALL | DONE, E, NO, 0 },
    { I, NO, 0, 0, EV_DATA_S, REFUSED },
    { S, W, 0, 0, EV_DATA_E, REFUSED },
    { S, NO, 0, 0, EV_DATA_S, REFUSED },
    { E, NO, 0, 0, EV_DATA_E, REFUSED },
    /* GRANT: only for an open request on a page held. */
    { S, W, 0, 0, EV_GRANT_E, UNPROTECT | DONE, E, NO, 0 },
    { S, W, 0, 0, EV_GRANT_S, WAKE | DONE, S, NO, 0 },
    { I, W, 0, 0, EV_GRANT_E, REFUSED },
    { I, R, 0, 0, EV_GRANT_S, REFUSED },
    { S, NO, 0, 0, EV_GRANT_E, REFUSED },
    { E, NO, 0, 0, EV_GRANT_E, REFUSED },
    /* INV: always answered; the copy goes unless it is held. */
    { S, NO, 0, 0, EV_INV, DISCARD | ACK, I, NO, 0 },
    { S, W, 0, 0, EV_INV, DISCARD | ACK, I, W, 0 },
    { E, NO, 0, 0, EV_INV, DISCARD | ACK, I, NO, 0 },
    { I, NO, 0, 0, EV_INV, ACK, I, NO, 0 },
    { I, R, 0, 0, EV_INV, ACK, I, R, 0 },
    { I, R, 0, 1, EV_INV, ACK, I, R, 0 },
    { S, NO, 0, 1, EV_INV, DEFER, S, NO, 0 },
    { E, NO, 0, 1, EV_INV, DEFER, E, NO, 0 },
    /* FWD: write-protect, copy, discard, in that order; held: later. */
    { E, NO, 0, 0, EV_FWD_R, PROTECT | COPY | DATA, S, NO, 0 },
    { E, NO, 0, 0, EV_FWD_W, PROTECT | COPY | DISCARD | DATA, I, NO, 0 },
    { S, NO, 0, 0, EV_FWD_R, COPY | DATA, S, NO, 0 },
    { S, NO, 0, 0, EV_FWD_W, COPY | DISCARD | DATA, I, NO, 0 },
    { S, W, 0, 0, EV_FWD_W, COPY | DISCARD | DATA, I, W, 0 },
    { E, NO, 0, 1, EV_FWD_W, DEFER, E, NO, 0 },
    { I, NO, 0, 0, EV_FWD_R, REFUSED },
    { I, W, 0, 0, EV_FWD_W, REFUSED },
    /* Cut off: served here, writable, nothing pending. */
    { I, R, 1, 0, EV_CUT_OFF, ZERO, E, NO, 0 },
    { I, NO, 0, 0, EV_CUT_OFF, ZERO, E, NO, 0 },
    { S, W, 0, 0, EV_CUT_OFF, UNPROTECT, E, NO, 0 },
    { E, NO, 0, 0, EV_CUT_OFF, WAKE, E, NO, 0 },
};

static DSMLocalPage make_page(const Case *c, int64_t now)
{
    return (DSMLocalPage) {
        .state = c->state,
        .pend = c->pend,
        .want_write = c->want_write,
        .fault_ns = now - 500,
        .hold_until = c->held ? now + 1 : now - 1,
    };
}

static void test_case(gconstpointer opaque)
{
    const Case *c = opaque;
    int64_t now = 1000000;
    DSMLocalPage p = make_page(c, now), before = p;
    DSMLocalResult res;
    Error *err = NULL;
    bool ok;

    g_assert(dsm_local_check(&p, &error_abort));
    ok = apply(&p, c->ev, now, &res, &err);
    if (c->steps == REFUSED) {
        g_assert_false(ok);
        error_free_or_abort(&err);
        g_assert_cmpmem(&p, sizeof(p), &before, sizeof(before));
        return;
    }
    g_assert_true(ok);
    g_assert_cmphex(res.steps, ==, c->steps);
    g_assert_cmpuint(p.state, ==, c->state2);
    g_assert_cmpuint(p.pend, ==, c->pend2);
    g_assert_cmpint(p.want_write, ==, c->want_write2);
    g_assert(dsm_local_check(&p, &error_abort));
    if (res.steps & (DSM_STEP_INSTALL | DSM_STEP_SEND_DATA)) {
        /* The mode installed or sent is what the message said. */
        g_assert_cmpint(res.mode, ==,
                        c->ev == EV_DATA_S || c->ev == EV_FWD_R ?
                        DSM_MODE_SHARED : DSM_MODE_EXCL);
    }
    if (res.steps & DSM_STEP_SEND_REQ) {
        g_assert_cmpint(res.req, ==, p.pend);
        g_assert_cmpint(p.fault_ns, ==, now);
    }
    if (res.steps & DSM_STEP_SEND_DONE) {
        /* Held from now on, and the wait measured from the request. */
        g_assert_cmpint(p.hold_until, ==, now + HOLD_NS);
        g_assert_cmpint(res.waited_ns, ==, 500);
    }
}

/* The checker names each broken invariant. */
static void test_check(void)
{
    static const struct {
        DSMLocalPage p;
        const char *error;
    } bad[] = {
        { { .state = 3 }, "(1)" },
        { { .pend = 3 }, "(1)" },
        { { .state = I, .pend = W, .want_write = true }, "(2)" },
        { { .state = S, .pend = R }, "(3)" },
        { { .state = E, .pend = W }, "(4)" },
    };
    size_t i;

    for (i = 0; i < ARRAY_SIZE(bad); i++) {
        Error *err = NULL;

        g_assert_false(dsm_local_check(&bad[i].p, &err));
        g_assert_nonnull(strstr(error_get_pretty(err), bad[i].error));
        error_free(err);
    }
}

/*
 * Random events, messages that make no sense included: every accepted
 * step keeps the invariants, every refused one changes nothing.
 */
static void test_random_walk(void)
{
    DSMLocalPage p = { .state = I };
    int64_t now = 0;
    unsigned counts[EV__MAX] = { }, refused = 0;
    int step;

    for (step = 0; step < 200000; step++) {
        Event ev = g_test_rand_int_range(0, EV__MAX - 1);   /* no cut-off */
        DSMLocalPage before = p;
        DSMLocalResult res;
        Error *err = NULL;

        now += g_test_rand_int_range(0, 2 * HOLD_NS);
        if (!apply(&p, ev, now, &res, &err)) {
            g_assert_cmpmem(&p, sizeof(p), &before, sizeof(before));
            error_free_or_abort(&err);
            refused++;
            continue;
        }
        counts[ev]++;
        if (!dsm_local_check(&p, &err)) {
            g_test_message("step %d, %s: %s", step, event_names[ev],
                           error_get_pretty(err));
            g_test_fail();
            error_free(err);
            return;
        }
        /* A deferred message changes nothing yet. */
        if (res.steps & DSM_STEP_DEFER) {
            g_assert_cmphex(res.steps, ==, DSM_STEP_DEFER);
            g_assert_cmpmem(&p, sizeof(p), &before, sizeof(before));
        }
    }
    g_assert_cmpuint(refused, >, 0);
    for (step = 0; step < EV__MAX - 1; step++) {
        g_assert_cmpuint(counts[step], >, 0);
    }
}

int main(int argc, char **argv)
{
    size_t i;

    g_test_init(&argc, &argv, NULL);
    for (i = 0; i < ARRAY_SIZE(cases); i++) {
        const Case *c = &cases[i];
        g_autofree char *path = g_strdup_printf(
            "/dsm/local/%zu-%s-from-%c%s%s%s", i, event_names[c->ev],
            "ISE"[c->state], c->pend == R ? "-pend-r" :
                             c->pend == W ? "-pend-w" : "",
            c->want_write ? "-want-write" : "", c->held ? "-held" : "");

        g_test_add_data_func(path, c, test_case);
    }
    g_test_add_func("/dsm/local/check", test_check);
    g_test_add_func("/dsm/local/random-walk", test_random_walk);
    return g_test_run();
}
