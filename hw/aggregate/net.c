/*
 * aggvm: virtio-net queue pairs processed on the fragment that uses them
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * A multi-queue virtio-net-pci and its backend live on the origin, like
 * every device.  Linux gives queue pair i to CPU i (its interrupts and
 * its transmit queue), so if the origin processed every queue, the
 * rings and buffers of pair i would move between the origin and vCPU
 * i's fragment on every packet.  Instead, when the guest starts the
 * device (DRIVER_OK), the origin hands pair i to the fragment F that
 * runs vCPU i, vhost-style:
 *
 *  - NET_START gives F what its own copy of the device model (every
 *    fragment realizes the same devices) needs to serve the pair: the
 *    negotiated features, the status, the number of pairs in use, and
 *    per virtqueue its size, rings, next available index, notify
 *    address and MSI-X vector with the vector's message and mask.  F
 *    loads them into its copy, turns on bus mastering and MSI-X there,
 *    and puts an aggregate net client between its copy's subqueue and
 *    the copy's backend (which stays idle).
 *  - Notify: F's vCPUs write the queue's notify address; F's
 *    forwarding region (iofwd.c) asks aggregate_net_notify() first and
 *    notifies F's copy.  A notify that reaches the origin anyway (a
 *    vCPU of another fragment, legacy I/O) is passed on as NET_KICK
 *    (patch 0013 gives the origin's virtio-net these hooks).
 *  - Transmit: F's copy pops the ring in F's memory and gives the
 *    packet to the aggregate client, which sends it as NET_TX; the
 *    origin hands it to the backend as the pair's own subqueue.
 *  - Receive: the origin's virtio-net gives a packet for the pair
 *    (after software RSS and its receive filter) to the hook, which
 *    sends it as NET_RX; F queues it to its copy's subqueue, whose
 *    flow control holds it while the ring has no buffers.
 *  - Interrupts: F's copy raises the vector with msix_notify(), which
 *    reaches F's local APIC (or is forwarded if the vCPU moved).  The
 *    origin watches the pair's MSI-X vectors (vector notifiers) and
 *    sends a NET_START update when the guest masks, unmasks or moves
 *    one; status changes and changes of the number of pairs (control
 *    queue, RSS) go the same way.
 *  - Reset or DRIVER_OK cleared: NET_STOP; F drops the pair.
 *
 * Everything here runs under the BQL: the hooks are called from the
 * device model, the messages on the sender's in-order link worker
 * (migration/dsm/link.h), the notify check from the forwarding region.
 * Only net_check_msg() runs on a link receive thread, and it reads
 * only what is fixed at start.  In steady state the rings stay in the
 * serving fragment's memory; query-aggregate-net counts packets, bytes
 * and the DSM faults on the ring pages per pair and fragment.
 *
 * Known limits: a pair is placed by vCPU index when the device starts
 * and stays there (a vCPU moved later gets its interrupts forwarded);
 * the packed ring layout, INTx and a virtqueue reset of a handed-over
 * pair (VIRTIO_F_RING_RESET) keep or bring every pair on the origin;
 * MSI-X pending bits set on F are not seen in the origin's PBA.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-aggregate.h"
#include "qemu/error-report.h"
#include "qemu/stats64.h"
#include "exec/memory.h"
#include "hw/pci/msix.h"
#include "hw/virtio/virtio-net.h"
#include "hw/virtio/virtio-pci.h"
#include "net/net.h"
#include "standard-headers/linux/virtio_config.h"
#include "hw/aggregate/net.h"
#include "hw/aggregate/vcpu.h"
#include "hw/aggregate/wire.h"
#include "net-internal.h"
#include "trace.h"

/* For the MSI-X vector notifiers, which get no opaque. */
AggregateNet *aggregate_net;

static AggregateNetNic *net_nic_of_pdev(PCIDevice *pdev)
{
    guint i;

    for (i = 0; aggregate_net && i < aggregate_net->nics->len; i++) {
        AggregateNetNic *nic = g_ptr_array_index(aggregate_net->nics, i);

        if (nic->pdev == pdev) {
            return nic;
        }
    }
    return NULL;
}

/* ---- origin: decide, hand over, follow changes, take back */

/* The guest-physical address of virtqueue @vq's notify, 0 if none. */
static hwaddr net_notify_addr(AggregateNetNic *nic, int vq)
{
    VirtIOPCIProxy *proxy = nic->proxy;
    pcibus_t bar;

    if (proxy->disable_modern) {
        return 0;
    }
    bar = pci_get_bar_addr(nic->pdev, proxy->modern_mem_bar_idx);
    if (bar == PCI_BAR_UNMAPPED) {
        return 0;
    }
    return bar + proxy->notify.offset +
           vq * ((proxy->flags & VIRTIO_PCI_FLAG_PAGE_PER_VQ) ? 0x1000 : 4);
}

