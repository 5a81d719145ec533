/*
 * aggvm DSM: fragment links
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * One TCP connection per pair of fragments carries every message
 * between them (wire.h).  Fragment i dials every j < i and accepts
 * every j > i; the first message each way is HELLO, which names the
 * sender and carries the protocol version, a hash of the aggregate
 * configuration and the DSM page count.  Any mismatch fails start-up
 * on both ends with an error naming the peer.
 *
 * Threads and waits:
 *  - per link, one receive thread reads and validates each message and
 *    runs its family's check step (and its deliver step, if that is on
 *    the receive thread), which never block (see link.h);
 *  - per link, one send thread does every write that may block:
 *    senders append to a queue, or, when nothing is queued or being
 *    written, try a non-blocking write first, so a receive thread
 *    that answers a message can never block on a full socket;
 *  - messages to this fragment itself go through a queue and a local
 *    send thread that decodes and delivers them like a receive thread.
 * Every byte goes through the link's QIOChannel, in non-blocking mode
 * from the handshake on; a thread that must wait for the channel waits
 * on the channel's own watch (LinkWaiter), never on its fd, so that
 * any QIOChannel (TLS included) can carry a link.
 * Each direction of a link numbers its messages: HELLO is 0, then
 * 1, 2, ...  The sender stamps the number under the link lock (the
 * order messages reach the socket), the receiver checks it, so a lost,
 * repeated or reordered message is a link error, not silent.
 *  - per link, one in-order worker runs the deliver steps that the
 *    message families want off the receive thread (see link.h), in
 *    arrival order across families; the receive thread hands it the
 *    message's wire bytes, which the worker decodes again (they were
 *    validated already), so that no decoded message is copied.
 * Lock order: a caller may hold its own locks (page, directory) when it
 * calls dsm_links_send(); DSMLink.lock and DSMLink.work_lock are
 * leaves; a worker takes the BQL with neither held.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/main-loop.h"
#include "qemu/error-report.h"
#include "qemu/thread.h"
#include "qemu/lockable.h"
#include "qemu/stats64.h"
#include "qemu/sockets.h"
#include "io/channel-socket.h"
#include "qapi/clone-visitor.h"
#include "qapi/qapi-visit-sockets.h"
#include "migration/dsm/link.h"
#include "trace.h"

#define DSM_LINK_RETRY_US   (100 * 1000)

/* A message for a family's worker step: its handler and wire bytes. */
typedef struct DSMWork {
    const DSMMsgHandler *handler;
    const DSMMsgDesc *desc;
    void *opaque;
    size_t len;
    uint8_t bytes[];
} DSMWork;

typedef struct DSMLink {
    /* Set before the threads start, then read-only. */
    DSMLinks *links;
    uint32_t peer;
    QIOChannelSocket *sioc;         /* NULL for the link to ourselves */
    QemuThread rx_thread;
    QemuThread tx_thread;
    QemuThread worker_thread;
    uint32_t rx_seq;                /* the next one due (receive thread) */

    /* failed: set once, by whichever thread sees the link fail first */
    bool failed;

    /* lock protects the fields below */
    QemuMutex lock;
    QemuCond cond;
    GQueue txq;                     /* of GByteArray *, encoded */
    uint32_t tx_seq;                /* stamped on the next one queued */
    bool tx_busy;                   /* the send thread is writing */
    bool started;                   /* the link threads run */
    bool dead;

    /* work_lock protects work; the worker waits on work_cond */
    QemuMutex work_lock;
    QemuCond work_cond;
    GQueue work;                    /* of DSMWork *, in arrival order */
} DSMLink;

/* A family's registration: ops and opaque, published with qatomic. */
typedef struct DSMFamilyReg {
    const DSMFamilyOps *ops;
    void *opaque;
} DSMFamilyReg;

struct DSMLinks {
    /* Set by dsm_links_new(), then read-only. */
    DSMLinksConfig cfg;
    char **ids;                     /* cfg.ids points here */
    SocketAddress **addrs;          /* cfg.addrs points here */
    DSMLink *link;                  /* [nr_fragments] */
    QIOChannelSocket *listener;
    /* Set once per family by dsm_links_register_family(). */
    DSMFamilyReg *families[DSM_MSG_FAMILY(0xffff) + 1];

    /* Counters, updated atomically by the link threads. */
    Stat64 bytes_in;
    Stat64 bytes_out;
    Stat64 msgs_in;
    Stat64 msgs_out;
};

static const char *peer_id(DSMLinks *links, uint32_t peer)
{
    return links->cfg.ids[peer];
}

