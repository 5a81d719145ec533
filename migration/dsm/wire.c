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

/*
 * Assumptions:
 * - Every byte comes from a peer that may be buggy or of another
 *   version, so nothing is trusted: the header is checked before the
 *   payload is read, and the payload field by field before anything
 *   is written to the caller's DSMMsg.
 * - Layouts are the packed structs below, converted field by field
 *   with cpu_to_be*() and be*_to_cpu().  Reserved bytes are sent as
 *   zero and must be zero, so a later version can give them a meaning
 *   (it also bumps DSM_WIRE_VERSION).
 * - One table row per message type gives its name, payload size and
 *   codec functions; adding a type is adding a row.
 *
 * Payload layouts (big-endian, byte offsets):
 *
 *   HELLO  48  0 fragment u32, 4 version u32, 8 config_hash[32],
 *              40 nr_pages u64
 *   REQ    12  0 page u64, 8 access u8, 9 reserved[3]
 *   INV    12  0 page u64, 8 tid u32
 *   ACK    12  (as INV)
 *   DONE   12  (as INV)
 *   FWD    20  0 page u64, 8 tid u32, 12 access u8, 13 reserved[3],
 *              16 target u32
 *   GRANT  16  0 page u64, 8 tid u32, 12 mode u8, 13 reserved[3]
 *   DATA   16  0 page u64, 8 tid u32, 12 mode u8, 13 flags u8,
 *              14 reserved[2]; then the 4096-byte page unless flags
 *              has DSM_DATA_ZERO (payload 16 or 4112 bytes)
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "migration/dsm/wire.h"

typedef struct QEMU_PACKED DSMWireHeader {
    uint32_t magic;
    uint16_t version;
    uint16_t type;
    uint32_t length;
    uint32_t seq;
} DSMWireHeader;

typedef struct QEMU_PACKED DSMWireHello {
    uint32_t fragment;
    uint32_t version;
    uint8_t config_hash[DSM_CONFIG_HASH_SIZE];
    uint64_t nr_pages;
} DSMWireHello;

typedef struct QEMU_PACKED DSMWireReq {
    uint64_t page;
    uint8_t access;
    uint8_t reserved[3];
} DSMWireReq;

/* INV, ACK and DONE. */
typedef struct QEMU_PACKED DSMWirePageTid {
    uint64_t page;
    uint32_t tid;
} DSMWirePageTid;

typedef struct QEMU_PACKED DSMWireFwd {
    uint64_t page;
    uint32_t tid;
    uint8_t access;
    uint8_t reserved[3];
    uint32_t target;
} DSMWireFwd;

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

typedef struct QEMU_PACKED DSMWireClock {
    uint32_t id;
    uint8_t reserved[4];
    uint64_t ticks;
} DSMWireClock;

typedef struct QEMU_PACKED DSMWireIOMap {
    uint16_t offset;
    uint8_t len;
    uint8_t reserved;
    uint8_t bytes[DSM_IO_MAP_MAX];
} DSMWireIOMap;

typedef struct QEMU_PACKED DSMWireGrant {
    uint64_t page;
    uint32_t tid;
    uint8_t mode;
    uint8_t reserved[3];
} DSMWireGrant;

#define DSM_DATA_ZERO   0x01

typedef struct QEMU_PACKED DSMWireData {
    uint64_t page;
    uint32_t tid;
    uint8_t mode;
    uint8_t flags;
    uint8_t reserved[2];
} DSMWireData;

typedef struct QEMU_PACKED DSMWireBeat {
    int64_t sent_ns;
    uint64_t resident;
    uint64_t exclusive;
} DSMWireBeat;

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

