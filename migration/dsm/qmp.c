/*
 * aggvm DSM: QMP commands
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-aggregate.h"
#include "migration/dsm/dsm.h"

DsmStats *qmp_query_dsm(Error **errp)
{
    DSM *dsm = dsm_get_instance();
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