static void net_fill_vq(AggregateNetNic *nic, int vq, DSMNetVq *q)
{
    VirtIODevice *vdev = nic->vdev;
    MSIMessage msg;

    q->desc = virtio_queue_get_desc_addr(vdev, vq);
    q->avail = virtio_queue_get_avail_addr(vdev, vq);
    q->used = virtio_queue_get_used_addr(vdev, vq);
    q->num = virtio_queue_get_num(vdev, vq);
    q->last_avail = virtio_queue_get_last_avail_idx(vdev, vq);
    q->vector = virtio_queue_vector(vdev, vq);
    q->notify = net_notify_addr(nic, vq);
    msg = msix_get_message(nic->pdev, q->vector);
    q->msi_addr = msg.address;
    q->msi_data = msg.data;
    q->msi_masked = msix_is_masked(nic->pdev, q->vector);
}

static void net_send_start(AggregateNetNic *nic, AggregateNetPair *p,
                           uint8_t status, bool update)
{
    DSMNet msg = {
        .pair = p->pair,
        .update = update,
        .status = status,
        .curr_pairs = nic->n->curr_queue_pairs,
        .features = nic->vdev->guest_features,
    };
    int k;

    for (k = 0; k < NET_VQS_PER_PAIR; k++) {
        net_fill_vq(nic, p->pair * NET_VQS_PER_PAIR + k, &msg.q[k]);
    }
    trace_aggregate_net_start_send(nic->index, p->pair, p->owner, update,
                                   status, msg.curr_pairs);
    net_send(nic, p->owner, DSM_MSG_NET_START, &msg);
}

/* Why the device's pairs must stay on the origin, or NULL. */
static const char *net_stay_reason(AggregateNetNic *nic)
{
    if (!nic->an->pin) {
        return "pinning is off";
    }
    if (!msix_enabled(nic->pdev)) {
        return "MSI-X is off";
    }
    if (virtio_vdev_has_feature(nic->vdev, VIRTIO_F_RING_PACKED)) {
        return "packed rings";
    }
    return NULL;
}

/* Can pair @p go to the fragment of vCPU @p->pair? */
static bool net_pair_can_go(AggregateNetNic *nic, AggregateNetPair *p)
{
    int k;

    if (p->pair >= aggregate_vcpu_count()) {
        return false;
    }
    p->owner = aggregate_vcpu_owner(p->pair);
    if (p->owner == nic->an->origin) {
        return false;
    }
    for (k = 0; k < NET_VQS_PER_PAIR; k++) {
        int vq = p->pair * NET_VQS_PER_PAIR + k;

        if (!virtio_queue_get_num(nic->vdev, vq) ||
            !virtio_queue_get_avail_addr(nic->vdev, vq) ||
            virtio_queue_vector(nic->vdev, vq) == VIRTIO_NO_VECTOR) {
            return false;
        }
    }
    return true;
}

static int net_vector_use(PCIDevice *pdev, unsigned int vector,
                          MSIMessage msg);
static void net_vector_release(PCIDevice *pdev, unsigned int vector);

static void net_hand_over(AggregateNetNic *nic, uint8_t status)
{
    const char *why = net_stay_reason(nic);
    uint32_t i;

    nic->handed_over = true;
    if (why) {
        trace_aggregate_net_stay(nic->index, why);
    }
    for (i = 0; i < nic->n->max_queue_pairs; i++) {
        AggregateNetPair *p = &nic->pairs[i];

        if (!why && net_pair_can_go(nic, p)) {
            p->remote = true;
            net_send_start(nic, p, status, false);
        } else {
            p->owner = nic->an->origin;
            net_watch_rings(nic, p);
        }
    }
    if (why) {
        return;
    }
    if (msix_set_vector_notifiers(nic->pdev, net_vector_use,
                                  net_vector_release, NULL) < 0) {
        warn_report("aggregate: cannot follow the MSI-X vectors of %s",
                    nic->n->netclient_name);
    }
}

static void net_update(AggregateNetNic *nic, uint8_t status)
{
    uint32_t i;

    for (i = 0; i < nic->n->max_queue_pairs; i++) {
        if (nic->pairs[i].remote) {
            net_send_start(nic, &nic->pairs[i], status, true);
        }
    }
}

