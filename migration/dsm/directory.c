/*
 * aggvm DSM: home directory state machine
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/*
 * The "Home" part of the corrected DSM protocol (DSM-REVIEW.md; the spin
 * model model/dsm.pml checks it for one page).  A home serializes the
 * transactions on each of its pages: one is open (the page is busy), the
 * others wait in a FIFO, none is dropped.
 *
 * Assumptions:
 * - The caller serializes the events of one page; pages are independent.
 *   The statistics are shared by all pages (see DSMDirStats).
 * - Links are FIFO per ordered pair of fragments.  The directory needs
 *   it in one place: a fragment that upgrades sends REQ(W) right after
 *   the DONE of its REQ(R), and the DONE must arrive first or the REQ
 *   is refused as a duplicate.
 * - Events come from peers that may be buggy.  Each is checked in full
 *   before the first write, so a refused event changes nothing and
 *   appends nothing.  assert() guards only the directory's own
 *   invariants, never a peer's input.
 * - The requester sends DONE after installing, for every answer (also
 *   GRANT and DATA ZERO, which the review allows to skip): the home
 *   commits only then, so it never sends INV or FWD for a copy that is
 *   not installed yet, whatever link the copy travelled on.
 *
 * A page entry is mode, holders, tid, the zero flag and `txn`, the open
 * transaction (NULL when idle; busy is txn->busy).  The FIFO of queued
 * requests lives in the transaction: a queue exists only while the page
 * is busy (invariant 8), so idle pages, nearly all of them, cost 24
 * bytes.  zero is stored inverted (`written`) so that the zero-filled
 * allocation is already the initial state and untouched entries need
 * no backing memory.
 *
 * INVARIANTS (dsm_dir_check_page())
 *
 *  (1) holders has bits of existing fragments only.
 *  (2) NONE has no holder, SHARED at least one, EXCL exactly one.
 *  (3) zero implies not EXCL: the first exclusive commit clears zero;
 *      Shared copies of a zero page were made by DATA(S, ZERO).
 *  (4) NONE implies zero: no commit drops the last copy (there is no
 *      eviction), so a page nobody holds was never written.
 *  (5) busy, when open, equals tid and is not 0; 0 means idle, so tids
 *      skip 0 when they wrap.
 *  (6) A fragment has at most one request per page, open or queued: the
 *      `waiting` bitmap is exactly the requester plus the queued ones,
 *      and the queue has no duplicate (so it never overflows).
 *  (7) The supplier, if any, is a holder other than the requester; there
 *      is none when the requester is a holder or the page is zero.
 *  (8) An idle page has no queue: DONE starts the head at once, a REQ on
 *      an idle page starts at once.
 *  (9) inv_pending (INVs sent, ACK missing) is non-empty only for W and
 *      is a subset of holders minus the requester and the supplier.
 * (10) The answer (GRANT, DATA ZERO or FWD) has been sent iff
 *      inv_pending is empty; only then is DONE accepted.
 * (11) mode, holders and zero change only at commit (dsm_dir_done()).
 *      While busy they describe the page before the transaction: holders
 *      may still list sharers that have discarded for an INV.
 *
 * TRANSACTION PHASES of a page
 *
 *                dsm_dir_request(): W with INVs to send
 *     +------+ ------------------------------------> +-------+
 *     | IDLE |                                       | INVAL |
 *     +------+ ---------------+                      +-------+
 *        ^   R, or W without  |                          |
 *        |   INVs: answer     v      dsm_dir_ack():      |
 *        |              +--------+   last ACK, answer    |
 *        +------------- | SUPPLY | <---------------------+
 *     dsm_dir_done():   +--------+
 *     FIFO empty            |  dsm_dir_done(): FIFO not empty, the
 *                           +- head starts: to INVAL or SUPPLY
 *
 *     IDLE   -> INVAL    dsm_dir_request() -> dsm_dir_start()
 *     IDLE   -> SUPPLY   dsm_dir_request() -> dsm_dir_start()
 *                        -> dsm_dir_supply()
 *     INVAL  -> SUPPLY   dsm_dir_ack() -> dsm_dir_supply()
 *     SUPPLY -> IDLE     dsm_dir_done() -> dsm_dir_commit()
 *     SUPPLY -> INVAL or SUPPLY
 *                        dsm_dir_done() -> dsm_dir_commit(),
 *                        dsm_dir_start() for the FIFO head
 *     INVAL, SUPPLY: dsm_dir_request() queues, the phase stays.
 *
 *     IDLE: nothing of this page is in flight from the home.  Every
 *       holder's copy is the latest value.
 *     INVAL: INVs are out, the answer is not: nobody may install yet.
 *     SUPPLY: exactly one answer is in flight or being installed; only
 *       the requester's DONE moves the page on.
 *
 * MODES of a page (they change only in dsm_dir_commit())
 *
 *                  R                       W
 *     +------+ ---------> +--------+ ----------> +------+
 *     | NONE |            | SHARED |             | EXCL | ---+
 *     +------+            +--------+ <---------- +------+    | W
 *        |                 ^      |       R        ^  ^      |
 *        |                 +- R --+                |  +------+
 *        +------------------------ W --------------+
 *
 *     any  -R-> SHARED   dsm_dir_done() -> dsm_dir_commit(): the
 *                        reader joins the holders; an EXCL owner,
 *                        downgraded by FWD(R), stays one of them
 *     any  -W-> EXCL     dsm_dir_done() -> dsm_dir_commit(): the
 *                        writer is the only holder, zero is cleared
 *
 *     NONE: no copy anywhere; the contents are zero (4).
 *     SHARED: the holders' copies are equal and write-protected.
 *     EXCL: the one holder may write; nobody else has a copy.
 *
 *   A GRANT(S) to the EXCL owner (a REQ(R) from it, which the requester
 *   rules do not produce) leaves the page EXCL: the owner keeps write
 *   access, and the directory must never record fewer rights than a
 *   fragment has.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/bitops.h"
#include "qemu/host-utils.h"
#include "migration/dsm/directory.h"

#define DSM_DIR_NO_SUPPLIER UINT32_MAX

/* The open transaction of a page, and the requests queued behind it. */
typedef struct DSMDirTxn {
    uint32_t busy;              /* its tid, never 0 */
    uint32_t requester;
    DSMAccess access;
    uint32_t supplier;          /* FWD goes here; DSM_DIR_NO_SUPPLIER */
    uint64_t inv_pending;       /* INVs sent whose ACK is missing */
    uint64_t waiting;           /* requester and queued fragments */
    /* FIFO ring of (fragment << 1 | access); (6) bounds it. */
    uint8_t queue[DSM_MAX_FRAGMENTS];
    uint8_t qhead;
    uint8_t qlen;
} DSMDirTxn;

