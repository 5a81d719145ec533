/*
 * aggvm: where each vCPU runs, and moving a running vCPU between fragments
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Every fragment keeps a placement table: the fragment that runs each
 * vCPU, as far as it knows.  Interrupt forwarding, the accelerator and
 * the APIC hooks go by it.  Every fragment has every vCPU with a TCG
 * thread; the ones it does not run are parked (halted, nothing pending;
 * see aggregate_accel_park()).
 *
 * Moving vCPU c from fragment A to fragment B (QMP aggregate-vcpu-migrate
 * on any fragment; one that does not run c sends VCPU_MIGRATE to the one
 * it believes does, which passes it on if c has moved meanwhile):
 *
 *  1. A, on c's own thread (run_on_cpu(): c is between two TBs), under
 *     the BQL: saves c's CPU and local APIC state (the same
 *     VMStateDescriptions live migration uses), records B as c's owner,
 *     parks c and stops its APIC timer, then sends VCPU_STATE to B and
 *     VCPU_OWNER to every other fragment.
 *  2. B's in-order worker for A, after everything A sent before (so an
 *     IRQ A forwarded earlier is pending in the state, and one A
 *     forwards later comes after it), loads the state on c's thread
 *     under the BQL, moves the APIC timer to its own virtual clock,
 *     flushes c's TLB, records itself as owner: c runs on B.
 *  3. The others record B when VCPU_OWNER arrives.
 *
 * Interrupts in flight: a fragment that gets IRQ or CPU_EVENT for a
 * vCPU it does not run (sent before the sender learnt of a move) sends
 * it on to the owner it knows.  The worker decides under the BQL, as
 * step 1 runs, so nothing is left pending on a parked copy; each hop
 * follows a hand-over that happened, so the chase ends at the owner.
 * Each move of c has an epoch, one more than the last: a VCPU_OWNER
 * older than what a fragment knows (it can be overtaken by a VCPU_STATE
 * of a later move on another link) changes nothing.
 *
 * Not moved: the vCPU's NUMA node (the guest's topology stays as it
 * booted) and its memory, which follows it page by page through the
 * DSM as it touches it.  A guest reset puts every vCPU back where the
 * command line placed it (aggregate_vcpu_reset()).
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-aggregate.h"
#include "qapi/qapi-events-aggregate.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "io/channel-buffer.h"
#include "migration/qemu-file.h"
#include "migration/vmstate.h"
#include "exec/cputlb.h"
#include "hw/core/cpu.h"
#include "hw/core/sysemu-cpu-ops.h"
#include "hw/i386/apic_internal.h"
#include "system/cpus.h"
#include "system/runstate.h"
#include "target/i386/cpu.h"
#include "hw/aggregate/accel.h"
#include "hw/aggregate/clock.h"
#include "hw/aggregate/vcpu.h"
#include "hw/aggregate/wire.h"
#include "trace.h"

/* First word of a saved vCPU: the layout of what follows. */
#define VCPU_STATE_FORMAT   0x41475631      /* "AGV1" */

static struct {
    /* Set at start, then read-only. */
    DSM *dsm;
    uint32_t self;
    uint32_t nr_cpus;

    const uint32_t *initial;        /* the command line's placement */

    /* Written under the BQL; read anywhere with qatomic_read(). */
    uint32_t *owner;

    /* Under the BQL. */
    uint32_t *epoch;            /* moves of each vCPU known here */
    bool *moving;               /* asked another fragment to move it */
} vcpus;

bool aggregate_vcpu_started(void)
{
    return vcpus.dsm != NULL;
}

uint32_t aggregate_vcpu_count(void)
{
    return vcpus.nr_cpus;
}

uint32_t aggregate_vcpu_owner(uint32_t cpu)
{
    assert(cpu < vcpus.nr_cpus);
    return qatomic_read(&vcpus.owner[cpu]);
}

