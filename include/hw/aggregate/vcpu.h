/*
 * aggvm: where each vCPU runs, and moving a vCPU between fragments
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_AGGREGATE_VCPU_H
#define HW_AGGREGATE_VCPU_H

#include "migration/dsm/dsm.h"

/*
 * aggregate_vcpu_start: @owner[i] is the fragment that runs vCPU i at
 * start-up (copied).  Call once, during machine init.
 */
void aggregate_vcpu_start(DSM *dsm, uint32_t self, const uint32_t *owner,
                          uint32_t nr_cpus);

/* Is vCPU placement known (an aggregate VM with fragments)? */
bool aggregate_vcpu_started(void);

/*
 * aggregate_vcpu_owner: the fragment that runs vCPU @cpu, as far as
 * this fragment knows (a move may be on its way).  Any thread; a
 * decision that must not race with a move is taken under the BQL.
 */
uint32_t aggregate_vcpu_owner(uint32_t cpu);

uint32_t aggregate_vcpu_count(void);

/*
 * aggregate_vcpu_reset: after a system reset (BQL held, vCPUs paused),
 * put every vCPU back where the command line placed it and park again
 * the ones other fragments run.
 */
void aggregate_vcpu_reset(void);

#endif /* HW_AGGREGATE_VCPU_H */