typedef struct DSMDirPage {
    uint64_t holders;
    DSMDirTxn *txn;             /* open transaction, NULL when idle */
    uint32_t tid;               /* last tid handed out */
    uint8_t mode;               /* DSMDirMode */
    bool written;               /* !zero */
} DSMDirPage;

/* Every page of a home has one: keep it small. */
QEMU_BUILD_BUG_ON(sizeof(DSMDirPage) > 24);

struct DSMDirectory {
    /* Set at creation, read-only afterwards. */
    uint32_t self;
    uint32_t nr_fragments;
    uint64_t first_page;
    uint64_t nr_pages;

    /* Each page's entry is serialized by the caller (see above). */
    DSMDirPage *pages;
    DSMDirStats stats;
};

DSMDirectory *dsm_dir_new(uint32_t self, uint32_t nr_fragments,
                          uint64_t first_page, uint64_t nr_pages)
{
    DSMDirectory *dir = g_new0(DSMDirectory, 1);

    assert(nr_fragments >= 1 && nr_fragments <= DSM_MAX_FRAGMENTS);
    assert(self < nr_fragments);
    assert(first_page + nr_pages >= first_page);

    dir->self = self;
    dir->nr_fragments = nr_fragments;
    dir->first_page = first_page;
    dir->nr_pages = nr_pages;
    /* All zero is NONE, no holder, tid 0, idle, zero: the start state. */
    dir->pages = g_new0(DSMDirPage, nr_pages);
    return dir;
}

