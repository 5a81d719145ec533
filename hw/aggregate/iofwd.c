/*
 * aggvm: forwarding PIO and MMIO to the origin
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The origin owns the devices.  On every other fragment, forwarding
 * regions cover all of the I/O space and the MMIO ranges of system
 * memory (above guest RAM up to the BIOS, and above the RAM beyond
 * 4 GiB); they sit above the local device models but below the local
 * APIC, and guest RAM and ROM are outside them.  An access there
 * becomes an IO_REQ to the origin and waits for its IO_RESP.
 *
 * Rules (design review, section 7):
 *  - no posted writes: a write waits for its IO_RESP too, so an access
 *    that follows it on any fragment sees its effect;
 *  - the waiting thread drops the BQL (mpqemu-link does the same), so
 *    the origin's replay may need this fragment's DSM service, and
 *    this fragment's other threads may run meanwhile;
 *  - the origin replays each fragment's requests in arrival order on
 *    that fragment's link worker, under the BQL, with the requesting
 *    vCPU as current_cpu;
 *  - if the origin's link fails, waiting accesses complete with
 *    MEMTX_ERROR (the VM is being stopped) instead of hanging.
 *
 * The origin replays IO_REQ on the sender's in-order link worker
 * (migration/dsm/link.h), the one that also delivers that sender's
 * interrupts (irqfwd.c), vCPU and net messages, in arrival order.
 *
 * Chipset state: the origin sends its host bridge's PAM and SMRAM
 * registers (IO_MAP) whenever they change, so that 0xc0000-0xfffff is
 * the same RAM or ROM everywhere (firmware code runs there on every
 * fragment, and the DSM keeps that RAM coherent); the VGA window
 * 0xa0000-0xbffff is forwarded like other MMIO.
 *
 * Known gap: the device models of non-origin fragments still exist,
 * shadowed by the forwarding regions; what their timers raise is
 * dropped (irqfwd_remote_irq() in irqfwd.c).
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/lockable.h"
#include "qemu/main-loop.h"
#include "qemu/units.h"
#include "qemu/thread.h"
#include "exec/address-spaces.h"
#include "exec/memory.h"
#include "hw/pci/pci_device.h"
#include "hw/pci/pci_host.h"
#include "hw/pci-host/q35.h"
#include "hw/aggregate/iofwd.h"
#include "hw/aggregate/net.h"
#include "hw/aggregate/wire.h"
#include "trace.h"

/* Above the device models, below the local APIC (priority 0x1000). */
#define IOFWD_PRIORITY  0x800
#define IOFWD_MMIO_TOP  (1ULL << 46)
#define IOFWD_VGA_BASE  0xa0000
#define IOFWD_VGA_SIZE  0x20000

/*
 * The host-bridge registers replicated from the origin: PAM0-6 decide
 * whether 0xc0000-0xfffff is RAM or ROM (firmware runs from there on
 * every fragment, so it must be the same RAM, which the DSM keeps
 * coherent), SMRAM/ESMRAMC what 0xa0000 and TSEG are.
 */
#define IOFWD_MAP_OFFSET    MCH_HOST_BRIDGE_PAM0
#define IOFWD_MAP_LEN       (MCH_HOST_BRIDGE_ESMRAMC + 1 - IOFWD_MAP_OFFSET)
QEMU_BUILD_BUG_ON(IOFWD_MAP_LEN > DSM_IO_MAP_MAX);

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
    /* Set once at machine-init-done (qatomic); see net.c. */
    AggregateNet *net;

    /* lock protects the fields below; waiters sleep on cond */
    QemuMutex lock;
    QemuCond cond;
    GHashTable *pending;            /* id -> IOFwdWait * */
    uint32_t next_id;
    bool origin_lost;
};

/* A forwarded access waiting for its IO_RESP (client side). */
typedef struct IOFwdWait {
    DSMIOAccess resp;
    bool done;
} IOFwdWait;


/* ---- non-origin: forward and wait */

