/*
 * aggvm: the aggregate machine
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * -machine aggregate,fragment=ID is a Q35 machine whose guest RAM is
 * shared with the other fragments of an aggregate VM through the DSM
 * (migration/dsm).  Every fragment runs the same command line but for
 * fragment=, with one -object aggregate-fragment per fragment; the
 * fragments check at their handshake that their configurations hash
 * the same.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "qemu/bitmap.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qemu/sockets.h"
#include "hw/boards.h"
#include "hw/i386/pc.h"
#include "exec/cpu-common.h"
#include "exec/memory.h"
#include "system/hostmem.h"
#include "system/system.h"
#include "migration/blocker.h"
#include "migration/dsm/directory.h"
#include "migration/dsm/dsm.h"
#include "block/block-common.h"
#include "block/block-io.h"
#include "system/block-backend-global-state.h"
#include "system/block-backend-io.h"
#include "system/numa.h"
#include "system/qtest.h"
#include "system/kvm.h"
#include "hw/aggregate/accel.h"
#include "hw/aggregate/clock.h"
#include "hw/aggregate/lifecycle.h"
#include "hw/aggregate/net.h"
#include "hw/aggregate/vcpu.h"
#include "hw/aggregate/aggregate.h"
#include "hw/aggregate/iofwd.h"
#include "hw/aggregate/irqfwd.h"
#include "dsm-hooks.h"
#include "hw/i386/x86.h"
#include "net/net.h"
#include "net/tap.h"

#define AGGREGATE_PARENT_MACHINE MACHINE_TYPE_NAME("pc-q35-10.0")
#define AGGREGATE_DEFAULT_CONNECT_TIMEOUT 60

OBJECT_DECLARE_TYPE(AggregateMachineState, AggregateMachineClass,
                    AGGREGATE_MACHINE)

struct AggregateMachineState {
    PCMachineState parent_obj;

    char *fragment;                 /* this process's fragment id */
    uint32_t connect_timeout;       /* seconds to wait for the peers */
    uint32_t service_priority;      /* SCHED_FIFO, 0: normal */
    uint32_t hold_time;             /* microseconds, see DSMConfig */
    bool pin_net_queues;            /* see hw/aggregate/net.c */
    Error *migration_blocker;
    Notifier init_done;
    uint32_t *cpu_owner;            /* [max_cpus] fragment running it */
    DSM *dsm;
    AggregateIOFwd *iofwd;
    AggregateNet *net;
};

struct AggregateMachineClass {
    PCMachineClass parent_class;

    void (*parent_init)(MachineState *ms);
    void (*parent_reset)(MachineState *ms, ResetType type);
};

DSM *aggregate_machine_dsm(void)
{
    Object *obj = current_machine ?
        object_dynamic_cast(OBJECT(current_machine), TYPE_AGGREGATE_MACHINE) :
        NULL;

    return obj ? AGGREGATE_MACHINE(obj)->dsm : NULL;
}

/* No fragments at all: one process runs the whole VM. */
#define AGGREGATE_STANDALONE (-2)

/*
 * Index of this process's fragment in @frags, AGGREGATE_STANDALONE, or
 * -1 with @errp set.
 */
static int aggregate_find_self(AggregateMachineState *ams, GPtrArray *frags,
                               Error **errp)
{
    g_autoptr(GString) known = g_string_new("");
    guint i;

    if (!frags->len && !ams->fragment) {
        return AGGREGATE_STANDALONE;
    }
    if (!frags->len) {
        error_setg(errp, "-machine aggregate,fragment=%s needs one -object "
                   "aggregate-fragment,id=ID,address=HOST:PORT,cpus=LIST,"
                   "mem=SIZE per fragment", ams->fragment);
        return -1;
    }
    if (frags->len > DSM_MAX_FRAGMENTS) {
        error_setg(errp, "aggregate: %u fragments given, at most %d are "
                   "supported", frags->len, DSM_MAX_FRAGMENTS);
        return -1;
    }
    if (!ams->fragment) {
        error_setg(errp, "-machine aggregate needs fragment=ID, the id of "
                   "the aggregate-fragment this process runs");
        return -1;
    }
    for (i = 0; i < frags->len; i++) {
        const char *id = aggregate_fragment_id(frags->pdata[i]);

        if (!strcmp(id, ams->fragment)) {
            return i;
        }
        g_string_append_printf(known, "%s%s", i ? ", " : "", id);
    }
    error_setg(errp, "-machine aggregate,fragment=%s: no aggregate-fragment "
               "has that id (known: %s)", ams->fragment, known->str);
    return -1;
}

