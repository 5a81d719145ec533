/*
 * aggvm DSM: distributed shared memory for guest RAM
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Every fragment maps all of guest RAM but holds only the pages it has
 * a right to.  This file is the per-fragment engine of the protocol in
 * directory.h (the corrected protocol of the design review):
 *
 *  - the fault thread turns userfaultfd faults into requests to the
 *    page's home (or wakes the faulting thread when the page is
 *    already here with enough rights: fault messages are hints);
 *  - the link receive threads hand the DSM family's messages to
 *    dsm_recv() (registered with the links, see link.h), which installs
 *    pages (DATA, GRANT), gives them up (INV, FWD) or, for pages homed
 *    here, runs the directory (REQ, ACK, DONE).
 *
 * Local page states, guarded by a striped page lock, are local.c's
 * state machine (its invariants and transitions are written there);
 * this file carries out the steps each transition asks for:
 *
 *     I (no PTE) --DATA(S)--> S (PTE, write-protected) --INV--> I
 *     I --DATA(E)--> E (PTE, writable)
 *     S --GRANT(E)--> E --FWD(R)--> S        E,S --FWD(W)--> I
 *
 * Order of a give-up (review, hazard 3): write-protect, copy, discard,
 * invalidate translated code, then send.  Installs use UFFDIO_COPY
 * (with MODE_WP for S), never UFFDIO_ZEROPAGE, and never DONTWAKE.
 *
 * Waits: neither the fault thread nor the link threads take the BQL or
 * wait for a peer; the page lock and the directory lock are held only
 * around ioctls, state updates and dsm_links_send(), which only queues.
 * Lock order: page lock, then directory lock, then link locks.
 *
 * Starvation (review, hazard 4): a page just installed is held for
 * DSMConfig.hold_ns before an INV or FWD may take it away again, so the
 * thread that faulted gets to use it.  Early INV/FWD messages wait in
 * the hold queue of a separate thread; link threads never sleep.
 *
 * Once a peer is gone (it failed, or left in a shutdown), this
 * fragment is cut off: see dsm_cut_off().  The DSM tells the machine
 * (DSMHooks.peer_failed), which reports it and stops the VM.
 *
 * Translated code.  TCG translates guest code from copies of the page
 * taken with no page lock held (patch 0010), so a translation never
 * faults on a page under a TCG page lock (hazard 1: the discarding
 * thread would wait for that lock while the fault waits for it).  The
 * rule the DSM relies on: once this fragment has sent the ACK of an INV
 * or the DATA of an FWD(W), none of its vCPUs starts executing code
 * translated from the page's old contents, not even once.  It holds
 * because dsm_discard() runs before either is sent, and it (1) discards
 * the page, so a copy taken after that faults and gets the new bytes;
 * (2) invalidates the page's TBs under the TCG page lock, bumping the
 * page's epoch, so a translation from an older copy that is not linked
 * yet is dropped and redone when it comes to be linked; (3) raises the
 * exit request on every vCPU when the page ever had a TB, so a vCPU
 * that had already looked one up leaves it at its first instruction.
 * See the header of patch 0010 for why the epoch check cannot miss,
 * and tests/model/ for the Spin model that checks the rule.
 *
 * The hold is fixed; it does not grow per page on repeated refaults.
 */

#include "qemu/osdep.h"
#include <poll.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/thread.h"
#include "qemu/lockable.h"
#include "qemu/stats64.h"
#include "qemu/userfaultfd.h"
#include "qemu/madvise.h"
#include "qemu/host-utils.h"
#include "exec/ram_addr.h"
#include "migration/dsm/dsm.h"
#include "migration/dsm/directory.h"
#include "migration/dsm/local.h"
#include "migration/dsm/link.h"
#include "trace.h"

#define DSM_LOCK_STRIPES    256
#define DSM_FAULT_BATCH     16

/* Debug builds check every page's local invariants after each step. */
#ifdef CONFIG_DEBUG_TCG
#define DSM_CHECK_LOCAL     true
#else
#define DSM_CHECK_LOCAL     false
#endif

/* An INV or FWD that arrived while its page was held. */
typedef struct DSMHeld {
    uint32_t from;
    DSMMsg msg;                     /* INV and FWD carry no payload */
    int64_t due;
} DSMHeld;

