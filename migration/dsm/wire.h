/*
 * aggvm fragment links: message codec
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef MIGRATION_DSM_WIRE_H
#define MIGRATION_DSM_WIRE_H

/*
 * Every message on a fragment link is a 16-byte header followed by
 * exactly `length` payload bytes.  All fields are big-endian; no host
 * struct is ever sent raw.
 *
 *   0       4       6       8           12          16
 *   +-------+-------+-------+-----------+-----------+---------------+
 *   | magic | vers. | type  |  length   | sequence  | payload ...   |
 *   | u32   | u16   | u16   |  u32      | u32       | length bytes  |
 *   +-------+-------+-------+-----------+-----------+---------------+
 *
 * The codec is pure: it neither reads sockets nor keeps state.  A stream
 * reader reads DSM_HEADER_SIZE bytes, validates them with
 * dsm_header_decode() (which bounds `length` by the type before any
 * payload is read), reads exactly hdr.length bytes and hands them to
 * dsm_payload_decode().  dsm_msg_decode() does both for a whole buffer.
 * A decoded message is fully validated: handlers need no further checks
 * on its fields, only on whether the message makes sense in their state.
 */

#define DSM_WIRE_MAGIC          0x41474731      /* "AGG1" */
#define DSM_WIRE_VERSION        2
#define DSM_HEADER_SIZE         16
#define DSM_PAGE_SIZE           4096
#define DSM_CONFIG_HASH_SIZE    32
/* The largest state VCPU_STATE carries (CPU and local APIC). */
#define DSM_VCPU_STATE_MAX      (64 * 1024)
/*
 * The largest packet NET_TX and NET_RX carry: a 64 KiB GSO frame, its
 * Ethernet header and the backend's virtio-net header.
 */
#define DSM_NET_PACKET_MAX      (64 * 1024 + 512)
/* The largest payload of any known type: NET_TX/NET_RX with a packet. */
#define DSM_MAX_PAYLOAD         (8 + DSM_NET_PACKET_MAX)

/*
 * Message types.  The high byte is the family, the low byte the message
 * within it; families are reserved up front so adding one never
 * renumbers another.  Type 0 is never valid.  Only the link and DSM
 * families are defined yet: every other type, including the reserved
 * families', is rejected as unknown.
 */
#define DSM_MSG_FAMILY(type)    ((type) >> 8)

typedef enum DSMMsgFamily {
    DSM_FAMILY_LINK = 0x00,         /* link handshake */
    DSM_FAMILY_DSM = 0x01,          /* page coherence */
    DSM_FAMILY_IO = 0x02,           /* PIO/MMIO forwarding */
    DSM_FAMILY_IRQ = 0x03,          /* IRQ, CPU_EVENT, APIC_STATE, EOI */
    DSM_FAMILY_LIFECYCLE = 0x04,    /* SHUTDOWN, RESET, RUN_STATE, ... */
    DSM_FAMILY_CLOCK = 0x05,        /* CLOCK_REQ, CLOCK_RESP */
    DSM_FAMILY_VCPU = 0x06,         /* VCPU_MIGRATE, VCPU_STATE, ... */
    DSM_FAMILY_NET = 0x07,          /* virtio-net queue pairs */
} DSMMsgFamily;

typedef enum DSMMsgType {
    DSM_MSG_HELLO = 0x0001,
    DSM_MSG_PING = 0x0002,
    DSM_MSG_PONG = 0x0003,
    DSM_MSG_REQ = 0x0101,
    DSM_MSG_INV = 0x0102,
    DSM_MSG_ACK = 0x0103,
    DSM_MSG_FWD = 0x0104,
    DSM_MSG_DATA = 0x0105,
    DSM_MSG_GRANT = 0x0106,
    DSM_MSG_DONE = 0x0107,
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
} DSMMsgType;

/* What a REQ asks for and what a FWD tells the supplier to serve. */
typedef enum DSMAccess {
    DSM_ACCESS_READ = 0,
    DSM_ACCESS_WRITE = 1,
} DSMAccess;

/* The rights DATA and GRANT confer: Shared or Exclusive. */
typedef enum DSMMode {
    DSM_MODE_SHARED = 0,
    DSM_MODE_EXCL = 1,
} DSMMode;