static bool aggregate_check_memory(MachineState *ms, GPtrArray *frags,
                                   Error **errp)
{
    uint64_t total = 0;
    guint i, j;

    for (i = 0; i < frags->len; i++) {
        AggregateFragment *f = frags->pdata[i];

        total += f->mem;
        for (j = 0; j < i; j++) {
            AggregateFragment *g = frags->pdata[j];

            if (!strcmp(f->address, g->address)) {
                error_setg(errp, "aggregate fragments %s and %s both use "
                           "address %s", aggregate_fragment_id(g),
                           aggregate_fragment_id(f), f->address);
                return false;
            }
        }
    }
    if (total != ms->ram_size) {
        error_setg(errp, "aggregate fragments' mem= add up to %" PRIu64
                   " bytes, but -m is %" PRIu64 " bytes", total,
                   (uint64_t)ms->ram_size);
        return false;
    }
    return true;
}

#define AGGREGATE_NO_OWNER UINT32_MAX

/*
 * Every vCPU index in exactly one fragment, none beyond -smp; fills
 * ams->cpu_owner, which NUMA set-up and interrupt forwarding use.
 */
/*
 * The guest takes CPUs of one socket to share caches and one NUMA node;
 * a socket split between fragments contradicts the node per fragment.
 */
static bool aggregate_check_sockets(AggregateMachineState *ams,
                                    GPtrArray *frags, Error **errp)
{
    MachineState *ms = MACHINE(ams);
    unsigned int per_socket = ms->smp.max_cpus / ms->smp.sockets;
    unsigned int cpu, first;

    for (cpu = 0; cpu < ms->smp.max_cpus; cpu++) {
        first = cpu - cpu % per_socket;
        if (ams->cpu_owner[cpu] != ams->cpu_owner[first]) {
            error_setg(errp, "aggregate: vCPUs %u and %u share a socket but "
                       "run on fragments '%s' and '%s'; give each fragment "
                       "whole sockets (-smp ...,sockets=N)", first, cpu,
                       aggregate_fragment_id(
                           frags->pdata[ams->cpu_owner[first]]),
                       aggregate_fragment_id(
                           frags->pdata[ams->cpu_owner[cpu]]));
            return false;
        }
    }
    return true;
}

static bool aggregate_check_cpus(AggregateMachineState *ams,
                                 GPtrArray *frags, Error **errp)
{
    unsigned int ncpus = MACHINE(ams)->smp.max_cpus;
    uint32_t *owner = g_new(uint32_t, ncpus);
    guint i;
    unsigned int cpu;

    ams->cpu_owner = owner;
    for (cpu = 0; cpu < ncpus; cpu++) {
        owner[cpu] = AGGREGATE_NO_OWNER;
    }
    for (i = 0; i < frags->len; i++) {
        AggregateFragment *f = frags->pdata[i];

        if (f->cpu_max > ncpus) {
            error_setg(errp, "aggregate-fragment '%s': cpus=%s names vCPU "
                       "%u, but -smp has %u", aggregate_fragment_id(f),
                       f->cpus, f->cpu_max - 1, ncpus);
            return false;
        }
        for (cpu = 0; cpu < f->cpu_max; cpu++) {
            if (!test_bit(cpu, f->cpu_set)) {
                continue;
            }
            if (owner[cpu] != AGGREGATE_NO_OWNER) {
                error_setg(errp, "aggregate-fragment '%s': vCPU %u is "
                           "already in another fragment",
                           aggregate_fragment_id(f), cpu);
                return false;
            }
            owner[cpu] = i;
        }
    }
    for (cpu = 0; cpu < ncpus; cpu++) {
        if (owner[cpu] == AGGREGATE_NO_OWNER) {
            error_setg(errp, "aggregate: vCPU %u is in no fragment's cpus=",
                       cpu);
            return false;
        }
    }
    return aggregate_check_sockets(ams, frags, errp);
}

