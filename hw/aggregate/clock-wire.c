/*
 * aggvm: wire codec of the clock family (CLOCK_REQ, CLOCK_RESP)
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

#define DSM_CLOCK_RUNNING   0x01

typedef struct QEMU_PACKED DSMWireClock {
    uint32_t id;
    uint8_t flags;
    uint8_t reserved[3];
    uint64_t ticks;
    uint64_t virtual_ns;
} DSMWireClock;

QEMU_BUILD_BUG_ON(sizeof(DSMWireClock) != 24);

static void wire_encode_clock(const void *p, GByteArray *out)
{
    const DSMClock *clock = p;
    DSMWireClock w = {
        .id = cpu_to_be32(clock->id),
        .flags = clock->running ? DSM_CLOCK_RUNNING : 0,
        .ticks = cpu_to_be64(clock->ticks),
        .virtual_ns = cpu_to_be64(clock->virtual_ns),
    };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

static bool wire_decode_clock(const DSMMsgDesc *desc,
                              const uint8_t *buf, size_t len,
                              const DSMLimits *lim, void *p,
                              Error **errp)
{
    DSMClock *clock = p;
    DSMWireClock w;

    memcpy(&w, buf, sizeof(w));
    *clock = (DSMClock) {
        .id = be32_to_cpu(w.id),
        .ticks = be64_to_cpu(w.ticks),
        .virtual_ns = be64_to_cpu(w.virtual_ns),
        .running = w.flags & DSM_CLOCK_RUNNING,
    };
    if (w.flags & ~DSM_CLOCK_RUNNING) {
        error_setg(errp, "%s flags 0x%x invalid, expected 0x0 or 0x%x "
                   "(running)", desc->name, w.flags,
                   DSM_CLOCK_RUNNING);
        return false;
    }
    return dsm_check_reserved(desc->name, w.reserved,
                              sizeof(w.reserved), errp);
}

static const DSMMsgDesc aggregate_clock_descs[] = {
    { DSM_MSG_CLOCK_REQ, "CLOCK_REQ", sizeof(DSMWireClock), 0,
      wire_encode_clock, wire_decode_clock,
      .msg_size = sizeof(DSMClock) },
    { DSM_MSG_CLOCK_RESP, "CLOCK_RESP", sizeof(DSMWireClock), 0,
      wire_encode_clock, wire_decode_clock,
      .msg_size = sizeof(DSMClock) },
};

const DSMFamilyCodec aggregate_clock_codec = {
    .family = DSM_FAMILY_CLOCK,
    .name = "clock",
    .descs = aggregate_clock_descs,
    .nr_descs = ARRAY_SIZE(aggregate_clock_descs),
};
