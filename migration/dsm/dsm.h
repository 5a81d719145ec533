/*
 * aggvm DSM: distributed shared memory for guest RAM
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef MIGRATION_DSM_DSM_H
#define MIGRATION_DSM_DSM_H

#include "exec/cpu-common.h"
#include "migration/dsm/wire.h"
#include "migration/dsm/link.h"
#include "migration/dsm/heartbeat.h"
#include "migration/dsm/watch.h"
#include "qapi/qapi-types-sockets.h"

typedef struct DSM DSM;

/*
 * What the DSM reports to the machine that uses it.  The DSM itself
 * knows nothing of vCPUs, run states or translated code: it calls
 * these, and the machine acts (hw/aggregate/dsm-hooks.c).
 */
typedef struct DSMHooks {
    /*
     * peer_failed: the link to @peer failed for @reason while the VM was
     * not leaving.  This fragment is cut off (see dsm_is_cut_off()): it
     * holds no coherent copy of guest RAM any more.  Called once, on the
     * thread that saw it (a link or DSM thread), holding no DSM lock;
     * it must not block.
     */
    void (*peer_failed)(void *opaque, uint32_t peer, const char *reason);
    /*
     * page_discarded: the @len bytes at RAM offset @start were just
     * dropped here (the page was given up).  When this returns, no vCPU
     * of this fragment may execute code translated from their old
     * contents.  Called under the page's lock, before the ACK or DATA
     * that gives the page up; it must not read guest memory or block.
     */
    void (*page_discarded)(void *opaque, uint64_t start, uint64_t len);
    /*
     * connect_failed: start-up could not bring every link up; @err
     * (the caller's to free) names the peer and why.  On the connect
     * thread.
     */
    void (*connect_failed)(void *opaque, Error *err);
} DSMHooks;

typedef struct DSMConfig {
    uint32_t self;                  /* this fragment's index */
    uint32_t nr_fragments;
    const char *const *ids;         /* [nr_fragments] fragment ids */
    SocketAddress *const *addrs;    /* [nr_fragments] link addresses */
    const uint64_t *home_bytes;     /* [nr_fragments] RAM each one homes */
    RAMBlock *rb;                   /* the guest RAM the DSM manages */
    uint8_t config_hash[DSM_CONFIG_HASH_SIZE];
    int64_t connect_timeout_ms;
    int64_t hold_ns;                /* see DSM_DEFAULT_HOLD_US */
    int service_priority;           /* see dsm_thread_set_priority() */
    const DSMHooks *hooks;
    void *hooks_opaque;
} DSMConfig;

/*
 * How long a page just installed stays before an INV or FWD may take it
 * away again (review, hazard 4): long enough for the faulting thread to
 * resume and use it, short against a network round trip.
 */
#define DSM_DEFAULT_HOLD_US 50

/*
 * dsm_start: take over @cfg->rb: discard it, register it with
 * userfaultfd (missing and write-protect faults), start the fault
 * thread and listen on this fragment's address.  Faults wait until
 * every link is up: see dsm_connect().
 *
 * Call from the main thread during machine init, with the BQL held.
 */
DSM *dsm_start(const DSMConfig *cfg, Error **errp);

/*
 * dsm_connect: connect to the peers in the background.  A peer may
 * send machine messages (interrupts, clock requests) as soon as its
 * link is up, so call this only once the families that take them are
 * registered (dsm_register_family()).  If the peers do not come up
 * within the timeout, or a handshake fails, the connect_failed hook
 * says which and why.
 *
 * Call from the main thread during machine init, with the BQL held.
 */
void dsm_connect(DSM *dsm);

/* Per-fragment statistics (see query-dsm in qapi/aggregate.json). */
#define DSM_LATENCY_BUCKETS 16      /* [2^i, 2^(i+1)) microseconds */

typedef struct DSMStats {
    uint64_t read_faults;
    uint64_t write_faults;
    uint64_t remote_fetches;        /* DATA with a payload received */
    uint64_t zero_fills;            /* DATA ZERO received */
    uint64_t upgrades;              /* GRANT received */
    uint64_t invalidations_sent;
    uint64_t invalidations_received;
    uint64_t pages_supplied;        /* DATA sent for a FWD */
    uint64_t hold_deferrals;        /* INV/FWD delayed by the hold time */
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t msgs_in;
    uint64_t msgs_out;
    uint64_t latency_us[DSM_LATENCY_BUCKETS];
    uint64_t pages;
    uint64_t homed_pages;
    uint64_t resident_pages;        /* Shared or Exclusive here */
    uint64_t exclusive_pages;
} DSMStats;

void dsm_get_stats(DSM *dsm, DSMStats *stats);

/*
 * dsm_register_family: the machine's message families ride on the
 * DSM's links; see DSMFamilyOps in link.h for the handlers' contract.
 * Register a family before dsm_connect() if a peer may send it as soon
 * as its link is up.
 */
void dsm_register_family(DSM *dsm, const DSMFamilyOps *ops, void *opaque);

/* Queue @msg for fragment @to; never blocks (see dsm_links_send). */
void dsm_send(DSM *dsm, uint32_t to, uint16_t type, const void *msg);

/* Queue @msg for every other fragment; never blocks. */
void dsm_send_peers(DSM *dsm, uint16_t type, const void *msg);

/*
 * dsm_leave: the aggregate VM is shutting down.  From now on a link
 * that closes is a peer leaving too, not a failure that stops the VM.
 * dsm_flush: wait up to @timeout_ms until what was sent is on the wire.
 */
void dsm_leave(DSM *dsm);
void dsm_flush(DSM *dsm, int64_t timeout_ms);

/* This fragment's id. */
const char *dsm_get_fragment_id(DSM *dsm);

/* The fragments: how many, their ids, which is this one, which are up. */
uint32_t dsm_nr_fragments(DSM *dsm);
const char *dsm_fragment_id(DSM *dsm, uint32_t fragment);
uint32_t dsm_self(DSM *dsm);
bool dsm_peer_up(DSM *dsm, uint32_t peer);

/* Pages fragment @fragment is the home of (its NUMA node's memory). */
uint64_t dsm_homed_pages(DSM *dsm, uint32_t fragment);

/* False until @peer has answered a heartbeat (see heartbeat.h). */
bool dsm_get_peer_beat(DSM *dsm, uint32_t peer, DSMPeerBeat *beat);

/*
 * dsm_is_cut_off: a link failed while the VM was not leaving (see
 * DSMHooks.peer_failed); from then on faults are served locally and
 * the VM must not run again.  dsm_is_leaving: dsm_leave() was called.
 */
bool dsm_is_cut_off(DSM *dsm);
bool dsm_is_leaving(DSM *dsm);

/* The RAM block the DSM manages, and its fault watches (watch.c). */
RAMBlock *dsm_ram_block(DSM *dsm);
DSMWatchList *dsm_watches(DSM *dsm);

#endif /* MIGRATION_DSM_DSM_H */
