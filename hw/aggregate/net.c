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
 * device model, the messages on the in-order forwarding worker of the
 * sender (iofwd.c), the notify check from the forwarding region.  Only
 * aggregate_net_check() runs on a link receive thread, and it reads
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
#include "qemu/main-loop.h"
#include "qemu/stats64.h"
#include "exec/memory.h"
#include "hw/pci/msix.h"
#include "hw/pci/pci_host.h"
#include "hw/virtio/virtio-net.h"
#include "hw/virtio/virtio-pci.h"
#include "net/net.h"
#include "net/tap.h"
#include "standard-headers/linux/virtio_config.h"
#include "hw/aggregate/net.h"
#include "hw/aggregate/vcpu.h"
#include "trace.h"

#define NET_VQS_PER_PAIR    2

/* What a fragment knows of one queue pair. */
typedef struct AggregateNetPair {
    uint32_t pair;
    uint32_t owner;             /* fragment serving it */
    bool remote;                /* origin: handed to @owner */
    bool started;               /* other fragments: served here */

    /* Serving fragment: the client between the subqueue and the wire. */
    NetClientState *client;
    NetClientState *displaced;  /* the copy's own backend queue, idle */
    hwaddr notify[NET_VQS_PER_PAIR];
    uint16_t vector[NET_VQS_PER_PAIR];

    /* Counters, on the fragment that processed the packets. */
    Stat64 rx_packets;
    Stat64 rx_bytes;
    Stat64 tx_packets;
    Stat64 tx_bytes;
    Stat64 kicks;               /* origin: NET_KICK sent; else received */
    Stat64 dropped;             /* arrived while the pair was not here */
    DSMWatch *ring_watch;       /* DSM faults on its ring pages */
} AggregateNetPair;

typedef struct AggregateNetNic {
    AggregateNet *an;
    uint32_t index;
    VirtIONet *n;
    VirtIODevice *vdev;
    PCIDevice *pdev;
    VirtIOPCIProxy *proxy;
    char *netdev;               /* its backend's name */
    AggregateNetPair *pairs;    /* [max_queue_pairs] */
    bool handed_over;           /* origin: NET_START sent for this start */
} AggregateNetNic;

struct AggregateNet {
    DSM *dsm;
    uint32_t self;
    uint32_t origin;
    bool pin;
    GPtrArray *nics;            /* of AggregateNetNic *, same everywhere */
};

/* For the MSI-X vector notifiers, which get no opaque. */
static AggregateNet *aggregate_net;

static bool net_is_origin(AggregateNet *an)
{
    return an->self == an->origin;
}

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