struct DSM {
    /* Set by dsm_start(), then read-only. */
    uint32_t self;
    uint32_t nr_fragments;
    char **ids;
    uint64_t *home_first;           /* [nr_fragments + 1] page ranges */
    RAMBlock *rb;
    uint8_t *host;
    ram_addr_t ram_offset;
    const DSMHooks *hooks;          /* the machine's, see dsm.h */
    void *hooks_opaque;
    uint64_t nr_pages;
    int uffd;
    int64_t connect_timeout_ms;
    int64_t hold_ns;
    DSMLinks *links;
    DSMHeartbeat *heartbeat;        /* set by dsm_connect() */
    QemuThread fault_thread;
    QemuThread connect_thread;

    /* page_lock[p % DSM_LOCK_STRIPES] protects page[p] */
    QemuMutex page_lock[DSM_LOCK_STRIPES];
    DSMLocalPage *page;

    /* dir_lock protects dir */
    QemuMutex dir_lock;
    DSMDirectory *dir;

    /* hold_lock protects held; the hold thread waits on hold_cond */
    QemuMutex hold_lock;
    QemuCond hold_cond;
    GQueue held;                    /* of DSMHeld *, in arrival order */
    QemuThread hold_thread;

    bool leaving;                   /* see dsm_leave() */
    bool cut_off;                   /* see dsm_cut_off() */
    int service_priority;           /* see dsm_thread_set_priority() */

    /* Counters, updated atomically. */
    Stat64 read_faults;
    Stat64 write_faults;
    Stat64 remote_fetches;
    Stat64 zero_fills;
    Stat64 upgrades;
    Stat64 invalidations_received;
    Stat64 pages_supplied;
    Stat64 hold_deferrals;
    Stat64 latency_us[DSM_LATENCY_BUCKETS];
    DSMWatchList *watches;          /* set by dsm_start(); see watch.c */
};


RAMBlock *dsm_ram_block(DSM *dsm)
{
    return dsm->rb;
}

DSMWatchList *dsm_watches(DSM *dsm)
{
    return dsm->watches;
}

const char *dsm_get_fragment_id(DSM *dsm)
{
    return dsm->ids[dsm->self];
}

uint32_t dsm_nr_fragments(DSM *dsm)
{
    return dsm->nr_fragments;
}

const char *dsm_fragment_id(DSM *dsm, uint32_t fragment)
{
    assert(fragment < dsm->nr_fragments);
    return dsm->ids[fragment];
}

uint32_t dsm_self(DSM *dsm)
{
    return dsm->self;
}

bool dsm_peer_up(DSM *dsm, uint32_t peer)
{
    return dsm_links_peer_up(dsm->links, peer);
}

bool dsm_get_peer_beat(DSM *dsm, uint32_t peer, DSMPeerBeat *beat)
{
    assert(peer < dsm->nr_fragments && dsm->heartbeat);
    return dsm_heartbeat_peer(dsm->heartbeat, peer, beat);
}

uint64_t dsm_homed_pages(DSM *dsm, uint32_t fragment)
{
    assert(fragment < dsm->nr_fragments);
    return dsm->home_first[fragment + 1] - dsm->home_first[fragment];
}

static uint32_t dsm_home_of(DSM *dsm, uint64_t page)
{
    uint32_t i;

    for (i = 0; i + 1 < dsm->nr_fragments; i++) {
        if (page < dsm->home_first[i + 1]) {
            break;
        }
    }
    return i;
}

static QemuMutex *page_lock(DSM *dsm, uint64_t page)
{
    return &dsm->page_lock[page % DSM_LOCK_STRIPES];
}

static void *page_host(DSM *dsm, uint64_t page)
{
    return dsm->host + page * DSM_PAGE_SIZE;
}

static void dsm_cut_off(DSM *dsm, uint32_t peer);

/*
 * A link failed, or a DSM message broke the protocol: stop coherence
 * with everyone (the survivors cannot agree on what @peer held) and
 * let the machine know, unless the VM is leaving anyway.
 */
static void dsm_peer_failed(DSM *dsm, uint32_t peer, Error *err)
{
    dsm_cut_off(dsm, peer);
    if (qatomic_read(&dsm->leaving)) {
        trace_dsm_peer_left(dsm->ids[peer]);
    } else {
        trace_dsm_peer_failed(dsm->ids[peer], error_get_pretty(err));
        dsm->hooks->peer_failed(dsm->hooks_opaque, peer,
                                error_get_pretty(err));
    }
    error_free(err);
}

bool dsm_is_cut_off(DSM *dsm)
{
    return qatomic_read(&dsm->cut_off);
}

bool dsm_is_leaving(DSM *dsm)
{
    return qatomic_read(&dsm->leaving);
}

static void dsm_link_lost(void *opaque, uint32_t peer, Error *err)
{
    dsm_peer_failed(opaque, peer, err);
}

