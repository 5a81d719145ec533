/*
 * aggvm: what the machine does when the DSM reports
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The DSM (migration/dsm) keeps guest RAM coherent and knows nothing
 * of the machine around it; these are the machine's answers to what it
 * reports (DSMHooks in dsm.h):
 *  - a lost fragment: the VM stops (internal-error) and the monitor gets
 *    AGGREGATE_FRAGMENT_LOST; a cut-off VM is stopped again whenever
 *    something tries to run it;
 *  - a page given up: TCG drops what it translated from it (patch 0010
 *    and the rule at the top of dsm.c);
 *  - start-up that could not connect: QEMU exits with the error.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-events-aggregate.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "exec/exec-all.h"
#include "system/runstate.h"
#include "system/tcg.h"
#include "block/aio.h"
#include "dsm-hooks.h"
#include "trace.h"

typedef struct AggregateLostPeer {
    char *id;
    char *reason;
} AggregateLostPeer;

/* QMP events are sent from the main loop. */
static void aggregate_report_lost_peer(void *opaque)
{
    AggregateLostPeer *lost = opaque;

    qapi_event_send_aggregate_fragment_lost(lost->id, lost->reason);
    g_free(lost->id);
    g_free(lost->reason);
    g_free(lost);
}

/* On a link or DSM thread: only requests, never blocks. */
static void aggregate_peer_failed(void *opaque, uint32_t peer,
                                  const char *reason)
{
    DSM *dsm = *(DSM **)opaque;
    AggregateLostPeer *lost = g_new(AggregateLostPeer, 1);

    error_report("aggregate: fragment %s failed, stopping the VM: %s",
                 dsm_fragment_id(dsm, peer), reason);
    lost->id = g_strdup(dsm_fragment_id(dsm, peer));
    lost->reason = g_strdup(reason);
    aio_bh_schedule_oneshot(qemu_get_aio_context(),
                            aggregate_report_lost_peer, lost);
    qemu_system_vmstop_request_prepare();
    qemu_system_vmstop_request(RUN_STATE_INTERNAL_ERROR);
}

/* Under the DSM's page lock: TCG's own locks only, no guest access. */
static void aggregate_page_discarded(void *opaque, uint64_t start,
                                     uint64_t len)
{
    if (tcg_enabled()) {
        tb_invalidate_phys_range_sync(start, start + len - 1);
    }
}

static void aggregate_connect_failed_bh(void *opaque)
{
    Error *err = opaque;

    error_report_err(err);
    qemu_system_shutdown_request_with_code(SHUTDOWN_CAUSE_HOST_ERROR,
                                           EXIT_FAILURE);
}

static void aggregate_connect_failed(void *opaque, Error *err)
{
    Error *copy = error_copy(err);

    error_prepend(&copy, "aggregate: ");
    aio_bh_schedule_oneshot(qemu_get_aio_context(),
                            aggregate_connect_failed_bh, copy);
}

const DSMHooks aggregate_dsm_hooks = {
    .peer_failed = aggregate_peer_failed,
    .page_discarded = aggregate_page_discarded,
    .connect_failed = aggregate_connect_failed,
};

/*
 * A cut-off fragment holds no coherent copy of guest RAM, so the VM
 * must not run again; but system_reset takes it out of internal-error,
 * after which cont is accepted.  Stop it again at once (its vCPUs may
 * run for a moment: vm_start() resumes them after this handler).
 */
static void aggregate_vm_state_change(void *opaque, bool running,
                                      RunState state)
{
    DSM *dsm = *(DSM **)opaque;

    if (running && dsm && dsm_is_cut_off(dsm) && !dsm_is_leaving(dsm)) {
        error_report("aggregate: a fragment was lost: this VM cannot run "
                     "again; quit every fragment and start it afresh");
        qemu_system_vmstop_request_prepare();
        qemu_system_vmstop_request(RUN_STATE_INTERNAL_ERROR);
    }
}

void aggregate_dsm_hooks_install(DSM **dsm)
{
    /* Never read guest code under a TCG page lock (patch 0010). */
    tb_code_snapshots = true;
    qemu_add_vm_change_state_handler(aggregate_vm_state_change, dsm);
}
