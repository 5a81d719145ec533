/*
 * aggvm: forwarding interrupts to the fragment that runs their vCPU
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Every fragment has every vCPU's APIC, so the APIC bus computes the
 * same destinations everywhere.  When a vector is made pending in the
 * APIC of a vCPU another fragment runs, the APIC hook (patch 0009)
 * sends IRQ to that fragment instead, whose worker for the sender
 * makes it pending there (in order with the sender's other messages,
 * under the BQL).
 *
 * Interrupts without a vector (INIT, SIPI, NMI, SMI) raised on a vCPU
 * of another fragment go there as CPU_EVENT (through the accelerator's
 * handle_interrupt), in order with IRQ, so an AP on any fragment is
 * started by the usual INIT-SIPI-SIPI.  The APIC bus needs every
 * fragment's copy of an APIC to match the same destinations: the
 * fragment that runs a vCPU sends APIC_STATE (ID, LDR, DFR, x2APIC
 * mode) whenever the guest changes them.  The EOI of a level-triggered
 * interrupt on a non-origin fragment goes to the origin's IOAPIC.
 *
 * Where a vCPU runs comes from the placement table (vcpu.c); a vCPU can
 * move, so IRQ and CPU_EVENT for a vCPU that has left are passed on.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/main-loop.h"
#include "hw/core/cpu.h"
#include "hw/i386/apic.h"
#include "hw/i386/apic_internal.h"
#include "hw/intc/ioapic.h"
#include "target/i386/cpu.h"
#include "system/qtest.h"
#include "hw/aggregate/accel.h"
#include "hw/aggregate/vcpu.h"
#include "hw/aggregate/irqfwd.h"
#include "hw/aggregate/clock.h"
#include "hw/aggregate/wire.h"
#include "trace.h"

struct AggregateIrqFwd {
    /* Set at start, then read-only. */
    DSM *dsm;
    uint32_t self;
    uint32_t origin;
};

/* ---- receiving: on the worker for the sender, under the BQL */

/* Make a forwarded vector pending in the APIC of a vCPU we run. */
static void irqfwd_deliver_irq(const DSMIrq *irq)
{
    X86CPU *cpu = X86_CPU(qemu_get_cpu(irq->cpu));

    apic_deliver_vector(cpu->apic_state, irq->vector, irq->level);
}

/*
 * An IRQ or CPU_EVENT for a vCPU that has moved away (see vcpu.c): send
 * it on to where it runs now.  Decided under the BQL, like a move.
 */
static bool irqfwd_pass_on(AggregateIrqFwd *fwd, uint32_t cpu,
                           uint16_t type, const void *msg)
{
    uint32_t owner = aggregate_vcpu_owner(cpu);

    if (owner == fwd->self) {
        return false;
    }
    trace_aggregate_irq_pass_on(aggregate_msg_name(&aggregate_irq_codec,
                                                   type), cpu, owner);
    dsm_send(fwd->dsm, owner, type, msg);
    return true;
}

/* INIT, SIPI, NMI, SMI for a vCPU we run, as its APIC would raise them. */
static void irqfwd_deliver_cpu_event(const DSMCpuEvent *ev)
{
    CPUState *cs = qemu_get_cpu(ev->cpu);
    int mask = 0;

    if (ev->events & DSM_CPU_EVENT_INIT) {
        mask |= CPU_INTERRUPT_INIT;
    }
    if (ev->events & DSM_CPU_EVENT_SIPI) {
        /* apic_startup() stores the vector the same way. */
        APIC_COMMON(X86_CPU(cs)->apic_state)->sipi_vector = ev->sipi_vector;
        mask |= CPU_INTERRUPT_SIPI;
    }
    if (ev->events & DSM_CPU_EVENT_NMI) {
        mask |= CPU_INTERRUPT_NMI;
    }
    if (ev->events & DSM_CPU_EVENT_SMI) {
        mask |= CPU_INTERRUPT_SMI;
    }
    trace_aggregate_cpu_event_deliver(ev->cpu, ev->events, ev->sipi_vector);
    cpu_interrupt(cs, mask);
}

static bool irqfwd_deliver_irq_msg(void *opaque, uint32_t from,
                                   uint16_t type, const void *msg,
                                   Error **errp)
{
    const DSMIrq *irq = msg;

    if (!irqfwd_pass_on(opaque, irq->cpu, type, irq)) {
        irqfwd_deliver_irq(irq);
    }
    return true;
}

/* On the worker without the BQL: INIT may need the clocks first. */
static bool irqfwd_deliver_cpu_event_msg(void *opaque, uint32_t from,
                                         uint16_t type, const void *msg,
                                         Error **errp)
{
    const DSMCpuEvent *ev = msg;

    if (ev->events & DSM_CPU_EVENT_INIT) {
        /* Before our vCPU can first read the TSC; not under the BQL. */
        aggregate_clock_sync();
    }
    BQL_LOCK_GUARD();
    if (!irqfwd_pass_on(opaque, ev->cpu, type, ev)) {
        irqfwd_deliver_cpu_event(ev);
    }
    return true;
}