void dsm_register_family(DSM *dsm, const DSMFamilyOps *ops, void *opaque)
{
    dsm_links_register_family(dsm->links, ops, opaque);
}

void dsm_leave(DSM *dsm)
{
    qatomic_set(&dsm->leaving, true);
}

void dsm_flush(DSM *dsm, int64_t timeout_ms)
{
    dsm_links_flush(dsm->links, timeout_ms);
}

void dsm_send(DSM *dsm, uint32_t to, uint16_t type, const void *msg)
{
    dsm_links_send(dsm->links, to, type, msg);
}

void dsm_send_peers(DSM *dsm, uint16_t type, const void *msg)
{
    uint32_t i;

    for (i = 0; i < dsm->nr_fragments; i++) {
        if (i != dsm->self) {
            dsm_send(dsm, i, type, msg);
        }
    }
}

/* ---- userfaultfd operations on one page; all called under its lock. */

static void dsm_discard(DSM *dsm, uint64_t page)
{
    ram_addr_t ra = dsm->ram_offset + page * DSM_PAGE_SIZE;

    ram_block_discard_range(dsm->rb, page * DSM_PAGE_SIZE, DSM_PAGE_SIZE);
    /* After the discard, before the ACK or DATA: see the top. */
    dsm->hooks->page_discarded(dsm->hooks_opaque, ra, DSM_PAGE_SIZE);
}

static void dsm_write_protect(DSM *dsm, uint64_t page, bool wp)
{
    if (uffd_change_protection(dsm->uffd, page_host(dsm, page),
                               DSM_PAGE_SIZE, wp, false)) {
        error_report("aggregate: write-protect %s of page 0x%" PRIx64
                     " failed", wp ? "on" : "off", page);
    }
}

static int dsm_copy_ioctl(DSM *dsm, uint64_t page, const void *src, bool wp)
{
    struct uffdio_copy copy = {
        .dst = (uintptr_t)page_host(dsm, page),
        .src = (uintptr_t)src,
        .len = DSM_PAGE_SIZE,
        .mode = wp ? UFFDIO_COPY_MODE_WP : 0,
    };

    if (ioctl(dsm->uffd, UFFDIO_COPY, &copy) == 0) {
        return 0;
    }
    return copy.copy < 0 ? copy.copy : -errno;
}

/*
 * Install @src (NULL: zeroes) as the page's contents, write-protected
 * when @wp.  The copy wakes the threads waiting on the page.
 */
static void dsm_install(DSM *dsm, uint64_t page, const void *src, bool wp)
{
    static const uint8_t zero_page[DSM_PAGE_SIZE];
    int ret = dsm_copy_ioctl(dsm, page, src ?: zero_page, wp);

    if (ret == -EEXIST) {
        /* A PTE we did not install: an invariant broke.  Replace it. */
        error_report("aggregate: page 0x%" PRIx64 " was already present "
                     "when installed; replacing it", page);
        dsm_discard(dsm, page);
        ret = dsm_copy_ioctl(dsm, page, src ?: zero_page, wp);
    }
    if (ret) {
        error_report("aggregate: installing page 0x%" PRIx64 " failed: %s",
                     page, strerror(-ret));
    }
    uffd_wakeup(dsm->uffd, page_host(dsm, page), DSM_PAGE_SIZE);
}

/* ---- the local page state machine (local.c), carried out here */

static void dsm_record_latency(DSM *dsm, int64_t waited_ns)
{
    uint64_t us = waited_ns / SCALE_US;
    int bucket = us < 2 ? 0 : 63 - clz64(us);

    stat64_add(&dsm->latency_us[MIN(bucket, DSM_LATENCY_BUCKETS - 1)], 1);
}

/* Queue @msg (INV or FWD) for the hold thread until @due. */
static void dsm_defer(DSM *dsm, uint32_t from, const DSMMsg *msg, int64_t due)
{
    DSMHeld *h = g_new(DSMHeld, 1);

    h->from = from;
    h->msg = *msg;
    h->due = due;
    stat64_add(&dsm->hold_deferrals, 1);
    WITH_QEMU_LOCK_GUARD(&dsm->hold_lock) {
        g_queue_push_tail(&dsm->held, h);
        qemu_cond_signal(&dsm->hold_cond);
    }
}

/*
 * Carry out @res's steps for @page, in DSMLocalStep order (see
 * local.h), with the page lock held.  @msg is the message the
 * transition took (NULL for a fault or a cut-off), from @from; @src the
 * contents DATA brought (NULL: zeroes).
 */
