/*
 * aggvm: QMP query-aggregate and HMP info aggregate
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * What one fragment knows of the aggregate VM: the fragments, its
 * links to them, where each vCPU runs (its placement table, which a
 * move in flight may not have reached yet) and its own share of guest
 * memory.  Every fragment answers for itself; a launcher asks each.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-aggregate.h"
#include "qapi/type-helpers.h"
#include "qemu/module.h"
#include "qemu/timer.h"
#include "system/cpu-timers.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "hw/aggregate/aggregate.h"
#include "hw/aggregate/clock.h"
#include "hw/aggregate/vcpu.h"
#include "migration/dsm/dsm.h"

/* The origin owns the devices: see aggregate_start_iofwd(). */
#define AGGREGATE_ORIGIN 0

static AggregateLinkState aggregate_link_state(DSM *dsm, uint32_t i)
{
    if (i == dsm_self(dsm)) {
        return AGGREGATE_LINK_STATE_SELF;
    }
    return dsm_peer_up(dsm, i) ? AGGREGATE_LINK_STATE_UP
                               : AGGREGATE_LINK_STATE_DOWN;
}

static AggregateFragmentInfo *aggregate_fragment_info(DSM *dsm, uint32_t i,
                                                      AggregateFragment *f)
{
    AggregateFragmentInfo *info = g_new0(AggregateFragmentInfo, 1);
    intList **tail = &info->vcpus;
    uint32_t cpu;

    info->id = g_strdup(dsm_fragment_id(dsm, i));
    info->address = g_strdup(f->address);
    info->origin = i == AGGREGATE_ORIGIN;
    info->link = aggregate_link_state(dsm, i);
    for (cpu = 0; cpu < aggregate_vcpu_count(); cpu++) {
        if (aggregate_vcpu_owner(cpu) == i) {
            QAPI_LIST_APPEND(tail, cpu);
        }
    }
    info->homed_pages = dsm_homed_pages(dsm, i);
    return info;
}

/* Our own counts now; a peer's as of its last heartbeat. */
static void aggregate_fragment_memory(DSM *dsm, uint32_t i,
                                      AggregateFragmentInfo *info)
{
    DSMPeerBeat beat;
    DSMStats st;

    if (i == dsm_self(dsm)) {
        dsm_get_stats(dsm, &st);
        beat = (DSMPeerBeat) { .known = true,
                               .resident = st.resident_pages,
                               .exclusive = st.exclusive_pages };
    } else if (!dsm_get_peer_beat(dsm, i, &beat)) {
        return;
    }
    info->has_resident_pages = info->has_exclusive_pages = true;
    info->resident_pages = beat.resident;
    info->exclusive_pages = beat.exclusive;
    if (beat.rtt_ns) {
        info->has_round_trip_us = true;
        info->round_trip_us = beat.rtt_ns / SCALE_US;
    }
}

static AggregateClockInfo *aggregate_clock_info(DSM *dsm)
{
    AggregateClockInfo *info = g_new0(AggregateClockInfo, 1);
    AggregateClockSync sync;

    info->virtual_clock_ns = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    info->ticks = cpus_get_elapsed_ticks();
    if (dsm_self(dsm) != AGGREGATE_ORIGIN) {
        aggregate_clock_get_sync(&sync);
        info->has_virtual_clock_delta_ns = info->has_ticks_delta = true;
        info->has_round_trip_us = info->has_agreements = true;
        info->virtual_clock_delta_ns = sync.virtual_delta_ns;
        info->ticks_delta = sync.tick_delta;
        info->round_trip_us = sync.round_trip_us;
        info->agreements = sync.syncs;
    }
    return info;
}

AggregateInfo *qmp_query_aggregate(Error **errp)
{
    DSM *dsm = aggregate_machine_dsm();
    g_autoptr(GPtrArray) frags = NULL;
    AggregateFragmentInfoList **tail;
    AggregateInfo *info;
    uint32_t i;

    if (!dsm || !aggregate_vcpu_started()) {
        error_setg(errp, "this machine is not an aggregate VM with "
                   "fragments (-machine aggregate, -object "
                   "aggregate-fragment)");
        return NULL;
    }
    /* The same objects, in the same order, as the DSM was given. */
    frags = aggregate_fragments();
    assert(frags->len == dsm_nr_fragments(dsm));
    info = g_new0(AggregateInfo, 1);
    info->fragment = g_strdup(dsm_get_fragment_id(dsm));
    tail = &info->fragments;
    for (i = 0; i < frags->len; i++) {
        AggregateFragmentInfo *f = aggregate_fragment_info(dsm, i,
                                                           frags->pdata[i]);

        aggregate_fragment_memory(dsm, i, f);
        QAPI_LIST_APPEND(tail, f);
    }
    info->clock = aggregate_clock_info(dsm);
    return info;
}

