/*
 * aggvm: wire codec of the net family (virtio-net queue pairs)
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

QEMU_BUILD_BUG_ON(sizeof(DSMWireNetVq) != 56);
QEMU_BUILD_BUG_ON(sizeof(DSMWireNetStart) != 136);
QEMU_BUILD_BUG_ON(sizeof(DSMWireNetId) + DSM_NET_PACKET_MAX !=
                  DSM_MAX_PAYLOAD);

/* The net family: every message starts with the NIC and queue pair. */
static DSMWireNetId wire_net_id_to_wire(const DSMNet *n)
{
    return (DSMWireNetId) {
        .nic = cpu_to_be32(n->nic),
        .pair = cpu_to_be32(n->pair),
    };
}

static void wire_net_id_from_wire(const DSMWireNetId *w, DSMNet *n)
{
    n->nic = be32_to_cpu(w->nic);
    n->pair = be32_to_cpu(w->pair);
}

static DSMWireNetVq wire_net_vq_to_wire(const DSMNetVq *q)
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

static bool wire_net_vq_from_wire(const DSMWireNetVq *w, DSMNetVq *q,
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

static void wire_encode_net_start(const void *p, GByteArray *out)
{
    const DSMNet *net = p;
    const DSMNet *n = net;
    DSMWireNetStart w = {
        .id = wire_net_id_to_wire(n),
        .curr_pairs = cpu_to_be32(n->curr_pairs),
        .status = n->status,
        .update = n->update,
        .features = cpu_to_be64(n->features),
        .q = { wire_net_vq_to_wire(&n->q[0]), wire_net_vq_to_wire(&n->q[1]) },
    };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

static bool wire_decode_net_start(const DSMMsgDesc *desc,
                                  const uint8_t *buf, size_t len,
                                  const DSMLimits *lim, void *p,
                                  Error **errp)
{
    DSMNet *net = p;
    DSMNet *n = net;
    DSMWireNetStart w;

    memcpy(&w, buf, sizeof(w));
    wire_net_id_from_wire(&w.id, n);
    n->curr_pairs = be32_to_cpu(w.curr_pairs);
    n->status = w.status;
    n->update = w.update;
    n->features = be64_to_cpu(w.features);
    if (w.update > 1 || !n->curr_pairs) {
        error_setg(errp, "NET_START with %u queue pairs in use "
                   "(update %u)", n->curr_pairs, w.update);
        return false;
    }
    return wire_net_vq_from_wire(&w.q[0], &n->q[0], errp) &&
           wire_net_vq_from_wire(&w.q[1], &n->q[1], errp) &&
           dsm_check_reserved("NET_START", (const uint8_t *)&w.reserved,
                              sizeof(w.reserved), errp);
}

static void wire_encode_net_id(const void *p, GByteArray *out)
{
    const DSMNet *net = p;
    DSMWireNetId w = wire_net_id_to_wire(net);

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

static bool wire_decode_net_id(const DSMMsgDesc *desc,
                               const uint8_t *buf, size_t len,
                               const DSMLimits *lim, void *p,
                               Error **errp)
{
    DSMNet *net = p;
    DSMWireNetId w;

    memcpy(&w, buf, sizeof(w));
    wire_net_id_from_wire(&w, net);
    return true;
}

static void wire_encode_net_kick(const void *p, GByteArray *out)
{
    const DSMNet *net = p;
    DSMWireNetKick w = {
        .id = wire_net_id_to_wire(net),
        .vq = cpu_to_be32(net->vq),
    };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

static bool wire_decode_net_kick(const DSMMsgDesc *desc,
                                 const uint8_t *buf, size_t len,
                                 const DSMLimits *lim, void *p,
                                 Error **errp)
{
    DSMNet *net = p;
    DSMWireNetKick w;

    memcpy(&w, buf, sizeof(w));
    wire_net_id_from_wire(&w.id, net);
    net->vq = be32_to_cpu(w.vq);
    if (net->vq > 1) {
        error_setg(errp, "NET_KICK for virtqueue %u of a pair",
                   net->vq);
        return false;
    }
    return dsm_check_reserved("NET_KICK", (const uint8_t *)&w.reserved,
                              sizeof(w.reserved), errp);
}

/* NET_TX, NET_RX: the NIC and pair, then the packet. */
static void wire_encode_net_packet(const void *p, GByteArray *out)
{
    const DSMNet *net = p;

    assert(net->len && net->len <= DSM_NET_PACKET_MAX);
    wire_encode_net_id(net, out);
    g_byte_array_append(out, net->data, net->len);
}

static bool wire_decode_net_packet(const DSMMsgDesc *desc,
                                   const uint8_t *buf, size_t len,
                                   const DSMLimits *lim, void *p,
                                   Error **errp)
{
    DSMNet *net = p;

    /* The length check allowed only a non-empty packet. */
    wire_decode_net_id(desc, buf, len, lim, net, errp);
    net->len = len - sizeof(DSMWireNetId);
    net->data = buf + sizeof(DSMWireNetId);
    return true;
}

static const DSMMsgDesc aggregate_net_descs[] = {
    { DSM_MSG_NET_START, "NET_START", sizeof(DSMWireNetStart), 0,
      wire_encode_net_start, wire_decode_net_start,
      .msg_size = sizeof(DSMNet) },
    { DSM_MSG_NET_STOP, "NET_STOP", sizeof(DSMWireNetId), 0,
      wire_encode_net_id, wire_decode_net_id,
      .msg_size = sizeof(DSMNet) },
    { DSM_MSG_NET_KICK, "NET_KICK", sizeof(DSMWireNetKick), 0,
      wire_encode_net_kick, wire_decode_net_kick,
      .msg_size = sizeof(DSMNet) },
    { DSM_MSG_NET_TX, "NET_TX", sizeof(DSMWireNetId), DSM_NET_PACKET_MAX,
      wire_encode_net_packet, wire_decode_net_packet, .varies = true,
      .msg_size = sizeof(DSMNet) },
    { DSM_MSG_NET_RX, "NET_RX", sizeof(DSMWireNetId), DSM_NET_PACKET_MAX,
      wire_encode_net_packet, wire_decode_net_packet, .varies = true,
      .msg_size = sizeof(DSMNet) },
};

const DSMFamilyCodec aggregate_net_codec = {
    .family = DSM_FAMILY_NET,
    .name = "net",
    .descs = aggregate_net_descs,
    .nr_descs = ARRAY_SIZE(aggregate_net_descs),
};