static void dsm_local_do(DSM *dsm, uint64_t page, const DSMLocalResult *res,
                         uint32_t from, const DSMMsg *msg, const uint8_t *src)
{
    DSMLocalPage *p = &dsm->page[page];
    g_autofree uint8_t *copy = NULL;
    unsigned steps = res->steps;

    if (DSM_CHECK_LOCAL) {
        Error *err = NULL;

        if (!dsm_local_check(p, &err)) {
            error_report("aggregate: page 0x%" PRIx64 ": %s", page,
                         error_get_pretty(err));
            abort();
        }
    }
    if (steps & DSM_STEP_DEFER) {
        dsm_defer(dsm, from, msg, p->hold_until);
        return;
    }
    if (steps & DSM_STEP_PROTECT) {
        dsm_write_protect(dsm, page, true);
    }
    if (steps & DSM_STEP_COPY) {
        copy = g_memdup2(page_host(dsm, page), DSM_PAGE_SIZE);
    }
    if (steps & DSM_STEP_DISCARD) {
        dsm_discard(dsm, page);
    }
    if (steps & DSM_STEP_INSTALL) {
        dsm_install(dsm, page, src, res->mode == DSM_MODE_SHARED);
    }
    if (steps & DSM_STEP_INSTALL_ZERO) {
        dsm_install(dsm, page, NULL, false);
    }
    if (steps & DSM_STEP_UNPROTECT) {
        dsm_write_protect(dsm, page, false);        /* wakes writers */
    }
    if (steps & DSM_STEP_WAKE) {
        uffd_wakeup(dsm->uffd, page_host(dsm, page), DSM_PAGE_SIZE);
    }
    if (steps & DSM_STEP_SEND_DONE) {
        DSMMsg done = { .type = DSM_MSG_DONE, .page = page, .tid = msg->tid };

        dsm_record_latency(dsm, res->waited_ns);
        dsm_send(dsm, dsm_home_of(dsm, page), done.type, &done);
    }
    if (steps & DSM_STEP_SEND_REQ) {
        DSMMsg req = {
            .type = DSM_MSG_REQ,
            .page = page,
            .access = res->req == DSM_PEND_W ? DSM_ACCESS_WRITE
                                             : DSM_ACCESS_READ,
        };

        dsm_send(dsm, dsm_home_of(dsm, page), req.type, &req);
    }
    if (steps & DSM_STEP_SEND_ACK) {
        DSMMsg ack = { .type = DSM_MSG_ACK, .page = page, .tid = msg->tid };

        dsm_send(dsm, from, ack.type, &ack);
    }
    if (steps & DSM_STEP_SEND_DATA) {
        DSMMsg data = {
            .type = DSM_MSG_DATA,
            .page = page,
            .tid = msg->tid,
            .mode = res->mode,
            .data = copy,
        };

        dsm_send(dsm, msg->target, data.type, &data);
    }
}

/*
 * Once cut off: give the faulting threads the page as it is here
 * (zeroes if it is not) and writable.  Called with its lock held.
 */
static void dsm_fault_locally(DSM *dsm, uint64_t page)
{
    DSMLocalResult res;

    trace_dsm_fault_locally(page, dsm->page[page].state);
    dsm_local_cut_off(&dsm->page[page], &res);
    dsm_local_do(dsm, page, &res, 0, NULL, NULL);
}

/*
 * A peer is gone: what it was to send never will be, and a thread
 * blocked in a fault that waits for it cannot be paused, so the main
 * loop would wait for ever in pause_all_vcpus(), for the VM stop of a
 * lost fragment or at exit, with QMP and signals unanswered.  The VM
 * is stopped for good (RUN_STATE_INTERNAL_ERROR, which cont refuses)
 * or exiting, so from now on faults are served here, the pending ones
 * first, and coherence messages are dropped.
 */
static void dsm_cut_off(DSM *dsm, uint32_t peer)
{
    uint64_t page, pending = 0;

    if (qatomic_xchg(&dsm->cut_off, true)) {
        return;
    }
    for (page = 0; page < dsm->nr_pages; page++) {
        QEMU_LOCK_GUARD(page_lock(dsm, page));
        if (dsm->page[page].pend != DSM_PEND_NONE) {
            dsm_fault_locally(dsm, page);
            pending++;
        }
    }
    trace_dsm_cut_off(dsm->ids[peer], pending);
}