static uint32_t iofwd_attrs_to_wire(MemTxAttrs attrs)
{
    return (attrs.unspecified ? DSM_IO_ATTR_UNSPECIFIED : 0) |
           (attrs.secure ? DSM_IO_ATTR_SECURE : 0) |
           (attrs.user ? DSM_IO_ATTR_USER : 0);
}

static uint32_t iofwd_register_wait(AggregateIOFwd *fwd, IOFwdWait *wait)
{
    uint32_t id;

    QEMU_LOCK_GUARD(&fwd->lock);
    do {
        id = ++fwd->next_id;
    } while (!id || g_hash_table_contains(fwd->pending,
                                          GUINT_TO_POINTER(id)));
    g_hash_table_insert(fwd->pending, GUINT_TO_POINTER(id), wait);
    return id;
}

/* Sleep until the IO_RESP arrives or the origin is lost. */
static void iofwd_wait(AggregateIOFwd *fwd, uint32_t id, IOFwdWait *wait)
{
    QEMU_LOCK_GUARD(&fwd->lock);
    while (!wait->done && !fwd->origin_lost) {
        qemu_cond_wait(&fwd->cond, &fwd->lock);
    }
    if (!wait->done) {
        wait->resp.result = MEMTX_ERROR;
        wait->resp.data = ~0ULL;
    }
    g_hash_table_remove(fwd->pending, GUINT_TO_POINTER(id));
}

/*
 * Called with the BQL held (TCG MMIO, qtest, device code) or without
 * it (KVM exits); drops it while waiting either way.
 */
static MemTxResult iofwd_access(AggregateIOFwd *fwd, DSMIOSpace space,
                                hwaddr addr, uint64_t *data, unsigned size,
                                bool write, MemTxAttrs attrs)
{
    IOFwdWait wait = { };
    bool locked = bql_locked();
    DSMIOAccess req = {
        .space = space,
        .size = size,
        .write = write,
        .cpu = current_cpu ? current_cpu->cpu_index : DSM_IO_NO_CPU,
        .attrs = iofwd_attrs_to_wire(attrs),
        .addr = addr,
        .data = write ? *data : 0,
    };

    req.id = iofwd_register_wait(fwd, &wait);
    dsm_send(fwd->dsm, fwd->origin, DSM_MSG_IO_REQ, &req);
    if (locked) {
        bql_unlock();
    }
    iofwd_wait(fwd, req.id, &wait);
    if (locked) {
        bql_lock();
    }
    if (!write) {
        *data = wait.resp.data;
    }
    return wait.resp.result;
}

static MemTxResult iofwd_mem_read(void *opaque, hwaddr addr, uint64_t *data,
                                  unsigned size, MemTxAttrs attrs)
{
    AggregateIOFwd *fwd = opaque;

    return iofwd_access(fwd, DSM_IO_SPACE_MEMORY, addr, data, size, false,
                        attrs);
}

static MemTxResult iofwd_mem_write(void *opaque, hwaddr addr, uint64_t data,
                                   unsigned size, MemTxAttrs attrs)
{
    AggregateIOFwd *fwd = opaque;

    /* A virtqueue served here: see hw/aggregate/net.c. */
    if (aggregate_net_notify(qatomic_read(&fwd->net), addr)) {
        return MEMTX_OK;
    }
    return iofwd_access(fwd, DSM_IO_SPACE_MEMORY, addr, &data, size, true,
                        attrs);
}

static MemTxResult iofwd_io_read(void *opaque, hwaddr addr, uint64_t *data,
                                 unsigned size, MemTxAttrs attrs)
{
    AggregateIOFwd *fwd = opaque;

    return iofwd_access(fwd, DSM_IO_SPACE_IO, addr, data, size, false,
                        attrs);
}

static MemTxResult iofwd_io_write(void *opaque, hwaddr addr, uint64_t data,
                                  unsigned size, MemTxAttrs attrs)
{
    AggregateIOFwd *fwd = opaque;

    return iofwd_access(fwd, DSM_IO_SPACE_IO, addr, &data, size, true,
                        attrs);
}

