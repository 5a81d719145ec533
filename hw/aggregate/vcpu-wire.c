/*
 * aggvm: wire codec of the vCPU family (VCPU_MIGRATE, VCPU_STATE, ...)
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

QEMU_BUILD_BUG_ON(sizeof(DSMWireVcpu) != 16);
QEMU_BUILD_BUG_ON(sizeof(DSMWireVcpuState) + DSM_VCPU_STATE_MAX >
                  DSM_MAX_PAYLOAD);

/* VCPU_MIGRATE, VCPU_OWNER, and the start of VCPU_STATE */
static DSMWireVcpu wire_vcpu_to_wire(const DSMVcpu *v)
{
    return (DSMWireVcpu) {
        .cpu = cpu_to_be32(v->cpu),
        .fragment = cpu_to_be32(v->fragment),
        .epoch = cpu_to_be32(v->epoch),
    };
}

static bool wire_vcpu_from_wire(const char *name, const DSMWireVcpu *w,
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

static void wire_encode_vcpu(const void *p, GByteArray *out)
{
    const DSMVcpu *vcpu = p;
    DSMWireVcpu w = wire_vcpu_to_wire(vcpu);

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

static bool wire_decode_vcpu(const DSMMsgDesc *desc,
                             const uint8_t *buf, size_t len,
                             const DSMLimits *lim, void *p,
                             Error **errp)
{
    DSMVcpu *vcpu = p;
    DSMWireVcpu w;

    memcpy(&w, buf, sizeof(w));
    return wire_vcpu_from_wire(desc->name, &w, lim,
                              vcpu, errp);
}

/* VCPU_STATE: a fixed part, then the saved state up to its maximum. */
static void wire_encode_vcpu_state(const void *p, GByteArray *out)
{
    const DSMVcpu *vcpu = p;
    DSMWireVcpuState w = {
        .vcpu = wire_vcpu_to_wire(vcpu),
        .clock_ns = cpu_to_be64(vcpu->clock_ns),
    };

    assert(vcpu->len && vcpu->len <= DSM_VCPU_STATE_MAX);
    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
    g_byte_array_append(out, vcpu->state, vcpu->len);
}

static bool wire_decode_vcpu_state(const DSMMsgDesc *desc,
                                   const uint8_t *buf, size_t len,
                                   const DSMLimits *lim, void *p,
                                   Error **errp)
{
    DSMVcpu *vcpu = p;
    DSMWireVcpuState w;

    /* The header check allowed only a non-empty state. */
    memcpy(&w, buf, sizeof(w));
    vcpu->clock_ns = be64_to_cpu(w.clock_ns);
    vcpu->len = len - sizeof(w);
    vcpu->state = buf + sizeof(w);
    return wire_vcpu_from_wire("VCPU_STATE", &w.vcpu, lim, vcpu, errp);
}

static const DSMMsgDesc aggregate_vcpu_descs[] = {
    { DSM_MSG_VCPU_MIGRATE, "VCPU_MIGRATE", sizeof(DSMWireVcpu), 0,
      wire_encode_vcpu, wire_decode_vcpu,
      .msg_size = sizeof(DSMVcpu) },
    { DSM_MSG_VCPU_STATE, "VCPU_STATE", sizeof(DSMWireVcpuState),
      DSM_VCPU_STATE_MAX, wire_encode_vcpu_state, wire_decode_vcpu_state,
      .varies = true,
      .msg_size = sizeof(DSMVcpu) },
    { DSM_MSG_VCPU_OWNER, "VCPU_OWNER", sizeof(DSMWireVcpu), 0,
      wire_encode_vcpu, wire_decode_vcpu,
      .msg_size = sizeof(DSMVcpu) },
};

const DSMFamilyCodec aggregate_vcpu_codec = {
    .family = DSM_FAMILY_VCPU,
    .name = "vCPU",
    .descs = aggregate_vcpu_descs,
    .nr_descs = ARRAY_SIZE(aggregate_vcpu_descs),
};