/* Refuse RAM set-ups that hide accesses from the DSM's userfaultfd. */
static bool aggregate_check_ram_backend(MachineState *ms, Error **errp)
{
    HostMemoryBackend *backend = ms->memdev;

    if (!backend) {
        error_setg(errp, "aggregate: guest RAM must be one memory backend "
                   "(-m, or -machine memory-backend=); -numa memdev= is "
                   "not supported");
        return false;
    }
    if (backend->prealloc) {
        error_setg(errp, "aggregate: preallocated guest RAM (prealloc=on, "
                   "-mem-prealloc) is not supported: the DSM needs every "
                   "page absent at start");
        return false;
    }
    if (backend->share) {
        error_setg(errp, "aggregate: shared guest RAM (share=on) is not "
                   "supported: another process could change pages behind "
                   "the DSM");
        return false;
    }
    if (should_mlock(mlock_state)) {
        error_setg(errp, "aggregate: -overcommit mem-lock=on is not "
                   "supported: locked memory defeats the DSM's page faults");
        return false;
    }
    return true;
}

/*
 * One NUMA node per fragment, with that fragment's vCPUs and memory;
 * remote nodes are twice as far.  Node i's memory is the range of
 * guest RAM fragment i is home for in the DSM.
 */
static bool aggregate_setup_numa(AggregateMachineState *ams,
                                 GPtrArray *frags, Error **errp)
{
    MachineState *ms = MACHINE(ams);
    MachineClass *mc = MACHINE_GET_CLASS(ms);
    NumaState *numa = ms->numa_state;
    const CPUArchIdList *slots;
    guint i, j;

    if (numa->num_nodes) {
        error_setg(errp, "-numa is not supported with -machine aggregate: "
                   "it makes one NUMA node per fragment");
        return false;
    }
    if (frags->len > MAX_NODES) {
        error_setg(errp, "aggregate: %u fragments, but at most %d NUMA "
                   "nodes", frags->len, MAX_NODES);
        return false;
    }
    numa->num_nodes = frags->len;
    numa->have_numa_distance = true;
    for (i = 0; i < frags->len; i++) {
        AggregateFragment *f = frags->pdata[i];

        numa->nodes[i].present = true;
        numa->nodes[i].node_mem = f->mem;
        for (j = 0; j < frags->len; j++) {
            numa->nodes[i].distance[j] = i == j ? NUMA_DISTANCE_MIN : 20;
        }
    }
    slots = mc->possible_cpu_arch_ids(ms);
    assert(slots->len == ms->smp.max_cpus);
    for (j = 0; j < slots->len; j++) {
        CpuInstanceProperties *props = &((CPUArchIdList *)slots)->cpus[j].props;

        i = ams->cpu_owner[j];
        props->node_id = i;
        props->has_node_id = true;
        numa->nodes[i].has_cpu = true;
    }
    return true;
}

/* -machine aggregate runs only this fragment's vCPUs: -accel aggregate. */
static bool aggregate_check_accel(MachineState *ms, AggregateFragment *self,
                                  Error **errp)
{
    if (qtest_enabled()) {
        return true;            /* no vCPU runs at all */
    }
    if (kvm_enabled()) {
        error_setg(errp, "-machine aggregate does not support KVM: the "
                   "in-kernel local APIC delivers IPIs inside the kernel, "
                   "so IPIs to vCPUs of other fragments would never reach "
                   "QEMU; use -accel aggregate (TCG)");
        return false;
    }
    if (!aggregate_accel_enabled()) {
        error_setg(errp, "-machine aggregate needs -accel aggregate (or "
                   "qtest): another accelerator would run every vCPU in "
                   "every fragment");
        return false;
    }
    /* cpu_set has room for every index; check_cpus bounded them. */
    aggregate_accel_set_local_cpus(self->cpu_set, ms->smp.max_cpus);
    return true;
}