/* @cpu runs on @owner from now on.  BQL held. */
static void vcpu_place(uint32_t cpu, uint32_t owner)
{
    uint32_t old = vcpus.owner[cpu];

    if (old == owner) {
        return;
    }
    if (owner == vcpus.self || old == vcpus.self) {
        aggregate_accel_set_cpu_local(qemu_get_cpu(cpu),
                                      owner == vcpus.self);
    }
    qatomic_set(&vcpus.owner[cpu], owner);
    trace_aggregate_vcpu_owner(cpu, old, owner, vcpus.epoch[cpu]);
    qapi_event_send_aggregate_vcpu_migrated(cpu,
                                            dsm_fragment_id(vcpus.dsm, old),
                                            dsm_fragment_id(vcpus.dsm,
                                                            owner));
}

/* Record that @cpu runs on @owner since move @epoch.  BQL held. */
static void vcpu_set_owner(uint32_t cpu, uint32_t owner, uint32_t epoch)
{
    vcpus.moving[cpu] = false;
    if (epoch <= vcpus.epoch[cpu]) {
        trace_aggregate_vcpu_owner_stale(cpu, owner, epoch,
                                         vcpus.epoch[cpu]);
        return;
    }
    vcpus.epoch[cpu] = epoch;
    vcpu_place(cpu, owner);
}

/*
 * Every fragment resets with the guest (lifecycle.c), and a reset
 * vCPU's state is the same everywhere: each one goes back where the
 * command line placed it, so the firmware and the boot CPU start on
 * the origin, whose 8259 PIC only the origin's APICs can take
 * interrupts from.  The epochs stay: a VCPU_OWNER of a move before
 * the reset that arrives late changes nothing.
 */
void aggregate_vcpu_reset(void)
{
    CPUState *cs;

    if (!vcpus.dsm || !aggregate_accel_enabled()) {
        return;
    }
    CPU_FOREACH(cs) {
        vcpus.moving[cs->cpu_index] = false;
        vcpu_place(cs->cpu_index, vcpus.initial[cs->cpu_index]);
        if (aggregate_vcpu_owner(cs->cpu_index) != vcpus.self) {
            aggregate_accel_park(cs);
        }
    }
}

/* ---- the fragment that gives a vCPU away */

/* What moves with a vCPU, besides the two VMStateDescriptions. */
static void vcpu_save(CPUState *cs, QEMUFile *f)
{
    X86CPU *cpu = X86_CPU(cs);

    qemu_put_be32(f, VCPU_STATE_FORMAT);
    qemu_put_be32(f, cs->halted);
    qemu_put_be32(f, cs->interrupt_request);
    qemu_put_sbe32(f, cs->exception_index);
    vmstate_save_state(f, cs->cc->sysemu_ops->legacy_vmsd, cpu, NULL);
    vmstate_save_state(f, &vmstate_apic_common, cpu->apic_state, NULL);
    qemu_put_be32(f, VCPU_STATE_FORMAT);
}

static void vcpu_send_owner(uint32_t cpu, uint32_t owner, uint32_t epoch,
                            uint32_t except)
{
    DSMVcpu msg = { .cpu = cpu, .fragment = owner, .epoch = epoch };
    uint32_t i;

    for (i = 0; i < dsm_nr_fragments(vcpus.dsm); i++) {
        if (i != vcpus.self && i != except) {
            dsm_send(vcpus.dsm, i, DSM_MSG_VCPU_OWNER, &msg);
        }
    }
}

static void vcpu_ask_owner(uint32_t cpu, uint32_t target)
{
    DSMVcpu msg = { .cpu = cpu, .fragment = target };

    trace_aggregate_vcpu_migrate_ask(cpu, aggregate_vcpu_owner(cpu), target);
    dsm_send(vcpus.dsm, aggregate_vcpu_owner(cpu), DSM_MSG_VCPU_MIGRATE,
             &msg);
}

