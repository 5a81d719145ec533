/*
 * aggvm: what the two halves of hw/aggregate/net.c share
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * net.c decides on the origin and carries the messages; net-serve.c
 * serves a handed-over pair on another fragment.  Everything here is
 * used under the BQL (see net.c).
 */

#ifndef HW_AGGREGATE_NET_INTERNAL_H
#define HW_AGGREGATE_NET_INTERNAL_H

#include "qemu/stats64.h"
#include "hw/pci/pci_device.h"
#include "hw/virtio/virtio-net.h"
#include "hw/virtio/virtio-pci.h"
#include "hw/aggregate/net.h"
#include "hw/aggregate/wire.h"

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
    Error *err;                 /* set-up only: the first refusal */
};

/* The one instance, for callbacks that get no opaque. */
extern AggregateNet *aggregate_net;

static inline bool net_is_origin(AggregateNet *an)
{
    return an->self == an->origin;
}

/*
 * net-serve.c: what both sides use (send a net-family message for
 * @nic; count the DSM faults on the rings of a pair served here), and
 * the fragment a pair was handed to.  net.c calls these; net-serve.c
 * calls nothing of net.c.
 */
void net_send(AggregateNetNic *nic, uint32_t to, uint16_t type, DSMNet *msg);
void net_watch_rings(AggregateNetNic *nic, AggregateNetPair *p);

void net_serve_start(AggregateNetNic *nic, AggregateNetPair *p,
                     const DSMNet *m);
void net_serve_stop(AggregateNetNic *nic, AggregateNetPair *p);
void net_serve_kick(AggregateNetNic *nic, AggregateNetPair *p, uint32_t vq);
void net_serve_rx(AggregateNetNic *nic, AggregateNetPair *p,
                  const DSMNet *m);

#endif /* HW_AGGREGATE_NET_INTERNAL_H */
