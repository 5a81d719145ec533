/*
 * aggvm: forwarding interrupts to the fragment that runs their vCPU
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_AGGREGATE_IRQFWD_H
#define HW_AGGREGATE_IRQFWD_H

#include "migration/dsm/dsm.h"

typedef struct AggregateIrqFwd AggregateIrqFwd;

/*
 * aggregate_irqfwd_start: install the APIC and accelerator hooks and
 * take the interrupt family's messages.  Once, at machine init, before
 * dsm_connect(); the origin is fragment @origin.
 */
void aggregate_irqfwd_start(DSM *dsm, uint32_t self, uint32_t origin);

#endif /* HW_AGGREGATE_IRQFWD_H */