/*
 * @addr is the port, or the guest-physical address: the I/O region sits
 * at port 0 and the MMIO windows are aliases into one region whose
 * offsets are guest-physical addresses.
 */
static const MemoryRegionOps iofwd_mem_ops = {
    .read_with_attrs = iofwd_mem_read,
    .write_with_attrs = iofwd_mem_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 1, .max_access_size = 8,
               .unaligned = true },
    .impl = { .min_access_size = 1, .max_access_size = 8,
              .unaligned = true },
};

static const MemoryRegionOps iofwd_io_ops = {
    .read_with_attrs = iofwd_io_read,
    .write_with_attrs = iofwd_io_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 1, .max_access_size = 4,
               .unaligned = true },
    .impl = { .min_access_size = 1, .max_access_size = 4,
              .unaligned = true },
};

static void iofwd_map(AggregateIOFwd *fwd, hwaddr ram_below_4g,
                      hwaddr ram_above_4g, hwaddr bios_size)
{
    hwaddr high = 4 * GiB + ram_above_4g;

    memory_region_init_io(&fwd->io_region, NULL, &iofwd_io_ops, fwd,
                          "aggregate-forward-io", 0x10000);
    memory_region_add_subregion_overlap(get_system_io(), 0, &fwd->io_region,
                                        IOFWD_PRIORITY);

    /* One region addressed by guest-physical address, shown twice. */
    memory_region_init_io(&fwd->mmio, NULL, &iofwd_mem_ops, fwd,
                          "aggregate-forward-mmio", IOFWD_MMIO_TOP);
    memory_region_init_alias(&fwd->mmio_low, NULL,
                             "aggregate-forward-mmio-32", &fwd->mmio,
                             ram_below_4g,
                             4 * GiB - bios_size - ram_below_4g);
    memory_region_add_subregion_overlap(get_system_memory(), ram_below_4g,
                                        &fwd->mmio_low, IOFWD_PRIORITY);
    memory_region_init_alias(&fwd->mmio_high, NULL,
                             "aggregate-forward-mmio-64", &fwd->mmio, high,
                             IOFWD_MMIO_TOP - high);
    memory_region_add_subregion_overlap(get_system_memory(), high,
                                        &fwd->mmio_high, IOFWD_PRIORITY);
    /* VGA memory, or SMRAM when the origin opens it. */
    memory_region_init_alias(&fwd->mmio_vga, NULL, "aggregate-forward-vga",
                             &fwd->mmio, IOFWD_VGA_BASE, IOFWD_VGA_SIZE);
    memory_region_add_subregion_overlap(get_system_memory(), IOFWD_VGA_BASE,
                                        &fwd->mmio_vga, IOFWD_PRIORITY);
}

/* IO_RESP from the origin: wake the access waiting for it. */
static bool iofwd_handle_resp(AggregateIOFwd *fwd, uint32_t from,
                              const DSMIOAccess *resp, Error **errp)
{
    IOFwdWait *wait;

    QEMU_LOCK_GUARD(&fwd->lock);
    wait = g_hash_table_lookup(fwd->pending, GUINT_TO_POINTER(resp->id));
    if (from != fwd->origin || !wait || wait->done) {
        error_setg(errp, "IO_RESP %u matches no forwarded access",
                   resp->id);
        return false;
    }
    wait->resp = *resp;
    wait->done = true;
    qemu_cond_broadcast(&fwd->cond);
    return true;
}

/* ---- origin: replay in order, one worker per fragment */

static MemTxAttrs iofwd_attrs_from_wire(uint32_t w)
{
    MemTxAttrs attrs = MEMTXATTRS_UNSPECIFIED;

    if (!(w & DSM_IO_ATTR_UNSPECIFIED)) {
        attrs = (MemTxAttrs) {
            .secure = !!(w & DSM_IO_ATTR_SECURE),
            .user = !!(w & DSM_IO_ATTR_USER),
        };
    }
    return attrs;
}

