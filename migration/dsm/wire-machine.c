/*
 * aggvm DSM: wire codec of the machine's message families
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The messages the aggregate machine sends over the DSM's links: I/O
 * forwarding (IO_REQ, IO_RESP, IO_MAP), interrupts (IRQ, EOI,
 * CPU_EVENT, APIC_STATE), lifecycle (SHUTDOWN, RESET, RESET_DONE,
 * RUN_STATE), clock (CLOCK_REQ, CLOCK_RESP), vCPUs (VCPU_MIGRATE,
 * VCPU_STATE, VCPU_OWNER) and network queue pairs (NET_*).  Layouts
 * are explicit and big-endian, like the rest of the wire (wire.h); each
 * decoder validates every field it can.  vCPU indexes, NICs and queue
 * pairs are checked by the receiver, which knows them.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "migration/dsm/wire-codec.h"

typedef struct QEMU_PACKED DSMWireIOReq {
    uint32_t id;
    uint8_t space;
    uint8_t size;
    uint8_t write;
    uint8_t reserved;
    uint32_t cpu;
    uint32_t attrs;
    uint64_t addr;
    uint64_t data;
} DSMWireIOReq;

typedef struct QEMU_PACKED DSMWireIOResp {
    uint32_t id;
    uint32_t result;
    uint64_t data;
} DSMWireIOResp;

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

typedef struct QEMU_PACKED DSMWireShutdown {
    uint32_t cause;
    uint8_t reserved[4];
} DSMWireShutdown;

typedef struct QEMU_PACKED DSMWireRunState {
    uint8_t running;
    uint8_t reserved[7];
} DSMWireRunState;

#define DSM_CLOCK_RUNNING   0x01

typedef struct QEMU_PACKED DSMWireClock {
    uint32_t id;
    uint8_t flags;
    uint8_t reserved[3];
    uint64_t ticks;
    uint64_t virtual_ns;
} DSMWireClock;

typedef struct QEMU_PACKED DSMWireIOMap {
    uint16_t offset;
    uint8_t len;
    uint8_t reserved;
    uint8_t bytes[DSM_IO_MAP_MAX];
} DSMWireIOMap;

typedef struct QEMU_PACKED DSMWireVcpu {
    uint32_t cpu;
    uint32_t fragment;
    uint32_t epoch;
    uint32_t reserved;
} DSMWireVcpu;

typedef struct QEMU_PACKED DSMWireVcpuState {
    DSMWireVcpu vcpu;
    int64_t clock_ns;
} DSMWireVcpuState;

typedef struct QEMU_PACKED DSMWireNetId {
    uint32_t nic;
    uint32_t pair;
} DSMWireNetId;

typedef struct QEMU_PACKED DSMWireNetVq {
    uint64_t desc;
    uint64_t avail;
    uint64_t used;
    uint64_t notify;
    uint64_t msi_addr;
    uint32_t msi_data;
    uint32_t num;
    uint16_t last_avail;
    uint16_t vector;
    uint8_t msi_masked;
    uint8_t reserved[3];
} DSMWireNetVq;

typedef struct QEMU_PACKED DSMWireNetStart {
    DSMWireNetId id;
    uint32_t curr_pairs;
    uint8_t status;
    uint8_t update;
    uint16_t reserved;
    uint64_t features;
    DSMWireNetVq q[2];
} DSMWireNetStart;

typedef struct QEMU_PACKED DSMWireNetKick {
    DSMWireNetId id;
    uint32_t vq;
    uint32_t reserved;
} DSMWireNetKick;

QEMU_BUILD_BUG_ON(sizeof(DSMWireIOReq) != 32);
QEMU_BUILD_BUG_ON(sizeof(DSMWireIOResp) != 16);
QEMU_BUILD_BUG_ON(sizeof(DSMWireIrq) != 8);
QEMU_BUILD_BUG_ON(sizeof(DSMWireCpuEvent) != 8);
QEMU_BUILD_BUG_ON(sizeof(DSMWireApicState) != 16);
QEMU_BUILD_BUG_ON(sizeof(DSMWireShutdown) != 8);
QEMU_BUILD_BUG_ON(sizeof(DSMWireClock) != 24);
QEMU_BUILD_BUG_ON(sizeof(DSMWireRunState) != 8);
QEMU_BUILD_BUG_ON(sizeof(DSMWireIOMap) != 20);
QEMU_BUILD_BUG_ON(sizeof(DSMWireVcpu) != 16);
QEMU_BUILD_BUG_ON(sizeof(DSMWireVcpuState) + DSM_VCPU_STATE_MAX >
                  DSM_MAX_PAYLOAD);
QEMU_BUILD_BUG_ON(sizeof(DSMWireNetVq) != 56);
QEMU_BUILD_BUG_ON(sizeof(DSMWireNetStart) != 136);
QEMU_BUILD_BUG_ON(sizeof(DSMWireNetId) + DSM_NET_PACKET_MAX !=
                  DSM_MAX_PAYLOAD);

static void dsm_encode_io_req(const DSMMsg *msg, GByteArray *out)
{
    DSMWireIOReq w = {
        .id = cpu_to_be32(msg->io.id),
        .space = msg->io.space,
        .size = msg->io.size,
        .write = msg->io.write,
        .cpu = cpu_to_be32(msg->io.cpu),
        .attrs = cpu_to_be32(msg->io.attrs),
        .addr = cpu_to_be64(msg->io.addr),
        .data = cpu_to_be64(msg->io.data),
    };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

/* Space, size and flags are checked here; the vCPU index by the origin. */
static bool dsm_check_io_req(const DSMWireIOReq *w, const DSMIOAccess *io,
                             Error **errp)
{
    if (io->space > DSM_IO_SPACE_IO) {
        error_setg(errp, "IO_REQ space %u invalid, expected 0 (memory) "
                   "or 1 (I/O)", io->space);
    } else if (io->size != 1 && io->size != 2 && io->size != 4 &&
               io->size != 8) {
        error_setg(errp, "IO_REQ size %u invalid, expected 1, 2, 4 or "
                   "8", io->size);
    } else if (w->write > 1 || w->reserved) {
        error_setg(errp, "IO_REQ flags 0x%x/0x%x invalid, expected "
                   "write 0 or 1 and reserved 0", w->write, w->reserved);
    } else if (io->attrs & ~DSM_IO_ATTR_KNOWN) {
        error_setg(errp, "IO_REQ attributes 0x%x invalid, expected "
                   "bits in 0x%x", io->attrs, DSM_IO_ATTR_KNOWN);
    } else if (io->space == DSM_IO_SPACE_IO &&
               (io->addr > 0xffff || io->addr + io->size > 0x10000)) {
        error_setg(errp, "IO_REQ port 0x%" PRIx64 " out of range, "
                   "expected below 0x10000", io->addr);
    } else {
        return true;
    }
    return false;
}

