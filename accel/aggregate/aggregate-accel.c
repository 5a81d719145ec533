/*
 * aggvm: the aggregate accelerator
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * -accel aggregate is multi-threaded TCG that runs only this fragment's
 * vCPUs.  Every vCPU of the aggregate VM is realized in every fragment,
 * so CPU topology and ACPI tables are the same everywhere, and every
 * vCPU has its TCG thread, so that a vCPU can move to any fragment
 * (hw/aggregate/vcpu.c).  A vCPU another fragment runs is parked: the
 * machine keeps it halted with no interrupt pending, so its thread
 * sleeps in the usual idle wait and only runs work items (run_on_cpu).
 * Interrupts raised on it here go to the fragment that runs it, or
 * nowhere; none is left pending on the parked copy.
 *
 * It is a QOM subclass of the TCG accelerator, not a wrapper: TCG's own
 * code casts current_accel() to TCGState, and QEMU finds the ops and
 * the CPU class of an accelerator by its type name, so three types are
 * registered: aggregate-accel, aggregate-accel-ops and
 * aggregate-accel-x86_64-cpu.
 *
 * Round-robin TCG is refused: its non-parallel translation emits plain
 * load-op-store sequences for atomics, and the DSM may move the page
 * between the load and the store.  icount needs round-robin.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/accel.h"
#include "qemu/bitmap.h"
#include "qemu/error-report.h"
#include "qemu/module.h"
#include "accel/accel-cpu-target.h"
#include "hw/core/cpu.h"
#include "system/accel-ops.h"
#include "system/cpus.h"
#include "system/cpu-timers.h"
#include "hw/aggregate/accel.h"

static struct {
    unsigned long *local_cpus;      /* set by the machine before realize */
    unsigned int nr_cpus;
    bool enabled;                   /* set by init_machine */
    int (*tcg_init_machine)(MachineState *ms);
    void (*tcg_ops_init)(AccelOpsClass *ops);
    void (*tcg_create_vcpu_thread)(CPUState *cpu);
    void (*tcg_handle_interrupt)(CPUState *cpu, int mask);
    AggregateRemoteInterruptFn *remote_interrupt;
    int64_t tick_delta;
    int64_t virtual_delta_ns;
} aggregate_accel;

bool aggregate_accel_enabled(void)
{
    return aggregate_accel.enabled;
}

void aggregate_accel_set_local_cpus(const unsigned long *cpus,
                                    unsigned int nr)
{
    g_free(aggregate_accel.local_cpus);
    aggregate_accel.local_cpus = bitmap_new(nr);
    bitmap_copy(aggregate_accel.local_cpus, cpus, nr);
    aggregate_accel.nr_cpus = nr;
}

void aggregate_accel_set_remote_interrupt(AggregateRemoteInterruptFn *fn)
{
    aggregate_accel.remote_interrupt = fn;
}

void aggregate_accel_set_clock_deltas(int64_t ticks, int64_t virtual_ns)
{
    qatomic_set(&aggregate_accel.tick_delta, ticks);
    qatomic_set(&aggregate_accel.virtual_delta_ns, virtual_ns);
}

/* The guest's TSC (cpu_get_tsc()): the same on every fragment. */
static int64_t aggregate_get_elapsed_ticks(void)
{
    return cpu_get_ticks() + qatomic_read(&aggregate_accel.tick_delta);
}

/* QEMU_CLOCK_VIRTUAL: the same on every fragment. */
static int64_t aggregate_get_virtual_clock(void)
{
    return cpu_get_clock() + qatomic_read(&aggregate_accel.virtual_delta_ns);
}

static bool aggregate_cpu_is_local(CPUState *cpu)
{
    return cpu->cpu_index < aggregate_accel.nr_cpus &&
           test_bit(cpu->cpu_index, aggregate_accel.local_cpus);
}