void dsm_dir_free(DSMDirectory *dir)
{
    uint64_t i;

    if (!dir) {
        return;
    }
    for (i = 0; i < dir->nr_pages; i++) {
        g_free(dir->pages[i].txn);
    }
    g_free(dir->pages);
    g_free(dir);
}

bool dsm_dir_is_home(const DSMDirectory *dir, uint64_t page)
{
    return page >= dir->first_page && page - dir->first_page < dir->nr_pages;
}

static DSMDirPage *dsm_dir_page(const DSMDirectory *dir, uint64_t page)
{
    assert(dsm_dir_is_home(dir, page));
    return &dir->pages[page - dir->first_page];
}

const DSMDirStats *dsm_dir_stats(const DSMDirectory *dir)
{
    return &dir->stats;
}

const char *dsm_dir_mode_name(DSMDirMode mode)
{
    static const char *const names[] = {
        [DSM_DIR_NONE] = "NONE",
        [DSM_DIR_SHARED] = "SHARED",
        [DSM_DIR_EXCL] = "EXCL",
    };

    return mode < ARRAY_SIZE(names) ? names[mode] : "invalid";
}

/* Actions */

static DSMMsg *dsm_dir_emit(GArray *out, uint32_t to, DSMMsgType type,
                            uint64_t page, uint32_t tid)
{
    DSMAction act = {
        .to = to,
        .msg = { .type = type, .page = page, .tid = tid },
    };

    g_array_append_val(out, act);
    return &g_array_index(out, DSMAction, out->len - 1).msg;
}

/* Ids wrap after 2^32 transactions on one page; 0 means idle (5). */
static uint32_t dsm_dir_next_tid(uint32_t tid)
{
    return tid == UINT32_MAX ? 1 : tid + 1;
}

/* Who sends the bytes: the home's own copy (no extra hop), else any. */
static uint32_t dsm_dir_pick_supplier(const DSMDirectory *dir,
                                      uint64_t holders)
{
    assert(holders);
    if (holders & BIT_ULL(dir->self)) {
        return dir->self;
    }
    return ctz64(holders);
}

/*
 * The answer, the same rule for R and W: the requester's own copy if the
 * directory lists one (GRANT), zeros from the home if the page was never
 * written, else the supplier's copy (FWD).  It is decided here, on the
 * directory, not on what the requester believed when it sent REQ: an
 * upgrade whose copy was invalidated meanwhile gets FWD, not GRANT.
 */
static void dsm_dir_supply(DSMDirectory *dir, uint64_t page,
                           DSMDirPage *pg, GArray *out)
{
    DSMDirTxn *txn = pg->txn;
    DSMMode mode = txn->access == DSM_ACCESS_WRITE ? DSM_MODE_EXCL
                                                   : DSM_MODE_SHARED;
    DSMMsg *msg;

    if (pg->holders & BIT_ULL(txn->requester)) {
        msg = dsm_dir_emit(out, txn->requester, DSM_MSG_GRANT, page,
                           txn->busy);
        msg->mode = mode;
        dir->stats.grants++;
    } else if (!pg->written) {
        msg = dsm_dir_emit(out, txn->requester, DSM_MSG_DATA, page,
                           txn->busy);
        msg->mode = mode;
        msg->zero = true;
        dir->stats.zero_fills++;
    } else {
        msg = dsm_dir_emit(out, txn->supplier, DSM_MSG_FWD, page,
                           txn->busy);
        msg->access = txn->access;
        msg->target = txn->requester;
        dir->stats.forwards++;
    }
}

