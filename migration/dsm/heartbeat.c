/*
 * aggvm DSM: the heartbeat between fragments
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Once a second, from the main loop, every fragment sends PING to each
 * connected peer: when it left (on the sender's clock) and how many
 * guest pages the sender holds and holds writable.  The peer answers
 * PONG at once, from its link receive thread, echoing the time and
 * giving its own counts.  So each fragment knows, a second old at most,
 * the round trip to every peer and how much guest memory each holds;
 * query-aggregate reports both.  The round trip includes the peer's
 * receive and send threads: it is what a one-page request costs before
 * the page is served.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/lockable.h"
#include "qemu/thread.h"
#include "qemu/timer.h"
#include "migration/dsm/heartbeat.h"
#include "trace.h"

#define DSM_HEARTBEAT_MS    1000

struct DSMHeartbeat {
    /* Set at creation, then read-only. */
    DSMLinks *links;
    uint32_t self;
    uint32_t nr_fragments;
    DSMHeartbeatCountFn *count;
    void *opaque;
    QEMUTimer *timer;               /* main loop */

    /* lock protects the fields below */
    QemuMutex lock;
    DSMPeerBeat *peer;              /* [nr_fragments] */
    DSMBeat own;                    /* our counts at the last tick */
};

/*
 * Count our pages here, once a second, not on the receive threads,
 * which a PONG must not hold up.
 */
static void dsm_heartbeat_count(DSMHeartbeat *hb, DSMBeat *beat)
{
    uint64_t resident, exclusive;

    hb->count(hb->opaque, &resident, &exclusive);
    QEMU_LOCK_GUARD(&hb->lock);
    hb->own.resident = beat->resident = resident;
    hb->own.exclusive = beat->exclusive = exclusive;
}

static void dsm_heartbeat_tick(void *opaque)
{
    DSMHeartbeat *hb = opaque;
    DSMMsg ping = { .type = DSM_MSG_PING };
    uint32_t i;

    dsm_heartbeat_count(hb, &ping.beat);
    ping.beat.sent_ns = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    for (i = 0; i < hb->nr_fragments; i++) {
        if (i != hb->self && dsm_links_peer_up(hb->links, i)) {
            dsm_links_send(hb->links, i, ping.type, &ping);
        }
    }
    timer_mod(hb->timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                         DSM_HEARTBEAT_MS);
}

static bool dsm_heartbeat_recv(void *opaque, uint32_t from, uint16_t type,
                               const void *msg, Error **errp);

/*
 * The link family past the handshake: PING and PONG, answered on the
 * receive thread (HELLO is the handshake's; link.c refuses it later).
 */
static const DSMMsgHandler dsm_heartbeat_handlers[] = {
    { DSM_MSG_PING, DSM_DELIVER_RECV, NULL, dsm_heartbeat_recv },
    { DSM_MSG_PONG, DSM_DELIVER_RECV, NULL, dsm_heartbeat_recv },
};

static const DSMFamilyOps dsm_heartbeat_family = {
    .family = DSM_FAMILY_LINK,
    .name = "link",
    .codec = &dsm_link_codec,
    .handlers = dsm_heartbeat_handlers,
    .nr_handlers = ARRAY_SIZE(dsm_heartbeat_handlers),
};

DSMHeartbeat *dsm_heartbeat_new(DSMLinks *links, uint32_t self,
                                uint32_t nr_fragments,
                                DSMHeartbeatCountFn *count, void *opaque)
{
    DSMHeartbeat *hb = g_new0(DSMHeartbeat, 1);

    hb->links = links;
    hb->self = self;
    hb->nr_fragments = nr_fragments;
    hb->count = count;
    hb->opaque = opaque;
    hb->peer = g_new0(DSMPeerBeat, nr_fragments);
    qemu_mutex_init(&hb->lock);
    hb->timer = timer_new_ms(QEMU_CLOCK_REALTIME, dsm_heartbeat_tick, hb);
    timer_mod(hb->timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                         DSM_HEARTBEAT_MS);
    dsm_links_register_family(links, &dsm_heartbeat_family, hb);
    return hb;
}

/* On a link receive thread: answer a PING, record a PONG. */
static bool dsm_heartbeat_recv(void *opaque, uint32_t from, uint16_t type,
                               const void *opaque_msg, Error **errp)
{
    const DSMMsg *msg = opaque_msg;
    DSMHeartbeat *hb = opaque;
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    DSMPeerBeat *peer = &hb->peer[from];

    QEMU_LOCK_GUARD(&hb->lock);
    if (msg->type == DSM_MSG_PING) {
        DSMMsg pong = { .type = DSM_MSG_PONG, .beat = hb->own };

        pong.beat.sent_ns = msg->beat.sent_ns;
        dsm_links_send(hb->links, from, pong.type, &pong);
    }
    peer->resident = msg->beat.resident;
    peer->exclusive = msg->beat.exclusive;
    peer->known = true;
    if (msg->type == DSM_MSG_PONG) {
        if (msg->beat.sent_ns > now) {
            error_setg(errp, "PONG echoes a PING time 0x%" PRIx64 " that "
                       "is still to come", msg->beat.sent_ns);
            return false;
        }
        peer->rtt_ns = now - msg->beat.sent_ns;
        trace_dsm_heartbeat_rtt(from, peer->rtt_ns);
    }
    return true;
}

bool dsm_heartbeat_peer(DSMHeartbeat *hb, uint32_t peer, DSMPeerBeat *beat)
{
    QEMU_LOCK_GUARD(&hb->lock);
    *beat = hb->peer[peer];
    return beat->known;
}
