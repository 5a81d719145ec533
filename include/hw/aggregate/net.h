/*
 * aggvm: virtio-net queue pairs processed on the fragment that uses them
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_AGGREGATE_NET_H
#define HW_AGGREGATE_NET_H

#include "exec/hwaddr.h"
#include "migration/dsm/dsm.h"
#include "qapi/qapi-types-aggregate.h"

typedef struct AggregateNet AggregateNet;

/*
 * aggregate_net_start: find the multi-queue virtio-net devices (the
 * same, in the same order, on every fragment) and, with @pin, hand
 * each queue pair to the fragment that runs the vCPU of the same index
 * whenever the guest starts the device.  Without @pin every queue stays
 * on the origin (its rings then move through the DSM).  With @pin, a
 * device with more queue pairs than the VM has vCPUs is refused.
 *
 * Call once the machine is complete (machine-init-done), BQL held.
 */
AggregateNet *aggregate_net_start(DSM *dsm, uint32_t self, uint32_t origin,
                                  bool pin, Error **errp);

/*
 * aggregate_net_notify: a vCPU of this fragment wrote @addr, which the
 * forwarding region would send to the origin.  If it is the notify
 * address of a virtqueue processed here, notify it and return true.
 * BQL held.
 */
bool aggregate_net_notify(AggregateNet *an, hwaddr addr);

/* For query-aggregate-net; BQL held. */
AggregateNetPairInfoList *aggregate_net_query(AggregateNet *an);

#endif /* HW_AGGREGATE_NET_H */
