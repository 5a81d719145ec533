/*
 * aggvm: the messages of the aggregate machine's families
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The machine's message families ride on the DSM's links
 * (migration/dsm/wire.h has the frame and the family numbers); each
 * brings its codec, in hw/aggregate/<family>-wire.c: I/O forwarding
 * (iofwd), interrupts (irqfwd), lifecycle, clock, vCPUs and network
 * queue pairs.  Layouts are explicit and big-endian, like the rest of
 * the wire; each decoder validates every field it can.  vCPU indexes,
 * NICs and queue pairs are checked by the receiver, which knows them.
 * This header is pure (no device state), so the unit tests build the
 * codecs alone.
 */

#ifndef HW_AGGREGATE_WIRE_H
#define HW_AGGREGATE_WIRE_H

#include "migration/dsm/wire.h"

/* The machine's message types; the high byte is the family. */
typedef enum AggregateMsgType {
    DSM_MSG_IO_REQ = 0x0201,
    DSM_MSG_IO_RESP = 0x0202,
    DSM_MSG_IO_MAP = 0x0203,
    DSM_MSG_IRQ = 0x0301,
    DSM_MSG_CPU_EVENT = 0x0302,
    DSM_MSG_APIC_STATE = 0x0303,
    DSM_MSG_EOI = 0x0304,
    DSM_MSG_SHUTDOWN = 0x0401,
    DSM_MSG_RESET = 0x0402,
    DSM_MSG_RUN_STATE = 0x0403,
    DSM_MSG_RESET_DONE = 0x0404,
    DSM_MSG_CLOCK_REQ = 0x0501,
    DSM_MSG_CLOCK_RESP = 0x0502,
    DSM_MSG_VCPU_MIGRATE = 0x0601,
    DSM_MSG_VCPU_STATE = 0x0602,
    DSM_MSG_VCPU_OWNER = 0x0603,
    DSM_MSG_NET_START = 0x0701,
    DSM_MSG_NET_STOP = 0x0702,
    DSM_MSG_NET_KICK = 0x0703,
    DSM_MSG_NET_TX = 0x0704,
    DSM_MSG_NET_RX = 0x0705,
} AggregateMsgType;

/* The largest state VCPU_STATE carries (CPU and local APIC). */
#define DSM_VCPU_STATE_MAX      (64 * 1024)
/*
 * The largest packet NET_TX and NET_RX carry: a 64 KiB GSO frame, its
 * Ethernet header and the backend's virtio-net header.
 */
#define DSM_NET_PACKET_MAX      (64 * 1024 + 512)

/* IO_REQ: the address space an access goes to. */
typedef enum DSMIOSpace {
    DSM_IO_SPACE_MEMORY = 0,
    DSM_IO_SPACE_IO = 1,
} DSMIOSpace;

/* IO_REQ/IO_RESP: a forwarded PIO or MMIO access and its result. */
typedef struct DSMIOAccess {
    uint32_t id;                /* matches an IO_RESP to its IO_REQ */
    DSMIOSpace space;
    uint8_t size;               /* 1, 2, 4 or 8 */
    bool write;
    uint32_t cpu;               /* vCPU index, or DSM_IO_NO_CPU */
    uint32_t attrs;             /* DSM_IO_ATTR_* */
    uint64_t addr;
    uint64_t data;              /* written, or read back */
    uint32_t result;            /* IO_RESP: MemTxResult */
} DSMIOAccess;

#define DSM_IO_NO_CPU           UINT32_MAX
#define DSM_IO_ATTR_SECURE      (1u << 0)
#define DSM_IO_ATTR_USER        (1u << 1)
#define DSM_IO_ATTR_UNSPECIFIED (1u << 2)
#define DSM_IO_ATTR_KNOWN       0x7u

/*
 * IRQ: a vector made pending in the APIC of vCPU @cpu.
 * EOI: vCPU @cpu ended level-triggered interrupt @vector (level unused).
 */
typedef struct DSMIrq {
    uint32_t cpu;
    uint8_t vector;
    bool level;                 /* level-triggered (else edge) */
} DSMIrq;

/* CPU_EVENT: interrupts without a vector, for vCPU @cpu. */
typedef struct DSMCpuEvent {
    uint32_t cpu;
    uint8_t events;             /* DSM_CPU_EVENT_* */
    uint8_t sipi_vector;        /* with DSM_CPU_EVENT_SIPI */
} DSMCpuEvent;

#define DSM_CPU_EVENT_INIT      (1u << 0)
#define DSM_CPU_EVENT_SIPI      (1u << 1)
#define DSM_CPU_EVENT_NMI       (1u << 2)
#define DSM_CPU_EVENT_SMI       (1u << 3)
#define DSM_CPU_EVENT_KNOWN     0xfu

/*
 * APIC_STATE: what IPIs and MSIs match the APIC of vCPU @cpu, sent by
 * the fragment that runs it whenever the guest changes it.
 */
typedef struct DSMApicState {
    uint32_t cpu;
    uint32_t id;                /* xAPIC ID */
    uint32_t log_dest;          /* logical destination (LDR) */
    uint8_t dest_mode;          /* destination format: 0xf flat, 0 cluster */
    bool x2apic;
} DSMApicState;

