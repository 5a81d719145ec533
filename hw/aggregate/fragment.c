/*
 * aggvm: the aggregate-fragment object
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * -object aggregate-fragment,id=f1,address=10.77.0.2:7000,cpus=2-3,mem=1G
 * describes one fragment.  The object only holds and checks the
 * description; the aggregate machine reads all of them.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "qemu/bitmap.h"
#include "qemu/cutils.h"
#include "qemu/sockets.h"
#include "qom/object_interfaces.h"
#include "hw/aggregate/aggregate.h"

#define AGGREGATE_MAX_CPU_INDEX 4096

const char *aggregate_fragment_id(AggregateFragment *frag)
{
    return object_get_canonical_path_component(OBJECT(frag));
}

/* Parse "0-1,4,6-7" into frag->cpu_set. */
static bool fragment_parse_cpus(AggregateFragment *frag, Error **errp)
{
    g_auto(GStrv) ranges = g_strsplit(frag->cpus, ",", 0);
    int i;

    frag->cpu_set = bitmap_new(AGGREGATE_MAX_CPU_INDEX);
    for (i = 0; ranges[i]; i++) {
        const char *end;
        uint64_t first, last;

        if (qemu_strtou64(ranges[i], &end, 10, &first) < 0) {
            goto bad;
        }
        last = first;
        if (*end == '-' && qemu_strtou64(end + 1, NULL, 10, &last) < 0) {
            goto bad;
        }
        if ((*end && *end != '-') || last < first ||
            last >= AGGREGATE_MAX_CPU_INDEX) {
            goto bad;
        }
        bitmap_set(frag->cpu_set, first, last - first + 1);
        frag->cpu_max = MAX(frag->cpu_max, last + 1);
    }
    return true;

bad:
    error_setg(errp, "aggregate-fragment '%s': cpus='%s' is not a list of "
               "vCPU indexes and ranges such as 0-1,4 (each below %d)",
               aggregate_fragment_id(frag), frag->cpus,
               AGGREGATE_MAX_CPU_INDEX);
    return false;
}

static void fragment_complete(UserCreatable *uc, Error **errp)
{
    ERRP_GUARD();
    AggregateFragment *frag = AGGREGATE_FRAGMENT(uc);
    const char *id = aggregate_fragment_id(frag);
    g_autofree char *uri = NULL;

    if (!frag->address || !frag->cpus || !frag->mem) {
        error_setg(errp, "aggregate-fragment '%s' needs address=HOST:PORT, "
                   "cpus=LIST and mem=SIZE", id);
        return;
    }
    if (frag->mem % qemu_real_host_page_size()) {
        error_setg(errp, "aggregate-fragment '%s': mem=%" PRIu64 " is not a "
                   "multiple of the page size", id, frag->mem);
        return;
    }
    uri = g_strdup_printf("tcp:%s", frag->address);
    frag->addr = socket_parse(uri, errp);
    if (!frag->addr) {
        error_prepend(errp, "aggregate-fragment '%s': address: ", id);
        return;
    }
    fragment_parse_cpus(frag, errp);
}

static char *fragment_get_address(Object *obj, Error **errp)
{
    return g_strdup(AGGREGATE_FRAGMENT(obj)->address);
}

static void fragment_set_address(Object *obj, const char *value,
                                 Error **errp)
{
    AggregateFragment *frag = AGGREGATE_FRAGMENT(obj);

    g_free(frag->address);
    frag->address = g_strdup(value);
}

static char *fragment_get_cpus(Object *obj, Error **errp)
{
    return g_strdup(AGGREGATE_FRAGMENT(obj)->cpus);
}

static void fragment_set_cpus(Object *obj, const char *value, Error **errp)
{
    AggregateFragment *frag = AGGREGATE_FRAGMENT(obj);

    g_free(frag->cpus);
    frag->cpus = g_strdup(value);
}

static void fragment_get_mem(Object *obj, Visitor *v, const char *name,
                             void *opaque, Error **errp)
{
    visit_type_size(v, name, &AGGREGATE_FRAGMENT(obj)->mem, errp);
}

static void fragment_set_mem(Object *obj, Visitor *v, const char *name,
                             void *opaque, Error **errp)
{
    visit_type_size(v, name, &AGGREGATE_FRAGMENT(obj)->mem, errp);
}

static void fragment_finalize(Object *obj)
{
    AggregateFragment *frag = AGGREGATE_FRAGMENT(obj);

    g_free(frag->address);
    g_free(frag->cpus);
    g_free(frag->cpu_set);
    qapi_free_SocketAddress(frag->addr);
}

static void fragment_class_init(ObjectClass *oc, void *data)
{
    UserCreatableClass *ucc = USER_CREATABLE_CLASS(oc);

    ucc->complete = fragment_complete;
    object_class_property_add_str(oc, "address", fragment_get_address,
                                  fragment_set_address);
    object_class_property_set_description(oc, "address",
        "HOST:PORT where this fragment listens for its fragment links");
    object_class_property_add_str(oc, "cpus", fragment_get_cpus,
                                  fragment_set_cpus);
    object_class_property_set_description(oc, "cpus",
        "vCPU indexes this fragment runs, e.g. 0-1,4");
    object_class_property_add(oc, "mem", "size", fragment_get_mem,
                              fragment_set_mem, NULL, NULL);
    object_class_property_set_description(oc, "mem",
        "guest RAM this fragment is home for (its NUMA node's size)");
}

static gint fragment_compare(gconstpointer a, gconstpointer b)
{
    AggregateFragment *fa = *(AggregateFragment **)a;
    AggregateFragment *fb = *(AggregateFragment **)b;

    return strverscmp(aggregate_fragment_id(fa), aggregate_fragment_id(fb));
}

static int fragment_collect(Object *obj, void *opaque)
{
    AggregateFragment *frag = (AggregateFragment *)
        object_dynamic_cast(obj, TYPE_AGGREGATE_FRAGMENT);

    if (frag) {
        g_ptr_array_add(opaque, frag);
    }
    return 0;
}

GPtrArray *aggregate_fragments(void)
{
    GPtrArray *frags = g_ptr_array_new();

    object_child_foreach(object_get_objects_root(), fragment_collect, frags);
    g_ptr_array_sort(frags, fragment_compare);
    return frags;
}

static const TypeInfo fragment_info = {
    .name = TYPE_AGGREGATE_FRAGMENT,
    .parent = TYPE_OBJECT,
    .instance_size = sizeof(AggregateFragment),
    .instance_finalize = fragment_finalize,
    .class_init = fragment_class_init,
    .interfaces = (InterfaceInfo[]) {
        { TYPE_USER_CREATABLE },
        { }
    },
};

static void fragment_register_types(void)
{
    type_register_static(&fragment_info);
}

type_init(fragment_register_types);