static void hmp_info_aggregate(Monitor *mon, const QDict *qdict)
{
    Error *err = NULL;
    g_autoptr(AggregateInfo) info = qmp_query_aggregate(&err);
    AggregateFragmentInfoList *f;
    intList *cpu;

    if (hmp_handle_error(mon, err)) {
        return;
    }
    monitor_printf(mon, "this fragment: %s\n", info->fragment);
    for (f = info->fragments; f; f = f->next) {
        AggregateFragmentInfo *fi = f->value;

        monitor_printf(mon, "  %s%s at %s: link %s", fi->id,
                       fi->origin ? " (origin)" : "", fi->address,
                       AggregateLinkState_str(fi->link));
        if (fi->has_round_trip_us) {
            monitor_printf(mon, ", round trip %" PRIu64 " us",
                           fi->round_trip_us);
        }
        monitor_printf(mon, "\n    vCPUs");
        for (cpu = fi->vcpus; cpu; cpu = cpu->next) {
            monitor_printf(mon, " %" PRId64, cpu->value);
        }
        monitor_printf(mon, "%s; pages: %" PRIu64 " homed", fi->vcpus ? ""
                       : " none", fi->homed_pages);
        if (fi->has_resident_pages) {
            monitor_printf(mon, ", %" PRIu64 " resident, %" PRIu64
                           " exclusive", fi->resident_pages,
                           fi->exclusive_pages);
        }
        monitor_printf(mon, "\n");
    }
    monitor_printf(mon, "virtual clock %" PRId64 " ns, TSC %" PRId64
                   " ticks", info->clock->virtual_clock_ns,
                   info->clock->ticks);
    if (info->clock->has_agreements) {
        monitor_printf(mon, " (origin's: ours %+" PRId64 " ns, %+" PRId64
                       " ticks; %" PRIu64 " agreements, last round trip %"
                       PRId64 " us)", info->clock->virtual_clock_delta_ns,
                       info->clock->ticks_delta, info->clock->agreements,
                       info->clock->round_trip_us);
    }
    monitor_printf(mon, "\n");
}

static void aggregate_monitor_register(void)
{
    monitor_register_hmp("aggregate", true, hmp_info_aggregate);
}

type_init(aggregate_monitor_register);

DsmStats *qmp_query_dsm(Error **errp)
{
    DSM *dsm = aggregate_machine_dsm();
    DsmStats *info;
    DSMStats st;
    uint64List **tail;
    int i;

    if (!dsm) {
        error_setg(errp, "this machine is not an aggregate VM "
                   "(-machine aggregate)");
        return NULL;
    }
    dsm_get_stats(dsm, &st);
    info = g_new0(DsmStats, 1);
    info->fragment = g_strdup(dsm_get_fragment_id(dsm));
    info->pages = st.pages;
    info->homed_pages = st.homed_pages;
    info->resident_pages = st.resident_pages;
    info->exclusive_pages = st.exclusive_pages;
    info->read_faults = st.read_faults;
    info->write_faults = st.write_faults;
    info->remote_fetches = st.remote_fetches;
    info->zero_fills = st.zero_fills;
    info->upgrades = st.upgrades;
    info->invalidations_sent = st.invalidations_sent;
    info->invalidations_received = st.invalidations_received;
    info->pages_supplied = st.pages_supplied;
    info->hold_deferrals = st.hold_deferrals;
    info->bytes_in = st.bytes_in;
    info->bytes_out = st.bytes_out;
    info->messages_in = st.msgs_in;
    info->messages_out = st.msgs_out;
    tail = &info->fault_latency_us;
    for (i = 0; i < DSM_LATENCY_BUCKETS; i++) {
        QAPI_LIST_APPEND(tail, st.latency_us[i]);
    }
    return info;
}
