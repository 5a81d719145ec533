/*
 * aggvm: wire codec of the lifecycle family (SHUTDOWN, RESET, RUN_STATE, ...)
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

typedef struct QEMU_PACKED DSMWireShutdown {
    uint32_t cause;
    uint8_t reserved[4];
} DSMWireShutdown;

typedef struct QEMU_PACKED DSMWireRunState {
    uint8_t running;
    uint8_t reserved[7];
} DSMWireRunState;

QEMU_BUILD_BUG_ON(sizeof(DSMWireShutdown) != 8);
QEMU_BUILD_BUG_ON(sizeof(DSMWireRunState) != 8);

static void wire_encode_shutdown(const void *p, GByteArray *out)
{
    const DSMLifecycle *lc = p;
    DSMWireShutdown w = { .cause = cpu_to_be32(lc->cause) };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

/* The cause is checked by the receiver, which knows the causes. */
static bool wire_decode_shutdown(const DSMMsgDesc *desc,
                                 const uint8_t *buf, size_t len,
                                 const DSMLimits *lim, void *p,
                                 Error **errp)
{
    DSMLifecycle *lc = p;
    DSMWireShutdown w;

    memcpy(&w, buf, sizeof(w));
    lc->cause = be32_to_cpu(w.cause);
    return dsm_check_reserved("SHUTDOWN", w.reserved, sizeof(w.reserved),
                              errp);
}

static void wire_encode_run_state(const void *p, GByteArray *out)
{
    const DSMLifecycle *lc = p;
    DSMWireRunState w = { .running = lc->running };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

static bool wire_decode_run_state(const DSMMsgDesc *desc,
                                  const uint8_t *buf, size_t len,
                                  const DSMLimits *lim, void *p,
                                  Error **errp)
{
    DSMLifecycle *lc = p;
    DSMWireRunState w;

    memcpy(&w, buf, sizeof(w));
    lc->running = w.running;
    if (w.running > 1) {
        error_setg(errp, "RUN_STATE %u invalid, expected 0 (stop) or "
                   "1 (cont)", w.running);
        return false;
    }
    return dsm_check_reserved("RUN_STATE", w.reserved, sizeof(w.reserved),
                              errp);
}

static const DSMMsgDesc aggregate_lifecycle_descs[] = {
    { DSM_MSG_SHUTDOWN, "SHUTDOWN", sizeof(DSMWireShutdown), 0,
      wire_encode_shutdown, wire_decode_shutdown,
      .msg_size = sizeof(DSMLifecycle) },
    { DSM_MSG_RESET, "RESET", sizeof(DSMWireShutdown), 0,
      wire_encode_shutdown, wire_decode_shutdown,
      .msg_size = sizeof(DSMLifecycle) },
    { DSM_MSG_RUN_STATE, "RUN_STATE", sizeof(DSMWireRunState), 0,
      wire_encode_run_state, wire_decode_run_state,
      .msg_size = sizeof(DSMLifecycle) },
    { DSM_MSG_RESET_DONE, "RESET_DONE", sizeof(DSMWireShutdown), 0,
      wire_encode_shutdown, wire_decode_shutdown,
      .msg_size = sizeof(DSMLifecycle) },
};

const DSMFamilyCodec aggregate_lifecycle_codec = {
    .family = DSM_FAMILY_LIFECYCLE,
    .name = "lifecycle",
    .descs = aggregate_lifecycle_descs,
    .nr_descs = ARRAY_SIZE(aggregate_lifecycle_descs),
};