static void aggregate_config_hash(MachineState *ms, GPtrArray *frags,
                                  uint8_t *hash)
{
    g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
    g_autofree char *head = g_strdup_printf(
        "aggvm-config-v1 ram=%" PRIu64 " cpus=%u maxcpus=%u\n",
        (uint64_t)ms->ram_size, ms->smp.cpus, ms->smp.max_cpus);
    gsize len = DSM_CONFIG_HASH_SIZE;
    guint i;

    g_checksum_update(sum, (const guchar *)head, -1);
    for (i = 0; i < frags->len; i++) {
        AggregateFragment *f = frags->pdata[i];
        g_autofree char *line = g_strdup_printf(
            "fragment id=%s address=%s cpus=%s mem=%" PRIu64 "\n",
            aggregate_fragment_id(f), f->address, f->cpus, f->mem);

        g_checksum_update(sum, (const guchar *)line, -1);
    }
    g_checksum_get_digest(sum, hash, &len);
}

/* Devices that discard guest RAM behind the DSM's back. */
static const char *const aggregate_refused_devices[] = {
    "virtio-balloon-device", "virtio-mem", "hv-balloon",
};

static int aggregate_find_refused_device(Object *obj, void *opaque)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(aggregate_refused_devices); i++) {
        if (object_dynamic_cast(obj, aggregate_refused_devices[i])) {
            *(const char **)opaque = aggregate_refused_devices[i];
            return 1;
        }
    }
    return 0;
}

/*
 * Direct and native-AIO I/O pins the guest pages it transfers; the DSM
 * could write-protect or discard a page while the transfer is in
 * flight, losing the data.  Buffered I/O copies through the kernel,
 * which faults like any other access.
 */
static bool aggregate_check_drives(Error **errp)
{
    BlockBackend *blk = NULL;

    while ((blk = blk_next(blk))) {
        BlockDriverState *bs = blk_bs(blk);
        int flags = bs ? bdrv_get_flags(bs) : 0;

        if (flags & (BDRV_O_NOCACHE | BDRV_O_NATIVE_AIO | BDRV_O_IO_URING)) {
            error_setg(errp, "aggregate: drive '%s' uses %s, which pins "
                       "guest memory behind the DSM; use buffered I/O "
                       "(cache.direct=off, aio=threads)", blk_name(blk),
                       flags & BDRV_O_NOCACHE ? "cache.direct=on" :
                       flags & BDRV_O_NATIVE_AIO ? "aio=native" :
                       "aio=io_uring");
            return false;
        }
    }
    return true;
}

/*
 * In-kernel network backends (vhost) read and write the rings and
 * buffers in guest RAM from the kernel, where the DSM's userfaultfd
 * sees neither their reads nor their writes.
 */
static void aggregate_check_nic(NICState *nic, void *opaque)
{
    NetClientState *peer = qemu_get_queue(nic)->peer;
    const char *why = NULL;

    if (!peer || *(Error **)opaque) {
        return;
    }
    switch (peer->info->type) {
    case NET_CLIENT_DRIVER_VHOST_USER:
        why = "is a vhost-user backend";
        break;
    case NET_CLIENT_DRIVER_VHOST_VDPA:
        why = "is a vhost-vdpa backend";
        break;
    case NET_CLIENT_DRIVER_TAP:
        if (tap_get_vhost_net(peer)) {
            why = "uses vhost=on";
        }
        break;
    default:
        break;
    }
    if (why) {
        error_setg((Error **)opaque, "aggregate: netdev '%s' %s, which "
                   "accesses guest RAM in the kernel, behind the DSM; use "
                   "vhost=off", peer->name, why);
    }
}

