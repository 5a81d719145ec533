/*
 * aggvm DSM: counting faults on chosen guest pages
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Watches say whether some memory stays where it is used: the rings of
 * a virtio-net queue pair served on the fragment that uses them should
 * fault there only while they first arrive (hw/aggregate/net.c).  The
 * fault thread checks each fault that sends a REQ against every
 * watched range; there are a few dozen at most, so a list and a mutex
 * (a leaf lock: nothing else is taken under it) are enough.
 */

#include "qemu/osdep.h"
#include "qemu/lockable.h"
#include "qemu/stats64.h"
#include "qemu/thread.h"
#include "exec/memory.h"
#include "exec/address-spaces.h"
#include "migration/dsm/wire.h"
#include "migration/dsm/watch.h"

typedef struct DSMWatchRange {
    uint64_t first;             /* pages of the DSM's RAM block */
    uint64_t last;
} DSMWatchRange;

struct DSMWatch {
    /* Set at creation, then read-only. */
    DSMWatchList *list;

    Stat64 faults;
    GArray *ranges;             /* of DSMWatchRange, under list->lock */
};

struct DSMWatchList {
    RAMBlock *rb;               /* the DSM's, set at creation */
    QemuMutex lock;             /* protects watches and their ranges */
    GPtrArray *watches;
};

DSMWatchList *dsm_watch_list_new(RAMBlock *rb)
{
    DSMWatchList *list = g_new0(DSMWatchList, 1);

    list->rb = rb;
    qemu_mutex_init(&list->lock);
    list->watches = g_ptr_array_new();
    return list;
}

DSMWatch *dsm_watch_new(DSMWatchList *list)
{
    DSMWatch *w = g_new0(DSMWatch, 1);

    w->list = list;
    w->ranges = g_array_new(false, false, sizeof(DSMWatchRange));
    QEMU_LOCK_GUARD(&w->list->lock);
    g_ptr_array_add(w->list->watches, w);
    return w;
}

/* The DSM page holding guest-physical @gpa, or false if none does. */
static bool dsm_watch_page_of(DSMWatchList *list, hwaddr gpa,
                              uint64_t *page)
{
    MemoryRegionSection s = memory_region_find(get_system_memory(), gpa, 1);
    bool found = false;

    if (s.mr) {
        if (s.mr->ram_block == list->rb) {
            *page = (memory_region_get_ram_addr(s.mr) -
                     qemu_ram_get_offset(s.mr->ram_block) +
                     s.offset_within_region) / DSM_PAGE_SIZE;
            found = true;
        }
        memory_region_unref(s.mr);
    }
    return found;
}

void dsm_watch_add(DSMWatch *w, hwaddr gpa, uint64_t len)
{
    DSMWatchRange r;

    if (!len || !dsm_watch_page_of(w->list, gpa, &r.first) ||
        !dsm_watch_page_of(w->list, gpa + len - 1, &r.last) ||
        r.last < r.first) {
        return;
    }
    QEMU_LOCK_GUARD(&w->list->lock);
    g_array_append_val(w->ranges, r);
}

void dsm_watch_clear(DSMWatch *w)
{
    QEMU_LOCK_GUARD(&w->list->lock);
    g_array_set_size(w->ranges, 0);
}

uint64_t dsm_watch_faults(DSMWatch *w)
{
    return stat64_get(&w->faults);
}

void dsm_watch_count(DSMWatchList *list, uint64_t page)
{
    guint i, j;

    QEMU_LOCK_GUARD(&list->lock);
    for (i = 0; i < list->watches->len; i++) {
        DSMWatch *w = g_ptr_array_index(list->watches, i);

        for (j = 0; j < w->ranges->len; j++) {
            DSMWatchRange *r = &g_array_index(w->ranges, DSMWatchRange, j);

            if (page >= r->first && page <= r->last) {
                stat64_add(&w->faults, 1);
                break;
            }
        }
    }
}
