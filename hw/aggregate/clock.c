/*
 * aggvm: one guest TSC and one virtual clock across the fragments
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Under TCG the guest's TSC is the host's tick counter minus the
 * moment this process started the VM, so fragments started at
 * different times (or on different hosts) would show the guest
 * different TSCs, and Linux would find them unsynchronized and give up
 * the TSC as its clock.  QEMU_CLOCK_VIRTUAL likewise counts from the
 * moment each process started the VM; the devices and each local APIC
 * timer run on it, and a vCPU that moves takes its timer deadline
 * along.  The origin's clocks are the reference.  Before a fragment
 * delivers the first INIT to one of its vCPUs (the guest cannot read
 * the TSC there before), it asks the origin for both clocks several
 * times, Cristian-style, and keeps the answer with the shortest round
 * trip (see CLOCK_MIN_ROUNDS): the origin's clock at the middle of that
 * round trip, minus its own, is the delta -accel aggregate adds to its
 * ticks and to its virtual clock.  The error is at most half the round
 * trip, tens of microseconds on one host: less than any exchange
 * between vCPUs of two fragments takes through the DSM, so no guest
 * can observe it as a TSC going backwards.
 *
 * Both clocks stand still while the VM is stopped, but each fragment
 * stops and restarts at its own moment: after a stop and cont the
 * fragments' clocks differ by the difference of their pauses, which
 * Linux notices at the next CPU bring-up as a TSC warp.  So every
 * fragment but the origin agrees again whenever the VM starts running,
 * before its vCPUs resume, using only answers the origin gave while its
 * VM ran.  Such a later agreement can move a clock back by that
 * difference (milliseconds): an APIC timer then fires that much later.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/lockable.h"
#include "qemu/thread.h"
#include "qemu/timer.h"
#include "system/cpu-timers.h"
#include "system/runstate.h"
#include "hw/aggregate/accel.h"
#include "hw/aggregate/clock.h"
#include "hw/aggregate/wire.h"
#include "trace.h"

/*
 * At least CLOCK_MIN_ROUNDS round trips, and more (up to
 * CLOCK_MAX_ROUNDS, a short pause apart) until one took at most
 * CLOCK_GOOD_RTT_US: on a loaded host a peer's link thread can wait
 * milliseconds for a core, in one direction only, and the error of the
 * answer is up to half its round trip.  50 microseconds is less than a
 * vCPU of one fragment takes to see a store of another's (a DSM round
 * trip), which is what Linux's TSC warp check can observe.
 */
#define CLOCK_MIN_ROUNDS    8
#define CLOCK_MAX_ROUNDS    200
#define CLOCK_GOOD_RTT_US   100
#define CLOCK_PAUSE_US      500
#define CLOCK_TIMEOUT_MS    2000

static struct {
    DSM *dsm;
    uint32_t self;
    uint32_t origin;
    bool synced;                /* the delta is set (or the origin) */
    QemuMutex sync_lock;        /* one aggregate_clock_sync() at a time */

    /* lock protects the fields below */
    QemuMutex lock;
    QemuCond cond;
    uint32_t next_id;
    uint32_t wait_id;           /* the CLOCK_REQ awaiting its answer */
    bool answered;
    DSMClock answer;
    AggregateClockSync last;    /* the last agreement, for QMP */
} clk;

/*
 * One round trip: the origin's answer, or false once @deadline
 * (g_get_monotonic_time() milliseconds) has passed.
 */
static bool clock_ask_origin(int64_t deadline, DSMClock *answer)
{
    DSMClock req = { };

    QEMU_LOCK_GUARD(&clk.lock);
    req.id = clk.wait_id = ++clk.next_id;
    clk.answered = false;
    dsm_send(clk.dsm, clk.origin, DSM_MSG_CLOCK_REQ, &req);
    while (!clk.answered) {
        int64_t left = deadline - g_get_monotonic_time() / 1000;

        if (left <= 0 || !qemu_cond_timedwait(&clk.cond, &clk.lock, left)) {
            return false;
        }
    }
    *answer = clk.answer;
    return true;
}