static void net_take_back(AggregateNetNic *nic)
{
    uint32_t i;

    if (!nic->handed_over) {
        return;
    }
    nic->handed_over = false;
    if (nic->pdev->msix_vector_use_notifier == net_vector_use) {
        msix_unset_vector_notifiers(nic->pdev);
    }
    for (i = 0; i < nic->n->max_queue_pairs; i++) {
        AggregateNetPair *p = &nic->pairs[i];
        DSMNet msg = { .pair = i };

        dsm_watch_clear(p->ring_watch);
        if (p->remote) {
            p->remote = false;
            trace_aggregate_net_stop_send(nic->index, i, p->owner);
            net_send(nic, p->owner, DSM_MSG_NET_STOP, &msg);
        }
    }
}

/* A vector a handed-over pair uses changed: tell its fragment. */
static void net_vector_changed(PCIDevice *pdev, unsigned int vector)
{
    AggregateNetNic *nic = net_nic_of_pdev(pdev);
    uint32_t i;

    for (i = 0; nic && i < nic->n->max_queue_pairs; i++) {
        AggregateNetPair *p = &nic->pairs[i];
        int vq = i * NET_VQS_PER_PAIR;

        if (p->remote &&
            (virtio_queue_vector(nic->vdev, vq) == vector ||
             virtio_queue_vector(nic->vdev, vq + 1) == vector)) {
            net_send_start(nic, p, nic->vdev->status, true);
        }
    }
}

static int net_vector_use(PCIDevice *pdev, unsigned int vector,
                          MSIMessage msg)
{
    net_vector_changed(pdev, vector);
    return 0;
}

static void net_vector_release(PCIDevice *pdev, unsigned int vector)
{
    net_vector_changed(pdev, vector);
}

static bool net_ops_is_remote(void *opaque, int pair)
{
    AggregateNetNic *nic = opaque;

    return nic->pairs[pair].remote;
}

static void net_ops_kick(void *opaque, int vq_index)
{
    AggregateNetNic *nic = opaque;
    AggregateNetPair *p = &nic->pairs[vq_index / NET_VQS_PER_PAIR];
    DSMNet msg = { .pair = p->pair, .vq = vq_index % NET_VQS_PER_PAIR };

    stat64_add(&p->kicks, 1);
    trace_aggregate_net_kick_send(nic->index, p->pair, msg.vq, p->owner);
    net_send(nic, p->owner, DSM_MSG_NET_KICK, &msg);
}

static ssize_t net_ops_receive(void *opaque, int pair, const uint8_t *buf,
                               size_t size)
{
    AggregateNetNic *nic = opaque;
    AggregateNetPair *p = &nic->pairs[pair];
    DSMNet msg = { .pair = pair, .len = size, .data = buf };

    if (!size || size > DSM_NET_PACKET_MAX) {
        stat64_add(&p->dropped, 1);
        return size;
    }
    stat64_add(&p->rx_packets, 1);
    stat64_add(&p->rx_bytes, size);
    net_send(nic, p->owner, DSM_MSG_NET_RX, &msg);
    return size;
}

static void net_ops_status_changed(void *opaque, uint8_t status)
{
    AggregateNetNic *nic = opaque;

    if (!(status & VIRTIO_CONFIG_S_DRIVER_OK)) {
        net_take_back(nic);
    } else if (!nic->handed_over) {
        net_hand_over(nic, status);
    } else {
        net_update(nic, status);
    }
}

static const VirtIONetRemoteOps net_remote_ops = {
    .is_remote = net_ops_is_remote,
    .kick = net_ops_kick,
    .receive = net_ops_receive,
    .status_changed = net_ops_status_changed,
};

/* NET_TX from the pair's fragment: to the backend, as the subqueue. */
static void net_origin_tx(AggregateNetNic *nic, AggregateNetPair *p,
                          uint32_t from, const DSMNet *m)
{
    if (!p->remote || from != p->owner) {
        stat64_add(&p->dropped, 1);        /* sent before our NET_STOP */
        return;
    }
    stat64_add(&p->tx_packets, 1);
    stat64_add(&p->tx_bytes, m->len);
    qemu_send_packet(qemu_get_subqueue(nic->n->nic, p->pair), m->data,
                     m->len);
}

/* ---- messages */

/*
 * The MSI-X vectors of a NET_START must exist: they index the table.
 * (Ring sizes need no check here: virtio_queue_set_num() ignores a size
 * the virtqueue cannot have, and the layout of the virtqueues changes
 * when the features are set, under the BQL.)
 */