QEMU_BUILD_BUG_ON(sizeof(DSMWireHeader) != DSM_HEADER_SIZE);
QEMU_BUILD_BUG_ON(sizeof(DSMWireHello) != 48);
QEMU_BUILD_BUG_ON(sizeof(DSMWireReq) != 12);
QEMU_BUILD_BUG_ON(sizeof(DSMWirePageTid) != 12);
QEMU_BUILD_BUG_ON(sizeof(DSMWireFwd) != 20);
QEMU_BUILD_BUG_ON(sizeof(DSMWireGrant) != 16);
QEMU_BUILD_BUG_ON(sizeof(DSMWireIOReq) != 32);
QEMU_BUILD_BUG_ON(sizeof(DSMWireIOResp) != 16);
QEMU_BUILD_BUG_ON(sizeof(DSMWireIrq) != 8);
QEMU_BUILD_BUG_ON(sizeof(DSMWireCpuEvent) != 8);
QEMU_BUILD_BUG_ON(sizeof(DSMWireApicState) != 16);
QEMU_BUILD_BUG_ON(sizeof(DSMWireShutdown) != 8);
QEMU_BUILD_BUG_ON(sizeof(DSMWireClock) != 16);
QEMU_BUILD_BUG_ON(sizeof(DSMWireRunState) != 8);
QEMU_BUILD_BUG_ON(sizeof(DSMWireIOMap) != 20);
QEMU_BUILD_BUG_ON(sizeof(DSMWireVcpu) != 16);
QEMU_BUILD_BUG_ON(sizeof(DSMWireBeat) != 24);
QEMU_BUILD_BUG_ON(sizeof(DSMWireVcpuState) + DSM_VCPU_STATE_MAX !=
                  DSM_MAX_PAYLOAD);
QEMU_BUILD_BUG_ON(sizeof(DSMWireData) + DSM_PAGE_SIZE > DSM_MAX_PAYLOAD);

/* The bounds a peer's indexes are checked against. */
typedef struct DSMLimits {
    uint64_t nr_pages;
    uint32_t nr_fragments;
} DSMLimits;

typedef void DSMEncodeFn(const DSMMsg *msg, GByteArray *out);
typedef bool DSMDecodeFn(const uint8_t *buf, size_t len,
                         const DSMLimits *lim, DSMMsg *msg, Error **errp);

typedef struct DSMMsgDesc {
    DSMMsgType type;
    const char *name;
    uint32_t size;              /* fixed part of the payload */
    uint32_t extra;             /* optional tail: DATA's page, else 0 */
    DSMEncodeFn *encode;
    DSMDecodeFn *decode;
    bool varies;                /* the tail is 1 to @extra bytes long */
} DSMMsgDesc;

/* Field checks shared by the decoders.  @name is the message type's. */

static bool dsm_check_page(const char *name, uint64_t page,
                           const DSMLimits *lim, Error **errp)
{
    if (page >= lim->nr_pages) {
        error_setg(errp, "dsm: %s page 0x%" PRIx64 " out of range, "
                   "expected below 0x%" PRIx64, name, page, lim->nr_pages);
        return false;
    }
    return true;
}

static bool dsm_check_fragment(const char *name, const char *what,
                               uint32_t fragment, const DSMLimits *lim,
                               Error **errp)
{
    if (fragment >= lim->nr_fragments) {
        error_setg(errp, "dsm: %s %s fragment %u out of range, "
                   "expected below %u", name, what, fragment,
                   lim->nr_fragments);
        return false;
    }
    return true;
}

/* tid 0 means "no transaction" at the home, so no message carries it. */
static bool dsm_check_tid(const char *name, uint32_t tid, Error **errp)
{
    if (tid == 0) {
        error_setg(errp, "dsm: %s tid 0 invalid, expected non-zero", name);
        return false;
    }
    return true;
}

static bool dsm_check_access(const char *name, uint8_t access, Error **errp)
{
    if (access > DSM_ACCESS_WRITE) {
        error_setg(errp, "dsm: %s access %u invalid, expected 0 (R) or 1 (W)",
                   name, access);
        return false;
    }
    return true;
}

static bool dsm_check_mode(const char *name, uint8_t mode, Error **errp)
{
    if (mode > DSM_MODE_EXCL) {
        error_setg(errp, "dsm: %s mode %u invalid, expected 0 (S) or 1 (E)",
                   name, mode);
        return false;
    }
    return true;
}

static bool dsm_check_reserved(const char *name, const uint8_t *reserved,
                               size_t len, Error **errp)
{
    if (!buffer_is_zero(reserved, len)) {
        error_setg(errp, "dsm: %s reserved bytes not zero, expected zero",
                   name);
        return false;
    }
    return true;
}