/* Replay one access under the BQL, as the vCPU that made it. */
static void iofwd_replay(DSMIOAccess *io)
{
    AddressSpace *as = io->space == DSM_IO_SPACE_IO ? &address_space_io
                                                    : &address_space_memory;
    CPUState *saved = current_cpu;
    uint8_t buf[8];

    current_cpu = io->cpu == DSM_IO_NO_CPU ? NULL : qemu_get_cpu(io->cpu);
    if (io->write) {
        stn_le_p(buf, io->size, io->data);
    }
    io->result = address_space_rw(as, io->addr,
                                  iofwd_attrs_from_wire(io->attrs), buf,
                                  io->size, io->write);
    io->data = io->write ? 0 : ldn_le_p(buf, io->size);
    current_cpu = saved;
}


/*
 * Make our host bridge's memory-map registers what the origin's are.
 * Writing them through config space runs the bridge's own update code
 * (mch_update_pam() and friends).
 */
static void iofwd_apply_map(AggregateIOFwd *fwd, const DSMIOMap *map)
{
    PCIDevice *dev = fwd->host_bridge;
    unsigned i;

    for (i = 0; i < map->len; i++) {
        if (dev->config[map->offset + i] != map->bytes[i]) {
            pci_host_config_write_common(dev, map->offset + i,
                                         pci_config_size(dev),
                                         map->bytes[i], 1);
        }
    }
    trace_aggregate_io_map_apply(map->offset, map->len);
}

/* ---- the I/O family: checks on the receive thread, never blocking */

static bool iofwd_check_map(void *opaque, uint32_t from, uint16_t type,
                            const void *msg, Error **errp)
{
    AggregateIOFwd *fwd = opaque;
    const DSMIOMap *map = msg;

    if (from != fwd->origin || fwd->self == fwd->origin) {
        error_setg(errp, "IO_MAP from fragment %u, which is not the origin",
                   from);
        return false;
    }
    if (map->offset < IOFWD_MAP_OFFSET ||
        map->offset + map->len > IOFWD_MAP_OFFSET + IOFWD_MAP_LEN) {
        error_setg(errp, "IO_MAP of %u bytes at 0x%x: only the PAM and "
                   "SMRAM registers are replicated", map->len, map->offset);
        return false;
    }
    return true;
}

static bool iofwd_check_req(void *opaque, uint32_t from, uint16_t type,
                            const void *msg, Error **errp)
{
    AggregateIOFwd *fwd = opaque;
    const DSMIOAccess *req = msg;

    if (fwd->self != fwd->origin) {
        error_setg(errp, "IO_REQ sent to fragment %u, which is not the "
                   "origin", fwd->self);
        return false;
    }
    if (req->cpu != DSM_IO_NO_CPU && !qemu_get_cpu(req->cpu)) {
        error_setg(errp, "IO_REQ from vCPU %u, which does not exist",
                   req->cpu);
        return false;
    }
    return true;
}

/* ---- deliveries on the sender's in-order worker, BQL held */

/* Origin: replay a fragment's access and answer it. */
static bool iofwd_deliver_req(void *opaque, uint32_t from, uint16_t type,
                              const void *msg, Error **errp)
{
    AggregateIOFwd *fwd = opaque;
    DSMIOAccess resp = *(const DSMIOAccess *)msg;

    iofwd_replay(&resp);
    dsm_send(fwd->dsm, from, DSM_MSG_IO_RESP, &resp);
    return true;
}

static bool iofwd_deliver_map(void *opaque, uint32_t from, uint16_t type,
                              const void *msg, Error **errp)
{
    iofwd_apply_map(opaque, msg);
    return true;
}

static bool iofwd_recv_resp(void *opaque, uint32_t from, uint16_t type,
                            const void *msg, Error **errp)
{
    return iofwd_handle_resp(opaque, from, msg, errp);
}

static void iofwd_peer_lost(void *opaque, uint32_t peer)
{
    AggregateIOFwd *fwd = opaque;

    if (peer != fwd->origin) {
        return;
    }
    QEMU_LOCK_GUARD(&fwd->lock);
    fwd->origin_lost = true;
    qemu_cond_broadcast(&fwd->cond);
}