DSMLinks *dsm_links_new(const DSMLinksConfig *cfg)
{
    DSMLinks *links = g_new0(DSMLinks, 1);
    uint32_t i;

    links->cfg = *cfg;
    /* The caller's arrays may not outlive this call: keep copies. */
    links->ids = g_strdupv((char **)cfg->ids);
    links->addrs = g_new0(SocketAddress *, cfg->nr_fragments);
    for (i = 0; i < cfg->nr_fragments; i++) {
        links->addrs[i] = QAPI_CLONE(SocketAddress, cfg->addrs[i]);
    }
    links->cfg.ids = (const char *const *)links->ids;
    links->cfg.addrs = links->addrs;
    links->link = g_new0(DSMLink, cfg->nr_fragments);
    for (i = 0; i < cfg->nr_fragments; i++) {
        DSMLink *link = &links->link[i];

        link->links = links;
        link->peer = i;
        /* Message 0 is HELLO, sent before anything queued here. */
        link->tx_seq = 1;
        link->rx_seq = 1;
        qemu_mutex_init(&link->lock);
        qemu_cond_init(&link->cond);
        g_queue_init(&link->txq);
        qemu_mutex_init(&link->work_lock);
        qemu_cond_init(&link->work_cond);
        g_queue_init(&link->work);
    }
    return links;
}

bool dsm_links_listen(DSMLinks *links, Error **errp)
{
    ERRP_GUARD();
    SocketAddress *addr = links->cfg.addrs[links->cfg.self];
    g_autofree char *str = socket_uri(addr);

    links->listener = qio_channel_socket_new();
    if (qio_channel_socket_listen_sync(links->listener, addr,
                                       links->cfg.nr_fragments, errp) < 0) {
        error_prepend(errp, "fragment %s cannot listen on %s: ",
                      peer_id(links, links->cfg.self), str);
        object_unref(OBJECT(links->listener));
        links->listener = NULL;
        return false;
    }
    trace_dsm_link_listen(str);
    return true;
}


/*
 * A thread's wait for one condition on one channel, through the
 * channel's watch in a GMainContext of the thread's own: the watch
 * stays attached, so a wait costs one poll(), not a context per wait
 * as qio_channel_wait() does.  @deadline_ms (g_get_monotonic_time()
 * in ms, or -1 for none) bounds a wait.
 */
typedef struct LinkWaiter {
    GMainContext *ctx;
    GSource *watch;
    bool ready;
} LinkWaiter;

static gboolean link_waiter_ready(QIOChannel *ioc, GIOCondition cond,
                                  gpointer opaque)
{
    LinkWaiter *w = opaque;

    w->ready = true;
    return G_SOURCE_CONTINUE;
}

static gboolean link_waiter_timeout(gpointer opaque)
{
    return G_SOURCE_CONTINUE;
}

static void link_waiter_init(LinkWaiter *w, QIOChannel *ioc,
                             GIOCondition cond)
{
    w->ctx = g_main_context_new();
    w->watch = qio_channel_create_watch(ioc, cond);
    g_source_set_callback(w->watch, (GSourceFunc)link_waiter_ready, w, NULL);
    g_source_attach(w->watch, w->ctx);
    w->ready = false;
}

static void link_waiter_destroy(LinkWaiter *w)
{
    g_source_destroy(w->watch);
    g_source_unref(w->watch);
    g_main_context_unref(w->ctx);
}

/* Wait until the condition holds; false once @deadline_ms has passed. */
static bool link_waiter_wait(LinkWaiter *w, int64_t deadline_ms)
{
    GSource *timer = NULL;
    bool ok = true;

    if (deadline_ms >= 0) {
        int64_t left = deadline_ms - g_get_monotonic_time() / 1000;

        if (left <= 0) {
            return false;
        }
        timer = g_timeout_source_new(MIN(left, 1000));
        g_source_set_callback(timer, link_waiter_timeout, NULL, NULL);
        g_source_attach(timer, w->ctx);
    }
    w->ready = false;
    g_main_context_iteration(w->ctx, TRUE);
    if (timer) {
        g_source_destroy(timer);
        g_source_unref(timer);
        ok = w->ready || g_get_monotonic_time() / 1000 < deadline_ms;
    }
    return ok;
}

/*
 * Read exactly @len bytes into @buf, waiting through @w whenever the
 * channel has none.  Returns 1 when done, 0 on EOF before the first
 * byte (when @eof_ok), -1 with @errp set otherwise.  @what names the
 * message for errors; @deadline_ms as in link_waiter_wait().
 */