/* A fault on @page needing @pend rights.  Fault messages are hints. */
static void dsm_fault(DSM *dsm, uint64_t page, DSMPending need)
{
    DSMLocalPage *p = &dsm->page[page];
    DSMLocalResult res;

    QEMU_LOCK_GUARD(page_lock(dsm, page));
    trace_dsm_fault(page, need == DSM_PEND_W, p->state, p->pend);
    if (qatomic_read(&dsm->cut_off)) {
        dsm_fault_locally(dsm, page);
        return;
    }
    dsm_local_fault(p, need, get_clock(), &res);
    if (res.steps & DSM_STEP_SEND_REQ) {
        stat64_add(need == DSM_PEND_W ? &dsm->write_faults
                                      : &dsm->read_faults, 1);
        dsm_watch_count(dsm->watches, page);
    }
    dsm_local_do(dsm, page, &res, 0, NULL, NULL);
}

static bool dsm_handle_data(DSM *dsm, const DSMMsg *msg, Error **errp)
{
    DSMLocalResult res;

    QEMU_LOCK_GUARD(page_lock(dsm, msg->page));
    if (qatomic_read(&dsm->cut_off)) {
        return true;    /* it came as we were cut off */
    }
    if (!dsm_local_data(&dsm->page[msg->page], msg->page, msg->mode,
                        get_clock(), dsm->hold_ns, &res, errp)) {
        return false;
    }
    stat64_add(msg->zero ? &dsm->zero_fills : &dsm->remote_fetches, 1);
    dsm_local_do(dsm, msg->page, &res, 0, msg,
                 msg->zero ? NULL : msg->data);
    return true;
}

static bool dsm_handle_grant(DSM *dsm, const DSMMsg *msg, Error **errp)
{
    DSMLocalResult res;

    QEMU_LOCK_GUARD(page_lock(dsm, msg->page));
    if (qatomic_read(&dsm->cut_off)) {
        return true;    /* it came as we were cut off */
    }
    if (!dsm_local_grant(&dsm->page[msg->page], msg->page, msg->mode,
                         get_clock(), dsm->hold_ns, &res, errp)) {
        return false;
    }
    stat64_add(&dsm->upgrades, 1);
    dsm_local_do(dsm, msg->page, &res, 0, msg, NULL);
    return true;
}

/*
 * An INV or FWD for a page installed too recently waits for the hold
 * thread (dsm_local_inv() and dsm_local_fwd() say DEFER).
 */
static bool dsm_handle_inv(DSM *dsm, uint32_t from, const DSMMsg *msg,
                           Error **errp)
{
    DSMLocalResult res;

    QEMU_LOCK_GUARD(page_lock(dsm, msg->page));
    dsm_local_inv(&dsm->page[msg->page], get_clock(), &res);
    if (!(res.steps & DSM_STEP_DEFER)) {
        stat64_add(&dsm->invalidations_received, 1);
    }
    dsm_local_do(dsm, msg->page, &res, from, msg, NULL);
    return true;
}

static bool dsm_handle_fwd(DSM *dsm, uint32_t from, const DSMMsg *msg,
                           Error **errp)
{
    DSMLocalResult res;

    QEMU_LOCK_GUARD(page_lock(dsm, msg->page));
    if (!dsm_local_fwd(&dsm->page[msg->page], msg->page, msg->access,
                       get_clock(), &res, errp)) {
        return false;
    }
    if (!(res.steps & DSM_STEP_DEFER)) {
        stat64_add(&dsm->pages_supplied, 1);
    }
    dsm_local_do(dsm, msg->page, &res, from, msg, NULL);
    return true;
}

/* ---- home side */

static bool dsm_handle_home(DSM *dsm, uint32_t from, const DSMMsg *msg,
                            Error **errp)
{
    g_autoptr(GArray) out = g_array_new(false, false, sizeof(DSMAction));
    guint i;

    QEMU_LOCK_GUARD(&dsm->dir_lock);
    if (!dsm_dir_handle_msg(dsm->dir, from, msg, out, errp)) {
        return false;
    }
    for (i = 0; i < out->len; i++) {
        DSMAction *a = &g_array_index(out, DSMAction, i);

        dsm_send(dsm, a->to, a->msg.type, &a->msg);
    }
    return true;
}

/* Link receive callback: never blocks (see link.h). */
static bool dsm_recv_msg(DSM *dsm, uint32_t from, const DSMMsg *msg,
                         Error **errp)
{
    trace_dsm_recv(dsm->ids[from], dsm_msg_type_name(msg->type), msg->page,
                   msg->tid);
    if (qatomic_read(&dsm->cut_off)) {
        return true;    /* see dsm_cut_off() */
    }
    switch (msg->type) {
    case DSM_MSG_REQ:
    case DSM_MSG_ACK:
    case DSM_MSG_DONE:
        return dsm_handle_home(dsm, from, msg, errp);
    case DSM_MSG_INV:
        return dsm_handle_inv(dsm, from, msg, errp);
    case DSM_MSG_FWD:
        return dsm_handle_fwd(dsm, from, msg, errp);
    case DSM_MSG_DATA:
        return dsm_handle_data(dsm, msg, errp);
    case DSM_MSG_GRANT:
        return dsm_handle_grant(dsm, msg, errp);
    default:
        g_assert_not_reached();     /* only these are registered */
    }
}