static bool net_check_start(AggregateNetNic *nic, const DSMNet *m,
                            Error **errp)
{
    unsigned int vectors = msix_nr_vectors_allocated(nic->pdev);
    int k;

    for (k = 0; k < NET_VQS_PER_PAIR; k++) {
        if (m->q[k].vector >= vectors) {
            error_setg(errp, "NET_START for virtqueue %u with MSI-X vector "
                       "%u of %u", m->pair * NET_VQS_PER_PAIR + k,
                       m->q[k].vector, vectors);
            return false;
        }
    }
    return true;
}

/* On the receive thread: is it about a queue pair we have, sent right? */
static bool net_check_msg(void *opaque, uint32_t from, uint16_t type,
                          const void *m, Error **errp)
{
    AggregateNet *an = opaque;
    const DSMNet *msg = m;
    const char *name = aggregate_msg_name(&aggregate_net_codec, type);
    AggregateNetNic *nic;
    bool to_origin = type == DSM_MSG_NET_TX;

    if (!an || msg->nic >= an->nics->len) {
        error_setg(errp, "%s for NIC %u, but this fragment has %u "
                   "multi-queue virtio-net devices",
                   name, msg->nic,
                   an ? an->nics->len : 0);
        return false;
    }
    nic = g_ptr_array_index(an->nics, msg->nic);
    if (msg->pair >= nic->n->max_queue_pairs ||
        (type == DSM_MSG_NET_START &&
         msg->curr_pairs > nic->n->max_queue_pairs)) {
        error_setg(errp, "%s for queue pair %u of %u (%u in use)",
                   name, msg->pair,
                   nic->n->max_queue_pairs, msg->curr_pairs);
        return false;
    }
    if (type == DSM_MSG_NET_START &&
        !net_check_start(nic, msg, errp)) {
        return false;
    }
    if (to_origin != net_is_origin(an) ||
        (!to_origin && from != an->origin)) {
        error_setg(errp, "%s from fragment %u to fragment %u: it goes "
                   "%s the origin", name, from,
                   an->self, to_origin ? "to" : "from");
        return false;
    }
    return true;
}

/* On the sender's in-order worker, BQL held: after its IO_RESP, IRQ. */
static bool net_deliver_msg(void *opaque, uint32_t from, uint16_t type,
                            const void *m, Error **errp)
{
    AggregateNet *an = opaque;
    const DSMNet *msg = m;
    AggregateNetNic *nic = g_ptr_array_index(an->nics, msg->nic);
    AggregateNetPair *p = &nic->pairs[msg->pair];

    switch (type) {
    case DSM_MSG_NET_START:
        net_serve_start(nic, p, msg);
        break;
    case DSM_MSG_NET_STOP:
        trace_aggregate_net_stop_recv(nic->index, p->pair);
        net_serve_stop(nic, p);
        break;
    case DSM_MSG_NET_KICK:
        net_serve_kick(nic, p, msg->vq);
        break;
    case DSM_MSG_NET_RX:
        net_serve_rx(nic, p, msg);
        break;
    case DSM_MSG_NET_TX:
        net_origin_tx(nic, p, from, msg);
        break;
    default:
        g_assert_not_reached();
    }
    return true;
}

static const DSMMsgHandler net_handlers[] = {
    { DSM_MSG_NET_START, DSM_DELIVER_WORKER_BQL, net_check_msg,
      net_deliver_msg },
    { DSM_MSG_NET_STOP, DSM_DELIVER_WORKER_BQL, net_check_msg,
      net_deliver_msg },
    { DSM_MSG_NET_KICK, DSM_DELIVER_WORKER_BQL, net_check_msg,
      net_deliver_msg },
    { DSM_MSG_NET_TX, DSM_DELIVER_WORKER_BQL, net_check_msg,
      net_deliver_msg },
    { DSM_MSG_NET_RX, DSM_DELIVER_WORKER_BQL, net_check_msg,
      net_deliver_msg },
};

static const DSMFamilyOps net_family = {
    .family = DSM_FAMILY_NET,
    .name = "net",
    .codec = &aggregate_net_codec,
    .handlers = net_handlers,
    .nr_handlers = ARRAY_SIZE(net_handlers),
};

/* ---- set-up and QMP */