static int link_read_full(QIOChannel *ioc, LinkWaiter *w, uint8_t *buf,
                          size_t len, bool eof_ok, int64_t deadline_ms,
                          const char *what, Error **errp)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = qio_channel_read(ioc, (char *)buf + done, len - done,
                                     errp);

        if (n == QIO_CHANNEL_ERR_BLOCK) {
            if (!link_waiter_wait(w, deadline_ms)) {
                error_setg(errp, "timed out waiting for %s", what);
                return -1;
            }
            continue;
        }
        if (n < 0) {
            return -1;
        }
        if (n == 0) {
            if (eof_ok && done == 0) {
                return 0;
            }
            error_setg(errp, "connection closed in the middle of %s", what);
            return -1;
        }
        done += n;
    }
    return 1;
}

/* Write all of @buf, waiting through @w whenever the channel is full. */
static bool link_write_full(QIOChannel *ioc, LinkWaiter *w,
                            const uint8_t *buf, size_t len, Error **errp)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = qio_channel_write(ioc, (const char *)buf + done,
                                      len - done, errp);

        if (n == QIO_CHANNEL_ERR_BLOCK) {
            link_waiter_wait(w, -1);
            continue;
        }
        if (n < 0) {
            return false;
        }
        done += n;
    }
    return true;
}

/* Stamp the link sequence number @seq into an encoded message. */
static void link_stamp_seq(GByteArray *bytes, uint32_t seq)
{
    dsm_header_set_seq(bytes->data, bytes->len, seq);
}

static void link_families_peer_lost(DSMLinks *links, uint32_t peer);

/* Failure of an established link: report once, wake the send thread. */
static void link_fail(DSMLink *link, Error *err)
{
    DSMLinks *links = link->links;

    if (qatomic_xchg(&link->failed, true)) {
        error_free(err);
        return;
    }
    trace_dsm_link_failed(peer_id(links, link->peer));
    if (link->sioc) {
        qio_channel_shutdown(QIO_CHANNEL(link->sioc),
                             QIO_CHANNEL_SHUTDOWN_BOTH, NULL);
    }
    WITH_QEMU_LOCK_GUARD(&link->lock) {
        link->dead = true;
        qemu_cond_broadcast(&link->cond);
    }
    link_families_peer_lost(links, link->peer);
    links->cfg.lost(links->cfg.opaque, link->peer, err);
}

/* ---- message families: registration and dispatch (see link.h) */

void dsm_links_register_family(DSMLinks *links, const DSMFamilyOps *ops,
                               void *opaque)
{
    DSMFamilyReg *reg = g_new(DSMFamilyReg, 1);
    size_t i;

    assert(ops->codec && ops->codec->family == ops->family);
    for (i = 0; i < ops->codec->nr_descs; i++) {
        assert(ops->codec->descs[i].msg_size <= DSM_MAX_DECODED);
        assert(ops->codec->descs[i].size + ops->codec->descs[i].extra <=
               DSM_MAX_PAYLOAD);
    }
    for (i = 0; i < ops->nr_handlers; i++) {
        assert(dsm_codec_find(ops->codec, ops->handlers[i].type));
        assert(ops->handlers[i].deliver);
    }
    reg->ops = ops;
    reg->opaque = opaque;
    assert(!links->families[ops->family]);
    qatomic_store_release(&links->families[ops->family], reg);
}

static const DSMFamilyReg *link_family(DSMLinks *links, DSMMsgFamily family)
{
    return qatomic_load_acquire(&links->families[family]);
}

static void link_families_peer_lost(DSMLinks *links, uint32_t peer)
{
    size_t f;

    for (f = 0; f < ARRAY_SIZE(links->families); f++) {
        const DSMFamilyReg *reg = qatomic_load_acquire(&links->families[f]);

        if (reg && reg->ops->peer_lost) {
            reg->ops->peer_lost(reg->opaque, peer);
        }
    }
}

static const DSMFamilyCodec *link_codec_of(void *opaque,
                                           DSMMsgFamily family)
{
    const DSMFamilyReg *reg = link_family(opaque, family);

    return reg ? reg->ops->codec : NULL;
}

/* @desc's handler in its registered family; an error if it has none. */
static const DSMMsgHandler *link_handler(DSMLinks *links,
                                         const DSMMsgDesc *desc,
                                         void **opaque, Error **errp)
{
    const DSMFamilyReg *reg = link_family(links, DSM_MSG_FAMILY(desc->type));
    size_t i;

    for (i = 0; i < reg->ops->nr_handlers; i++) {
        if (reg->ops->handlers[i].type == desc->type) {
            *opaque = reg->opaque;
            return &reg->ops->handlers[i];
        }
    }
    error_setg(errp, "%s (type 0x%04x) is not a message the %s family "
               "takes", desc->name, desc->type, reg->ops->name);
    return NULL;
}
/*
 * Run @msg's check step (@desc's type, decoded) and its deliver step if
 * that is on this thread; otherwise queue @bytes (@len, the whole
 * encoded message) for the link's worker.  On a link receive or self
 * thread.
 */