/*
 * IO_REQ and IO_MAP act under the BQL on the worker, so that they keep
 * their order with the sender's interrupts and other worker messages;
 * IO_RESP only wakes a waiting access, at once.
 */
static const DSMMsgHandler iofwd_handlers[] = {
    { DSM_MSG_IO_REQ, DSM_DELIVER_WORKER_BQL, iofwd_check_req,
      iofwd_deliver_req },
    { DSM_MSG_IO_RESP, DSM_DELIVER_RECV, NULL, iofwd_recv_resp },
    { DSM_MSG_IO_MAP, DSM_DELIVER_WORKER_BQL, iofwd_check_map,
      iofwd_deliver_map },
};

static const DSMFamilyOps iofwd_family = {
    .family = DSM_FAMILY_IO,
    .name = "I/O",
    .codec = &aggregate_io_codec,
    .handlers = iofwd_handlers,
    .nr_handlers = ARRAY_SIZE(iofwd_handlers),
    .peer_lost = iofwd_peer_lost,
};

/*
 * Origin: after every memory-map change, send the host bridge's PAM and
 * SMRAM registers to the other fragments if they changed.  This runs
 * in the thread that made the change, before it goes on, so a fragment
 * sees the new map before any IPI or reply sent after the change.
 */
static void iofwd_map_commit(MemoryListener *listener)
{
    AggregateIOFwd *fwd = container_of(listener, AggregateIOFwd,
                                       map_listener);
    DSMIOMap map = { .offset = IOFWD_MAP_OFFSET, .len = IOFWD_MAP_LEN };

    if (!memcmp(fwd->map_sent, fwd->host_bridge->config + IOFWD_MAP_OFFSET,
                IOFWD_MAP_LEN)) {
        return;
    }
    memcpy(fwd->map_sent, fwd->host_bridge->config + IOFWD_MAP_OFFSET,
           IOFWD_MAP_LEN);
    memcpy(map.bytes, fwd->map_sent, IOFWD_MAP_LEN);
    trace_aggregate_io_map_send(IOFWD_MAP_OFFSET, IOFWD_MAP_LEN);
    dsm_send_peers(fwd->dsm, DSM_MSG_IO_MAP, &map);
}

static void iofwd_replicate_map(AggregateIOFwd *fwd)
{
    fwd->host_bridge = PCI_DEVICE(object_resolve_path_type("",
                                                TYPE_MCH_PCI_DEVICE, NULL));
    if (fwd->self != fwd->origin) {
        return;
    }
    memcpy(fwd->map_sent, fwd->host_bridge->config + IOFWD_MAP_OFFSET,
           IOFWD_MAP_LEN);
    fwd->map_listener = (MemoryListener) {
        .name = "aggregate-map",
        .commit = iofwd_map_commit,
    };
    memory_listener_register(&fwd->map_listener, &address_space_memory);
}

void aggregate_iofwd_set_net(AggregateIOFwd *fwd, AggregateNet *net)
{
    qatomic_set(&fwd->net, net);
}

AggregateIOFwd *aggregate_iofwd_start(DSM *dsm, uint32_t self,
                                      uint32_t origin, uint32_t nr_fragments,
                                      hwaddr ram_below_4g,
                                      hwaddr ram_above_4g, hwaddr bios_size)
{
    AggregateIOFwd *fwd = g_new0(AggregateIOFwd, 1);

    fwd->dsm = dsm;
    fwd->self = self;
    fwd->origin = origin;
    qemu_mutex_init(&fwd->lock);
    qemu_cond_init(&fwd->cond);
    fwd->pending = g_hash_table_new(NULL, NULL);
    if (self != origin) {
        iofwd_map(fwd, ram_below_4g, ram_above_4g, bios_size);
    }
    dsm_register_family(dsm, &iofwd_family, fwd);
    iofwd_replicate_map(fwd);
    return fwd;
}