/* W: every copy but the requester's and the supplier's goes (9). */
static void dsm_dir_invalidate(DSMDirectory *dir, uint64_t page,
                               DSMDirPage *pg, GArray *out)
{
    DSMDirTxn *txn = pg->txn;
    uint64_t victims = pg->holders & ~BIT_ULL(txn->requester);
    uint64_t v;

    if (txn->supplier != DSM_DIR_NO_SUPPLIER) {
        victims &= ~BIT_ULL(txn->supplier);
    }
    txn->inv_pending = victims;
    for (v = victims; v; v &= v - 1) {
        dsm_dir_emit(out, ctz64(v), DSM_MSG_INV, page, txn->busy);
        dir->stats.invalidations++;
    }
}

/* Open a transaction for a request the page is now free to serve. */
static void dsm_dir_start(DSMDirectory *dir, uint64_t page, DSMDirPage *pg,
                          uint32_t from, DSMAccess access, GArray *out)
{
    DSMDirTxn *txn = pg->txn;
    bool has_copy = pg->holders & BIT_ULL(from);

    pg->tid = dsm_dir_next_tid(pg->tid);
    txn->busy = pg->tid;
    txn->requester = from;
    txn->access = access;
    txn->inv_pending = 0;
    txn->supplier = (has_copy || !pg->written)
                    ? DSM_DIR_NO_SUPPLIER
                    : dsm_dir_pick_supplier(dir, pg->holders);
    if (access == DSM_ACCESS_WRITE) {
        dsm_dir_invalidate(dir, page, pg, out);
    }
    if (!txn->inv_pending) {
        dsm_dir_supply(dir, page, pg, out);
    }
}

/* The requester has installed: make the directory say so. */
static void dsm_dir_commit(DSMDirPage *pg)
{
    DSMDirTxn *txn = pg->txn;
    uint64_t req = BIT_ULL(txn->requester);

    if (txn->access == DSM_ACCESS_WRITE) {
        pg->holders = req;
        pg->mode = DSM_DIR_EXCL;
        pg->written = true;
    } else if (!(pg->mode == DSM_DIR_EXCL && pg->holders == req)) {
        pg->holders |= req;
        pg->mode = DSM_DIR_SHARED;
    }
}

static void dsm_dir_enqueue(DSMDirTxn *txn, uint32_t from, DSMAccess access)
{
    unsigned slot = (txn->qhead + txn->qlen) % DSM_MAX_FRAGMENTS;

    assert(txn->qlen < DSM_MAX_FRAGMENTS);
    txn->queue[slot] = from << 1 | access;
    txn->qlen++;
}

static void dsm_dir_dequeue(DSMDirTxn *txn, uint32_t *from,
                            DSMAccess *access)
{
    uint8_t entry = txn->queue[txn->qhead];

    assert(txn->qlen);
    txn->qhead = (txn->qhead + 1) % DSM_MAX_FRAGMENTS;
    txn->qlen--;
    *from = entry >> 1;
    *access = entry & 1;
}

/* Validation of peer events: nothing here writes. */

static bool dsm_dir_check_event(const DSMDirectory *dir, const char *what,
                                uint64_t page, uint32_t from, Error **errp)
{
    if (!dsm_dir_is_home(dir, page)) {
        error_setg(errp, "%s for page 0x%" PRIx64 " from fragment %u, "
                   "expected a page in 0x%" PRIx64 "..0x%" PRIx64
                   " (homed at fragment %u)", what, page, from,
                   dir->first_page, dir->first_page + dir->nr_pages - 1,
                   dir->self);
        return false;
    }
    if (from >= dir->nr_fragments) {
        error_setg(errp, "%s for page 0x%" PRIx64 " from fragment %u, "
                   "expected a fragment below %u", what, page, from,
                   dir->nr_fragments);
        return false;
    }
    return true;
}