static bool link_dispatch(DSMLink *link, const DSMMsgDesc *desc,
                          const void *msg, const uint8_t *bytes, size_t len,
                          Error **errp)
{
    void *opaque;
    const DSMMsgHandler *h = link_handler(link->links, desc, &opaque, errp);
    DSMWork *work;

    if (!h || (h->check &&
               !h->check(opaque, link->peer, desc->type, msg, errp))) {
        return false;
    }
    if (h->on == DSM_DELIVER_RECV) {
        return h->deliver(opaque, link->peer, desc->type, msg, errp);
    }
    work = g_malloc(sizeof(*work) + len);
    work->handler = h;
    work->desc = desc;
    work->opaque = opaque;
    work->len = len;
    memcpy(work->bytes, bytes, len);
    QEMU_LOCK_GUARD(&link->work_lock);
    g_queue_push_tail(&link->work, work);
    qemu_cond_signal(&link->work_cond);
    return true;
}

static DSMWork *link_next_work(DSMLink *link)
{
    QEMU_LOCK_GUARD(&link->work_lock);
    while (g_queue_is_empty(&link->work)) {
        qemu_cond_wait(&link->work_cond, &link->work_lock);
    }
    return g_queue_pop_head(&link->work);
}

/* The in-order worker of one link: the families' worker steps. */
static void *link_worker_thread(void *opaque)
{
    DSMLink *link = opaque;
    DSMLinks *links = link->links;

    rcu_register_thread();
    dsm_thread_set_priority(links->cfg.service_priority);
    for (;;) {
        g_autofree DSMWork *work = link_next_work(link);
        const DSMMsgHandler *h = work->handler;
        const DSMLimits lim = { links->cfg.nr_pages,
                                links->cfg.nr_fragments };
        uint64_t msg[DSM_MAX_DECODED / sizeof(uint64_t)];
        Error *err = NULL;
        bool ok;

        /* Validated when it arrived: failing now is a bug. */
        dsm_payload_decode(work->desc, work->bytes + DSM_HEADER_SIZE,
                           work->len - DSM_HEADER_SIZE, &lim, msg,
                           &error_abort);
        if (h->on == DSM_DELIVER_WORKER_BQL) {
            bql_lock();
        }
        ok = h->deliver(work->opaque, link->peer, work->desc->type, msg,
                        &err);
        if (h->on == DSM_DELIVER_WORKER_BQL) {
            bql_unlock();
        }
        if (!ok) {
            error_prepend(&err, "fragment %s broke the protocol: ",
                          peer_id(links, link->peer));
            link_fail(link, err);
        }
    }
    rcu_unregister_thread();
    return NULL;
}

/*
 * Send @bytes at once if nothing is queued before it and the socket
 * takes all of it without blocking: this saves waking the send thread
 * on the critical path of a fault.  Otherwise the unsent rest stays in
 * @bytes for the queue.  Never blocks: the channel is non-blocking.
 * Called with link->lock held.
 */
static bool link_try_send_locked(DSMLink *link, GByteArray *bytes)
{
    DSMLinks *links = link->links;
    ssize_t n;

    if (!link->sioc || !link->started || link->tx_busy ||
        !g_queue_is_empty(&link->txq)) {
        return false;
    }
    n = qio_channel_write(QIO_CHANNEL(link->sioc), (const char *)bytes->data,
                          bytes->len, NULL);
    if (n <= 0) {
        /* It would block, or an error the send thread will report. */
        return false;
    }
    stat64_add(&links->bytes_out, n);
    if (n == bytes->len) {
        stat64_add(&links->msgs_out, 1);
        return true;
    }
    g_byte_array_remove_range(bytes, 0, n);
    return false;
}

