/*
 * aggvm: aggregate VM machine and fragment objects
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_AGGREGATE_AGGREGATE_H
#define HW_AGGREGATE_AGGREGATE_H

#include "qom/object.h"
#include "qapi/qapi-types-sockets.h"

#define TYPE_AGGREGATE_FRAGMENT "aggregate-fragment"
OBJECT_DECLARE_SIMPLE_TYPE(AggregateFragment, AGGREGATE_FRAGMENT)

/*
 * One fragment of an aggregate VM: a QEMU process on some host, named
 * by its object id.  Every fragment's command line has one of these
 * per fragment, in the same form.
 */
struct AggregateFragment {
    Object parent_obj;

    /* Properties, checked in complete(); read-only afterwards. */
    char *address;              /* host:port of its fragment link */
    char *cpus;                 /* vCPU indexes, e.g. "0-1" */
    uint64_t mem;               /* guest RAM it is home for, bytes */

    /* Derived in complete(). */
    SocketAddress *addr;
    unsigned long *cpu_set;     /* bitmap of the indexes in @cpus */
    unsigned int cpu_max;       /* one past the highest index */
};

const char *aggregate_fragment_id(AggregateFragment *frag);

/*
 * aggregate_fragments: every aggregate-fragment object, ordered by id
 * in version order (f0 < f1 < f2 < f10).  Free with g_ptr_array_unref.
 */
GPtrArray *aggregate_fragments(void);

#define TYPE_AGGREGATE_MACHINE MACHINE_TYPE_NAME("aggregate")

typedef struct DSM DSM;

/*
 * aggregate_machine_dsm: the DSM of the running aggregate machine, or
 * NULL (another machine, or one process without fragments).  BQL held.
 */
DSM *aggregate_machine_dsm(void);

#endif /* HW_AGGREGATE_AGGREGATE_H */
