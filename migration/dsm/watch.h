/*
 * aggvm DSM: counting faults on chosen guest pages
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef MIGRATION_DSM_WATCH_H
#define MIGRATION_DSM_WATCH_H

#include "exec/hwaddr.h"

typedef struct DSMWatch DSMWatch;
typedef struct DSMWatchList DSMWatchList;

/*
 * A watch counts the DSM faults (read or write, each fault that sends
 * a REQ) on the guest pages it covers, for example a device's rings.
 * dsm_watch_new, dsm_watch_add and dsm_watch_clear: BQL held (they
 * translate guest-physical addresses); dsm_watch_faults: any thread.
 * A watch lives as long as the DSM; @list is the DSM's (dsm_watches()).
 */
DSMWatch *dsm_watch_new(DSMWatchList *list);
void dsm_watch_add(DSMWatch *w, hwaddr gpa, uint64_t len);
void dsm_watch_clear(DSMWatch *w);
uint64_t dsm_watch_faults(DSMWatch *w);

/*
 * For dsm.c: the list for the pages of @rb, and a fault on @page (the
 * fault thread).
 */
DSMWatchList *dsm_watch_list_new(RAMBlock *rb);
void dsm_watch_count(DSMWatchList *list, uint64_t page);

#endif /* MIGRATION_DSM_WATCH_H */
