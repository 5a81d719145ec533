/*
 * aggvm DSM: fragment links
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef MIGRATION_DSM_LINK_H
#define MIGRATION_DSM_LINK_H

#include "migration/dsm/wire.h"
#include "qapi/qapi-types-sockets.h"

typedef struct DSMLinks DSMLinks;

/*
 * Message families plug into the links.  A family (the DSM's pages,
 * the heartbeat, and the machine's I/O, interrupts, lifecycle, clock,
 * vCPUs and network) registers one handler per message type it takes;
 * the link layer decodes and validates every message (wire.h), looks
 * its handler up and runs it in two steps:
 *
 *  - check (optional) runs on the link's receive thread, in link
 *    order, as soon as the message is decoded.  It validates the
 *    message against the receiver's state so that a bad one is refused
 *    before anything acts on it.  It must never block: no BQL, no
 *    waiting on a peer, only leaf locks.
 *  - deliver acts on the message, where the handler's @on says:
 *    DSM_DELIVER_RECV on the receive thread right after check (the same
 *    rules as check: that is how the DSM answers a fault without
 *    waiting for anything), or DSM_DELIVER_WORKER / _WORKER_BQL on the
 *    sender's in-order worker, a thread per peer that runs the worker
 *    messages of every family in the order they arrived, without or
 *    with the BQL held.  A worker may block (on the BQL, on a DSM
 *    fault), never on a reply from the same peer.
 *
 * Either step returning false (a protocol violation, in @errp) closes
 * the link as failed.  A message of a family nobody registered, or a
 * type the family has no handler for, is a link error that names it.
 * Every message to one destination, worker or not, keeps its order.
 */
typedef enum DSMDeliverOn {
    DSM_DELIVER_RECV,
    DSM_DELIVER_WORKER,
    DSM_DELIVER_WORKER_BQL,
} DSMDeliverOn;

/* @msg is @type's decoded struct (its DSMMsgDesc.msg_size bytes). */
typedef bool DSMMsgFn(void *opaque, uint32_t from, uint16_t type,
                      const void *msg, Error **errp);

typedef struct DSMMsgHandler {
    uint16_t type;
    DSMDeliverOn on;
    DSMMsgFn *check;                /* NULL: nothing to check */
    DSMMsgFn *deliver;
} DSMMsgHandler;

typedef struct DSMFamilyOps {
    DSMMsgFamily family;
    const char *name;               /* for errors: "DSM", "net", ... */
    const DSMFamilyCodec *codec;    /* every type the family may send */
    const DSMMsgHandler *handlers;  /* the types this fragment takes */
    size_t nr_handlers;
    /*
     * Called once, on the thread that saw it, when the link to @peer
     * fails after start-up; NULL if the family does not care.
     */
    void (*peer_lost)(void *opaque, uint32_t peer);
} DSMFamilyOps;

/*
 * dsm_links_register_family: from now on, messages of @ops->family go
 * to its handlers with @opaque.  Once per family; any time, from any
 * thread (a message that arrives before is a link error).  @ops must
 * outlive the links.
 */
void dsm_links_register_family(DSMLinks *links, const DSMFamilyOps *ops,
                               void *opaque);

/*
 * Called once, on the receive thread, when the link to @peer fails
 * after start-up (peer died, malformed message).  @err says why.
 */
typedef void DSMLinkLostFn(void *opaque, uint32_t peer, Error *err);

typedef struct DSMLinksConfig {
    uint32_t self;
    uint32_t nr_fragments;
    const char *const *ids;         /* fragment ids, for messages */
    SocketAddress *const *addrs;    /* where each fragment listens */
    uint8_t config_hash[DSM_CONFIG_HASH_SIZE];
    uint64_t nr_pages;
    DSMLinkLostFn *lost;            /* after the families' peer_lost */
    void *opaque;
    int service_priority;           /* see dsm_thread_set_priority() */
} DSMLinksConfig;

/*
 * dsm_thread_set_priority: run the calling thread, one that serves
 * other fragments (faults, links, forwarding), with real-time priority
 * @priority (SCHED_FIFO), so that it preempts a vCPU thread on its host
 * core at once instead of waiting for the vCPU's time slice to end.
 * 0 leaves the thread alone.  Warns once if the host does not allow it.
 */
void dsm_thread_set_priority(int priority);

DSMLinks *dsm_links_new(const DSMLinksConfig *cfg);

/*
 * dsm_links_listen: start listening on this fragment's address.
 * Fails at once if the address cannot be bound.
 */
bool dsm_links_listen(DSMLinks *links, Error **errp);

/*
 * dsm_links_connect: connect to every peer and exchange HELLO, waiting
 * up to @timeout_ms for peers that are not up yet.  Fragment i dials
 * every j < i and accepts every j > i, so start order does not matter.
 * On success the receive and send threads run.
 *
 * Blocks on the network: call it from a thread that holds no lock (not
 * the BQL).
 */
bool dsm_links_connect(DSMLinks *links, int64_t timeout_ms, Error **errp);

/*
 * dsm_links_send: queue @msg, the decoded struct of @type, for fragment
 * @to (which may be this fragment: then it is delivered by a local
 * thread, through the same codec and handlers).  @type's family must be
 * registered here.  Never blocks on the network; safe from any thread.
 * Messages to one destination keep their order.
 */
void dsm_links_send(DSMLinks *links, uint32_t to, uint16_t type,
                    const void *msg);

/*
 * dsm_links_flush: wait until every queued message is written to its
 * socket (or its link is dead), at most @timeout_ms in all.  For a
 * fragment about to exit.
 */
void dsm_links_flush(DSMLinks *links, int64_t timeout_ms);

/* Bytes and messages sent and received over sockets, all links. */
typedef struct DSMLinkStats {
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t msgs_in;
    uint64_t msgs_out;
} DSMLinkStats;

void dsm_links_get_stats(DSMLinks *links, DSMLinkStats *stats);

/* Whether the link to @peer is up (always true for this fragment). */
bool dsm_links_peer_up(DSMLinks *links, uint32_t peer);

#endif /* MIGRATION_DSM_LINK_H */