/*
 * A decoded message.  Which fields are meaningful depends on the type:
 *
 *   HELLO  fragment, version, config_hash, nr_pages
 *   REQ    page, access
 *   INV    page, tid
 *   ACK    page, tid
 *   FWD    page, tid, access, target
 *   DATA   page, tid, mode, zero, data (when !zero)
 *   GRANT  page, tid, mode
 *   DONE   page, tid
 *
 * The others are zero after decoding and ignored by the encoder.  `seq`
 * is the message's number on its link, per direction (HELLO is 0):
 * link.c stamps it with dsm_header_set_seq() in the order messages
 * reach the socket and checks it on receipt; the codec only carries it.
 */
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
 * PING and PONG, the heartbeat (heartbeat.c): @sent_ns is when the PING
 * left, on the pinger's clock (PONG echoes it); @resident and
 * @exclusive are the sender's page counts.
 */
typedef struct DSMBeat {
    int64_t sent_ns;
    uint64_t resident;
    uint64_t exclusive;
} DSMBeat;

typedef struct DSMMsg {
    DSMMsgType type;
    uint32_t seq;
    uint64_t page;              /* global page index, < nr_pages */
    uint32_t tid;               /* home's per-page transaction id, != 0 */
    DSMAccess access;
    DSMMode mode;
    uint32_t target;            /* FWD: the requester to send DATA to */
    bool zero;                  /* DATA: all-zero page, no payload */
    /*
     * DATA without zero: DSM_PAGE_SIZE bytes.  After decoding it points
     * into the caller's buffer and lives as long as that buffer does.
     */
    const uint8_t *data;
    uint32_t fragment;          /* HELLO: the sender's fragment index */
    uint32_t version;           /* HELLO: protocol version */
    uint8_t config_hash[DSM_CONFIG_HASH_SIZE];  /* HELLO */
    uint64_t nr_pages;          /* HELLO: the sender's DSM page count */
    DSMIOAccess io;             /* IO_REQ, IO_RESP */
    DSMIrq irq;                 /* IRQ, EOI */
    DSMCpuEvent cpu_event;      /* CPU_EVENT */
    DSMApicState apic;          /* APIC_STATE */
    uint32_t cause;             /* SHUTDOWN, RESET, RESET_DONE */
    bool running;               /* RUN_STATE: cont (true) or stop */
    DSMClock clock;             /* CLOCK_REQ, CLOCK_RESP */
    DSMIOMap io_map;            /* IO_MAP */
    DSMVcpu vcpu;               /* VCPU_MIGRATE, VCPU_STATE, VCPU_OWNER */
    DSMBeat beat;               /* PING, PONG */
    DSMNet net;                 /* the NET_* family */
} DSMMsg;

/* A validated header, in host byte order. */
typedef struct DSMHeader {
    DSMMsgType type;
    uint32_t length;            /* payload bytes, valid for the type */
    uint32_t seq;
} DSMHeader;

/*
 * dsm_msg_type_name: the name of a message type ("REQ", "DATA", ...),
 * for trace events and errors; "unknown" for a type the codec does not
 * know.
 */
const char *dsm_msg_type_name(uint16_t type);

/*
 * dsm_msg_encode: append @msg, header and payload, to @out.  @msg must
 * be valid (a known type, enum fields in range, data set for a non-zero
 * DATA): encoding an invalid message is a bug in the caller and aborts.
 */
void dsm_msg_encode(const DSMMsg *msg, GByteArray *out);

/*
 * dsm_header_set_seq: overwrite the sequence number of the encoded
 * message at @buf (@len bytes, at least a header).
 */
void dsm_header_set_seq(uint8_t *buf, size_t len, uint32_t seq);

/*
 * dsm_header_decode: validate the DSM_HEADER_SIZE bytes at @buf (magic,
 * version, known type, length allowed for the type) and fill @hdr.
 * @len is how many bytes @buf holds.  On failure return false with
 * @errp set; @hdr is left untouched.
 */
bool dsm_header_decode(const uint8_t *buf, size_t len, DSMHeader *hdr,
                       Error **errp);

/*
 * dsm_payload_decode: validate the @len payload bytes at @buf that
 * follow @hdr (as returned by dsm_header_decode()) and fill @msg.
 * Pages must be below @nr_pages and fragment indexes below
 * @nr_fragments.  On failure return false with @errp set; @msg is left
 * untouched.
 */
bool dsm_payload_decode(const DSMHeader *hdr, const uint8_t *buf,
                        size_t len, uint64_t nr_pages,
                        uint32_t nr_fragments, DSMMsg *msg, Error **errp);

/*
 * dsm_msg_decode: decode one complete message, header and payload, that
 * fills exactly @len bytes at @buf.  Same contract as
 * dsm_payload_decode().
 */
bool dsm_msg_decode(const uint8_t *buf, size_t len, uint64_t nr_pages,
                    uint32_t nr_fragments, DSMMsg *msg, Error **errp);

#endif /* MIGRATION_DSM_WIRE_H */
