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
 * A fragment ended by a signal is not a shutdown of the aggregate VM:
 * its host is going away, and the others report it lost and stop the
 * VM, as they do when it crashes.
 *
 * A system reset (guest reboot, QMP system_reset) on one fragment sends
 * RESET to the others.  The receiver's worker for the sender, which
 * also replays the sender's INIT and SIPI in order, requests a local
 * reset and waits for it, so the firmware's SIPIs after the reboot find
 * reset vCPUs.  A reset a peer asked for is not sent back.  vCPUs of
 * other fragments run until their fragment resets; a guest that reboots
 * stops them first (Linux halts every other CPU).
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/atomic.h"
#include "qemu/main-loop.h"
#include "qemu/notify.h"
#include "system/runstate.h"
#include "hw/aggregate/lifecycle.h"
#include "trace.h"

/* How long an exiting fragment waits for its SHUTDOWN to leave. */
#define LIFECYCLE_FLUSH_MS  2000

static struct {
    DSM *dsm;
    uint32_t self;
    uint32_t nr_fragments;
    Notifier shutdown;
    bool remote;                /* a peer's SHUTDOWN started ours */

    /* Under the BQL. */
    QemuCond reset_cond;        /* resets changed */
    uint64_t resets;            /* machine resets so far, start-up's too */
    bool reset_from_peer;       /* the next reset is a peer's */
} lifecycle;

static void lifecycle_shutdown(Notifier *notifier, void *data)
{
    ShutdownCause cause = *(ShutdownCause *)data;
    DSMMsg msg = { .type = DSM_MSG_SHUTDOWN, .cause = cause };
    uint32_t i;

    dsm_leave(lifecycle.dsm);
    if (qatomic_read(&lifecycle.remote) ||
        cause == SHUTDOWN_CAUSE_HOST_SIGNAL) {
        return;
    }
    trace_aggregate_shutdown_send(ShutdownCause_str(cause));
    for (i = 0; i < lifecycle.nr_fragments; i++) {
        if (i != lifecycle.self) {
            dsm_send(lifecycle.dsm, i, &msg);
        }
    }
    dsm_flush(lifecycle.dsm, LIFECYCLE_FLUSH_MS);
}

void aggregate_lifecycle_reset_done(void)
{
    DSMMsg msg = {
        .type = DSM_MSG_RESET,
        .cause = SHUTDOWN_CAUSE_GUEST_RESET,
    };
    uint32_t i;

    if (lifecycle.resets++ && !lifecycle.reset_from_peer) {
        trace_aggregate_reset_send();
        for (i = 0; i < lifecycle.nr_fragments; i++) {
            if (i != lifecycle.self) {
                dsm_send(lifecycle.dsm, i, &msg);
            }
        }
    }
    lifecycle.reset_from_peer = false;
    qemu_cond_broadcast(&lifecycle.reset_cond);
}

void aggregate_lifecycle_peer_reset(uint32_t from)
{
    uint64_t before = lifecycle.resets;

    trace_aggregate_reset_recv(from);
    lifecycle.reset_from_peer = true;
    qemu_system_reset_request(SHUTDOWN_CAUSE_GUEST_RESET);
    while (lifecycle.resets == before && !qatomic_read(&lifecycle.remote)) {
        qemu_cond_wait_bql(&lifecycle.reset_cond);
    }
}

void aggregate_lifecycle_start(DSM *dsm, uint32_t self,
                               uint32_t nr_fragments)
{
    lifecycle.dsm = dsm;
    lifecycle.self = self;
    lifecycle.nr_fragments = nr_fragments;
    qemu_cond_init(&lifecycle.reset_cond);
    lifecycle.shutdown.notify = lifecycle_shutdown;
    qemu_register_shutdown_notifier(&lifecycle.shutdown);
}

bool aggregate_lifecycle_handle(uint32_t from, const DSMMsg *msg,
                                Error **errp)
{
    assert(msg->type == DSM_MSG_SHUTDOWN);
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