static bool dsm_recv(void *opaque, uint32_t from, uint16_t type,
                     const void *msg, Error **errp)
{
    return dsm_recv_msg(opaque, from, msg, errp);
}

/*
 * The DSM's own family.  Every message is answered on the receive
 * thread: a fault must never wait behind the BQL or another family's
 * work (the handlers take only page, directory and hold locks).
 */
static const DSMMsgHandler dsm_page_handlers[] = {
    { DSM_MSG_REQ, DSM_DELIVER_RECV, NULL, dsm_recv },
    { DSM_MSG_INV, DSM_DELIVER_RECV, NULL, dsm_recv },
    { DSM_MSG_ACK, DSM_DELIVER_RECV, NULL, dsm_recv },
    { DSM_MSG_FWD, DSM_DELIVER_RECV, NULL, dsm_recv },
    { DSM_MSG_DATA, DSM_DELIVER_RECV, NULL, dsm_recv },
    { DSM_MSG_GRANT, DSM_DELIVER_RECV, NULL, dsm_recv },
    { DSM_MSG_DONE, DSM_DELIVER_RECV, NULL, dsm_recv },
};

static const DSMFamilyOps dsm_page_family = {
    .family = DSM_FAMILY_DSM,
    .name = "DSM",
    .codec = &dsm_page_codec,
    .handlers = dsm_page_handlers,
    .nr_handlers = ARRAY_SIZE(dsm_page_handlers),
};

/* ---- hold thread */

/* Remove and return the first held message that is due, if any. */
static DSMHeld *dsm_next_due(DSM *dsm, int64_t now, int64_t *next_due)
{
    GList *l;

    *next_due = INT64_MAX;
    for (l = dsm->held.head; l; l = l->next) {
        DSMHeld *h = l->data;

        if (h->due <= now) {
            g_queue_delete_link(&dsm->held, l);
            return h;
        }
        *next_due = MIN(*next_due, h->due);
    }
    return NULL;
}

/*
 * Delivers INV/FWD messages once their page's hold has passed.  Like a
 * link thread it takes page locks and queues messages, and never the
 * BQL.
 */
static void *dsm_hold_thread(void *opaque)
{
    DSM *dsm = opaque;

    rcu_register_thread();
    dsm_thread_set_priority(dsm->service_priority);
    for (;;) {
        DSMHeld *h;
        int64_t next_due;
        Error *err = NULL;

        qemu_mutex_lock(&dsm->hold_lock);
        while (!(h = dsm_next_due(dsm, get_clock(), &next_due))) {
            int64_t left = next_due - get_clock();

            if (next_due == INT64_MAX) {
                qemu_cond_wait(&dsm->hold_cond, &dsm->hold_lock);
            } else if (left >= SCALE_MS) {
                qemu_cond_timedwait(&dsm->hold_cond, &dsm->hold_lock,
                                    left / SCALE_MS);
            } else {
                /* Holds are tens of microseconds: finer than the cond. */
                qemu_mutex_unlock(&dsm->hold_lock);
                g_usleep(MAX(left / SCALE_US, 1));
                qemu_mutex_lock(&dsm->hold_lock);
            }
        }
        qemu_mutex_unlock(&dsm->hold_lock);
        if (!dsm_recv_msg(dsm, h->from, &h->msg, &err)) {
            dsm_peer_failed(dsm, h->from, err);
        }
        g_free(h);
    }
    rcu_unregister_thread();
    return NULL;
}

/* ---- fault thread */

static void dsm_handle_uffd_msg(DSM *dsm, const struct uffd_msg *msg)
{
    uint64_t addr = msg->arg.pagefault.address;
    uint64_t flags = msg->arg.pagefault.flags;
    bool write = flags & (UFFD_PAGEFAULT_FLAG_WRITE | UFFD_PAGEFAULT_FLAG_WP);

    if (msg->event != UFFD_EVENT_PAGEFAULT ||
        addr < (uintptr_t)dsm->host ||
        addr >= (uintptr_t)dsm->host + dsm->nr_pages * DSM_PAGE_SIZE) {
        error_report("aggregate: unexpected userfaultfd event 0x%x at 0x%"
                     PRIx64, msg->event, addr);
        return;
    }
    dsm_fault(dsm, (addr - (uintptr_t)dsm->host) / DSM_PAGE_SIZE,
              write ? DSM_PEND_W : DSM_PEND_R);
}

