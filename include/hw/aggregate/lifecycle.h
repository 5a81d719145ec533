/*
 * aggvm: shutdown coordinated across the fragments of an aggregate VM
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_AGGREGATE_LIFECYCLE_H
#define HW_AGGREGATE_LIFECYCLE_H

#include "migration/dsm/dsm.h"

/*
 * aggregate_lifecycle_start: from now on, a shutdown of this fragment
 * (guest poweroff, QMP quit; not a signal) is sent to every other
 * fragment, which shuts down the same way, and so are a system reset and
 * a QMP stop or cont.  Call once, during machine init.
 */
void aggregate_lifecycle_start(DSM *dsm);

/*
 * aggregate_lifecycle_reset_done: the machine has just been reset (in
 * the main loop, vCPUs paused).  Unless a peer asked for this reset or
 * it is the one at start-up, every other fragment must reset too.
 */
void aggregate_lifecycle_reset_done(void);

#endif /* HW_AGGREGATE_LIFECYCLE_H */
