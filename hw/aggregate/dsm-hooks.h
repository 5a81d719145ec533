/*
 * aggvm: what the machine does when the DSM reports (hw/aggregate only)
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_AGGREGATE_DSM_HOOKS_H
#define HW_AGGREGATE_DSM_HOOKS_H

#include "migration/dsm/dsm.h"

/* For DSMConfig.hooks; hooks_opaque is the DSM ** the machine keeps. */
extern const DSMHooks aggregate_dsm_hooks;

/*
 * aggregate_dsm_hooks_install: before dsm_start(), with the DSM ** that
 * will hold the DSM (NULL until then): make TCG translate from code
 * snapshots and keep a cut-off VM from running.
 */
void aggregate_dsm_hooks_install(DSM **dsm);

#endif /* HW_AGGREGATE_DSM_HOOKS_H */
