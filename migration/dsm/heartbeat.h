/*
 * aggvm DSM: the heartbeat between fragments
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef MIGRATION_DSM_HEARTBEAT_H
#define MIGRATION_DSM_HEARTBEAT_H

#include "migration/dsm/link.h"

typedef struct DSMHeartbeat DSMHeartbeat;

/* What the last heartbeat said about a peer. */
typedef struct DSMPeerBeat {
    bool known;                 /* a PING or PONG came from it */
    int64_t rtt_ns;             /* last PING to PONG, 0 before one */
    uint64_t resident;          /* its pages, present */
    uint64_t exclusive;         /* its pages, present and writable */
} DSMPeerBeat;

/* This fragment's page counts, for the next PING or PONG. */
typedef void DSMHeartbeatCountFn(void *opaque, uint64_t *resident,
                                 uint64_t *exclusive);

/*
 * dsm_heartbeat_new: PING every connected peer once a second from the
 * main loop, and take the peers' PING and PONG (it registers the link
 * family).  Call from the main thread with the BQL held.
 */
DSMHeartbeat *dsm_heartbeat_new(DSMLinks *links, uint32_t self,
                                uint32_t nr_fragments,
                                DSMHeartbeatCountFn *count, void *opaque);

/* What is known of @peer; false before it first answered. */
bool dsm_heartbeat_peer(DSMHeartbeat *hb, uint32_t peer, DSMPeerBeat *beat);

#endif /* MIGRATION_DSM_HEARTBEAT_H */
