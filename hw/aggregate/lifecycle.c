/*
 * aggvm: shutdown coordinated across the fragments of an aggregate VM
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The guest powers off, or QMP quit arrives, on one fragment; every
 * fragment must then exit the same way (status 0 for a guest poweroff)
 * instead of reporting its peers' departure as a failure.  The fragment
 * that shuts down sends SHUTDOWN with its cause to every other one from
 * a shutdown notifier and waits, bounded, until it is on the wire; a
 * fragment that receives it requests the same shutdown itself.  Both
 * treat links that close from then on as peers leaving (dsm_leave()).
 *
 * Run state: when the VM stops by request (QMP stop) or starts running
 * (QMP cont, also the first one after -S) on one fragment, RUN_STATE
 * tells the others, which do the same from a bottom half.  A change made for a
 * peer is not sent back.  Stops for errors are not sent: a fragment
 * that fails is reported by the others anyway.
 *
 * A fragment ended by a signal is not a shutdown of the aggregate VM:
 * its host is going away, and the others report it lost and stop the
 * VM, as they do when it crashes.
 *
 * A system reset (guest reboot, QMP system_reset) on one fragment sends
 * RESET to the others.  The receiver's worker for the sender, which
 * also replays the sender's INIT and SIPI in order, requests a local
 * reset and waits for it, so the firmware's SIPIs after the reboot find
 * reset vCPUs.  A reset a peer asked for is not sent back; each peer
 * answers RESET_DONE once it has reset, and the fragment that reset
 * first keeps its vCPUs paused until every peer has (bounded, with the
 * BQL dropped so that its workers can finish what the peers' vCPUs
 * forwarded before they stopped).  Otherwise a vCPU that asked for the
 * reset from another fragment (Linux reboots on CPU 0, wherever it
 * runs) would go on running its old code there while the firmware
 * already runs here.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/atomic.h"
#include "qemu/main-loop.h"
#include "qemu/notify.h"
#include "qemu/timer.h"
#include "block/aio.h"
#include "qapi/qapi-commands-misc.h"
#include "system/runstate.h"
#include "system/system.h"
#include "hw/aggregate/lifecycle.h"
#include "hw/aggregate/wire.h"
#include "trace.h"

/* How long an exiting fragment waits for its SHUTDOWN to leave. */
#define LIFECYCLE_FLUSH_MS  2000
/* How long a reset waits for the other fragments to reset too. */
#define LIFECYCLE_RESET_MS  5000

static struct {
    DSM *dsm;
    Notifier shutdown;
    bool remote;                /* a peer's SHUTDOWN started ours */

    /* Under the BQL. */
    bool applying_peer_state;   /* a RUN_STATE is being applied */
    bool started;               /* the VM has run once */
    QemuCond reset_cond;        /* resets changed */
    uint64_t resets;            /* machine resets so far, start-up's too */
    bool reset_from_peer;       /* the next reset is a peer's */
    uint32_t resets_awaited;    /* RESET_DONE still to come */
} lifecycle;

static void lifecycle_shutdown(Notifier *notifier, void *data)
{
    ShutdownCause cause = *(ShutdownCause *)data;
    DSMLifecycle msg = { .cause = cause };

    dsm_leave(lifecycle.dsm);
    if (qatomic_read(&lifecycle.remote) ||
        cause == SHUTDOWN_CAUSE_HOST_SIGNAL) {
        return;
    }
    trace_aggregate_shutdown_send(ShutdownCause_str(cause));
    dsm_send_peers(lifecycle.dsm, DSM_MSG_SHUTDOWN, &msg);
    dsm_flush(lifecycle.dsm, LIFECYCLE_FLUSH_MS);
}

/* A lost fragment will not answer RESET. */
static uint32_t lifecycle_peers_up(void)
{
    uint32_t i, up = 0;

    for (i = 0; i < dsm_nr_fragments(lifecycle.dsm); i++) {
        up += i != dsm_self(lifecycle.dsm) && dsm_peer_up(lifecycle.dsm, i);
    }
    return up;
}

/* Main loop, vCPUs paused: until every peer has reset, or the bound. */
static void lifecycle_wait_peer_resets(void)
{
    int64_t deadline = qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                       LIFECYCLE_RESET_MS;

    while (lifecycle.resets_awaited && !qatomic_read(&lifecycle.remote)) {
        int64_t left = deadline - qemu_clock_get_ms(QEMU_CLOCK_REALTIME);

        if (left <= 0) {
            warn_report("aggregate: %u fragment(s) did not confirm the "
                        "reset within %d ms; going on",
                        lifecycle.resets_awaited, LIFECYCLE_RESET_MS);
            lifecycle.resets_awaited = 0;
            return;
        }
        qemu_cond_timedwait_bql(&lifecycle.reset_cond, left);
    }
}

void aggregate_lifecycle_reset_done(void)
{
    DSMLifecycle msg = { .cause = SHUTDOWN_CAUSE_GUEST_RESET };

    if (lifecycle.resets++ && !lifecycle.reset_from_peer) {
        trace_aggregate_reset_send();
        lifecycle.resets_awaited = lifecycle_peers_up();
        dsm_send_peers(lifecycle.dsm, DSM_MSG_RESET, &msg);
        lifecycle_wait_peer_resets();
    }
    lifecycle.reset_from_peer = false;
    qemu_cond_broadcast(&lifecycle.reset_cond);
}