static void net_send(AggregateNetNic *nic, uint32_t to, DSMMsg *msg)
{
    msg->net.nic = nic->index;
    dsm_send(nic->an->dsm, to, msg);
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
    DSMMsg msg = {
        .type = DSM_MSG_NET_START,
        .net = {
            .pair = p->pair,
            .update = update,
            .status = status,
            .curr_pairs = nic->n->curr_queue_pairs,
            .features = nic->vdev->guest_features,
        },
    };
    int k;

    for (k = 0; k < NET_VQS_PER_PAIR; k++) {
        net_fill_vq(nic, p->pair * NET_VQS_PER_PAIR + k, &msg.net.q[k]);
    }
    trace_aggregate_net_start_send(nic->index, p->pair, p->owner, update,
                                   status, msg.net.curr_pairs);
    net_send(nic, p->owner, &msg);
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
        return;
    }
    for (i = 0; i < nic->n->max_queue_pairs; i++) {
        AggregateNetPair *p = &nic->pairs[i];

        if (net_pair_can_go(nic, p)) {
            p->remote = true;
            net_send_start(nic, p, status, false);
        }
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
        DSMMsg msg = { .type = DSM_MSG_NET_STOP, .net.pair = i };

        if (p->remote) {
            p->remote = false;
            trace_aggregate_net_stop_send(nic->index, i, p->owner);
            net_send(nic, p->owner, &msg);
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
    DSMMsg msg = {
        .type = DSM_MSG_NET_KICK,
        .net = { .pair = p->pair, .vq = vq_index % NET_VQS_PER_PAIR },
    };

    stat64_add(&p->kicks, 1);
    trace_aggregate_net_kick_send(nic->index, p->pair, msg.net.vq, p->owner);
    net_send(nic, p->owner, &msg);
}

static ssize_t net_ops_receive(void *opaque, int pair, const uint8_t *buf,
                               size_t size)
{
    AggregateNetNic *nic = opaque;
    AggregateNetPair *p = &nic->pairs[pair];
    DSMMsg msg = {
        .type = DSM_MSG_NET_RX,
        .net = { .pair = pair, .len = size, .data = buf },
    };

    if (!size || size > DSM_NET_PACKET_MAX) {
        stat64_add(&p->dropped, 1);
        return size;
    }
    stat64_add(&p->rx_packets, 1);
    stat64_add(&p->rx_bytes, size);
    net_send(nic, p->owner, &msg);
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

/* ---- the fragment serving a pair */

static ssize_t net_client_receive(NetClientState *nc, const uint8_t *buf,
                                  size_t size);

static NetClientInfo net_client_info = {
    .type = NET_CLIENT_DRIVER_NONE,
    .size = sizeof(NetClientState),
    .receive = net_client_receive,
};

static AggregateNetPair *net_pair_of_client(NetClientState *nc,
                                            AggregateNetNic **nicp)
{
    guint i, j;

    for (i = 0; i < aggregate_net->nics->len; i++) {
        AggregateNetNic *nic = g_ptr_array_index(aggregate_net->nics, i);

        for (j = 0; j < nic->n->max_queue_pairs; j++) {
            if (nic->pairs[j].client == nc) {
                *nicp = nic;
                return &nic->pairs[j];
            }
        }
    }
    return NULL;
}

/* The copy's virtio-net transmits: the packet goes to the origin. */
static ssize_t net_client_receive(NetClientState *nc, const uint8_t *buf,
                                  size_t size)
{
    AggregateNetNic *nic;
    AggregateNetPair *p = net_pair_of_client(nc, &nic);
    DSMMsg msg = {
        .type = DSM_MSG_NET_TX,
        .net = { .len = size, .data = buf },
    };

    if (!p || !size || size > DSM_NET_PACKET_MAX) {
        if (p) {
            stat64_add(&p->dropped, 1);
        }
        return size;
    }
    msg.net.pair = p->pair;
    stat64_add(&p->tx_packets, 1);
    stat64_add(&p->tx_bytes, size);
    net_send(nic, nic->an->origin, &msg);
    return size;
}

/*
 * Put the aggregate client between the copy's subqueue and the copy's
 * backend queue, which is turned off (it stays idle: the backend that
 * counts is the origin's).  The client takes the backend's name, so
 * that net_cleanup() at exit, deleting the backend, also cleans up the
 * client, and qemu_del_nic() frees it as the subqueue's peer; for the
 * same reason both keep pointing at the subqueue.
 */
static void net_plug_client(AggregateNetNic *nic, AggregateNetPair *p)
{
    NetClientState *sub = qemu_get_subqueue(nic->n->nic, p->pair);

    if (sub->peer == p->client) {
        return;
    }
    if (!p->client) {
        p->displaced = sub->peer;
        p->client = qemu_new_net_client(&net_client_info, NULL, "aggregate",
                                        nic->netdev);
    }
    if (p->displaced) {
        qemu_purge_queued_packets(sub);
        if (p->displaced->info->type == NET_CLIENT_DRIVER_TAP) {
            tap_disable(p->displaced);
        }
    }
    sub->peer = p->client;
    p->client->peer = sub;
}

static void net_unplug_client(AggregateNetNic *nic, AggregateNetPair *p)
{
    NetClientState *sub = qemu_get_subqueue(nic->n->nic, p->pair);

    if (!p->client || sub->peer != p->client) {
        return;
    }
    qemu_purge_queued_packets(p->client);
    sub->peer = p->displaced;
}

/* Make our copy a bus master with MSI-X on, as the origin's is. */
static void net_enable_pci(AggregateNetNic *nic)
{
    PCIDevice *pdev = nic->pdev;
    uint16_t cmd = pci_get_word(pdev->config + PCI_COMMAND);
    uint16_t flags = pci_get_word(pdev->config + pdev->msix_cap +
                                  PCI_MSIX_FLAGS);

    if (!(cmd & PCI_COMMAND_MASTER)) {
        pci_host_config_write_common(pdev, PCI_COMMAND, pci_config_size(pdev),
                                     cmd | PCI_COMMAND_MASTER, 2);
    }
    if ((flags & (PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL)) !=
        PCI_MSIX_FLAGS_ENABLE) {
        flags = (flags | PCI_MSIX_FLAGS_ENABLE) & ~PCI_MSIX_FLAGS_MASKALL;
        pci_host_config_write_common(pdev, pdev->msix_cap + PCI_MSIX_FLAGS,
                                     pci_config_size(pdev), flags, 2);
    }
}

/* Write one MSI-X table entry the way the guest would. */
static void net_set_msix_entry(AggregateNetNic *nic, const DSMNetVq *q)
{
    hwaddr base = (hwaddr)q->vector * PCI_MSIX_ENTRY_SIZE;
    MemoryRegion *mr = &nic->pdev->msix_table_mmio;
    MemTxAttrs attrs = MEMTXATTRS_UNSPECIFIED;

    memory_region_dispatch_write(mr, base + PCI_MSIX_ENTRY_LOWER_ADDR,
                                 (uint32_t)q->msi_addr, MO_32, attrs);
    memory_region_dispatch_write(mr, base + PCI_MSIX_ENTRY_UPPER_ADDR,
                                 q->msi_addr >> 32, MO_32, attrs);
    memory_region_dispatch_write(mr, base + PCI_MSIX_ENTRY_DATA,
                                 q->msi_data, MO_32, attrs);
    memory_region_dispatch_write(mr, base + PCI_MSIX_ENTRY_VECTOR_CTRL,
                                 q->msi_masked ? PCI_MSIX_ENTRY_CTRL_MASKBIT
                                               : 0, MO_32, attrs);
}

static void net_load_vq(AggregateNetNic *nic, AggregateNetPair *p, int k,
                        const DSMNetVq *q)
{
    VirtIODevice *vdev = nic->vdev;
    int vq = p->pair * NET_VQS_PER_PAIR + k;

    virtio_queue_set_num(vdev, vq, q->num);
    virtio_queue_set_rings(vdev, vq, q->desc, q->avail, q->used);
    virtio_queue_set_last_avail_idx(vdev, vq, q->last_avail);
    virtio_queue_update_used_idx(vdev, vq);
    virtio_queue_invalidate_signalled_used(vdev, vq);
    virtio_queue_set_vector(vdev, vq, q->vector);
    msix_vector_use(nic->pdev, q->vector);
    p->vector[k] = q->vector;
    p->notify[k] = q->notify;
}

static bool net_any_started(AggregateNetNic *nic)
{
    uint32_t i;

    for (i = 0; i < nic->n->max_queue_pairs; i++) {
        if (nic->pairs[i].started) {
            return true;
        }
    }
    return false;
}

static void net_watch_rings(AggregateNetNic *nic, AggregateNetPair *p,
                            const DSMNet *m)
{
    int k;

    dsm_watch_clear(p->ring_watch);
    for (k = 0; k < NET_VQS_PER_PAIR; k++) {
        int vq = p->pair * NET_VQS_PER_PAIR + k;

        dsm_watch_add(p->ring_watch, m->q[k].desc,
                      virtio_queue_get_desc_size(nic->vdev, vq));
        dsm_watch_add(p->ring_watch, m->q[k].avail,
                      virtio_queue_get_avail_size(nic->vdev, vq));
        dsm_watch_add(p->ring_watch, m->q[k].used,
                      virtio_queue_get_used_size(nic->vdev, vq));
    }
}

static void net_start_pair(AggregateNetNic *nic, AggregateNetPair *p,
                           const DSMNet *m)
{
    int k;

    if (!net_any_started(nic)) {
        /* Features first: they decide the header layout and sizes. */
        virtio_set_status(nic->vdev, 0);
        if (virtio_set_features(nic->vdev, m->features) < 0) {
            warn_report("aggregate: %s: features 0x%" PRIx64 " refused "
                        "here; queue pair %u stays unserved",
                        nic->n->netclient_name, m->features, p->pair);
            return;
        }
        net_enable_pci(nic);
    }
    for (k = 0; k < NET_VQS_PER_PAIR; k++) {
        net_load_vq(nic, p, k, &m->q[k]);
        net_set_msix_entry(nic, &m->q[k]);
    }
    net_watch_rings(nic, p, m);
    net_plug_client(nic, p);
    p->started = true;
}

static void net_stop_pair(AggregateNetNic *nic, AggregateNetPair *p)
{
    int k;

    if (!p->started) {
        return;
    }
    p->started = false;
    net_unplug_client(nic, p);
    dsm_watch_clear(p->ring_watch);
    for (k = 0; k < NET_VQS_PER_PAIR; k++) {
        int vq = p->pair * NET_VQS_PER_PAIR + k;

        virtio_queue_set_vector(nic->vdev, vq, VIRTIO_NO_VECTOR);
        msix_vector_unuse(nic->pdev, p->vector[k]);
        virtio_queue_set_rings(nic->vdev, vq, 0, 0, 0);
        p->notify[k] = 0;
    }
    if (!net_any_started(nic)) {
        virtio_reset(nic->vdev);
    }
}

static void net_fragment_start(AggregateNetNic *nic, AggregateNetPair *p,
                               const DSMNet *m)
{
    trace_aggregate_net_start_recv(nic->index, p->pair, m->update,
                                   m->status, m->curr_pairs);
    if (!p->started) {
        net_start_pair(nic, p, m);
    } else {
        int k;

        for (k = 0; k < NET_VQS_PER_PAIR; k++) {
            net_set_msix_entry(nic, &m->q[k]);
        }
    }
    if (!p->started) {
        return;
    }
    nic->n->curr_queue_pairs = m->curr_pairs;
    if (nic->vdev->status != m->status) {
        virtio_set_status(nic->vdev, m->status);
    }
    /* Packets held while the pair was not in use may go now. */
    qemu_flush_queued_packets(qemu_get_subqueue(nic->n->nic, p->pair));
}

static void net_fragment_kick(AggregateNetNic *nic, AggregateNetPair *p,
                              uint32_t vq)
{
    if (!p->started) {
        stat64_add(&p->dropped, 1);
        return;
    }
    stat64_add(&p->kicks, 1);
    virtio_queue_notify(nic->vdev, p->pair * NET_VQS_PER_PAIR + vq);
}

static void net_fragment_rx(AggregateNetNic *nic, AggregateNetPair *p,
                            const DSMNet *m)
{
    if (!p->started) {
        stat64_add(&p->dropped, 1);
        return;
    }
    stat64_add(&p->rx_packets, 1);
    stat64_add(&p->rx_bytes, m->len);
    qemu_send_packet(p->client, m->data, m->len);
}

bool aggregate_net_notify(AggregateNet *an, hwaddr addr)
{
    guint i, j;
    int k;

    for (i = 0; an && i < an->nics->len; i++) {
        AggregateNetNic *nic = g_ptr_array_index(an->nics, i);

        for (j = 0; j < nic->n->max_queue_pairs; j++) {
            AggregateNetPair *p = &nic->pairs[j];

            for (k = 0; p->started && k < NET_VQS_PER_PAIR; k++) {
                if (p->notify[k] && p->notify[k] == addr) {
                    virtio_queue_notify(nic->vdev,
                                        j * NET_VQS_PER_PAIR + k);
                    return true;
                }
            }
        }
    }
    return false;
}

/* ---- messages */

bool aggregate_net_check(AggregateNet *an, uint32_t from, const DSMMsg *msg,
                         Error **errp)
{
    AggregateNetNic *nic;
    bool to_origin = msg->type == DSM_MSG_NET_TX;

    if (!an || msg->net.nic >= an->nics->len) {
        error_setg(errp, "%s for NIC %u, but this fragment has %u "
                   "multi-queue virtio-net devices",
                   dsm_msg_type_name(msg->type), msg->net.nic,
                   an ? an->nics->len : 0);
        return false;
    }
    nic = g_ptr_array_index(an->nics, msg->net.nic);
    if (msg->net.pair >= nic->n->max_queue_pairs ||
        (msg->type == DSM_MSG_NET_START &&
         msg->net.curr_pairs > nic->n->max_queue_pairs)) {
        error_setg(errp, "%s for queue pair %u of %u (%u in use)",
                   dsm_msg_type_name(msg->type), msg->net.pair,
                   nic->n->max_queue_pairs, msg->net.curr_pairs);
        return false;
    }
    if (to_origin != net_is_origin(an) ||
        (!to_origin && from != an->origin)) {
        error_setg(errp, "%s from fragment %u to fragment %u: it goes "
                   "%s the origin", dsm_msg_type_name(msg->type), from,
                   an->self, to_origin ? "to" : "from");
        return false;
    }
    return true;
}

void aggregate_net_deliver(AggregateNet *an, uint32_t from,
                           const DSMMsg *msg)
{
    AggregateNetNic *nic = g_ptr_array_index(an->nics, msg->net.nic);
    AggregateNetPair *p = &nic->pairs[msg->net.pair];

    switch (msg->type) {
    case DSM_MSG_NET_START:
        net_fragment_start(nic, p, &msg->net);
        break;
    case DSM_MSG_NET_STOP:
        trace_aggregate_net_stop_recv(nic->index, p->pair);
        net_stop_pair(nic, p);
        break;
    case DSM_MSG_NET_KICK:
        net_fragment_kick(nic, p, msg->net.vq);
        break;
    case DSM_MSG_NET_RX:
        net_fragment_rx(nic, p, &msg->net);
        break;
    case DSM_MSG_NET_TX:
        net_origin_tx(nic, p, from, &msg->net);
        break;
    default:
        g_assert_not_reached();
    }
}

/* ---- set-up and QMP */

static void net_add_nic(NICState *nicstate, void *opaque)
{
    AggregateNet *an = opaque;
    Object *dev = qemu_get_nic_opaque(qemu_get_queue(nicstate));
    VirtIONet *n = (VirtIONet *)object_dynamic_cast(dev, TYPE_VIRTIO_NET);
    BusState *bus;
    AggregateNetNic *nic;
    uint32_t i;

    if (!n || n->max_queue_pairs < 2) {
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
        nic->pairs[i].ring_watch = dsm_watch_new(an->dsm);
    }
    if (net_is_origin(an)) {
        n->remote_ops = &net_remote_ops;
        n->remote_opaque = nic;
    }
    g_ptr_array_add(an->nics, nic);
}

AggregateNet *aggregate_net_start(DSM *dsm, uint32_t self, uint32_t origin,
                                  bool pin)
{
    AggregateNet *an = g_new0(AggregateNet, 1);

    an->dsm = dsm;
    an->self = self;
    an->origin = origin;
    an->pin = pin;
    an->nics = g_ptr_array_new();
    qemu_foreach_nic(net_add_nic, an);
    aggregate_net = an;
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
