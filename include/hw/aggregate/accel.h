/*
 * aggvm: the aggregate accelerator's interface to the machine
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_AGGREGATE_ACCEL_H
#define HW_AGGREGATE_ACCEL_H

#define TYPE_AGGREGATE_ACCEL "aggregate-accel"

/* Whether -accel aggregate is the accelerator of this process. */
bool aggregate_accel_enabled(void);

/*
 * aggregate_accel_set_local_cpus: the vCPU indexes this fragment runs
 * (a bitmap of @nr bits, copied).  Every other vCPU is realized but
 * parked.  The machine calls it before it creates the vCPUs.
 */
void aggregate_accel_set_local_cpus(const unsigned long *cpus,
                                    unsigned int nr);

/*
 * aggregate_accel_set_cpu_local: from now on this fragment runs @cpu
 * (@local) or another fragment does.  Call with the BQL held, on
 * @cpu's own thread (see hw/aggregate/vcpu.c).
 */
void aggregate_accel_set_cpu_local(CPUState *cpu, bool local);

/*
 * aggregate_accel_park: keep @cpu, which another fragment runs, from
 * running here: halted, with no interrupt pending, its thread sleeps.
 * Call with the BQL held after every reset of @cpu and when @cpu moves
 * away, with @cpu not running.
 */
void aggregate_accel_park(CPUState *cpu);

/*
 * AggregateRemoteInterruptFn: deliver the CPU_INTERRUPT_* bits of @mask
 * that make sense there to the fragment that runs @cpu, and return the
 * bits it took; the others are dropped: the parked vCPU must stay
 * without work.  Called from cpu_interrupt(), with the BQL held.
 */
typedef int (AggregateRemoteInterruptFn)(CPUState *cpu, int mask);

/*
 * aggregate_accel_set_remote_interrupt: the machine's forwarder for
 * interrupts without a vector (INIT, SIPI, NMI, SMI) raised on a vCPU
 * another fragment runs.  Vectors go through the APIC hook instead.
 */
void aggregate_accel_set_remote_interrupt(AggregateRemoteInterruptFn *fn);

/*
 * aggregate_accel_set_clock_deltas: on this fragment the guest's TSC is
 * the local tick count plus @ticks, and QEMU_CLOCK_VIRTUAL the local
 * virtual clock plus @virtual_ns, so that both read the same as the
 * origin's (see hw/aggregate/clock.c).  0 until set.
 */
void aggregate_accel_set_clock_deltas(int64_t ticks, int64_t virtual_ns);

#endif /* HW_AGGREGATE_ACCEL_H */