/*
 * IO_MAP: the origin's host-bridge registers that shape the memory map
 * (PAM, SMRAM), @len bytes of its PCI configuration space at @offset.
 */
#define DSM_IO_MAP_MAX          16
#define DSM_IO_MAP_SPACE        256     /* a PCI configuration header */

typedef struct DSMIOMap {
    uint16_t offset;
    uint8_t len;
    uint8_t bytes[DSM_IO_MAP_MAX];
} DSMIOMap;

/*
 * CLOCK_REQ: what are your guest clocks?  CLOCK_RESP: the answer, read
 * when the request arrived: the guest's TSC (@ticks, in host ticks),
 * QEMU_CLOCK_VIRTUAL (@virtual_ns), and whether the VM ran there then
 * (a stopped VM's clocks stand still); @id pairs them.
 */
typedef struct DSMClock {
    uint32_t id;
    uint64_t ticks;
    int64_t virtual_ns;         /* CLOCK_RESP */
    bool running;               /* CLOCK_RESP */
} DSMClock;

/*
 * The vCPU family (hw/aggregate/vcpu.c):
 * VCPU_MIGRATE asks the fragment that runs vCPU @cpu to move it to
 * @fragment.  VCPU_STATE hands @cpu over to the receiver: @len bytes of
 * CPU and local APIC state, saved by @fragment (the previous owner)
 * when its QEMU_CLOCK_VIRTUAL read @clock_ns.  VCPU_OWNER tells the
 * other fragments that @cpu now runs on @fragment.  @epoch counts the
 * moves of @cpu: VCPU_STATE and VCPU_OWNER carry the move's, so that a
 * late VCPU_OWNER never undoes a newer move.
 */
typedef struct DSMVcpu {
    uint32_t cpu;
    uint32_t fragment;
    uint32_t epoch;             /* VCPU_STATE, VCPU_OWNER */
    int64_t clock_ns;           /* VCPU_STATE */
    uint32_t len;               /* VCPU_STATE: bytes at @state */
    /* VCPU_STATE: points into the caller's buffer, like DATA's data. */
    const uint8_t *state;
} DSMVcpu;

/*
 * The net family (hw/aggregate/net.c): queue pair @pair of the origin's
 * @nic-th multi-queue virtio-net, processed on another fragment.
 * NET_START (origin to that fragment) hands the pair over: the
 * negotiated @features, @status and @curr_pairs, and per virtqueue
 * (receive, transmit) its rings, size, notify address, next available
 * index and MSI-X vector with the vector's message and mask; with
 * @update, the pair is already there and only @status, @curr_pairs
 * and the MSI-X messages changed.  NET_STOP takes it back (device
 * reset: its ring state is dropped).  NET_KICK passes on a notify of
 * virtqueue @vq (0 receive, 1 transmit) that reached the origin.
 * NET_TX (to the origin, for the backend) and NET_RX (from it) carry
 * one packet of @len bytes, as the backend sends and takes it.
 */
typedef struct DSMNetVq {
    uint64_t desc;
    uint64_t avail;
    uint64_t used;
    uint64_t notify;            /* guest-physical address of its notify */
    uint64_t msi_addr;
    uint32_t msi_data;
    uint32_t num;
    uint16_t last_avail;
    uint16_t vector;
    bool msi_masked;
} DSMNetVq;

typedef struct DSMNet {
    uint32_t nic;
    uint32_t pair;
    uint32_t vq;                /* NET_KICK */
    bool update;                /* NET_START */
    uint8_t status;             /* NET_START */
    uint32_t curr_pairs;        /* NET_START */
    uint64_t features;          /* NET_START */
    DSMNetVq q[2];              /* NET_START */
    uint32_t len;               /* NET_TX, NET_RX: bytes at @data */
    /* NET_TX, NET_RX: points into the caller's buffer, like DATA's. */
    const uint8_t *data;
} DSMNet;

/*
 * The lifecycle family (lifecycle.c): SHUTDOWN, RESET and RESET_DONE
 * carry a ShutdownCause; RUN_STATE whether the sender's VM runs (cont)
 * or not (stop).
 */
typedef struct DSMLifecycle {
    uint32_t cause;             /* SHUTDOWN, RESET, RESET_DONE */
    bool running;               /* RUN_STATE */
} DSMLifecycle;

/* The name of @type in @codec ("IRQ", ...), "unknown" if it has none. */
static inline const char *aggregate_msg_name(const DSMFamilyCodec *codec,
                                             uint16_t type)
{
    const DSMMsgDesc *desc = dsm_codec_find(codec, type);

    return desc ? desc->name : "unknown";
}

/* The families' codecs, for the links and the unit tests. */
extern const DSMFamilyCodec aggregate_io_codec;
extern const DSMFamilyCodec aggregate_irq_codec;
extern const DSMFamilyCodec aggregate_lifecycle_codec;
extern const DSMFamilyCodec aggregate_clock_codec;
extern const DSMFamilyCodec aggregate_vcpu_codec;
extern const DSMFamilyCodec aggregate_net_codec;

#endif /* HW_AGGREGATE_WIRE_H */