/* Step 1, on the vCPU's own thread with the BQL held. */
static void vcpu_send_away(CPUState *cs, run_on_cpu_data data)
{
    uint32_t target = data.host_int, cpu = cs->cpu_index;
    APICCommonState *apic = APIC_COMMON(X86_CPU(cs)->apic_state);
    QIOChannelBuffer *bioc;
    QEMUFile *f;
    DSMVcpu msg = { .cpu = cpu, .fragment = vcpus.self };

    if (aggregate_vcpu_owner(cpu) != vcpus.self) {
        vcpu_ask_owner(cpu, target);        /* it moved meanwhile */
        return;
    }
    bioc = qio_channel_buffer_new(8192);
    f = qemu_file_new_output(QIO_CHANNEL(bioc));
    vcpu_save(cs, f);
    qemu_fflush(f);
    if (qemu_file_get_error(f) || bioc->usage > DSM_VCPU_STATE_MAX) {
        error_report("aggregate: vCPU %u stays on fragment %s: its state "
                     "(%zu bytes) could not be saved within %u bytes", cpu,
                     dsm_fragment_id(vcpus.dsm, vcpus.self), bioc->usage,
                     DSM_VCPU_STATE_MAX);
        vcpus.moving[cpu] = false;
        goto out;
    }
    msg.epoch = vcpus.epoch[cpu] + 1;
    msg.clock_ns = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    msg.len = bioc->usage;
    msg.state = bioc->data;
    vcpu_set_owner(cpu, target, msg.epoch);
    timer_del(apic->timer);
    aggregate_accel_park(cs);
    trace_aggregate_vcpu_send(cpu, target, msg.epoch, msg.len);
    dsm_send(vcpus.dsm, target, DSM_MSG_VCPU_STATE, &msg);
    vcpu_send_owner(cpu, target, msg.epoch, target);
out:
    qemu_fclose(f);
    object_unref(OBJECT(bioc));
}

/* A request to move @cpu to @target; BQL held, on any thread. */
static void vcpu_migrate(uint32_t cpu, uint32_t target)
{
    uint32_t owner = aggregate_vcpu_owner(cpu);

    if (owner != vcpus.self) {
        vcpu_ask_owner(cpu, target);
    } else if (target == vcpus.self) {
        /* Already here: let whoever asked stop waiting. */
        vcpu_send_owner(cpu, owner, vcpus.epoch[cpu], vcpus.self);
    } else {
        run_on_cpu(qemu_get_cpu(cpu), vcpu_send_away,
                   RUN_ON_CPU_HOST_INT(target));
    }
}

/* ---- the fragment that takes a vCPU over */

static bool vcpu_check_word(QEMUFile *f, const char *where, Error **errp)
{
    uint32_t word = qemu_get_be32(f);

    if (word != VCPU_STATE_FORMAT) {
        error_setg(errp, "%s is 0x%08x, expected 0x%08x", where, word,
                   VCPU_STATE_FORMAT);
        return false;
    }
    return true;
}

static bool vcpu_load(CPUState *cs, QEMUFile *f, uint32_t *irq,
                      Error **errp)
{
    X86CPU *cpu = X86_CPU(cs);
    const VMStateDescription *cpu_vmsd = cs->cc->sysemu_ops->legacy_vmsd;
    int ret;

    if (!vcpu_check_word(f, "the format", errp)) {
        return false;
    }
    cs->halted = qemu_get_be32(f);
    *irq = qemu_get_be32(f);
    cs->exception_index = qemu_get_sbe32(f);
    ret = vmstate_load_state(f, cpu_vmsd, cpu, cpu_vmsd->version_id);
    if (!ret) {
        ret = vmstate_load_state(f, &vmstate_apic_common, cpu->apic_state,
                                 vmstate_apic_common.version_id);
    }
    if (ret || qemu_file_get_error(f)) {
        error_setg(errp, "the CPU or APIC state does not load (%d)",
                   ret ? ret : qemu_file_get_error(f));
        return false;
    }
    return vcpu_check_word(f, "the end marker", errp);
}