static void aggregate_machine_init_done(Notifier *notifier, void *data)
{
    AggregateMachineState *ams = container_of(notifier, AggregateMachineState,
                                              init_done);
    Error *err = NULL;
    const char *type = NULL;

    /* Configuration errors, found once every device exists: fatal. */
    object_child_foreach_recursive(object_get_root(),
                                   aggregate_find_refused_device, &type);
    if (type) {
        error_setg(&error_fatal, "aggregate: device %s is not supported: "
                   "it discards guest RAM behind the DSM", type);
    }
    aggregate_check_drives(&error_fatal);
    qemu_foreach_nic(aggregate_check_nic, &err);
    if (err) {
        error_propagate(&error_fatal, err);
    }
    if (ams->dsm) {
        ams->net = aggregate_net_start(ams->dsm, dsm_self(ams->dsm), 0,
                                       ams->pin_net_queues, &error_fatal);
        aggregate_iofwd_set_net(ams->iofwd, ams->net);
    }
}

static bool aggregate_start_dsm(AggregateMachineState *ams, GPtrArray *frags,
                                int self, Error **errp)
{
    MachineState *ms = MACHINE(ams);
    RAMBlock *rb = ms->ram->ram_block;
    g_autofree const char **ids = g_new0(const char *, frags->len + 1);
    g_autofree SocketAddress **addrs = g_new0(SocketAddress *, frags->len);
    g_autofree uint64_t *home_bytes = g_new0(uint64_t, frags->len);
    DSMConfig cfg = {
        .self = self,
        .nr_fragments = frags->len,
        .ids = ids,
        .addrs = addrs,
        .home_bytes = home_bytes,
        .rb = rb,
        .connect_timeout_ms = ams->connect_timeout * 1000LL,
        .hold_ns = ams->hold_time * 1000LL,
        .service_priority = ams->service_priority,
        .hooks = &aggregate_dsm_hooks,
        .hooks_opaque = &ams->dsm,
    };
    guint i;

    if (qemu_ram_pagesize(rb) != qemu_real_host_page_size()) {
        error_setg(errp, "aggregate: guest RAM on huge pages is not "
                   "supported: the DSM shares memory in %d-byte pages",
                   DSM_PAGE_SIZE);
        return false;
    }
    for (i = 0; i < frags->len; i++) {
        AggregateFragment *f = frags->pdata[i];

        ids[i] = aggregate_fragment_id(f);
        addrs[i] = f->addr;
        home_bytes[i] = f->mem;
    }
    aggregate_config_hash(ms, frags, cfg.config_hash);

    error_setg(&ams->migration_blocker, "aggregate VMs cannot be migrated "
               "or snapshotted: their RAM is managed by the DSM");
    if (migrate_add_blocker(&ams->migration_blocker, errp) < 0) {
        return false;
    }
    /* Pinning devices (VFIO) keep DMA-ing into pages the DSM discards. */
    if (ram_block_discard_require(true)) {
        error_setg(errp, "aggregate: a device that pins guest RAM is "
                   "present; the DSM cannot share such memory");
        return false;
    }
    ams->init_done.notify = aggregate_machine_init_done;
    qemu_add_machine_init_done_notifier(&ams->init_done);
    aggregate_dsm_hooks_install(&ams->dsm);
    ams->dsm = dsm_start(&cfg, errp);
    return ams->dsm != NULL;
}

/* The origin, the first fragment, owns the devices; see iofwd.c. */
static void aggregate_start_iofwd(AggregateMachineState *ams, int self,
                                  GPtrArray *frags)
{
    X86MachineState *x86ms = X86_MACHINE(ams);
    RAMBlock *bios = qemu_ram_block_by_name("pc.bios");

    aggregate_vcpu_start(ams->dsm, self, ams->cpu_owner,
                         MACHINE(ams)->smp.max_cpus);
    ams->iofwd = aggregate_iofwd_start(ams->dsm, self, 0, frags->len,
                                       x86ms->below_4g_mem_size,
                                       x86ms->above_4g_mem_size,
                                       bios ? qemu_ram_get_used_length(bios)
                                            : 0);
    aggregate_irqfwd_start(ams->dsm, self, 0);
    aggregate_lifecycle_start(ams->dsm);
    aggregate_clock_start(ams->dsm, self, 0);
    /* Only now can a peer's first message be handled. */
    dsm_connect(ams->dsm);
}

