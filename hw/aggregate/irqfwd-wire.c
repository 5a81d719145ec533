/*
 * aggvm: wire codec of the interrupt family (IRQ, CPU_EVENT, APIC_STATE, EOI)
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Pure: no device state, so the unit tests build it alone (see
 * hw/aggregate/wire.h).
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "hw/aggregate/wire.h"

typedef struct QEMU_PACKED DSMWireIrq {
    uint32_t cpu;
    uint8_t vector;
    uint8_t level;
    uint8_t reserved[2];
} DSMWireIrq;

typedef struct QEMU_PACKED DSMWireCpuEvent {
    uint32_t cpu;
    uint8_t events;
    uint8_t sipi_vector;
    uint8_t reserved[2];
} DSMWireCpuEvent;

typedef struct QEMU_PACKED DSMWireApicState {
    uint32_t cpu;
    uint32_t id;
    uint32_t log_dest;
    uint8_t dest_mode;
    uint8_t x2apic;
    uint8_t reserved[2];
} DSMWireApicState;

QEMU_BUILD_BUG_ON(sizeof(DSMWireIrq) != 8);
QEMU_BUILD_BUG_ON(sizeof(DSMWireCpuEvent) != 8);
QEMU_BUILD_BUG_ON(sizeof(DSMWireApicState) != 16);

static void wire_encode_irq(const void *p, GByteArray *out)
{
    const DSMIrq *irq = p;
    DSMWireIrq w = {
        .cpu = cpu_to_be32(irq->cpu),
        .vector = irq->vector,
        .level = irq->level,
    };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

/* The vCPU index is checked by the receiver, which knows the CPUs. */
static bool wire_decode_irq(const DSMMsgDesc *desc,
                            const uint8_t *buf, size_t len,
                            const DSMLimits *lim, void *p,
                            Error **errp)
{
    DSMIrq *irq = p;
    DSMWireIrq w;

    memcpy(&w, buf, sizeof(w));
    *irq = (DSMIrq) {
        .cpu = be32_to_cpu(w.cpu),
        .vector = w.vector,
        .level = w.level,
    };
    if (w.level > 1) {
        error_setg(errp, "IRQ trigger %u invalid, expected 0 (edge) "
                   "or 1 (level)", w.level);
        return false;
    }
    return dsm_check_reserved("IRQ", w.reserved, sizeof(w.reserved), errp);
}

static void wire_encode_cpu_event(const void *p, GByteArray *out)
{
    const DSMCpuEvent *ev = p;
    DSMWireCpuEvent w = {
        .cpu = cpu_to_be32(ev->cpu),
        .events = ev->events,
        .sipi_vector = ev->sipi_vector,
    };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

/* The vCPU index is checked by the receiver, which knows the CPUs. */
static bool wire_decode_cpu_event(const DSMMsgDesc *desc,
                                  const uint8_t *buf, size_t len,
                                  const DSMLimits *lim, void *p,
                                  Error **errp)
{
    DSMCpuEvent *ev = p;
    DSMWireCpuEvent w;

    memcpy(&w, buf, sizeof(w));
    *ev = (DSMCpuEvent) {
        .cpu = be32_to_cpu(w.cpu),
        .events = w.events,
        .sipi_vector = w.sipi_vector,
    };
    if (!w.events || (w.events & ~DSM_CPU_EVENT_KNOWN)) {
        error_setg(errp, "CPU_EVENT events 0x%x invalid", w.events);
        return false;
    }
    return dsm_check_reserved("CPU_EVENT", w.reserved, sizeof(w.reserved),
                              errp);
}

static void wire_encode_apic_state(const void *p, GByteArray *out)
{
    const DSMApicState *apic = p;
    DSMWireApicState w = {
        .cpu = cpu_to_be32(apic->cpu),
        .id = cpu_to_be32(apic->id),
        .log_dest = cpu_to_be32(apic->log_dest),
        .dest_mode = apic->dest_mode,
        .x2apic = apic->x2apic,
    };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

/* The vCPU index is checked by the receiver, which knows the CPUs. */
static bool wire_decode_apic_state(const DSMMsgDesc *desc,
                                   const uint8_t *buf, size_t len,
                                   const DSMLimits *lim, void *p,
                                   Error **errp)
{
    DSMApicState *apic = p;
    DSMWireApicState w;

    memcpy(&w, buf, sizeof(w));
    *apic = (DSMApicState) {
        .cpu = be32_to_cpu(w.cpu),
        .id = be32_to_cpu(w.id),
        .log_dest = be32_to_cpu(w.log_dest),
        .dest_mode = w.dest_mode,
        .x2apic = w.x2apic,
    };
    if (w.dest_mode != 0 && w.dest_mode != 0xf) {
        error_setg(errp, "APIC_STATE destination format 0x%x invalid, "
                   "expected 0xf (flat) or 0 (cluster)", w.dest_mode);
        return false;
    }
    if (w.x2apic > 1) {
        error_setg(errp, "APIC_STATE x2APIC flag %u invalid", w.x2apic);
        return false;
    }
    return dsm_check_reserved("APIC_STATE", w.reserved, sizeof(w.reserved),
                              errp);
}

static const DSMMsgDesc aggregate_irq_descs[] = {
    { DSM_MSG_IRQ, "IRQ", sizeof(DSMWireIrq), 0,
      wire_encode_irq, wire_decode_irq,
      .msg_size = sizeof(DSMIrq) },
    { DSM_MSG_CPU_EVENT, "CPU_EVENT", sizeof(DSMWireCpuEvent), 0,
      wire_encode_cpu_event, wire_decode_cpu_event,
      .msg_size = sizeof(DSMCpuEvent) },
    { DSM_MSG_APIC_STATE, "APIC_STATE", sizeof(DSMWireApicState), 0,
      wire_encode_apic_state, wire_decode_apic_state,
      .msg_size = sizeof(DSMApicState) },
    { DSM_MSG_EOI, "EOI", sizeof(DSMWireIrq), 0,
      wire_encode_irq, wire_decode_irq,
      .msg_size = sizeof(DSMIrq) },
};

const DSMFamilyCodec aggregate_irq_codec = {
    .family = DSM_FAMILY_IRQ,
    .name = "interrupt",
    .descs = aggregate_irq_descs,
    .nr_descs = ARRAY_SIZE(aggregate_irq_descs),
};
