/*
 * aggvm: what I/O and interrupt forwarding share (hw/aggregate only)
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_AGGREGATE_IOFWD_INTERNAL_H
#define HW_AGGREGATE_IOFWD_INTERNAL_H

#include "qemu/thread.h"
#include "exec/memory.h"
#include "hw/pci/pci_device.h"
#include "hw/aggregate/iofwd.h"
#include "hw/aggregate/net.h"

/* Replays one fragment's IO_REQ and IRQ messages, in order. */
typedef struct IOFwdWorker {
    AggregateIOFwd *fwd;
    uint32_t peer;
    QemuThread thread;

    /* lock protects queue */
    QemuMutex lock;
    QemuCond cond;
    GQueue queue;                   /* of DSMMsg * */
} IOFwdWorker;

struct AggregateIOFwd {
    /* Set at start, then read-only. */
    DSM *dsm;
    uint32_t self;
    uint32_t origin;
    MemoryRegion io_region;
    MemoryRegion mmio;              /* addressed by guest-physical address */
    MemoryRegion mmio_low;          /* alias: above RAM, below the BIOS */
    MemoryRegion mmio_high;         /* alias: above the RAM beyond 4 GiB */
    MemoryRegion mmio_vga;          /* alias: the legacy VGA window */
    PCIDevice *host_bridge;         /* its PAM/SMRAM shape the memory map */
    MemoryListener map_listener;    /* origin: sends them when they change */
    uint8_t map_sent[DSM_IO_MAP_MAX];
    IOFwdWorker *workers;           /* [nr_fragments] */
    /* Set once at machine-init-done (qatomic); see net.c. */
    AggregateNet *net;

    /* lock protects the fields below; waiters sleep on cond */
    QemuMutex lock;
    QemuCond cond;
    GHashTable *pending;            /* id -> IOFwdWait * */
    uint32_t next_id;
    bool origin_lost;
};

/*
 * iofwd_queue: hand @msg from @from to the in-order worker for @from,
 * which acts on it under the BQL.  Never blocks; any thread.
 */
void iofwd_queue(AggregateIOFwd *fwd, uint32_t from, const DSMMsg *msg);

/* ---- irqfwd.c: interrupts */

/* Install the APIC and accelerator hooks; once, at machine init. */
void irqfwd_start(AggregateIOFwd *fwd);

/*
 * irqfwd_handle: IRQ, CPU_EVENT, APIC_STATE or EOI from @from, on a
 * link receive thread; never blocks.
 */
bool irqfwd_handle(AggregateIOFwd *fwd, uint32_t from, const DSMMsg *msg,
                   Error **errp);

/* irqfwd_deliver: IRQ, CPU_EVENT or EOI, on the worker, BQL held. */
void irqfwd_deliver(AggregateIOFwd *fwd, const DSMMsg *msg);

#endif /* HW_AGGREGATE_IOFWD_INTERNAL_H */