static void aggregate_standalone_cpus(MachineState *ms)
{
    g_autofree unsigned long *all = bitmap_new(ms->smp.max_cpus);

    bitmap_fill(all, ms->smp.max_cpus);
    aggregate_accel_set_local_cpus(all, ms->smp.max_cpus);
}

/* Every fragment resets together: see lifecycle.c. */
static void aggregate_machine_reset(MachineState *ms, ResetType type)
{
    AggregateMachineClass *amc = AGGREGATE_MACHINE_GET_CLASS(ms);

    amc->parent_reset(ms, type);
    aggregate_vcpu_reset();
    if (AGGREGATE_MACHINE(ms)->dsm) {
        aggregate_lifecycle_reset_done();
    }
}

static void aggregate_machine_init(MachineState *ms)
{
    AggregateMachineState *ams = AGGREGATE_MACHINE(ms);
    AggregateMachineClass *amc = AGGREGATE_MACHINE_GET_CLASS(ms);
    g_autoptr(GPtrArray) frags = aggregate_fragments();
    int self = aggregate_find_self(ams, frags, &error_fatal);

    if (self == AGGREGATE_STANDALONE) {
        /*
         * Like every machine type, this one starts with no options (QEMU's
         * generic tests rely on it): the whole VM is one fragment.
         */
        warn_report("-machine aggregate without aggregate-fragment objects: "
                    "running the whole VM in this process");
        aggregate_standalone_cpus(ms);
        amc->parent_init(ms);
        return;
    }

    if (!aggregate_check_memory(ms, frags, &error_fatal) ||
        !aggregate_check_cpus(ams, frags, &error_fatal) ||
        !aggregate_check_ram_backend(ms, &error_fatal) ||
        !aggregate_check_accel(ms, frags->pdata[self], &error_fatal) ||
        !aggregate_setup_numa(ams, frags, &error_fatal)) {
        return;
    }
    amc->parent_init(ms);
    aggregate_start_dsm(ams, frags, self, &error_fatal);
    aggregate_start_iofwd(ams, self, frags);
}

static char *aggregate_get_fragment(Object *obj, Error **errp)
{
    return g_strdup(AGGREGATE_MACHINE(obj)->fragment);
}

static void aggregate_set_fragment(Object *obj, const char *value,
                                   Error **errp)
{
    AggregateMachineState *ams = AGGREGATE_MACHINE(obj);

    g_free(ams->fragment);
    ams->fragment = g_strdup(value);
}

static void aggregate_get_timeout(Object *obj, Visitor *v, const char *name,
                                  void *opaque, Error **errp)
{
    visit_type_uint32(v, name, &AGGREGATE_MACHINE(obj)->connect_timeout,
                      errp);
}

static void aggregate_set_timeout(Object *obj, Visitor *v, const char *name,
                                  void *opaque, Error **errp)
{
    uint32_t value;

    if (!visit_type_uint32(v, name, &value, errp)) {
        return;
    }
    if (!value) {
        error_setg(errp, "connect-timeout must be at least 1 second");
        return;
    }
    AGGREGATE_MACHINE(obj)->connect_timeout = value;
}

static void aggregate_get_hold(Object *obj, Visitor *v, const char *name,
                               void *opaque, Error **errp)
{
    visit_type_uint32(v, name, &AGGREGATE_MACHINE(obj)->hold_time, errp);
}

static void aggregate_set_hold(Object *obj, Visitor *v, const char *name,
                               void *opaque, Error **errp)
{
    uint32_t value;

    if (!visit_type_uint32(v, name, &value, errp)) {
        return;
    }
    if (value > 1000000) {
        error_setg(errp, "hold-time=%u is over a second: that would stall "
                   "other fragments", value);
        return;
    }
    AGGREGATE_MACHINE(obj)->hold_time = value;
}

static void aggregate_get_priority(Object *obj, Visitor *v, const char *name,
                                   void *opaque, Error **errp)
{
    visit_type_uint32(v, name, &AGGREGATE_MACHINE(obj)->service_priority,
                      errp);
}