/*
 * RESET: fragment @from reset; reset this one and wait until that is
 * done, so that what @from sends after RESET (INIT and SIPI from its
 * firmware) reaches reset vCPUs.  On the sender's in-order worker,
 * BQL held (released while waiting).
 */
static bool lifecycle_deliver_reset(void *opaque, uint32_t from,
                                    uint16_t type, const void *msg,
                                    Error **errp)
{
    uint64_t before = lifecycle.resets;
    DSMLifecycle done = { .cause = SHUTDOWN_CAUSE_GUEST_RESET };

    trace_aggregate_reset_recv(from);
    lifecycle.reset_from_peer = true;
    qemu_system_reset_request(SHUTDOWN_CAUSE_GUEST_RESET);
    while (lifecycle.resets == before && !qatomic_read(&lifecycle.remote)) {
        qemu_cond_wait_bql(&lifecycle.reset_cond);
    }
    dsm_send(lifecycle.dsm, from, DSM_MSG_RESET_DONE, &done);
    return true;
}

/* On the worker for @from, BQL held: one peer less to wait for. */
/* RESET_DONE: @from has reset after our RESET.  Worker, BQL held. */
static bool lifecycle_deliver_reset_done(void *opaque, uint32_t from,
                                         uint16_t type, const void *msg,
                                         Error **errp)
{
    trace_aggregate_reset_done_recv(from);
    if (lifecycle.resets_awaited) {
        lifecycle.resets_awaited--;
        qemu_cond_broadcast(&lifecycle.reset_cond);
    }
    return true;
}

static void lifecycle_run_state_changed(void *opaque, bool running,
                                        RunState state)
{
    DSMLifecycle msg = { .running = running };
    bool first_start = running && !lifecycle.started;

    if (running) {
        lifecycle.started = true;
    }
    /*
     * Every fragment starts itself unless -S; sending that start would
     * only race with a later stop.
     */
    if ((first_start && autostart) || lifecycle.applying_peer_state ||
        (!running && state != RUN_STATE_PAUSED)) {
        return;
    }
    trace_aggregate_run_state_send(running);
    dsm_send_peers(lifecycle.dsm, DSM_MSG_RUN_STATE, &msg);
}

/* Main loop: do what a peer's RUN_STATE asks, as QMP stop/cont would. */
static void lifecycle_apply_run_state(void *opaque)
{
    bool running = (uintptr_t)opaque;
    Error *err = NULL;

    lifecycle.applying_peer_state = true;
    if (running && !runstate_is_running()) {
        qmp_cont(&err);
    } else if (!running && runstate_is_running()) {
        qmp_stop(&err);
    }
    lifecycle.applying_peer_state = false;
    if (err) {
        error_reportf_err(err, "aggregate: cannot follow the %s of another "
                          "fragment: ", running ? "cont" : "stop");
    }
}

static bool lifecycle_recv(void *opaque, uint32_t from, uint16_t type,
                           const void *msg, Error **errp);

static const DSMMsgHandler lifecycle_handlers[] = {
    { DSM_MSG_SHUTDOWN, DSM_DELIVER_RECV, NULL, lifecycle_recv },
    { DSM_MSG_RESET, DSM_DELIVER_WORKER_BQL, NULL, lifecycle_deliver_reset },
    { DSM_MSG_RUN_STATE, DSM_DELIVER_RECV, NULL, lifecycle_recv },
    { DSM_MSG_RESET_DONE, DSM_DELIVER_WORKER_BQL, NULL,
      lifecycle_deliver_reset_done },
};

static const DSMFamilyOps lifecycle_family = {
    .family = DSM_FAMILY_LIFECYCLE,
    .name = "lifecycle",
    .codec = &aggregate_lifecycle_codec,
    .handlers = lifecycle_handlers,
    .nr_handlers = ARRAY_SIZE(lifecycle_handlers),
};

void aggregate_lifecycle_start(DSM *dsm)
{
    lifecycle.dsm = dsm;
    dsm_register_family(dsm, &lifecycle_family, NULL);
    qemu_cond_init(&lifecycle.reset_cond);
    lifecycle.shutdown.notify = lifecycle_shutdown;
    qemu_register_shutdown_notifier(&lifecycle.shutdown);
    qemu_add_vm_change_state_handler(lifecycle_run_state_changed, NULL);
}

/* SHUTDOWN and RUN_STATE, on the receive thread: they only request. */
static bool lifecycle_recv(void *opaque, uint32_t from, uint16_t type,
                           const void *m, Error **errp)
{
    const DSMLifecycle *msg = m;

    if (type == DSM_MSG_RUN_STATE) {
        trace_aggregate_run_state_recv(from, msg->running);
        aio_bh_schedule_oneshot(qemu_get_aio_context(),
                                lifecycle_apply_run_state,
                                (void *)(uintptr_t)msg->running);
        return true;
    }
    if (msg->cause == SHUTDOWN_CAUSE_NONE ||
        msg->cause >= SHUTDOWN_CAUSE__MAX) {
        error_setg(errp, "SHUTDOWN with unknown cause %u", msg->cause);
        return false;
    }
    trace_aggregate_shutdown_recv(from, ShutdownCause_str(msg->cause));
    qatomic_set(&lifecycle.remote, true);
    dsm_leave(lifecycle.dsm);
    qemu_system_shutdown_request(msg->cause);
    return true;
}