static void net_add_nic(NICState *nicstate, void *opaque)
{
    AggregateNet *an = opaque;
    Object *dev = qemu_get_nic_opaque(qemu_get_queue(nicstate));
    VirtIONet *n = (VirtIONet *)object_dynamic_cast(dev, TYPE_VIRTIO_NET);
    BusState *bus;
    AggregateNetNic *nic;
    uint32_t i;

    if (!n || n->max_queue_pairs < 2 || an->err) {
        return;
    }
    if (an->pin && n->max_queue_pairs > aggregate_vcpu_count()) {
        error_setg(&an->err, "aggregate: netdev '%s' has %u queue pairs, "
                   "but queue pair i goes to the fragment of vCPU i and "
                   "there are %u vCPUs; give it queues=%u or fewer, or "
                   "-machine pin-net-queues=off",
                   qemu_get_queue(nicstate)->peer ?
                   qemu_get_queue(nicstate)->peer->name : n->netclient_name,
                   n->max_queue_pairs, aggregate_vcpu_count(),
                   aggregate_vcpu_count());
        return;
    }
    bus = qdev_get_parent_bus(DEVICE(n));
    if (!bus || !object_dynamic_cast(OBJECT(bus->parent),
                                     TYPE_VIRTIO_PCI)) {
        return;
    }
    nic = g_new0(AggregateNetNic, 1);
    nic->an = an;
    nic->index = an->nics->len;
    nic->n = n;
    nic->vdev = VIRTIO_DEVICE(n);
    nic->proxy = VIRTIO_PCI(bus->parent);
    nic->pdev = PCI_DEVICE(bus->parent);
    nic->netdev = g_strdup(qemu_get_queue(nicstate)->peer ?
                           qemu_get_queue(nicstate)->peer->name :
                           n->netclient_name);
    nic->pairs = g_new0(AggregateNetPair, n->max_queue_pairs);
    for (i = 0; i < n->max_queue_pairs; i++) {
        nic->pairs[i].pair = i;
        nic->pairs[i].owner = an->origin;
        nic->pairs[i].ring_watch = dsm_watch_new(dsm_watches(an->dsm));
    }
    if (net_is_origin(an)) {
        n->remote_ops = &net_remote_ops;
        n->remote_opaque = nic;
    }
    g_ptr_array_add(an->nics, nic);
}

AggregateNet *aggregate_net_start(DSM *dsm, uint32_t self, uint32_t origin,
                                  bool pin, Error **errp)
{
    AggregateNet *an = g_new0(AggregateNet, 1);

    an->dsm = dsm;
    an->self = self;
    an->origin = origin;
    an->pin = pin;
    an->nics = g_ptr_array_new();
    qemu_foreach_nic(net_add_nic, an);
    if (an->err) {
        error_propagate(errp, an->err);
        return NULL;
    }
    aggregate_net = an;
    dsm_register_family(dsm, &net_family, an);
    return an;
}

static AggregateNetPairInfo *net_pair_info(AggregateNet *an,
                                           AggregateNetNic *nic,
                                           AggregateNetPair *p)
{
    AggregateNetPairInfo *info = g_new0(AggregateNetPairInfo, 1);
    bool here = net_is_origin(an) ? !p->remote : p->started;

    info->netdev = g_strdup(nic->netdev);
    info->pair = p->pair;
    info->here = here;
    if (here || net_is_origin(an)) {
        info->fragment = g_strdup(dsm_fragment_id(an->dsm, here ? an->self
                                                                : p->owner));
    }
    info->rx_packets = stat64_get(&p->rx_packets);
    info->rx_bytes = stat64_get(&p->rx_bytes);
    info->tx_packets = stat64_get(&p->tx_packets);
    info->tx_bytes = stat64_get(&p->tx_bytes);
    info->kicks = stat64_get(&p->kicks);
    info->dropped = stat64_get(&p->dropped);
    info->ring_faults = dsm_watch_faults(p->ring_watch);
    return info;
}

AggregateNetPairInfoList *aggregate_net_query(AggregateNet *an)
{
    AggregateNetPairInfoList *list = NULL, **tail = &list;
    guint i, j;

    for (i = 0; i < an->nics->len; i++) {
        AggregateNetNic *nic = g_ptr_array_index(an->nics, i);

        for (j = 0; j < nic->n->max_queue_pairs; j++) {
            QAPI_LIST_APPEND(tail, net_pair_info(an, nic, &nic->pairs[j]));
        }
    }
    return list;
}

AggregateNetPairInfoList *qmp_query_aggregate_net(Error **errp)
{
    if (!aggregate_net) {
        error_setg(errp, "this machine is not an aggregate VM with "
                   "fragments (-machine aggregate, -object "
                   "aggregate-fragment)");
        return NULL;
    }
    return aggregate_net_query(aggregate_net);
}