static bool dsm_decode_io_req(const uint8_t *buf, size_t len,
                              const DSMLimits *lim, DSMMsg *msg, Error **errp)
{
    DSMWireIOReq w;

    memcpy(&w, buf, sizeof(w));
    msg->io = (DSMIOAccess) {
        .id = be32_to_cpu(w.id),
        .space = w.space,
        .size = w.size,
        .write = w.write,
        .cpu = be32_to_cpu(w.cpu),
        .attrs = be32_to_cpu(w.attrs),
        .addr = be64_to_cpu(w.addr),
        .data = be64_to_cpu(w.data),
    };
    return dsm_check_io_req(&w, &msg->io, errp);
}

static void dsm_encode_io_resp(const DSMMsg *msg, GByteArray *out)
{
    DSMWireIOResp w = {
        .id = cpu_to_be32(msg->io.id),
        .result = cpu_to_be32(msg->io.result),
        .data = cpu_to_be64(msg->io.data),
    };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

static bool dsm_decode_io_resp(const uint8_t *buf, size_t len,
                               const DSMLimits *lim, DSMMsg *msg,
                               Error **errp)
{
    DSMWireIOResp w;

    memcpy(&w, buf, sizeof(w));
    msg->io = (DSMIOAccess) {
        .id = be32_to_cpu(w.id),
        .result = be32_to_cpu(w.result),
        .data = be64_to_cpu(w.data),
    };
    return true;
}

static void dsm_encode_irq(const DSMMsg *msg, GByteArray *out)
{
    DSMWireIrq w = {
        .cpu = cpu_to_be32(msg->irq.cpu),
        .vector = msg->irq.vector,
        .level = msg->irq.level,
    };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

/* The vCPU index is checked by the receiver, which knows the CPUs. */
static bool dsm_decode_irq(const uint8_t *buf, size_t len,
                           const DSMLimits *lim, DSMMsg *msg, Error **errp)
{
    DSMWireIrq w;

    memcpy(&w, buf, sizeof(w));
    msg->irq = (DSMIrq) {
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

static void dsm_encode_cpu_event(const DSMMsg *msg, GByteArray *out)
{
    DSMWireCpuEvent w = {
        .cpu = cpu_to_be32(msg->cpu_event.cpu),
        .events = msg->cpu_event.events,
        .sipi_vector = msg->cpu_event.sipi_vector,
    };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

/* The vCPU index is checked by the receiver, which knows the CPUs. */
static bool dsm_decode_cpu_event(const uint8_t *buf, size_t len,
                                 const DSMLimits *lim, DSMMsg *msg,
                                 Error **errp)
{
    DSMWireCpuEvent w;

    memcpy(&w, buf, sizeof(w));
    msg->cpu_event = (DSMCpuEvent) {
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

static void dsm_encode_apic_state(const DSMMsg *msg, GByteArray *out)
{
    DSMWireApicState w = {
        .cpu = cpu_to_be32(msg->apic.cpu),
        .id = cpu_to_be32(msg->apic.id),
        .log_dest = cpu_to_be32(msg->apic.log_dest),
        .dest_mode = msg->apic.dest_mode,
        .x2apic = msg->apic.x2apic,
    };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

/* The vCPU index is checked by the receiver, which knows the CPUs. */
static bool dsm_decode_apic_state(const uint8_t *buf, size_t len,
                                  const DSMLimits *lim, DSMMsg *msg,
                                  Error **errp)
{
    DSMWireApicState w;

    memcpy(&w, buf, sizeof(w));
    msg->apic = (DSMApicState) {
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

static void dsm_encode_shutdown(const DSMMsg *msg, GByteArray *out)
{
    DSMWireShutdown w = { .cause = cpu_to_be32(msg->cause) };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

/* The cause is checked by the receiver, which knows the causes. */
static bool dsm_decode_shutdown(const uint8_t *buf, size_t len,
                                const DSMLimits *lim, DSMMsg *msg,
                                Error **errp)
{
    DSMWireShutdown w;

    memcpy(&w, buf, sizeof(w));
    msg->cause = be32_to_cpu(w.cause);
    return dsm_check_reserved("SHUTDOWN", w.reserved, sizeof(w.reserved),
                              errp);
}

static void dsm_encode_run_state(const DSMMsg *msg, GByteArray *out)
{
    DSMWireRunState w = { .running = msg->running };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

static bool dsm_decode_run_state(const uint8_t *buf, size_t len,
                                 const DSMLimits *lim, DSMMsg *msg,
                                 Error **errp)
{
    DSMWireRunState w;

    memcpy(&w, buf, sizeof(w));
    msg->running = w.running;
    if (w.running > 1) {
        error_setg(errp, "RUN_STATE %u invalid, expected 0 (stop) or "
                   "1 (cont)", w.running);
        return false;
    }
    return dsm_check_reserved("RUN_STATE", w.reserved, sizeof(w.reserved),
                              errp);
}

static void dsm_encode_clock(const DSMMsg *msg, GByteArray *out)
{
    DSMWireClock w = {
        .id = cpu_to_be32(msg->clock.id),
        .flags = msg->clock.running ? DSM_CLOCK_RUNNING : 0,
        .ticks = cpu_to_be64(msg->clock.ticks),
        .virtual_ns = cpu_to_be64(msg->clock.virtual_ns),
    };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

static bool dsm_decode_clock(const uint8_t *buf, size_t len,
                             const DSMLimits *lim, DSMMsg *msg, Error **errp)
{
    DSMWireClock w;

    memcpy(&w, buf, sizeof(w));
    msg->clock = (DSMClock) {
        .id = be32_to_cpu(w.id),
        .ticks = be64_to_cpu(w.ticks),
        .virtual_ns = be64_to_cpu(w.virtual_ns),
        .running = w.flags & DSM_CLOCK_RUNNING,
    };
    if (w.flags & ~DSM_CLOCK_RUNNING) {
        error_setg(errp, "%s flags 0x%x invalid, expected 0x0 or 0x%x "
                   "(running)", dsm_msg_type_name(msg->type), w.flags,
                   DSM_CLOCK_RUNNING);
        return false;
    }
    return dsm_check_reserved(dsm_msg_type_name(msg->type), w.reserved,
                              sizeof(w.reserved), errp);
}

static void dsm_encode_io_map(const DSMMsg *msg, GByteArray *out)
{
    DSMWireIOMap w = {
        .offset = cpu_to_be16(msg->io_map.offset),
        .len = msg->io_map.len,
    };

    memcpy(w.bytes, msg->io_map.bytes, msg->io_map.len);
    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

static bool dsm_decode_io_map(const uint8_t *buf, size_t len,
                              const DSMLimits *lim, DSMMsg *msg, Error **errp)
{
    DSMWireIOMap w;

    memcpy(&w, buf, sizeof(w));
    msg->io_map.offset = be16_to_cpu(w.offset);
    msg->io_map.len = w.len;
    memcpy(msg->io_map.bytes, w.bytes, sizeof(w.bytes));
    if (!w.len || w.len > DSM_IO_MAP_MAX ||
        msg->io_map.offset + w.len > DSM_IO_MAP_SPACE) {
        error_setg(errp, "IO_MAP of %u bytes at 0x%x is outside the "
                   "PCI configuration header", w.len, msg->io_map.offset);
        return false;
    }
    return dsm_check_reserved("IO_MAP", &w.reserved, 1, errp);
}

/* VCPU_MIGRATE, VCPU_OWNER, and the start of VCPU_STATE */

static DSMWireVcpu dsm_vcpu_to_wire(const DSMVcpu *v)
{
    return (DSMWireVcpu) {
        .cpu = cpu_to_be32(v->cpu),
        .fragment = cpu_to_be32(v->fragment),
        .epoch = cpu_to_be32(v->epoch),
    };
}

static bool dsm_vcpu_from_wire(const char *name, const DSMWireVcpu *w,
                               const DSMLimits *lim, DSMVcpu *v,
                               Error **errp)
{
    v->cpu = be32_to_cpu(w->cpu);
    v->fragment = be32_to_cpu(w->fragment);
    v->epoch = be32_to_cpu(w->epoch);
    return dsm_check_fragment(name, "named", v->fragment, lim, errp) &&
           dsm_check_reserved(name, (const uint8_t *)&w->reserved,
                              sizeof(w->reserved), errp);
}

static void dsm_encode_vcpu(const DSMMsg *msg, GByteArray *out)
{
    DSMWireVcpu w = dsm_vcpu_to_wire(&msg->vcpu);

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

static bool dsm_decode_vcpu(const uint8_t *buf, size_t len,
                            const DSMLimits *lim, DSMMsg *msg, Error **errp)
{
    DSMWireVcpu w;

    memcpy(&w, buf, sizeof(w));
    return dsm_vcpu_from_wire(dsm_msg_type_name(msg->type), &w, lim,
                              &msg->vcpu, errp);
}

/* VCPU_STATE: a fixed part, then the saved state up to its maximum. */

static void dsm_encode_vcpu_state(const DSMMsg *msg, GByteArray *out)
{
    DSMWireVcpuState w = {
        .vcpu = dsm_vcpu_to_wire(&msg->vcpu),
        .clock_ns = cpu_to_be64(msg->vcpu.clock_ns),
    };

    assert(msg->vcpu.len && msg->vcpu.len <= DSM_VCPU_STATE_MAX);
    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
    g_byte_array_append(out, msg->vcpu.state, msg->vcpu.len);
}

static bool dsm_decode_vcpu_state(const uint8_t *buf, size_t len,
                                  const DSMLimits *lim, DSMMsg *msg,
                                  Error **errp)
{
    DSMWireVcpuState w;

    /* The header check allowed only a non-empty state. */
    memcpy(&w, buf, sizeof(w));
    msg->vcpu.clock_ns = be64_to_cpu(w.clock_ns);
    msg->vcpu.len = len - sizeof(w);
    msg->vcpu.state = buf + sizeof(w);
    return dsm_vcpu_from_wire("VCPU_STATE", &w.vcpu, lim, &msg->vcpu, errp);
}

/* The net family: every message starts with the NIC and queue pair. */

static DSMWireNetId dsm_net_id_to_wire(const DSMNet *n)
{
    return (DSMWireNetId) {
        .nic = cpu_to_be32(n->nic),
        .pair = cpu_to_be32(n->pair),
    };
}

static void dsm_net_id_from_wire(const DSMWireNetId *w, DSMNet *n)
{
    n->nic = be32_to_cpu(w->nic);
    n->pair = be32_to_cpu(w->pair);
}

static DSMWireNetVq dsm_net_vq_to_wire(const DSMNetVq *q)
{
    return (DSMWireNetVq) {
        .desc = cpu_to_be64(q->desc),
        .avail = cpu_to_be64(q->avail),
        .used = cpu_to_be64(q->used),
        .notify = cpu_to_be64(q->notify),
        .msi_addr = cpu_to_be64(q->msi_addr),
        .msi_data = cpu_to_be32(q->msi_data),
        .num = cpu_to_be32(q->num),
        .last_avail = cpu_to_be16(q->last_avail),
        .vector = cpu_to_be16(q->vector),
        .msi_masked = q->msi_masked,
    };
}

static bool dsm_net_vq_from_wire(const DSMWireNetVq *w, DSMNetVq *q,
                                 Error **errp)
{
    q->desc = be64_to_cpu(w->desc);
    q->avail = be64_to_cpu(w->avail);
    q->used = be64_to_cpu(w->used);
    q->notify = be64_to_cpu(w->notify);
    q->msi_addr = be64_to_cpu(w->msi_addr);
    q->msi_data = be32_to_cpu(w->msi_data);
    q->num = be32_to_cpu(w->num);
    q->last_avail = be16_to_cpu(w->last_avail);
    q->vector = be16_to_cpu(w->vector);
    q->msi_masked = w->msi_masked;
    if (w->msi_masked > 1) {
        error_setg(errp, "NET_START with MSI-X mask %u", w->msi_masked);
        return false;
    }
    if (!q->num || q->num > 32768 || (q->num & (q->num - 1))) {
        error_setg(errp, "NET_START with a queue of %u entries",
                   q->num);
        return false;
    }
    return dsm_check_reserved("NET_START", w->reserved,
                              sizeof(w->reserved), errp);
}

static void dsm_encode_net_start(const DSMMsg *msg, GByteArray *out)
{
    const DSMNet *n = &msg->net;
    DSMWireNetStart w = {
        .id = dsm_net_id_to_wire(n),
        .curr_pairs = cpu_to_be32(n->curr_pairs),
        .status = n->status,
        .update = n->update,
        .features = cpu_to_be64(n->features),
        .q = { dsm_net_vq_to_wire(&n->q[0]), dsm_net_vq_to_wire(&n->q[1]) },
    };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

static bool dsm_decode_net_start(const uint8_t *buf, size_t len,
                                 const DSMLimits *lim, DSMMsg *msg,
                                 Error **errp)
{
    DSMNet *n = &msg->net;
    DSMWireNetStart w;

    memcpy(&w, buf, sizeof(w));
    dsm_net_id_from_wire(&w.id, n);
    n->curr_pairs = be32_to_cpu(w.curr_pairs);
    n->status = w.status;
    n->update = w.update;
    n->features = be64_to_cpu(w.features);
    if (w.update > 1 || !n->curr_pairs) {
        error_setg(errp, "NET_START with %u queue pairs in use "
                   "(update %u)", n->curr_pairs, w.update);
        return false;
    }
    return dsm_net_vq_from_wire(&w.q[0], &n->q[0], errp) &&
           dsm_net_vq_from_wire(&w.q[1], &n->q[1], errp) &&
           dsm_check_reserved("NET_START", (const uint8_t *)&w.reserved,
                              sizeof(w.reserved), errp);
}

static void dsm_encode_net_id(const DSMMsg *msg, GByteArray *out)
{
    DSMWireNetId w = dsm_net_id_to_wire(&msg->net);

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

static bool dsm_decode_net_id(const uint8_t *buf, size_t len,
                              const DSMLimits *lim, DSMMsg *msg,
                              Error **errp)
{
    DSMWireNetId w;

    memcpy(&w, buf, sizeof(w));
    dsm_net_id_from_wire(&w, &msg->net);
    return true;
}

static void dsm_encode_net_kick(const DSMMsg *msg, GByteArray *out)
{
    DSMWireNetKick w = {
        .id = dsm_net_id_to_wire(&msg->net),
        .vq = cpu_to_be32(msg->net.vq),
    };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

static bool dsm_decode_net_kick(const uint8_t *buf, size_t len,
                                const DSMLimits *lim, DSMMsg *msg,
                                Error **errp)
{
    DSMWireNetKick w;

    memcpy(&w, buf, sizeof(w));
    dsm_net_id_from_wire(&w.id, &msg->net);
    msg->net.vq = be32_to_cpu(w.vq);
    if (msg->net.vq > 1) {
        error_setg(errp, "NET_KICK for virtqueue %u of a pair",
                   msg->net.vq);
        return false;
    }
    return dsm_check_reserved("NET_KICK", (const uint8_t *)&w.reserved,
                              sizeof(w.reserved), errp);
}

/* NET_TX, NET_RX: the NIC and pair, then the packet. */

static void dsm_encode_net_packet(const DSMMsg *msg, GByteArray *out)
{
    assert(msg->net.len && msg->net.len <= DSM_NET_PACKET_MAX);
    dsm_encode_net_id(msg, out);
    g_byte_array_append(out, msg->net.data, msg->net.len);
}

static bool dsm_decode_net_packet(const uint8_t *buf, size_t len,
                                  const DSMLimits *lim, DSMMsg *msg,
                                  Error **errp)
{
    /* The header check allowed only a non-empty packet. */
    dsm_decode_net_id(buf, len, lim, msg, errp);
    msg->net.len = len - sizeof(DSMWireNetId);
    msg->net.data = buf + sizeof(DSMWireNetId);
    return true;
}

const DSMMsgDesc dsm_machine_msg_descs[] = {
    { DSM_MSG_IO_REQ, "IO_REQ", sizeof(DSMWireIOReq), 0,
      dsm_encode_io_req, dsm_decode_io_req },
    { DSM_MSG_IO_RESP, "IO_RESP", sizeof(DSMWireIOResp), 0,
      dsm_encode_io_resp, dsm_decode_io_resp },
    { DSM_MSG_IO_MAP, "IO_MAP", sizeof(DSMWireIOMap), 0,
      dsm_encode_io_map, dsm_decode_io_map },
    { DSM_MSG_IRQ, "IRQ", sizeof(DSMWireIrq), 0,
      dsm_encode_irq, dsm_decode_irq },
    { DSM_MSG_EOI, "EOI", sizeof(DSMWireIrq), 0,
      dsm_encode_irq, dsm_decode_irq },
    { DSM_MSG_CPU_EVENT, "CPU_EVENT", sizeof(DSMWireCpuEvent), 0,
      dsm_encode_cpu_event, dsm_decode_cpu_event },
    { DSM_MSG_APIC_STATE, "APIC_STATE", sizeof(DSMWireApicState), 0,
      dsm_encode_apic_state, dsm_decode_apic_state },
    { DSM_MSG_SHUTDOWN, "SHUTDOWN", sizeof(DSMWireShutdown), 0,
      dsm_encode_shutdown, dsm_decode_shutdown },
    { DSM_MSG_RESET_DONE, "RESET_DONE", sizeof(DSMWireShutdown), 0,
      dsm_encode_shutdown, dsm_decode_shutdown },
    { DSM_MSG_RESET, "RESET", sizeof(DSMWireShutdown), 0,
      dsm_encode_shutdown, dsm_decode_shutdown },
    { DSM_MSG_RUN_STATE, "RUN_STATE", sizeof(DSMWireRunState), 0,
      dsm_encode_run_state, dsm_decode_run_state },
    { DSM_MSG_CLOCK_REQ, "CLOCK_REQ", sizeof(DSMWireClock), 0,
      dsm_encode_clock, dsm_decode_clock },
    { DSM_MSG_CLOCK_RESP, "CLOCK_RESP", sizeof(DSMWireClock), 0,
      dsm_encode_clock, dsm_decode_clock },
    { DSM_MSG_VCPU_MIGRATE, "VCPU_MIGRATE", sizeof(DSMWireVcpu), 0,
      dsm_encode_vcpu, dsm_decode_vcpu },
    { DSM_MSG_VCPU_STATE, "VCPU_STATE", sizeof(DSMWireVcpuState),
      DSM_VCPU_STATE_MAX, dsm_encode_vcpu_state, dsm_decode_vcpu_state,
      .varies = true },
    { DSM_MSG_VCPU_OWNER, "VCPU_OWNER", sizeof(DSMWireVcpu), 0,
      dsm_encode_vcpu, dsm_decode_vcpu },
    { DSM_MSG_NET_START, "NET_START", sizeof(DSMWireNetStart), 0,
      dsm_encode_net_start, dsm_decode_net_start },
    { DSM_MSG_NET_STOP, "NET_STOP", sizeof(DSMWireNetId), 0,
      dsm_encode_net_id, dsm_decode_net_id },
    { DSM_MSG_NET_KICK, "NET_KICK", sizeof(DSMWireNetKick), 0,
      dsm_encode_net_kick, dsm_decode_net_kick },
    { DSM_MSG_NET_TX, "NET_TX", sizeof(DSMWireNetId), DSM_NET_PACKET_MAX,
      dsm_encode_net_packet, dsm_decode_net_packet, .varies = true },
    { DSM_MSG_NET_RX, "NET_RX", sizeof(DSMWireNetId), DSM_NET_PACKET_MAX,
      dsm_encode_net_packet, dsm_decode_net_packet, .varies = true },
};

const size_t dsm_nr_machine_msg_descs = ARRAY_SIZE(dsm_machine_msg_descs);