/*
 * The fault thread blocks only in poll() on the userfaultfd and never
 * takes the BQL: the main loop and device DMA fault with it held.
 */
static void *dsm_fault_thread(void *opaque)
{
    DSM *dsm = opaque;
    struct uffd_msg msgs[DSM_FAULT_BATCH];

    rcu_register_thread();
    dsm_thread_set_priority(dsm->service_priority);
    for (;;) {
        struct pollfd pfd = { .fd = dsm->uffd, .events = POLLIN };
        int n, i;

        if (poll(&pfd, 1, -1) < 0 && errno != EINTR) {
            error_report("aggregate: poll on userfaultfd failed: %s",
                         strerror(errno));
            break;
        }
        n = uffd_read_events(dsm->uffd, msgs, DSM_FAULT_BATCH);
        if (n < 0) {
            break;
        }
        for (i = 0; i < n; i++) {
            dsm_handle_uffd_msg(dsm, &msgs[i]);
        }
    }
    rcu_unregister_thread();
    return NULL;
}

/* ---- start-up */

static void *dsm_connect_thread(void *opaque)
{
    DSM *dsm = opaque;
    Error *err = NULL;

    if (!dsm_links_connect(dsm->links, dsm->connect_timeout_ms, &err)) {
        dsm->hooks->connect_failed(dsm->hooks_opaque, err);
        error_free(err);
        return NULL;
    }
    info_report("aggregate: fragment %s: all %u fragments connected",
                dsm->ids[dsm->self], dsm->nr_fragments);
    return NULL;
}

static bool dsm_setup_uffd(DSM *dsm, Error **errp)
{
    uint64_t ioctls, len = dsm->nr_pages * DSM_PAGE_SIZE;
    uint64_t need = BIT_ULL(_UFFDIO_COPY) | BIT_ULL(_UFFDIO_WRITEPROTECT) |
                    BIT_ULL(_UFFDIO_WAKE);

    /* Huge pages and KSM merging would hide faults from the DSM. */
    qemu_madvise(dsm->host, len, QEMU_MADV_NOHUGEPAGE);
    qemu_madvise(dsm->host, len, QEMU_MADV_UNMERGEABLE);
    dsm->uffd = uffd_create_fd(UFFD_FEATURE_PAGEFAULT_FLAG_WP |
                               UFFD_FEATURE_THREAD_ID, true);
    if (dsm->uffd < 0) {
        error_setg(errp, "aggregate: userfaultfd with write-protect is not "
                   "available (needs root or vm.unprivileged_userfaultfd=1, "
                   "and Linux >= 5.7)");
        return false;
    }
    if (ram_block_discard_range(dsm->rb, 0, len) ||
        uffd_register_memory(dsm->uffd, dsm->host, len,
                             UFFDIO_REGISTER_MODE_MISSING |
                             UFFDIO_REGISTER_MODE_WP, &ioctls) ||
        (ioctls & need) != need) {
        error_setg(errp, "aggregate: cannot register guest RAM block %s "
                   "with userfaultfd", qemu_ram_get_idstr(dsm->rb));
        return false;
    }
    return true;
}

static void dsm_init_homes(DSM *dsm, const DSMConfig *cfg)
{
    uint32_t i;

    dsm->home_first = g_new0(uint64_t, cfg->nr_fragments + 1);
    for (i = 0; i < cfg->nr_fragments; i++) {
        dsm->home_first[i + 1] = dsm->home_first[i] +
                                 cfg->home_bytes[i] / DSM_PAGE_SIZE;
    }
    dsm->dir = dsm_dir_new(cfg->self, cfg->nr_fragments,
                           dsm->home_first[cfg->self],
                           dsm->home_first[cfg->self + 1] -
                           dsm->home_first[cfg->self]);
}

