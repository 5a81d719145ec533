/*
 * aggvm: one guest TSC and one virtual clock across the fragments
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_AGGREGATE_CLOCK_H
#define HW_AGGREGATE_CLOCK_H

#include "migration/dsm/dsm.h"

/* Call once during machine init; @origin's clocks are the reference. */
void aggregate_clock_start(DSM *dsm, uint32_t self, uint32_t origin);

/*
 * aggregate_clock_sync: the first time, agree with the origin on the
 * guest's TSC and QEMU_CLOCK_VIRTUAL (a few round trips to it).  Waits
 * on the network: call it without the BQL, before this fragment's
 * vCPUs first run guest code.  Later calls return at once.
 */
void aggregate_clock_sync(void);

/*
 * The last agreement with the origin: what this fragment adds to its
 * own clocks, and the round trip of the answer it used.  All zero on
 * the origin and until the first agreement.
 */
typedef struct AggregateClockSync {
    int64_t tick_delta;
    int64_t virtual_delta_ns;
    int64_t round_trip_us;
    uint64_t syncs;             /* agreements so far */
} AggregateClockSync;

void aggregate_clock_get_sync(AggregateClockSync *sync);

#endif /* HW_AGGREGATE_CLOCK_H */