static bool irqfwd_deliver_eoi(void *opaque, uint32_t from, uint16_t type,
                               const void *msg, Error **errp)
{
    const DSMIrq *eoi = msg;

    trace_aggregate_eoi_deliver(eoi->cpu, eoi->vector);
    ioapic_eoi_broadcast(eoi->vector);
    return true;
}

/* ---- checks on the link receive thread; never block */

/* Is @cpu a vCPU that fragment @frag runs? */
static bool irqfwd_cpu_runs_on(uint32_t cpu, uint32_t frag)
{
    return cpu < aggregate_vcpu_count() && aggregate_vcpu_owner(cpu) == frag;
}

static bool irqfwd_check_cpu(uint16_t type, uint32_t cpu, Error **errp)
{
    if (cpu >= aggregate_vcpu_count()) {
        error_setg(errp, "%s for vCPU %u, expected below %u",
                   aggregate_msg_name(&aggregate_irq_codec, type), cpu,
                   aggregate_vcpu_count());
        return false;
    }
    return true;
}

/*
 * IRQ and CPU_EVENT: the sender believed we run the vCPU; if it has
 * moved, the worker sends them on (see irqfwd_pass_on()).
 */
static bool irqfwd_check_irq(void *opaque, uint32_t from, uint16_t type,
                             const void *msg, Error **errp)
{
    uint32_t cpu = type == DSM_MSG_IRQ ? ((const DSMIrq *)msg)->cpu
                                       : ((const DSMCpuEvent *)msg)->cpu;

    return irqfwd_check_cpu(type, cpu, errp);
}

/*
 * The APIC of a vCPU the sender runs now matches other destinations:
 * update our copy at once, on the receive thread, so that an IPI one
 * of our vCPUs sends after it saw later memory writes of that vCPU
 * (which come over the same link) already finds the new destination.
 * Only these copies' fields change, and only here.
 */
static bool irqfwd_recv_apic_state(void *opaque, uint32_t from,
                                   uint16_t type, const void *msg,
                                   Error **errp)
{
    AggregateIrqFwd *fwd = opaque;
    const DSMApicState *st = msg;
    APICCommonState *s;
    uint64_t base;

    if (!irqfwd_check_cpu(type, st->cpu, errp)) {
        return false;
    }
    if (irqfwd_cpu_runs_on(st->cpu, fwd->self)) {
        /* Sent before it moved here: the moved state has it already. */
        return true;
    }
    s = APIC_COMMON(X86_CPU(qemu_get_cpu(st->cpu))->apic_state);
    base = qatomic_read(&s->apicbase) & ~MSR_IA32_APICBASE_EXTD;
    qatomic_set(&s->id, st->id);
    qatomic_set(&s->log_dest, st->log_dest);
    qatomic_set(&s->dest_mode, st->dest_mode);
    qatomic_set(&s->apicbase,
                base | (st->x2apic ? MSR_IA32_APICBASE_EXTD : 0));
    trace_aggregate_apic_state_apply(st->cpu, st->id, st->log_dest,
                                     st->dest_mode, st->x2apic);
    return true;
}

static bool irqfwd_check_eoi(void *opaque, uint32_t from, uint16_t type,
                             const void *msg, Error **errp)
{
    AggregateIrqFwd *fwd = opaque;

    if (fwd->self != fwd->origin) {
        error_setg(errp, "EOI sent to fragment %u, which is not the origin",
                   fwd->self);
        return false;
    }
    return irqfwd_check_cpu(type, ((const DSMIrq *)msg)->cpu, errp);
}

/*
 * IRQ, CPU_EVENT and EOI go to the sender's in-order worker: after the
 * sender's earlier messages (an EOI after the IO_REQs before it, an
 * IRQ after the IO_RESP it follows).  APIC_STATE is applied at once.
 */
static const DSMMsgHandler irqfwd_handlers[] = {
    { DSM_MSG_IRQ, DSM_DELIVER_WORKER_BQL, irqfwd_check_irq,
      irqfwd_deliver_irq_msg },
    { DSM_MSG_CPU_EVENT, DSM_DELIVER_WORKER, irqfwd_check_irq,
      irqfwd_deliver_cpu_event_msg },
    { DSM_MSG_APIC_STATE, DSM_DELIVER_RECV, NULL, irqfwd_recv_apic_state },
    { DSM_MSG_EOI, DSM_DELIVER_WORKER_BQL, irqfwd_check_eoi,
      irqfwd_deliver_eoi },
};

static const DSMFamilyOps irqfwd_family = {
    .family = DSM_FAMILY_IRQ,
    .name = "interrupt",
    .codec = &aggregate_irq_codec,
    .handlers = irqfwd_handlers,
    .nr_handlers = ARRAY_SIZE(irqfwd_handlers),
};

/* ---- sending: the hooks, with the BQL held */