static void clock_sync_locked(void)
{
    int64_t deadline = g_get_monotonic_time() / 1000 + CLOCK_TIMEOUT_MS;
    int64_t best_rtt = INT64_MAX, best_ns = INT64_MAX;
    int64_t best_delta = 0, best_virtual_delta = 0;
    int i;

    for (i = 0; i < CLOCK_MAX_ROUNDS; i++) {
        int64_t t0_ns = get_clock();
        int64_t t0 = cpu_get_host_ticks();
        int64_t local = cpu_get_ticks();
        int64_t local_ns = cpu_get_clock();
        int64_t rtt, rtt_ns;
        DSMClock origin;

        if (!clock_ask_origin(deadline, &origin)) {
            warn_report("aggregate: the origin did not answer clock "
                        "requests while its VM ran; the guest's TSC may "
                        "differ between fragments");
            break;
        }
        if (!origin.running) {
            /* Its clocks stand still until its cont arrives. */
            g_usleep(CLOCK_PAUSE_US);
            i--;
            continue;
        }
        rtt = cpu_get_host_ticks() - t0;
        rtt_ns = get_clock() - t0_ns;
        if (rtt < best_rtt) {
            best_rtt = rtt;
            best_ns = rtt_ns;
            best_delta = origin.ticks - (local + rtt / 2);
            best_virtual_delta = origin.virtual_ns - (local_ns + rtt_ns / 2);
        }
        if (i + 1 >= CLOCK_MIN_ROUNDS) {
            if (best_ns <= CLOCK_GOOD_RTT_US * SCALE_US) {
                break;
            }
            g_usleep(CLOCK_PAUSE_US);
        }
    }
    if (best_rtt == INT64_MAX) {
        return;
    }
    trace_aggregate_clock_synced(best_delta, best_virtual_delta, best_rtt,
                                 best_ns / SCALE_US, i + 1);
    aggregate_accel_set_clock_deltas(best_delta, best_virtual_delta);
    WITH_QEMU_LOCK_GUARD(&clk.lock) {
        clk.last = (AggregateClockSync) {
            .tick_delta = best_delta,
            .virtual_delta_ns = best_virtual_delta,
            .round_trip_us = best_ns / SCALE_US,
            .syncs = clk.last.syncs + 1,
        };
    }
    if (best_ns > CLOCK_GOOD_RTT_US * SCALE_US) {
        warn_report("aggregate: the quickest of %d clock requests to the "
                    "origin took %" PRId64 " us; the guest's clocks may "
                    "differ by up to half that between fragments",
                    i, best_ns / SCALE_US);
    }
}

void aggregate_clock_get_sync(AggregateClockSync *sync)
{
    QEMU_LOCK_GUARD(&clk.lock);
    *sync = clk.last;
}

void aggregate_clock_sync(void)
{
    if (qatomic_read(&clk.synced)) {
        return;
    }
    QEMU_LOCK_GUARD(&clk.sync_lock);
    if (!clk.synced) {
        clock_sync_locked();
        qatomic_set(&clk.synced, true);
    }
}

/*
 * The VM starts running again here (vCPUs not yet resumed): agree on
 * the TSC again if we had (see the top of the file).  Runs after the
 * lifecycle handler has sent our cont to the others.  It waits on the
 * network with the BQL held: only our own and the origin's link
 * threads take part, and neither needs the BQL.
 */
static void clock_vm_state_changed(void *opaque, bool running, RunState state)
{
    if (!running || !qatomic_read(&clk.synced)) {
        return;
    }
    QEMU_LOCK_GUARD(&clk.sync_lock);
    clock_sync_locked();
}

/* Receive thread: answer at once, without locks. */
static bool clock_answer(uint32_t from, const DSMClock *req, Error **errp)
{
    DSMClock resp = {
        .id = req->id,
        .ticks = cpus_get_elapsed_ticks(),
        .virtual_ns = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL),
        .running = runstate_is_running(),
    };

    if (clk.self != clk.origin) {
        error_setg(errp, "CLOCK_REQ sent to fragment %u, which is not the "
                   "origin", clk.self);
        return false;
    }
    dsm_send(clk.dsm, from, DSM_MSG_CLOCK_RESP, &resp);
    return true;
}

static bool clock_answered(uint32_t from, const DSMClock *resp,
                           Error **errp)
{
    if (from != clk.origin) {
        error_setg(errp, "CLOCK_RESP from fragment %u, which is not the "
                   "origin", from);
        return false;
    }
    QEMU_LOCK_GUARD(&clk.lock);
    /* A late answer to a request that timed out is dropped. */
    if (resp->id == clk.wait_id && !clk.answered) {
        clk.answer = *resp;
        clk.answered = true;
        qemu_cond_signal(&clk.cond);
    }
    return true;
}

static bool clock_recv_req(void *opaque, uint32_t from, uint16_t type,
                           const void *msg, Error **errp)
{
    return clock_answer(from, msg, errp);
}

static bool clock_recv_resp(void *opaque, uint32_t from, uint16_t type,
                            const void *msg, Error **errp)
{
    return clock_answered(from, msg, errp);
}

/* Both on the receive thread: a clock read must not wait for the BQL. */
static const DSMMsgHandler clock_handlers[] = {
    { DSM_MSG_CLOCK_REQ, DSM_DELIVER_RECV, NULL, clock_recv_req },
    { DSM_MSG_CLOCK_RESP, DSM_DELIVER_RECV, NULL, clock_recv_resp },
};

static const DSMFamilyOps clock_family = {
    .family = DSM_FAMILY_CLOCK,
    .name = "clock",
    .codec = &aggregate_clock_codec,
    .handlers = clock_handlers,
    .nr_handlers = ARRAY_SIZE(clock_handlers),
};

void aggregate_clock_start(DSM *dsm, uint32_t self, uint32_t origin)
{
    clk.dsm = dsm;
    clk.self = self;
    clk.origin = origin;
    clk.synced = self == origin;
    qemu_mutex_init(&clk.lock);
    qemu_mutex_init(&clk.sync_lock);
    qemu_cond_init(&clk.cond);
    dsm_register_family(dsm, &clock_family, NULL);
    if (self != origin) {
        /* After lifecycle.c's handler, which sends the cont. */
        qemu_add_vm_change_state_handler_prio(clock_vm_state_changed, NULL,
                                              1);
    }
}