/* Step 2, on the vCPU's own thread with the BQL held. */
static void vcpu_take_over(CPUState *cs, run_on_cpu_data data)
{
    const DSMVcpu *v = data.host_ptr;
    QIOChannelBuffer *bioc = qio_channel_buffer_new(v->len);
    QEMUFile *f;
    Error *err = NULL;
    uint32_t irq = 0;

    memcpy(bioc->data, v->state, v->len);
    bioc->usage = v->len;
    f = qemu_file_new_input(QIO_CHANNEL(bioc));
    if (!vcpu_load(cs, f, &irq, &err)) {
        /* Its only copy is lost: the guest cannot go on. */
        error_report("aggregate: vCPU %u from fragment %s: %s; stopping "
                     "the VM", v->cpu, dsm_fragment_id(vcpus.dsm,
                                                       v->fragment),
                     error_get_pretty(err));
        error_free(err);
        qemu_system_vmstop_request_prepare();
        qemu_system_vmstop_request(RUN_STATE_INTERNAL_ERROR);
    } else {
        /*
         * The APIC timer's deadline stands: the fragments agree on
         * QEMU_CLOCK_VIRTUAL (clock.c), and the APIC's post_load armed
         * it.
         */
        tlb_flush(cs);
        vcpu_set_owner(v->cpu, vcpus.self, v->epoch);
        if (irq) {
            cpu_interrupt(cs, irq);
        }
        trace_aggregate_vcpu_take_over(v->cpu, v->fragment, v->epoch,
                                       v->len, qemu_clock_get_ns(
                                           QEMU_CLOCK_VIRTUAL) - v->clock_ns);
    }
    qemu_fclose(f);
    object_unref(OBJECT(bioc));
}

/* On the receive thread: is the message about a vCPU, from its owner? */
static bool vcpu_check_msg(void *opaque, uint32_t from, uint16_t type,
                           const void *msg, Error **errp)
{
    const DSMVcpu *v = msg;

    if (v->cpu >= vcpus.nr_cpus) {
        error_setg(errp, "%s for vCPU %u, expected below %u",
                   aggregate_msg_name(&aggregate_vcpu_codec, type), v->cpu,
                   vcpus.nr_cpus);
        return false;
    }
    if (type != DSM_MSG_VCPU_STATE) {
        return true;
    }
    if (v->fragment != from) {
        error_setg(errp, "VCPU_STATE from fragment %u says it comes from "
                   "fragment %u", from, v->fragment);
        return false;
    }
    if (!aggregate_accel_enabled()) {
        error_setg(errp, "VCPU_STATE for vCPU %u, but this fragment runs "
                   "no vCPUs (-accel aggregate)", v->cpu);
        return false;
    }
    if (aggregate_vcpu_owner(v->cpu) == vcpus.self) {
        error_setg(errp, "VCPU_STATE for vCPU %u, which this fragment "
                   "already runs", v->cpu);
        return false;
    }
    return true;
}

/* On the sender's in-order worker, BQL held: after its IRQs before. */
static bool vcpu_deliver_migrate(void *opaque, uint32_t from, uint16_t type,
                                 const void *msg, Error **errp)
{
    const DSMVcpu *v = msg;

    vcpu_migrate(v->cpu, v->fragment);
    return true;
}

static bool vcpu_deliver_owner(void *opaque, uint32_t from, uint16_t type,
                               const void *msg, Error **errp)
{
    const DSMVcpu *v = msg;

    vcpu_set_owner(v->cpu, v->fragment, v->epoch);
    return true;
}

/* On the worker without the BQL: the clocks first, then the state. */
static bool vcpu_deliver_state(void *opaque, uint32_t from, uint16_t type,
                               const void *msg, Error **errp)
{
    const DSMVcpu *v = msg;

    /* Before our vCPU can first read the TSC; not under the BQL. */
    aggregate_clock_sync();
    BQL_LOCK_GUARD();
    /* Synchronous: @msg and the state it points to outlive the call. */
    run_on_cpu(qemu_get_cpu(v->cpu), vcpu_take_over,
               RUN_ON_CPU_HOST_PTR((void *)v));
    return true;
}