void dsm_links_send(DSMLinks *links, uint32_t to, uint16_t type,
                    const void *msg)
{
    DSMLink *link = &links->link[to];
    const DSMFamilyReg *reg = link_family(links, DSM_MSG_FAMILY(type));
    const DSMMsgDesc *desc = reg ? dsm_codec_find(reg->ops->codec, type)
                                 : NULL;
    /* Room for the usual largest, DATA; VCPU_STATE grows it. */
    GByteArray *bytes = g_byte_array_sized_new(DSM_HEADER_SIZE + 16 +
                                               DSM_PAGE_SIZE);

    /* Sending a type of a family not registered here is a bug. */
    assert(desc);
    dsm_msg_encode(desc, msg, bytes);
    QEMU_LOCK_GUARD(&link->lock);
    if (link->dead) {
        g_byte_array_unref(bytes);
        return;
    }
    trace_dsm_link_send(peer_id(links, to), desc->name, link->tx_seq,
                        bytes->len);
    link_stamp_seq(bytes, link->tx_seq++);
    if (link_try_send_locked(link, bytes)) {
        g_byte_array_unref(bytes);
        return;
    }
    g_queue_push_tail(&link->txq, bytes);
    qemu_cond_broadcast(&link->cond);   /* the send thread, not a flush */
}
/*
 * Wait for the next queued message; NULL once the link is dead.  Marks
 * the send thread busy until the next call, so that no direct send
 * overtakes the message it is writing.
 */
static GByteArray *link_next(DSMLink *link)
{
    QEMU_LOCK_GUARD(&link->lock);
    link->tx_busy = false;
    if (g_queue_is_empty(&link->txq)) {
        qemu_cond_broadcast(&link->cond);   /* for dsm_links_flush() */
    }
    while (g_queue_is_empty(&link->txq) && !link->dead) {
        qemu_cond_wait(&link->cond, &link->lock);
    }
    if (link->dead) {
        return NULL;
    }
    link->tx_busy = true;
    return g_queue_pop_head(&link->txq);
}

static void *link_tx_thread(void *opaque)
{
    DSMLink *link = opaque;
    DSMLinks *links = link->links;
    QIOChannel *ioc = QIO_CHANNEL(link->sioc);
    LinkWaiter w;
    GByteArray *bytes;

    dsm_thread_set_priority(links->cfg.service_priority);
    link_waiter_init(&w, ioc, G_IO_OUT);
    while ((bytes = link_next(link))) {
        Error *err = NULL;

        if (!link_write_full(ioc, &w, bytes->data, bytes->len, &err)) {
            error_prepend(&err, "sending to fragment %s: ",
                          peer_id(links, link->peer));
            g_byte_array_unref(bytes);
            link_fail(link, err);
            break;
        }
        stat64_add(&links->bytes_out, bytes->len);
        stat64_add(&links->msgs_out, 1);
        g_byte_array_unref(bytes);
    }
    link_waiter_destroy(&w);
    return NULL;
}

/* Messages to ourselves: decode and deliver in queue order. */
static void *link_self_thread(void *opaque)
{
    DSMLink *link = opaque;
    DSMLinks *links = link->links;
    GByteArray *bytes;

    rcu_register_thread();
    dsm_thread_set_priority(links->cfg.service_priority);
    while ((bytes = link_next(link))) {
        const DSMLimits lim = { links->cfg.nr_pages,
                                links->cfg.nr_fragments };
        uint64_t msg[DSM_MAX_DECODED / sizeof(uint64_t)];
        const DSMMsgDesc *desc;
        Error *err = NULL;
        DSMHeader hdr;

        /* We encoded it ourselves: failing is a bug, not input. */
        dsm_msg_decode(link_codec_of, links, bytes->data, bytes->len, &lim,
                       &hdr, &desc, msg, &error_abort);
        assert(hdr.seq == link->rx_seq);
        link->rx_seq++;
        if (!link_dispatch(link, desc, msg, bytes->data, bytes->len, &err)) {
            g_byte_array_unref(bytes);
            link_fail(link, err);
            break;
        }
        g_byte_array_unref(bytes);
    }
    rcu_unregister_thread();
    return NULL;
}

/* The receive side of the sequence numbers (see the top of the file). */
static bool link_check_seq(DSMLink *link, const DSMHeader *hdr, Error **errp)
{
    if (hdr->seq != link->rx_seq) {
        const DSMMsgDesc *desc = dsm_codec_lookup(link_codec_of, link->links,
                                                  hdr->type, NULL);

        error_setg(errp, "%s is message %u on the link, expected %u",
                   desc ? desc->name : "a message of unknown type",
                   hdr->seq, link->rx_seq);
        return false;
    }
    link->rx_seq++;
    return true;
}

/*
 * Read one whole message into @buf (DSM_HEADER_SIZE + DSM_MAX_PAYLOAD
 * bytes) and validate it: its length in *@len, its type in *@desc, the
 * decoded struct in @msg (DSM_MAX_DECODED bytes).  Returns 1 on
 * success, 0 on a clean EOF before a header, -1 on error.
 */