/* Page and tid, the prefix of every DSM message but REQ. */
static bool dsm_check_page_tid(const char *name, uint64_t page, uint32_t tid,
                               const DSMLimits *lim, Error **errp)
{
    return dsm_check_page(name, page, lim, errp) &&
           dsm_check_tid(name, tid, errp);
}

/* HELLO */

static void dsm_encode_hello(const DSMMsg *msg, GByteArray *out)
{
    DSMWireHello w = {
        .fragment = cpu_to_be32(msg->fragment),
        .version = cpu_to_be32(msg->version),
        .nr_pages = cpu_to_be64(msg->nr_pages),
    };

    memcpy(w.config_hash, msg->config_hash, sizeof(w.config_hash));
    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

/*
 * The protocol version and page count are not checked here: the
 * handshake compares them with its own and says which side has what.
 */
static bool dsm_decode_hello(const uint8_t *buf, size_t len,
                             const DSMLimits *lim, DSMMsg *msg, Error **errp)
{
    DSMWireHello w;

    memcpy(&w, buf, sizeof(w));
    msg->fragment = be32_to_cpu(w.fragment);
    msg->version = be32_to_cpu(w.version);
    msg->nr_pages = be64_to_cpu(w.nr_pages);
    memcpy(msg->config_hash, w.config_hash, sizeof(w.config_hash));
    return dsm_check_fragment("HELLO", "sender", msg->fragment, lim, errp);
}

/* REQ */

static void dsm_encode_req(const DSMMsg *msg, GByteArray *out)
{
    DSMWireReq w = {
        .page = cpu_to_be64(msg->page),
        .access = msg->access,
    };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

static bool dsm_decode_req(const uint8_t *buf, size_t len,
                           const DSMLimits *lim, DSMMsg *msg, Error **errp)
{
    DSMWireReq w;

    memcpy(&w, buf, sizeof(w));
    msg->page = be64_to_cpu(w.page);
    msg->access = w.access;
    return dsm_check_page("REQ", msg->page, lim, errp) &&
           dsm_check_access("REQ", w.access, errp) &&
           dsm_check_reserved("REQ", w.reserved, sizeof(w.reserved), errp);
}

/* INV, ACK, DONE */

static void dsm_encode_page_tid(const DSMMsg *msg, GByteArray *out)
{
    DSMWirePageTid w = {
        .page = cpu_to_be64(msg->page),
        .tid = cpu_to_be32(msg->tid),
    };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

static bool dsm_decode_page_tid(const uint8_t *buf, size_t len,
                                const DSMLimits *lim, DSMMsg *msg,
                                Error **errp)
{
    DSMWirePageTid w;

    memcpy(&w, buf, sizeof(w));
    msg->page = be64_to_cpu(w.page);
    msg->tid = be32_to_cpu(w.tid);
    return dsm_check_page_tid(dsm_msg_type_name(msg->type), msg->page,
                              msg->tid, lim, errp);
}

/* FWD */

static void dsm_encode_fwd(const DSMMsg *msg, GByteArray *out)
{
    DSMWireFwd w = {
        .page = cpu_to_be64(msg->page),
        .tid = cpu_to_be32(msg->tid),
        .access = msg->access,
        .target = cpu_to_be32(msg->target),
    };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

static bool dsm_decode_fwd(const uint8_t *buf, size_t len,
                           const DSMLimits *lim, DSMMsg *msg, Error **errp)
{
    DSMWireFwd w;

    memcpy(&w, buf, sizeof(w));
    msg->page = be64_to_cpu(w.page);
    msg->tid = be32_to_cpu(w.tid);
    msg->access = w.access;
    msg->target = be32_to_cpu(w.target);
    return dsm_check_page_tid("FWD", msg->page, msg->tid, lim, errp) &&
           dsm_check_access("FWD", w.access, errp) &&
           dsm_check_reserved("FWD", w.reserved, sizeof(w.reserved), errp) &&
           dsm_check_fragment("FWD", "target", msg->target, lim, errp);
}

/* GRANT */

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
        error_setg(errp, "dsm: IO_REQ space %u invalid, expected 0 (memory) "
                   "or 1 (I/O)", io->space);
    } else if (io->size != 1 && io->size != 2 && io->size != 4 &&
               io->size != 8) {
        error_setg(errp, "dsm: IO_REQ size %u invalid, expected 1, 2, 4 or "
                   "8", io->size);
    } else if (w->write > 1 || w->reserved) {
        error_setg(errp, "dsm: IO_REQ flags 0x%x/0x%x invalid, expected "
                   "write 0 or 1 and reserved 0", w->write, w->reserved);
    } else if (io->attrs & ~DSM_IO_ATTR_KNOWN) {
        error_setg(errp, "dsm: IO_REQ attributes 0x%x invalid, expected "
                   "bits in 0x%x", io->attrs, DSM_IO_ATTR_KNOWN);
    } else if (io->space == DSM_IO_SPACE_IO &&
               (io->addr > 0xffff || io->addr + io->size > 0x10000)) {
        error_setg(errp, "dsm: IO_REQ port 0x%" PRIx64 " out of range, "
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
        error_setg(errp, "dsm: IRQ trigger %u invalid, expected 0 (edge) "
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
        error_setg(errp, "dsm: CPU_EVENT events 0x%x invalid", w.events);
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
        error_setg(errp, "dsm: APIC_STATE destination format 0x%x invalid, "
                   "expected 0xf (flat) or 0 (cluster)", w.dest_mode);
        return false;
    }
    if (w.x2apic > 1) {
        error_setg(errp, "dsm: APIC_STATE x2APIC flag %u invalid", w.x2apic);
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
        error_setg(errp, "dsm: RUN_STATE %u invalid, expected 0 (stop) or "
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
        .ticks = cpu_to_be64(msg->clock.ticks),
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
    };
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
        error_setg(errp, "dsm: IO_MAP of %u bytes at 0x%x is outside the "
                   "PCI configuration header", w.len, msg->io_map.offset);
        return false;
    }
    return dsm_check_reserved("IO_MAP", &w.reserved, 1, errp);
}

static void dsm_encode_grant(const DSMMsg *msg, GByteArray *out)
{
    DSMWireGrant w = {
        .page = cpu_to_be64(msg->page),
        .tid = cpu_to_be32(msg->tid),
        .mode = msg->mode,
    };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

static bool dsm_decode_grant(const uint8_t *buf, size_t len,
                             const DSMLimits *lim, DSMMsg *msg, Error **errp)
{
    DSMWireGrant w;

    memcpy(&w, buf, sizeof(w));
    msg->page = be64_to_cpu(w.page);
    msg->tid = be32_to_cpu(w.tid);
    msg->mode = w.mode;
    return dsm_check_page_tid("GRANT", msg->page, msg->tid, lim, errp) &&
           dsm_check_mode("GRANT", w.mode, errp) &&
           dsm_check_reserved("GRANT", w.reserved, sizeof(w.reserved), errp);
}

/* DATA */

static void dsm_encode_data(const DSMMsg *msg, GByteArray *out)
{
    DSMWireData w = {
        .page = cpu_to_be64(msg->page),
        .tid = cpu_to_be32(msg->tid),
        .mode = msg->mode,
        .flags = msg->zero ? DSM_DATA_ZERO : 0,
    };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
    if (!msg->zero) {
        g_byte_array_append(out, msg->data, DSM_PAGE_SIZE);
    }
}

/* The header allowed 16 or 4112 bytes; the ZERO flag says which. */
static bool dsm_check_data_flags(uint8_t flags, size_t len, Error **errp)
{
    size_t want = sizeof(DSMWireData) +
                  ((flags & DSM_DATA_ZERO) ? 0 : DSM_PAGE_SIZE);

    if (flags & ~DSM_DATA_ZERO) {
        error_setg(errp, "dsm: DATA flags 0x%x invalid, expected 0x0 or "
                   "0x%x (ZERO)", flags, DSM_DATA_ZERO);
        return false;
    }
    if (len != want) {
        error_setg(errp, "dsm: DATA payload is %zu bytes, expected %zu "
                   "for flags 0x%x", len, want, flags);
        return false;
    }
    return true;
}

static bool dsm_decode_data(const uint8_t *buf, size_t len,
                            const DSMLimits *lim, DSMMsg *msg, Error **errp)
{
    DSMWireData w;

    memcpy(&w, buf, sizeof(w));
    msg->page = be64_to_cpu(w.page);
    msg->tid = be32_to_cpu(w.tid);
    msg->mode = w.mode;
    msg->zero = w.flags & DSM_DATA_ZERO;
    msg->data = msg->zero ? NULL : buf + sizeof(w);
    return dsm_check_page_tid("DATA", msg->page, msg->tid, lim, errp) &&
           dsm_check_mode("DATA", w.mode, errp) &&
           dsm_check_data_flags(w.flags, len, errp) &&
           dsm_check_reserved("DATA", w.reserved, sizeof(w.reserved), errp);
}

/* PING, PONG: any values are valid */

static void dsm_encode_beat(const DSMMsg *msg, GByteArray *out)
{
    DSMWireBeat w = {
        .sent_ns = cpu_to_be64(msg->beat.sent_ns),
        .resident = cpu_to_be64(msg->beat.resident),
        .exclusive = cpu_to_be64(msg->beat.exclusive),
    };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

static bool dsm_decode_beat(const uint8_t *buf, size_t len,
                            const DSMLimits *lim, DSMMsg *msg, Error **errp)
{
    DSMWireBeat w;

    memcpy(&w, buf, sizeof(w));
    msg->beat = (DSMBeat) {
        .sent_ns = be64_to_cpu(w.sent_ns),
        .resident = be64_to_cpu(w.resident),
        .exclusive = be64_to_cpu(w.exclusive),
    };
    return true;
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

static const DSMMsgDesc dsm_msg_descs[] = {
    { DSM_MSG_HELLO, "HELLO", sizeof(DSMWireHello), 0,
      dsm_encode_hello, dsm_decode_hello },
    { DSM_MSG_PING, "PING", sizeof(DSMWireBeat), 0,
      dsm_encode_beat, dsm_decode_beat },
    { DSM_MSG_PONG, "PONG", sizeof(DSMWireBeat), 0,
      dsm_encode_beat, dsm_decode_beat },
    { DSM_MSG_REQ, "REQ", sizeof(DSMWireReq), 0,
      dsm_encode_req, dsm_decode_req },
    { DSM_MSG_INV, "INV", sizeof(DSMWirePageTid), 0,
      dsm_encode_page_tid, dsm_decode_page_tid },
    { DSM_MSG_ACK, "ACK", sizeof(DSMWirePageTid), 0,
      dsm_encode_page_tid, dsm_decode_page_tid },
    { DSM_MSG_FWD, "FWD", sizeof(DSMWireFwd), 0,
      dsm_encode_fwd, dsm_decode_fwd },
    { DSM_MSG_DATA, "DATA", sizeof(DSMWireData), DSM_PAGE_SIZE,
      dsm_encode_data, dsm_decode_data },
    { DSM_MSG_GRANT, "GRANT", sizeof(DSMWireGrant), 0,
      dsm_encode_grant, dsm_decode_grant },
    { DSM_MSG_DONE, "DONE", sizeof(DSMWirePageTid), 0,
      dsm_encode_page_tid, dsm_decode_page_tid },
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
};

static const DSMMsgDesc *dsm_msg_desc(uint16_t type)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(dsm_msg_descs); i++) {
        if (dsm_msg_descs[i].type == type) {
            return &dsm_msg_descs[i];
        }
    }
    return NULL;
}

const char *dsm_msg_type_name(uint16_t type)
{
    const DSMMsgDesc *desc = dsm_msg_desc(type);

    return desc ? desc->name : "unknown";
}

void dsm_msg_encode(const DSMMsg *msg, GByteArray *out)
{
    const DSMMsgDesc *desc = dsm_msg_desc(msg->type);
    DSMWireHeader hdr;
    guint start = out->len;

    assert(desc);
    assert(msg->access <= DSM_ACCESS_WRITE && msg->mode <= DSM_MODE_EXCL);
    assert(msg->type != DSM_MSG_DATA || msg->zero || msg->data);

    hdr = (DSMWireHeader) {
        .magic = cpu_to_be32(DSM_WIRE_MAGIC),
        .version = cpu_to_be16(DSM_WIRE_VERSION),
        .type = cpu_to_be16(msg->type),
        .seq = cpu_to_be32(msg->seq),
    };
    g_byte_array_append(out, (const guint8 *)&hdr, sizeof(hdr));
    desc->encode(msg, out);

    /* Only now is the payload's length known: patch it in. */
    hdr.length = cpu_to_be32(out->len - start - sizeof(hdr));
    memcpy(out->data + start, &hdr, sizeof(hdr));
}

static bool dsm_check_length(const DSMMsgDesc *desc, uint32_t length,
                             Error **errp)
{
    if (desc->varies) {
        if (length > desc->size && length - desc->size <= desc->extra) {
            return true;
        }
        error_setg(errp, "dsm: %s payload is %u bytes, expected %u to %u",
                   desc->name, length, desc->size + 1,
                   desc->size + desc->extra);
        return false;
    }
    if (length == desc->size ||
        (desc->extra && length == desc->size + desc->extra)) {
        return true;
    }
    if (desc->extra) {
        error_setg(errp, "dsm: %s payload is %u bytes, expected %u or %u",
                   desc->name, length, desc->size, desc->size + desc->extra);
    } else {
        error_setg(errp, "dsm: %s payload is %u bytes, expected %u",
                   desc->name, length, desc->size);
    }
    return false;
}

/* Magic and version: is this our protocol at all? */
static bool dsm_check_header_ids(const DSMWireHeader *w, Error **errp)
{
    uint32_t magic = be32_to_cpu(w->magic);
    uint16_t version = be16_to_cpu(w->version);

    if (magic != DSM_WIRE_MAGIC) {
        error_setg(errp, "dsm: received magic 0x%08x, expected 0x%08x",
                   magic, DSM_WIRE_MAGIC);
        return false;
    }
    if (version != DSM_WIRE_VERSION) {
        error_setg(errp, "dsm: received version %u, expected %u",
                   version, DSM_WIRE_VERSION);
        return false;
    }
    return true;
}

bool dsm_header_decode(const uint8_t *buf, size_t len, DSMHeader *hdr,
                       Error **errp)
{
    DSMWireHeader w;
    const DSMMsgDesc *desc;

    if (len < sizeof(w)) {
        error_setg(errp, "dsm: header is %zu bytes, expected %zu",
                   len, sizeof(w));
        return false;
    }
    memcpy(&w, buf, sizeof(w));
    if (!dsm_check_header_ids(&w, errp)) {
        return false;
    }
    desc = dsm_msg_desc(be16_to_cpu(w.type));
    if (!desc) {
        error_setg(errp, "dsm: message type 0x%04x unknown",
                   be16_to_cpu(w.type));
        return false;
    }
    if (!dsm_check_length(desc, be32_to_cpu(w.length), errp)) {
        return false;
    }
    *hdr = (DSMHeader) {
        .type = desc->type,
        .length = be32_to_cpu(w.length),
        .seq = be32_to_cpu(w.seq),
    };
    return true;
}

bool dsm_payload_decode(const DSMHeader *hdr, const uint8_t *buf,
                        size_t len, uint64_t nr_pages,
                        uint32_t nr_fragments, DSMMsg *msg, Error **errp)
{
    const DSMMsgDesc *desc = dsm_msg_desc(hdr->type);
    const DSMLimits lim = { nr_pages, nr_fragments };
    DSMMsg m = { .type = hdr->type, .seq = hdr->seq };

    /* A caller that skipped dsm_header_decode() gets an error, too. */
    if (!desc) {
        error_setg(errp, "dsm: message type 0x%04x unknown", hdr->type);
        return false;
    }
    if (len != hdr->length) {
        error_setg(errp, "dsm: %s message has %zu payload bytes, header "
                   "says %u", desc->name, len, hdr->length);
        return false;
    }
    if (!dsm_check_length(desc, len, errp) ||
        !desc->decode(buf, len, &lim, &m, errp)) {
        return false;
    }
    *msg = m;
    return true;
}

bool dsm_msg_decode(const uint8_t *buf, size_t len, uint64_t nr_pages,
                    uint32_t nr_fragments, DSMMsg *msg, Error **errp)
{
    DSMHeader hdr;

    if (!dsm_header_decode(buf, len, &hdr, errp)) {
        return false;
    }
    return dsm_payload_decode(&hdr, buf + DSM_HEADER_SIZE,
                              len - DSM_HEADER_SIZE, nr_pages, nr_fragments,
                              msg, errp);
}