static bool dsm_dir_check_request(const DSMDirectory *dir, uint64_t page,
                                  uint32_t from, DSMAccess access,
                                  Error **errp)
{
    const DSMDirTxn *txn;

    if (!dsm_dir_check_event(dir, "REQ", page, from, errp)) {
        return false;
    }
    if (access > DSM_ACCESS_WRITE) {
        error_setg(errp, "REQ for page 0x%" PRIx64 " from fragment %u "
                   "has access %u, expected 0 (R) or 1 (W)", page, from,
                   access);
        return false;
    }
    txn = dsm_dir_page(dir, page)->txn;
    if (txn && (txn->waiting & BIT_ULL(from))) {
        error_setg(errp, "duplicate REQ(%s) for page 0x%" PRIx64
                   " from fragment %u, expected none while its earlier "
                   "one is %s", access == DSM_ACCESS_WRITE ? "W" : "R",
                   page, from, txn->requester == from ? "open" : "queued");
        return false;
    }
    return true;
}

/* The open transaction an ACK or DONE names, or NULL with @errp set. */
static DSMDirTxn *dsm_dir_check_tid(const DSMDirectory *dir,
                                    const char *what, uint64_t page,
                                    uint32_t tid, uint32_t from,
                                    Error **errp)
{
    DSMDirTxn *txn;

    if (!dsm_dir_check_event(dir, what, page, from, errp)) {
        return NULL;
    }
    txn = dsm_dir_page(dir, page)->txn;
    if (!txn) {
        error_setg(errp, "%s for page 0x%" PRIx64 " from fragment %u "
                   "has tid %u, expected none: no transaction is open",
                   what, page, from, tid);
        return NULL;
    }
    if (tid != txn->busy) {
        error_setg(errp, "%s for page 0x%" PRIx64 " from fragment %u "
                   "has tid %u, expected %u", what, page, from, tid,
                   txn->busy);
        return NULL;
    }
    return txn;
}

static bool dsm_dir_check_ack(const DSMDirectory *dir, uint64_t page,
                              uint32_t tid, uint32_t from, Error **errp)
{
    const DSMDirTxn *txn = dsm_dir_check_tid(dir, "ACK", page, tid, from,
                                             errp);

    if (!txn) {
        return false;
    }
    if (!(txn->inv_pending & BIT_ULL(from))) {
        error_setg(errp, "ACK for page 0x%" PRIx64 " tid %u from "
                   "fragment %u, expected one only from fragments 0x%"
                   PRIx64 " (INV sent, not yet acknowledged)", page, tid,
                   from, txn->inv_pending);
        return false;
    }
    return true;
}

static bool dsm_dir_check_done(const DSMDirectory *dir, uint64_t page,
                               uint32_t tid, uint32_t from, Error **errp)
{
    const DSMDirTxn *txn = dsm_dir_check_tid(dir, "DONE", page, tid, from,
                                             errp);

    if (!txn) {
        return false;
    }
    if (from != txn->requester) {
        error_setg(errp, "DONE for page 0x%" PRIx64 " tid %u from "
                   "fragment %u, expected it from the requester %u",
                   page, tid, from, txn->requester);
        return false;
    }
    if (txn->inv_pending) {
        error_setg(errp, "DONE for page 0x%" PRIx64 " tid %u from "
                   "fragment %u before the ACKs of fragments 0x%" PRIx64
                   ", expected it after the answer", page, tid, from,
                   txn->inv_pending);
        return false;
    }
    return true;
}

/* Events */

bool dsm_dir_request(DSMDirectory *dir, uint64_t page, uint32_t from,
                     DSMAccess access, GArray *out, Error **errp)
{
    DSMDirPage *pg;

    if (!dsm_dir_check_request(dir, page, from, access, errp)) {
        dir->stats.rejected++;
        return false;
    }
    pg = dsm_dir_page(dir, page);
    dir->stats.requests++;
    if (pg->txn) {
        dsm_dir_enqueue(pg->txn, from, access);
        pg->txn->waiting |= BIT_ULL(from);
        dir->stats.queued++;
    } else {
        pg->txn = g_new0(DSMDirTxn, 1);
        pg->txn->waiting = BIT_ULL(from);
        dsm_dir_start(dir, page, pg, from, access, out);
    }
    dsm_dir_assert_page_state(dir, page);
    return true;
}