static int link_read_msg(DSMLink *link, LinkWaiter *w, uint8_t *buf,
                         size_t *len, const DSMMsgDesc **desc, void *msg,
                         Error **errp)
{
    DSMLinks *links = link->links;
    const DSMLimits lim = { links->cfg.nr_pages, links->cfg.nr_fragments };
    QIOChannel *ioc = QIO_CHANNEL(link->sioc);
    DSMHeader hdr;
    int ret;

    ret = link_read_full(ioc, w, buf, DSM_HEADER_SIZE, true, -1,
                         "a message header", errp);
    if (ret <= 0) {
        return ret;
    }
    if (!dsm_header_decode(buf, DSM_HEADER_SIZE, &hdr, errp) ||
        !link_check_seq(link, &hdr, errp)) {
        return -1;
    }
    *desc = dsm_codec_lookup(link_codec_of, links, hdr.type, errp);
    if (!*desc || !dsm_check_length(*desc, hdr.length, errp) ||
        link_read_full(ioc, w, buf + DSM_HEADER_SIZE, hdr.length, false, -1,
                       (*desc)->name, errp) < 0 ||
        !dsm_payload_decode(*desc, buf + DSM_HEADER_SIZE, hdr.length, &lim,
                            msg, errp)) {
        return -1;
    }
    *len = DSM_HEADER_SIZE + hdr.length;
    stat64_add(&links->bytes_in, *len);
    stat64_add(&links->msgs_in, 1);
    trace_dsm_link_recv(peer_id(links, link->peer), (*desc)->name, hdr.seq,
                        *len);
    return 1;
}
static void *link_rx_thread(void *opaque)
{
    DSMLink *link = opaque;
    DSMLinks *links = link->links;
    g_autofree uint8_t *buf = g_malloc(DSM_HEADER_SIZE + DSM_MAX_PAYLOAD);
    LinkWaiter w;

    rcu_register_thread();
    dsm_thread_set_priority(links->cfg.service_priority);
    link_waiter_init(&w, QIO_CHANNEL(link->sioc), G_IO_IN);
    for (;;) {
        uint64_t msg[DSM_MAX_DECODED / sizeof(uint64_t)];
        const DSMMsgDesc *desc;
        Error *err = NULL;
        size_t len;
        int ret = link_read_msg(link, &w, buf, &len, &desc, msg, &err);

        if (ret <= 0) {
            if (ret == 0) {
                error_setg(&err, "fragment %s closed the link",
                           peer_id(links, link->peer));
            } else {
                error_prepend(&err, "link to fragment %s: ",
                              peer_id(links, link->peer));
            }
            link_fail(link, err);
            break;
        }
        if (desc->type == DSM_MSG_HELLO) {
            error_setg(&err, "fragment %s sent HELLO twice",
                       peer_id(links, link->peer));
            link_fail(link, err);
            break;
        }
        if (!link_dispatch(link, desc, msg, buf, len, &err)) {
            error_prepend(&err, "fragment %s broke the protocol: ",
                          peer_id(links, link->peer));
            link_fail(link, err);
            break;
        }
    }
    link_waiter_destroy(&w);
    rcu_unregister_thread();
    return NULL;
}



static bool send_hello(DSMLinks *links, QIOChannelSocket *sioc,
                       Error **errp)
{
    g_autoptr(GByteArray) bytes = g_byte_array_new();
    QIOChannel *ioc = QIO_CHANNEL(sioc);
    LinkWaiter w;
    bool ok;
    DSMMsg hello = {
        .type = DSM_MSG_HELLO,
        .fragment = links->cfg.self,
        .version = DSM_WIRE_VERSION,
        .nr_pages = links->cfg.nr_pages,
    };

    memcpy(hello.config_hash, links->cfg.config_hash, DSM_CONFIG_HASH_SIZE);
    dsm_msg_encode(dsm_codec_find(&dsm_link_codec, DSM_MSG_HELLO), &hello,
                   bytes);
    link_waiter_init(&w, ioc, G_IO_OUT);
    ok = link_write_full(ioc, &w, bytes->data, bytes->len, errp);
    link_waiter_destroy(&w);
    return ok;
}

