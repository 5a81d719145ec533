/*
 * aggvm: wire codec of the I/O family (IO_REQ, IO_RESP, IO_MAP)
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

typedef struct QEMU_PACKED DSMWireIOMap {
    uint16_t offset;
    uint8_t len;
    uint8_t reserved;
    uint8_t bytes[DSM_IO_MAP_MAX];
} DSMWireIOMap;

QEMU_BUILD_BUG_ON(sizeof(DSMWireIOReq) != 32);
QEMU_BUILD_BUG_ON(sizeof(DSMWireIOResp) != 16);
QEMU_BUILD_BUG_ON(sizeof(DSMWireIOMap) != 20);

static void wire_encode_io_req(const void *p, GByteArray *out)
{
    const DSMIOAccess *io = p;
    DSMWireIOReq w = {
        .id = cpu_to_be32(io->id),
        .space = io->space,
        .size = io->size,
        .write = io->write,
        .cpu = cpu_to_be32(io->cpu),
        .attrs = cpu_to_be32(io->attrs),
        .addr = cpu_to_be64(io->addr),
        .data = cpu_to_be64(io->data),
    };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

/* Space, size and flags are checked here; the vCPU index by the origin. */
static bool wire_check_io_req(const DSMWireIOReq *w, const DSMIOAccess *io,
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

static bool wire_decode_io_req(const DSMMsgDesc *desc,
                               const uint8_t *buf, size_t len,
                               const DSMLimits *lim, void *p,
                               Error **errp)
{
    DSMIOAccess *io = p;
    DSMWireIOReq w;

    memcpy(&w, buf, sizeof(w));
    *io = (DSMIOAccess) {
        .id = be32_to_cpu(w.id),
        .space = w.space,
        .size = w.size,
        .write = w.write,
        .cpu = be32_to_cpu(w.cpu),
        .attrs = be32_to_cpu(w.attrs),
        .addr = be64_to_cpu(w.addr),
        .data = be64_to_cpu(w.data),
    };
    return wire_check_io_req(&w, io, errp);
}

static void wire_encode_io_resp(const void *p, GByteArray *out)
{
    const DSMIOAccess *io = p;
    DSMWireIOResp w = {
        .id = cpu_to_be32(io->id),
        .result = cpu_to_be32(io->result),
        .data = cpu_to_be64(io->data),
    };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

static bool wire_decode_io_resp(const DSMMsgDesc *desc,
                                const uint8_t *buf, size_t len,
                                const DSMLimits *lim, void *p,
                                Error **errp)
{
    DSMIOAccess *io = p;
    DSMWireIOResp w;

    memcpy(&w, buf, sizeof(w));
    *io = (DSMIOAccess) {
        .id = be32_to_cpu(w.id),
        .result = be32_to_cpu(w.result),
        .data = be64_to_cpu(w.data),
    };
    return true;
}

static void wire_encode_io_map(const void *p, GByteArray *out)
{
    const DSMIOMap *map = p;
    DSMWireIOMap w = {
        .offset = cpu_to_be16(map->offset),
        .len = map->len,
    };

    memcpy(w.bytes, map->bytes, map->len);
    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

static bool wire_decode_io_map(const DSMMsgDesc *desc,
                               const uint8_t *buf, size_t len,
                               const DSMLimits *lim, void *p,
                               Error **errp)
{
    DSMIOMap *map = p;
    DSMWireIOMap w;

    memcpy(&w, buf, sizeof(w));
    map->offset = be16_to_cpu(w.offset);
    map->len = w.len;
    memcpy(map->bytes, w.bytes, sizeof(w.bytes));
    if (!w.len || w.len > DSM_IO_MAP_MAX ||
        map->offset + w.len > DSM_IO_MAP_SPACE) {
        error_setg(errp, "IO_MAP of %u bytes at 0x%x is outside the "
                   "PCI configuration header", w.len, map->offset);
        return false;
    }
    return dsm_check_reserved("IO_MAP", &w.reserved, 1, errp);
}

static const DSMMsgDesc aggregate_io_descs[] = {
    { DSM_MSG_IO_REQ, "IO_REQ", sizeof(DSMWireIOReq), 0,
      wire_encode_io_req, wire_decode_io_req,
      .msg_size = sizeof(DSMIOAccess) },
    { DSM_MSG_IO_RESP, "IO_RESP", sizeof(DSMWireIOResp), 0,
      wire_encode_io_resp, wire_decode_io_resp,
      .msg_size = sizeof(DSMIOAccess) },
    { DSM_MSG_IO_MAP, "IO_MAP", sizeof(DSMWireIOMap), 0,
      wire_encode_io_map, wire_decode_io_map,
      .msg_size = sizeof(DSMIOMap) },
};

const DSMFamilyCodec aggregate_io_codec = {
    .family = DSM_FAMILY_IO,
    .name = "I/O",
    .descs = aggregate_io_descs,
    .nr_descs = ARRAY_SIZE(aggregate_io_descs),
};