DSM *dsm_start(const DSMConfig *cfg, Error **errp)
{
    DSM *dsm = g_new0(DSM, 1);
    DSMLinksConfig lcfg = {
        .self = cfg->self,
        .nr_fragments = cfg->nr_fragments,
        .ids = cfg->ids,
        .addrs = cfg->addrs,
        .lost = dsm_link_lost,
        .opaque = dsm,
        .service_priority = cfg->service_priority,
    };
    uint32_t i;

    dsm->self = cfg->self;
    dsm->nr_fragments = cfg->nr_fragments;
    dsm->ids = g_strdupv((char **)cfg->ids);
    dsm->rb = cfg->rb;
    dsm->watches = dsm_watch_list_new(cfg->rb);
    dsm->host = qemu_ram_get_host_addr(cfg->rb);
    dsm->ram_offset = qemu_ram_get_offset(cfg->rb);
    dsm->hooks = cfg->hooks;
    dsm->hooks_opaque = cfg->hooks_opaque;
    dsm->nr_pages = qemu_ram_get_used_length(cfg->rb) / DSM_PAGE_SIZE;
    dsm->connect_timeout_ms = cfg->connect_timeout_ms;
    dsm->hold_ns = cfg->hold_ns;
    dsm->service_priority = cfg->service_priority;
    dsm->page = g_new0(DSMLocalPage, dsm->nr_pages);
    for (i = 0; i < DSM_LOCK_STRIPES; i++) {
        qemu_mutex_init(&dsm->page_lock[i]);
    }
    qemu_mutex_init(&dsm->dir_lock);
    qemu_mutex_init(&dsm->hold_lock);
    qemu_cond_init(&dsm->hold_cond);
    g_queue_init(&dsm->held);
    dsm_init_homes(dsm, cfg);

    memcpy(lcfg.config_hash, cfg->config_hash, DSM_CONFIG_HASH_SIZE);
    lcfg.nr_pages = dsm->nr_pages;
    dsm->links = dsm_links_new(&lcfg);
    dsm_links_register_family(dsm->links, &dsm_page_family, dsm);
    if (!dsm_setup_uffd(dsm, errp) || !dsm_links_listen(dsm->links, errp)) {
        return NULL;    /* start-up error: QEMU exits */
    }
    qemu_thread_create(&dsm->fault_thread, "dsm-fault", dsm_fault_thread,
                       dsm, QEMU_THREAD_DETACHED);
    qemu_thread_create(&dsm->hold_thread, "dsm-hold", dsm_hold_thread,
                       dsm, QEMU_THREAD_DETACHED);
    return dsm;
}

/* The heartbeat's page counts: see dsm_get_stats(). */
static void dsm_count_pages(void *opaque, uint64_t *resident,
                            uint64_t *exclusive)
{
    DSMStats st;

    dsm_get_stats(opaque, &st);
    *resident = st.resident_pages;
    *exclusive = st.exclusive_pages;
}

void dsm_connect(DSM *dsm)
{
    /* Before any link is up: a peer may PING at once. */
    dsm->heartbeat = dsm_heartbeat_new(dsm->links, dsm->self,
                                       dsm->nr_fragments, dsm_count_pages,
                                       dsm);
    qemu_thread_create(&dsm->connect_thread, "dsm-connect",
                       dsm_connect_thread, dsm, QEMU_THREAD_DETACHED);
}

void dsm_get_stats(DSM *dsm, DSMStats *st)
{
    DSMLinkStats ls;
    uint64_t i;

    memset(st, 0, sizeof(*st));
    st->read_faults = stat64_get(&dsm->read_faults);
    st->write_faults = stat64_get(&dsm->write_faults);
    st->remote_fetches = stat64_get(&dsm->remote_fetches);
    st->zero_fills = stat64_get(&dsm->zero_fills);
    st->upgrades = stat64_get(&dsm->upgrades);
    st->invalidations_received = stat64_get(&dsm->invalidations_received);
    st->pages_supplied = stat64_get(&dsm->pages_supplied);
    st->hold_deferrals = stat64_get(&dsm->hold_deferrals);
    for (i = 0; i < DSM_LATENCY_BUCKETS; i++) {
        st->latency_us[i] = stat64_get(&dsm->latency_us[i]);
    }
    WITH_QEMU_LOCK_GUARD(&dsm->dir_lock) {
        st->invalidations_sent = dsm_dir_stats(dsm->dir)->invalidations;
    }
    dsm_links_get_stats(dsm->links, &ls);
    st->bytes_in = ls.bytes_in;
    st->bytes_out = ls.bytes_out;
    st->msgs_in = ls.msgs_in;
    st->msgs_out = ls.msgs_out;
    st->pages = dsm->nr_pages;
    st->homed_pages = dsm->home_first[dsm->self + 1] -
                      dsm->home_first[dsm->self];
    for (i = 0; i < dsm->nr_pages; i++) {
        uint8_t state = qatomic_read(&dsm->page[i].state);

        st->resident_pages += state != DSM_LOCAL_I;
        st->exclusive_pages += state == DSM_LOCAL_E;
    }
}