static bool recv_hello(DSMLinks *links, QIOChannelSocket *sioc,
                       int64_t deadline, DSMMsg *hello, Error **errp)
{
    g_autofree uint8_t *buf = g_malloc(DSM_HEADER_SIZE + DSM_MAX_PAYLOAD);
    const DSMMsgDesc *desc = dsm_codec_find(&dsm_link_codec, DSM_MSG_HELLO);
    const DSMLimits lim = { links->cfg.nr_pages, links->cfg.nr_fragments };
    QIOChannel *ioc = QIO_CHANNEL(sioc);
    LinkWaiter w;
    DSMHeader hdr;
    bool ok = false;

    link_waiter_init(&w, ioc, G_IO_IN);
    if (link_read_full(ioc, &w, buf, DSM_HEADER_SIZE, false, deadline,
                       "HELLO", errp) < 0 ||
        !dsm_header_decode(buf, DSM_HEADER_SIZE, &hdr, errp)) {
        goto out;
    }
    if (hdr.type != DSM_MSG_HELLO || hdr.seq != 0) {
        error_setg(errp, "expected HELLO as message 0, received type "
                   "0x%04x as message %u", hdr.type, hdr.seq);
        goto out;
    }
    ok = dsm_check_length(desc, hdr.length, errp) &&
         link_read_full(ioc, &w, buf + DSM_HEADER_SIZE, hdr.length, false,
                        deadline, "HELLO", errp) > 0 &&
         dsm_payload_decode(desc, buf + DSM_HEADER_SIZE, hdr.length, &lim,
                            hello, errp);
out:
    link_waiter_destroy(&w);
    return ok;
}

static char *hash_prefix(const uint8_t *hash)
{
    return g_strdup_printf("%02x%02x%02x%02x%02x%02x", hash[0], hash[1],
                           hash[2], hash[3], hash[4], hash[5]);
}

/* Check a peer's HELLO against ours; @expected is -1 for "any j > self". */
static bool check_hello(DSMLinks *links, const DSMMsg *hello, int64_t expected,
                        const char *where, Error **errp)
{
    const DSMLinksConfig *cfg = &links->cfg;
    const char *who = peer_id(links, hello->fragment);

    if (hello->version != DSM_WIRE_VERSION) {
        error_setg(errp, "fragment %s (%s) speaks aggvm link protocol "
                   "version %u, this fragment version %u", who, where,
                   hello->version, DSM_WIRE_VERSION);
        return false;
    }
    if (memcmp(hello->config_hash, cfg->config_hash, DSM_CONFIG_HASH_SIZE)) {
        g_autofree char *theirs = hash_prefix(hello->config_hash);
        g_autofree char *ours = hash_prefix(cfg->config_hash);

        error_setg(errp, "fragment %s (%s) has a different aggregate "
                   "configuration (hash %s..., this fragment %s...): every "
                   "fragment must run the same command line except "
                   "-machine fragment=", who, where, theirs, ours);
        return false;
    }
    if (hello->nr_pages != cfg->nr_pages) {
        error_setg(errp, "fragment %s (%s) manages %" PRIu64 " DSM pages, "
                   "this fragment %" PRIu64, who, where, hello->nr_pages,
                   cfg->nr_pages);
        return false;
    }
    if (expected >= 0 ? hello->fragment != expected
                      : (hello->fragment <= cfg->self ||
                         links->link[hello->fragment].sioc)) {
        error_setg(errp, "%s answered as fragment %s, expected %s", where,
                   who, expected >= 0 ? peer_id(links, expected)
                                      : "a fragment listed after this one");
        return false;
    }
    return true;
}

static QIOChannelSocket *dial_until(DSMLinks *links, uint32_t peer,
                                    int64_t deadline, Error **errp)
{
    SocketAddress *addr = links->cfg.addrs[peer];

    for (;;) {
        QIOChannelSocket *sioc = qio_channel_socket_new();
        Error *err = NULL;

        if (qio_channel_socket_connect_sync(sioc, addr, &err) == 0) {
            return sioc;
        }
        object_unref(OBJECT(sioc));
        if (g_get_monotonic_time() / 1000 >= deadline) {
            g_autofree char *str = socket_uri(addr);

            error_propagate_prepend(errp, err, "fragment %s (%s) did not "
                                    "come up in time: ",
                                    peer_id(links, peer), str);
            return NULL;
        }
        error_free(err);
        g_usleep(DSM_LINK_RETRY_US);
    }
}

/* HELLO both ways on a fresh connection; @expected as in check_hello. */
static bool handshake(DSMLinks *links, QIOChannelSocket *sioc,
                      int64_t expected, int64_t deadline, Error **errp)
{
    ERRP_GUARD();
    g_autofree char *where = NULL;
    DSMMsg hello;

    where = expected >= 0 ? socket_uri(links->cfg.addrs[expected])
                          : g_strdup("a connecting fragment");
    if (qio_channel_set_blocking(QIO_CHANNEL(sioc), false, errp) < 0 ||
        !send_hello(links, sioc, errp) ||
        !recv_hello(links, sioc, deadline, &hello, errp)) {
        error_prepend(errp, "handshake with %s: ", where);
        return false;
    }
    if (!check_hello(links, &hello, expected, where, errp)) {
        return false;
    }
    qio_channel_set_delay(QIO_CHANNEL(sioc), false);
    links->link[hello.fragment].sioc = sioc;
    trace_dsm_link_up(peer_id(links, hello.fragment));
    return true;
}

