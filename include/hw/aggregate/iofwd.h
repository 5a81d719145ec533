/*
 * aggvm: forwarding PIO and MMIO to the origin fragment
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_AGGREGATE_IOFWD_H
#define HW_AGGREGATE_IOFWD_H

#include "exec/hwaddr.h"
#include "migration/dsm/dsm.h"

typedef struct AggregateIOFwd AggregateIOFwd;

/*
 * aggregate_iofwd_start: on the origin (@self == @origin), replay the
 * accesses other fragments forward; elsewhere, forward every PIO and
 * every MMIO outside guest RAM, ROM and the local APIC to the origin.
 * @ram_below_4g and @ram_above_4g are the machine's RAM layout.
 * Vectors for a vCPU another fragment runs (aggregate_vcpu_owner())
 * are sent there.
 *
 * Call during machine init, after the machine's memory map exists.
 */
AggregateIOFwd *aggregate_iofwd_start(DSM *dsm, uint32_t self,
                                      uint32_t origin, uint32_t nr_fragments,
                                      hwaddr ram_below_4g,
                                      hwaddr ram_above_4g, hwaddr bios_size);

/*
 * aggregate_iofwd_set_net: route the NET_* messages to @net and let it
 * take the notifies of the virtqueues served here.  Once, at
 * machine-init-done.
 */
typedef struct AggregateNet AggregateNet;
void aggregate_iofwd_set_net(AggregateIOFwd *fwd, AggregateNet *net);

#endif /* HW_AGGREGATE_IOFWD_H */
