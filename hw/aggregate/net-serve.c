/*
 * aggvm: serving a virtio-net queue pair on the fragment that uses it
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The origin handed queue pair @p of a virtio-net to this fragment
 * (net.c explains the whole scheme).  This fragment's own copy of the
 * device, which has been idle, gets the pair's state and serves it:
 * its rings are read and written here, its packets go to and come from
 * the origin's backend as NET_TX and NET_RX, its interrupts are raised
 * here.  Called on the in-order worker of the origin's link or from
 * this fragment's forwarding region, BQL held.
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "exec/memory.h"
#include "hw/pci/msix.h"
#include "hw/pci/pci_host.h"
#include "net/net.h"
#include "net/tap.h"
#include "standard-headers/linux/virtio_config.h"
#include "net-internal.h"
#include "trace.h"

void net_send(AggregateNetNic *nic, uint32_t to, uint16_t type, DSMNet *msg)
{
    msg->nic = nic->index;
    dsm_send(nic->an->dsm, to, type, msg);
}

/* Count the DSM faults on the rings of @p, which this fragment serves. */
void net_watch_rings(AggregateNetNic *nic, AggregateNetPair *p)
{
    VirtIODevice *vdev = nic->vdev;
    int k;

    dsm_watch_clear(p->ring_watch);
    for (k = 0; k < NET_VQS_PER_PAIR; k++) {
        int vq = p->pair * NET_VQS_PER_PAIR + k;

        dsm_watch_add(p->ring_watch, virtio_queue_get_desc_addr(vdev, vq),
                      virtio_queue_get_desc_size(vdev, vq));
        dsm_watch_add(p->ring_watch, virtio_queue_get_avail_addr(vdev, vq),
                      virtio_queue_get_avail_size(vdev, vq));
        dsm_watch_add(p->ring_watch, virtio_queue_get_used_addr(vdev, vq),
                      virtio_queue_get_used_size(vdev, vq));
    }
}

/* The client of one pair: knows its pair without a search. */
typedef struct AggregateNetClient {
    NetClientState nc;
    AggregateNetNic *nic;
    AggregateNetPair *pair;
} AggregateNetClient;

static ssize_t net_client_receive(NetClientState *nc, const uint8_t *buf,
                                  size_t size);

static NetClientInfo net_client_info = {
    .type = NET_CLIENT_DRIVER_NONE,
    .size = sizeof(AggregateNetClient),
    .receive = net_client_receive,
};

/* The copy's virtio-net transmits: the packet goes to the origin. */
static ssize_t net_client_receive(NetClientState *nc, const uint8_t *buf,
                                  size_t size)
{
    AggregateNetClient *client = container_of(nc, AggregateNetClient, nc);
    AggregateNetNic *nic = client->nic;
    AggregateNetPair *p = client->pair;
    DSMNet msg = { .pair = p->pair, .len = size, .data = buf };

    if (!size || size > DSM_NET_PACKET_MAX) {
        stat64_add(&p->dropped, 1);
        return size;
    }
    stat64_add(&p->tx_packets, 1);
    stat64_add(&p->tx_bytes, size);
    net_send(nic, nic->an->origin, DSM_MSG_NET_TX, &msg);
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

    if (p->client && sub->peer == p->client) {
        return;
    }
    if (!p->client) {
        p->displaced = sub->peer;
        AggregateNetClient *client;

        p->client = qemu_new_net_client(&net_client_info, NULL, "aggregate",
                                        nic->netdev);
        client = container_of(p->client, AggregateNetClient, nc);
        client->nic = nic;
        client->pair = p;
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
    net_watch_rings(nic, p);
    net_plug_client(nic, p);
    p->started = true;
}

void net_serve_stop(AggregateNetNic *nic, AggregateNetPair *p)
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

void net_serve_start(AggregateNetNic *nic, AggregateNetPair *p,
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

void net_serve_kick(AggregateNetNic *nic, AggregateNetPair *p, uint32_t vq)
{
    if (!p->started) {
        stat64_add(&p->dropped, 1);
        return;
    }
    stat64_add(&p->kicks, 1);
    virtio_queue_notify(nic->vdev, p->pair * NET_VQS_PER_PAIR + vq);
}

void net_serve_rx(AggregateNetNic *nic, AggregateNetPair *p,
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