static AggregateIrqFwd *irqfwd_instance;

/* The APIC bus is about to make a vector pending: is its CPU ours? */
static bool irqfwd_remote_irq(DeviceState *dev, int vector, int trigger_mode)
{
    AggregateIrqFwd *fwd = irqfwd_instance;
    CPUState *cs = CPU(APIC_COMMON(dev)->cpu);
    uint32_t owner;
    DSMIrq irq = {
        .cpu = cs->cpu_index, .vector = vector, .level = trigger_mode,
    };

    owner = aggregate_vcpu_owner(cs->cpu_index);
    if (owner == fwd->self) {
        return false;
    }
    /*
     * Off the origin, only a local vCPU (an IPI, or an MSI it wrote) or
     * qtest may send vectors: the device models here are shadows of the
     * origin's, and what their timers raise must reach no guest CPU.
     */
    if (fwd->self != fwd->origin && !current_cpu && !qtest_enabled()) {
        return true;
    }
    dsm_send(fwd->dsm, owner, DSM_MSG_IRQ, &irq);
    return true;
}

/*
 * cpu_interrupt() on a vCPU another fragment runs: send what only that
 * fragment can act on.  The SIPI vector is in the APIC here, where the
 * IPI was sent (apic_startup()).
 */
static int irqfwd_remote_interrupt(CPUState *cs, int mask)
{
    AggregateIrqFwd *fwd = irqfwd_instance;
    DSMCpuEvent event = { .cpu = cs->cpu_index };
    DSMCpuEvent *ev = &event;
    int taken = mask & (CPU_INTERRUPT_INIT | CPU_INTERRUPT_SIPI |
                        CPU_INTERRUPT_NMI | CPU_INTERRUPT_SMI);

    if (!taken) {
        return 0;
    }
    ev->events = (mask & CPU_INTERRUPT_INIT ? DSM_CPU_EVENT_INIT : 0) |
                 (mask & CPU_INTERRUPT_SIPI ? DSM_CPU_EVENT_SIPI : 0) |
                 (mask & CPU_INTERRUPT_NMI ? DSM_CPU_EVENT_NMI : 0) |
                 (mask & CPU_INTERRUPT_SMI ? DSM_CPU_EVENT_SMI : 0);
    if (mask & CPU_INTERRUPT_SIPI) {
        ev->sipi_vector =
            APIC_COMMON(X86_CPU(cs)->apic_state)->sipi_vector;
    }
    trace_aggregate_cpu_event_send(ev->cpu, ev->events, ev->sipi_vector,
                                   aggregate_vcpu_owner(cs->cpu_index));
    dsm_send(fwd->dsm, aggregate_vcpu_owner(cs->cpu_index),
             DSM_MSG_CPU_EVENT, ev);
    return taken;
}

/*
 * One of our vCPUs ended a level-triggered interrupt: the IOAPIC whose
 * remote IRR waits for it is the origin's.
 */
static bool irqfwd_remote_eoi(int vector)
{
    AggregateIrqFwd *fwd = irqfwd_instance;
    DSMIrq eoi = {
        .cpu = current_cpu ? current_cpu->cpu_index : 0,
        .vector = vector,
    };

    if (fwd->self == fwd->origin) {
        return false;
    }
    trace_aggregate_eoi_send(eoi.cpu, vector);
    dsm_send(fwd->dsm, fwd->origin, DSM_MSG_EOI, &eoi);
    return true;
}

/* One of our vCPUs changed what its APIC matches: tell the others. */
static void irqfwd_apic_dest_changed(DeviceState *dev)
{
    AggregateIrqFwd *fwd = irqfwd_instance;
    APICCommonState *s = APIC_COMMON(dev);
    CPUState *cs = CPU(s->cpu);
    DSMApicState st = {
        .cpu = cs->cpu_index,
        .id = s->id,
        .log_dest = s->log_dest,
        .dest_mode = s->dest_mode,
        .x2apic = !!(s->apicbase & MSR_IA32_APICBASE_EXTD),
    };

    if (aggregate_vcpu_owner(cs->cpu_index) != fwd->self) {
        return;     /* a reset: every fragment resets every APIC */
    }
    dsm_send_peers(fwd->dsm, DSM_MSG_APIC_STATE, &st);
}

void aggregate_irqfwd_start(DSM *dsm, uint32_t self, uint32_t origin)
{
    AggregateIrqFwd *fwd = g_new0(AggregateIrqFwd, 1);

    fwd->dsm = dsm;
    fwd->self = self;
    fwd->origin = origin;
    dsm_register_family(dsm, &irqfwd_family, fwd);
    irqfwd_instance = fwd;
    apic_remote_irq_hook = irqfwd_remote_irq;
    apic_dest_changed_hook = irqfwd_apic_dest_changed;
    apic_remote_eoi_hook = irqfwd_remote_eoi;
    aggregate_accel_set_remote_interrupt(irqfwd_remote_interrupt);
}