static bool accept_one(DSMLinks *links, int64_t deadline, Error **errp)
{
    QIOChannel *lioc = QIO_CHANNEL(links->listener);
    QIOChannelSocket *sioc;
    LinkWaiter w;

    link_waiter_init(&w, lioc, G_IO_IN);
    for (;;) {
        if (!link_waiter_wait(&w, deadline)) {
            link_waiter_destroy(&w);
            error_setg(errp, "timed out waiting for the fragments listed "
                       "after this one");
            return false;
        }
        if (w.ready) {
            break;
        }
    }
    link_waiter_destroy(&w);
    sioc = qio_channel_socket_accept(links->listener, errp);
    if (!sioc) {
        return false;
    }
    if (!handshake(links, sioc, -1, deadline, errp)) {
        object_unref(OBJECT(sioc));
        return false;
    }
    return true;
}

static void start_threads(DSMLinks *links)
{
    uint32_t i;

    for (i = 0; i < links->cfg.nr_fragments; i++) {
        DSMLink *link = &links->link[i];

        WITH_QEMU_LOCK_GUARD(&link->lock) {
            link->started = true;
        }
        qemu_thread_create(&link->worker_thread, "dsm-link-worker",
                           link_worker_thread, link, QEMU_THREAD_DETACHED);
        if (i == links->cfg.self) {
            qemu_thread_create(&link->tx_thread, "dsm-link-self",
                               link_self_thread, link, QEMU_THREAD_DETACHED);
            continue;
        }
        qemu_thread_create(&link->rx_thread, "dsm-link-rx", link_rx_thread,
                           link, QEMU_THREAD_DETACHED);
        qemu_thread_create(&link->tx_thread, "dsm-link-tx", link_tx_thread,
                           link, QEMU_THREAD_DETACHED);
    }
}

bool dsm_links_connect(DSMLinks *links, int64_t timeout_ms, Error **errp)
{
    ERRP_GUARD();
    int64_t deadline = g_get_monotonic_time() / 1000 + timeout_ms;
    uint32_t self = links->cfg.self;
    uint32_t i;

    for (i = 0; i < self; i++) {
        QIOChannelSocket *sioc = dial_until(links, i, deadline, errp);

        if (!sioc) {
            return false;
        }
        if (!handshake(links, sioc, i, deadline, errp)) {
            object_unref(OBJECT(sioc));
            return false;
        }
    }
    for (i = self + 1; i < links->cfg.nr_fragments; i++) {
        if (!accept_one(links, deadline, errp)) {
            error_prepend(errp, "fragment %s: ", peer_id(links, self));
            return false;
        }
    }
    start_threads(links);
    return true;
}

void dsm_thread_set_priority(int priority)
{
    struct sched_param param = { .sched_priority = priority };
    int err;

    if (!priority) {
        return;
    }
    err = pthread_setschedparam(pthread_self(), SCHED_FIFO, &param);
    if (err) {
        warn_report_once("aggregate: cannot run the DSM and forwarding "
                         "threads at real-time priority %d: %s", priority,
                         strerror(err));
    }
}

void dsm_links_flush(DSMLinks *links, int64_t timeout_ms)
{
    int64_t deadline = g_get_monotonic_time() / 1000 + timeout_ms;
    uint32_t i;

    for (i = 0; i < links->cfg.nr_fragments; i++) {
        DSMLink *link = &links->link[i];

        if (!link->sioc) {
            continue;
        }
        QEMU_LOCK_GUARD(&link->lock);
        while (link->started && !link->dead &&
               (link->tx_busy || !g_queue_is_empty(&link->txq))) {
            int64_t left = deadline - g_get_monotonic_time() / 1000;

            if (left <= 0 ||
                !qemu_cond_timedwait(&link->cond, &link->lock, left)) {
                break;
            }
        }
    }
}

void dsm_links_get_stats(DSMLinks *links, DSMLinkStats *stats)
{
    stats->bytes_in = stat64_get(&links->bytes_in);
    stats->bytes_out = stat64_get(&links->bytes_out);
    stats->msgs_in = stat64_get(&links->msgs_in);
    stats->msgs_out = stat64_get(&links->msgs_out);
}

bool dsm_links_peer_up(DSMLinks *links, uint32_t peer)
{
    return peer == links->cfg.self ||
           (links->link[peer].sioc && !qatomic_read(&links->link[peer].failed));
}
