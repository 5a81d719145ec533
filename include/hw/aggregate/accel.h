/*
 * aggvm: the aggregate accelerator's interface to the machine
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_AGGREGATE_ACCEL_H
#define HW_AGGREGATE_ACCEL_H

#define TYPE_AGGREGATE_ACCEL "aggregate-accel"

/* Whether -accel aggregate is the accelerator of this process. */
bool aggregate_accel_enabled(void);

/*
 * aggregate_accel_set_local_cpus: the vCPU indexes this fragment runs
 * (a bitmap of @nr bits, copied).  Every other vCPU is realized but
 * parked.  The machine calls it before it creates the vCPUs.
 */
void aggregate_accel_set_local_cpus(const unsigned long *cpus,
                                    unsigned int nr);

#endif /* HW_AGGREGATE_ACCEL_H */