bool dsm_dir_ack(DSMDirectory *dir, uint64_t page, uint32_t tid,
                 uint32_t from, GArray *out, Error **errp)
{
    DSMDirPage *pg;

    if (!dsm_dir_check_ack(dir, page, tid, from, errp)) {
        dir->stats.rejected++;
        return false;
    }
    pg = dsm_dir_page(dir, page);
    pg->txn->inv_pending &= ~BIT_ULL(from);
    if (!pg->txn->inv_pending) {
        dsm_dir_supply(dir, page, pg, out);
    }
    dsm_dir_assert_page_state(dir, page);
    return true;
}

bool dsm_dir_done(DSMDirectory *dir, uint64_t page, uint32_t tid,
                  uint32_t from, GArray *out, Error **errp)
{
    DSMDirPage *pg;
    uint32_t next;
    DSMAccess access;

    if (!dsm_dir_check_done(dir, page, tid, from, errp)) {
        dir->stats.rejected++;
        return false;
    }
    pg = dsm_dir_page(dir, page);
    dsm_dir_commit(pg);
    dir->stats.commits++;
    pg->txn->waiting &= ~BIT_ULL(from);
    if (pg->txn->qlen) {
        dsm_dir_dequeue(pg->txn, &next, &access);
        dsm_dir_start(dir, page, pg, next, access, out);
    } else {
        g_free(pg->txn);
        pg->txn = NULL;
    }
    dsm_dir_assert_page_state(dir, page);
    return true;
}

bool dsm_dir_handle_msg(DSMDirectory *dir, uint32_t from, const DSMMsg *msg,
                        GArray *out, Error **errp)
{
    switch (msg->type) {
    case DSM_MSG_REQ:
        return dsm_dir_request(dir, msg->page, from, msg->access, out, errp);
    case DSM_MSG_ACK:
        return dsm_dir_ack(dir, msg->page, msg->tid, from, out, errp);
    case DSM_MSG_DONE:
        return dsm_dir_done(dir, msg->page, msg->tid, from, out, errp);
    default:
        dir->stats.rejected++;
        error_setg(errp, "%s from fragment %u sent to the home "
                   "directory, expected REQ, ACK or DONE",
                   dsm_msg_type_name(msg->type), from);
        return false;
    }
}

void dsm_dir_page_info(const DSMDirectory *dir, uint64_t page,
                       DSMDirPageInfo *info)
{
    const DSMDirPage *pg = dsm_dir_page(dir, page);
    const DSMDirTxn *txn = pg->txn;

    *info = (DSMDirPageInfo) {
        .mode = pg->mode,
        .holders = pg->holders,
        .tid = pg->tid,
        .zero = !pg->written,
    };
    if (txn) {
        info->busy = txn->busy;
        info->requester = txn->requester;
        info->access = txn->access;
        info->inv_pending = txn->inv_pending;
        info->queued = txn->qlen;
    }
}

/* Invariant checks: each returns false with @errp naming the broken one. */

static bool dsm_dir_check_mode(const DSMDirectory *dir,
                               const DSMDirPage *pg, Error **errp)
{
    uint64_t all = MAKE_64BIT_MASK(0, dir->nr_fragments);
    int n = ctpop64(pg->holders);

    if (pg->holders & ~all) {
        error_setg(errp, "(1) holders 0x%" PRIx64 " beyond %u fragments",
                   pg->holders, dir->nr_fragments);
    } else if ((pg->mode == DSM_DIR_NONE && n != 0) ||
               (pg->mode == DSM_DIR_SHARED && n < 1) ||
               (pg->mode == DSM_DIR_EXCL && n != 1) ||
               pg->mode > DSM_DIR_EXCL) {
        error_setg(errp, "(2) mode %s with holders 0x%" PRIx64,
                   dsm_dir_mode_name(pg->mode), pg->holders);
    } else if (!pg->written && pg->mode == DSM_DIR_EXCL) {
        error_setg(errp, "(3) zero page is EXCL");
    } else if (pg->written && pg->mode == DSM_DIR_NONE) {
        error_setg(errp, "(4) written page is NONE");
    } else {
        return true;
    }
    return false;
}