static void aggregate_set_priority(Object *obj, Visitor *v, const char *name,
                                   void *opaque, Error **errp)
{
    int max = sched_get_priority_max(SCHED_FIFO);
    uint32_t value;

    if (!visit_type_uint32(v, name, &value, errp)) {
        return;
    }
    if (value > max) {
        error_setg(errp, "service-priority=%u is above the highest "
                   "real-time priority, %d", value, max);
        return;
    }
    AGGREGATE_MACHINE(obj)->service_priority = value;
}

static void aggregate_machine_instance_init(Object *obj)
{
    AGGREGATE_MACHINE(obj)->connect_timeout =
        AGGREGATE_DEFAULT_CONNECT_TIMEOUT;
    AGGREGATE_MACHINE(obj)->hold_time = DSM_DEFAULT_HOLD_US;
    AGGREGATE_MACHINE(obj)->pin_net_queues = true;
}

static bool aggregate_get_pin_net(Object *obj, Error **errp)
{
    return AGGREGATE_MACHINE(obj)->pin_net_queues;
}

static void aggregate_set_pin_net(Object *obj, bool value, Error **errp)
{
    AGGREGATE_MACHINE(obj)->pin_net_queues = value;
}

static void aggregate_machine_class_init(ObjectClass *oc, void *data)
{
    MachineClass *mc = MACHINE_CLASS(oc);
    AggregateMachineClass *amc = AGGREGATE_MACHINE_CLASS(oc);

    /* Inherited from pc-q35-10.0: keep its init, drop its identity. */
    amc->parent_init = mc->init;
    mc->init = aggregate_machine_init;
    amc->parent_reset = mc->reset;
    mc->reset = aggregate_machine_reset;
    mc->desc = "Aggregate VM fragment (Q35; guest RAM shared by the DSM)";
    mc->alias = NULL;
    mc->is_default = false;
    /* -smp N gives N sockets, so that fragments can own whole sockets. */
    mc->smp_props.prefer_sockets = true;

    object_class_property_add_str(oc, "fragment", aggregate_get_fragment,
                                  aggregate_set_fragment);
    object_class_property_set_description(oc, "fragment",
        "id of the aggregate-fragment object this process runs");
    object_class_property_add(oc, "connect-timeout", "uint32",
                              aggregate_get_timeout, aggregate_set_timeout,
                              NULL, NULL);
    object_class_property_set_description(oc, "connect-timeout",
        "seconds to wait for every peer fragment at start-up (default 60)");
    object_class_property_add(oc, "hold-time", "uint32",
                              aggregate_get_hold, aggregate_set_hold,
                              NULL, NULL);
    object_class_property_set_description(oc, "hold-time",
        "microseconds a page just fetched stays before another fragment "
        "may take it away (default 50)");
    object_class_property_add(oc, "service-priority", "uint32",
                              aggregate_get_priority, aggregate_set_priority,
                              NULL, NULL);
    object_class_property_set_description(oc, "service-priority",
        "real-time (SCHED_FIFO) priority of the threads that serve other "
        "fragments, so that they preempt vCPUs at once; 0 (default): "
        "normal scheduling");
    object_class_property_add_bool(oc, "pin-net-queues",
                                   aggregate_get_pin_net,
                                   aggregate_set_pin_net);
    object_class_property_set_description(oc, "pin-net-queues",
        "process queue pair i of a multi-queue virtio-net on the fragment "
        "that runs vCPU i (default on); off: every queue on the origin");
}

static const TypeInfo aggregate_machine_info = {
    .name = TYPE_AGGREGATE_MACHINE,
    .parent = AGGREGATE_PARENT_MACHINE,
    .instance_size = sizeof(AggregateMachineState),
    .instance_init = aggregate_machine_instance_init,
    .class_size = sizeof(AggregateMachineClass),
    .class_init = aggregate_machine_class_init,
};

static void aggregate_machine_register_types(void)
{
    type_register_static(&aggregate_machine_info);
}

type_init(aggregate_machine_register_types);