void aggregate_accel_set_cpu_local(CPUState *cpu, bool local)
{
    assert(cpu->cpu_index < aggregate_accel.nr_cpus);
    if (local) {
        set_bit_atomic(cpu->cpu_index, aggregate_accel.local_cpus);
    } else {
        clear_bit_atomic(cpu->cpu_index, aggregate_accel.local_cpus);
    }
}

void aggregate_accel_park(CPUState *cpu)
{
    assert(!aggregate_cpu_is_local(cpu));
    cpu->halted = 1;
    qatomic_set(&cpu->interrupt_request, 0);
}

static void aggregate_create_vcpu_thread(CPUState *cpu)
{
    if (!aggregate_accel.local_cpus) {
        /* The machine did not say: only -machine aggregate can. */
        error_setg(&error_fatal, "-accel aggregate needs -machine aggregate");
    }
    aggregate_accel.tcg_create_vcpu_thread(cpu);
}

/*
 * An INIT, SIPI, NMI or SMI raised here on a vCPU another fragment runs
 * (an IPI from one of our vCPUs, or the monitor's nmi command) must
 * reach that fragment; anything else (a TLB flush request, an A20
 * change) means nothing to the parked copy, which must stay without
 * work.
 */
static void aggregate_handle_interrupt(CPUState *cpu, int mask)
{
    if (!aggregate_cpu_is_local(cpu)) {
        if (aggregate_accel.remote_interrupt) {
            aggregate_accel.remote_interrupt(cpu, mask);
        }
        return;
    }
    aggregate_accel.tcg_handle_interrupt(cpu, mask);
}

static void aggregate_ops_init(AccelOpsClass *ops)
{
    aggregate_accel.tcg_ops_init(ops);
    aggregate_accel.tcg_create_vcpu_thread = ops->create_vcpu_thread;
    aggregate_accel.tcg_handle_interrupt = ops->handle_interrupt;
    ops->create_vcpu_thread = aggregate_create_vcpu_thread;
    ops->handle_interrupt = aggregate_handle_interrupt;
    ops->get_elapsed_ticks = aggregate_get_elapsed_ticks;
    ops->get_virtual_clock = aggregate_get_virtual_clock;
}

static int aggregate_init_machine(MachineState *ms)
{
    int ret = aggregate_accel.tcg_init_machine(ms);

    if (ret) {
        return ret;
    }
    if (!qemu_tcg_mttcg_enabled()) {
        error_report("-accel aggregate needs multi-threaded TCG: "
                     "thread=single is not supported");
        return -EINVAL;
    }
    if (icount_enabled()) {
        error_report("-accel aggregate does not support -icount");
        return -EINVAL;
    }
    aggregate_accel.enabled = true;
    return 0;
}

static void aggregate_accel_class_init(ObjectClass *oc, void *data)
{
    AccelClass *ac = ACCEL_CLASS(oc);

    ac->name = "aggregate";
    aggregate_accel.tcg_init_machine = ac->init_machine;
    ac->init_machine = aggregate_init_machine;
}

static void aggregate_accel_ops_class_init(ObjectClass *oc, void *data)
{
    AccelOpsClass *ops = ACCEL_OPS_CLASS(oc);

    aggregate_accel.tcg_ops_init = ops->ops_init;
    ops->ops_init = aggregate_ops_init;
}

static const TypeInfo aggregate_accel_types[] = {
    {
        .name = TYPE_AGGREGATE_ACCEL,
        .parent = ACCEL_CLASS_NAME("tcg"),
        .class_init = aggregate_accel_class_init,
    }, {
        .name = ACCEL_OPS_NAME("aggregate"),
        .parent = ACCEL_OPS_NAME("tcg"),
        .class_init = aggregate_accel_ops_class_init,
        .abstract = true,
    }, {
        .name = ACCEL_CPU_NAME("aggregate"),
        .parent = ACCEL_CPU_NAME("tcg"),
        .abstract = true,
    },
};

DEFINE_TYPES(aggregate_accel_types)