/* (6): the queue and the requester are exactly `waiting`, once each. */
static bool dsm_dir_check_queue(const DSMDirectory *dir,
                                const DSMDirTxn *txn, Error **errp)
{
    uint64_t seen = BIT_ULL(txn->requester);
    unsigned i;

    for (i = 0; i < txn->qlen; i++) {
        uint8_t entry = txn->queue[(txn->qhead + i) % DSM_MAX_FRAGMENTS];
        uint32_t from = entry >> 1;

        if (from >= dir->nr_fragments || (seen & BIT_ULL(from))) {
            error_setg(errp, "(6) queue entry %u is fragment %u, a "
                       "duplicate or out of range", i, from);
            return false;
        }
        seen |= BIT_ULL(from);
    }
    if (seen != txn->waiting) {
        error_setg(errp, "(6) waiting 0x%" PRIx64 " but requester and "
                   "queue are 0x%" PRIx64, txn->waiting, seen);
        return false;
    }
    return true;
}

static bool dsm_dir_check_txn(const DSMDirectory *dir, const DSMDirPage *pg,
                              Error **errp)
{
    const DSMDirTxn *txn = pg->txn;
    uint64_t req = BIT_ULL(txn->requester);
    uint64_t sup = txn->supplier == DSM_DIR_NO_SUPPLIER
                   ? 0 : BIT_ULL(txn->supplier);
    bool want_sup = !(pg->holders & req) && pg->written;

    if (txn->busy == 0 || txn->busy != pg->tid) {
        error_setg(errp, "(5) busy %u with tid %u", txn->busy, pg->tid);
    } else if (txn->requester >= dir->nr_fragments) {
        error_setg(errp, "(6) requester %u out of range", txn->requester);
    } else if (!dsm_dir_check_queue(dir, txn, errp)) {
        return false;
    } else if (want_sup != !!sup || (sup & (~pg->holders | req))) {
        error_setg(errp, "(7) supplier %d with holders 0x%" PRIx64
                   " requester %u", (int)txn->supplier, pg->holders,
                   txn->requester);
    } else if ((txn->inv_pending & (~pg->holders | req | sup)) ||
               (txn->inv_pending && txn->access != DSM_ACCESS_WRITE)) {
        error_setg(errp, "(9) inv_pending 0x%" PRIx64 " with holders 0x%"
                   PRIx64 " requester %u", txn->inv_pending, pg->holders,
                   txn->requester);
    } else {
        return true;
    }
    return false;
}

bool dsm_dir_check_page(const DSMDirectory *dir, uint64_t page,
                        Error **errp)
{
    ERRP_GUARD();
    const DSMDirPage *pg;

    if (!dsm_dir_is_home(dir, page)) {
        error_setg(errp, "page 0x%" PRIx64 " not homed here", page);
        return false;
    }
    pg = dsm_dir_page(dir, page);
    if (!dsm_dir_check_mode(dir, pg, errp) ||
        (pg->txn && !dsm_dir_check_txn(dir, pg, errp))) {
        error_prepend(errp, "page 0x%" PRIx64 " breaks invariant ",
                      page);
        return false;
    }
    return true;
}

void dsm_dir_assert_page_state(const DSMDirectory *dir, uint64_t page)
{
    Error *err = NULL;

    if (!dsm_dir_check_page(dir, page, &err)) {
        error_report_err(err);
        abort();
    }
}