static const DSMMsgHandler vcpu_handlers[] = {
    { DSM_MSG_VCPU_MIGRATE, DSM_DELIVER_WORKER_BQL, vcpu_check_msg,
      vcpu_deliver_migrate },
    { DSM_MSG_VCPU_STATE, DSM_DELIVER_WORKER, vcpu_check_msg,
      vcpu_deliver_state },
    { DSM_MSG_VCPU_OWNER, DSM_DELIVER_WORKER_BQL, vcpu_check_msg,
      vcpu_deliver_owner },
};

static const DSMFamilyOps vcpu_family = {
    .family = DSM_FAMILY_VCPU,
    .name = "vCPU",
    .codec = &aggregate_vcpu_codec,
    .handlers = vcpu_handlers,
    .nr_handlers = ARRAY_SIZE(vcpu_handlers),
};

void aggregate_vcpu_start(DSM *dsm, uint32_t self, const uint32_t *owner,
                          uint32_t nr_cpus)
{
    vcpus.dsm = dsm;
    vcpus.self = self;
    vcpus.nr_cpus = nr_cpus;
    vcpus.initial = g_memdup2(owner, nr_cpus * sizeof(*owner));
    vcpus.owner = g_memdup2(owner, nr_cpus * sizeof(*owner));
    vcpus.epoch = g_new0(uint32_t, nr_cpus);
    vcpus.moving = g_new0(bool, nr_cpus);
    dsm_register_family(dsm, &vcpu_family, NULL);
}

/* ---- QMP */

static bool vcpu_find_fragment(const char *id, uint32_t *index, Error **errp)
{
    uint32_t i;

    for (i = 0; i < dsm_nr_fragments(vcpus.dsm); i++) {
        if (!strcmp(dsm_fragment_id(vcpus.dsm, i), id)) {
            *index = i;
            return true;
        }
    }
    error_setg(errp, "fragment '%s' is not part of this aggregate VM", id);
    return false;
}

static bool vcpu_check_migrate(int64_t cpu, const char *fragment,
                               uint32_t *target, Error **errp)
{
    if (!vcpus.dsm || !aggregate_accel_enabled()) {
        error_setg(errp, "vCPUs move only in an aggregate VM with "
                   "-accel aggregate");
        return false;
    }
    if (cpu < 0 || cpu >= vcpus.nr_cpus) {
        error_setg(errp, "vCPU %" PRId64 " does not exist; this VM has "
                   "vCPUs 0 to %u", cpu, vcpus.nr_cpus - 1);
        return false;
    }
    if (!vcpu_find_fragment(fragment, target, errp)) {
        return false;
    }
    if (!runstate_is_running()) {
        error_setg(errp, "the VM is not running (%s): vCPUs move only "
                   "while it runs", RunState_str(runstate_get()));
        return false;
    }
    if (vcpus.moving[cpu]) {
        error_setg(errp, "vCPU %" PRId64 " is already moving; wait for "
                   "its AGGREGATE_VCPU_MIGRATED event", cpu);
        return false;
    }
    if (aggregate_vcpu_owner(cpu) == *target) {
        error_setg(errp, "vCPU %" PRId64 " already runs on fragment '%s'",
                   cpu, fragment);
        return false;
    }
    if (*target != vcpus.self && !dsm_peer_up(vcpus.dsm, *target)) {
        error_setg(errp, "fragment '%s' is not connected", fragment);
        return false;
    }
    return true;
}

void qmp_aggregate_vcpu_migrate(int64_t cpu_index, const char *fragment,
                                Error **errp)
{
    uint32_t target;

    if (!vcpu_check_migrate(cpu_index, fragment, &target, errp)) {
        return;
    }
    if (aggregate_vcpu_owner(cpu_index) != vcpus.self) {
        vcpus.moving[cpu_index] = true;
    }
    vcpu_migrate(cpu_index, target);
}
