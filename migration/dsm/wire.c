/*
 * aggvm fragment links: message codec
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/*
 * Assumptions:
 * - Every byte comes from a peer that may be buggy or of another
 *   version, so nothing is trusted: the header is checked before the
 *   payload is read, and the payload field by field before anything
 *   is written to the caller's DSMMsg.
 * - Layouts are the packed structs below, converted field by field
 *   with cpu_to_be*() and be*_to_cpu().  Reserved bytes are sent as
 *   zero and must be zero, so a later version can give them a meaning
 *   (it also bumps DSM_WIRE_VERSION).
 * - One table row per message type gives its name, payload size and
 *   codec functions; adding a type is adding a row.  This file has the
 *   frame and the link family (HELLO, PING, PONG) and the DSM's; the
 *   machine's families have theirs in hw/aggregate/<family>-wire.c.
 *
 * Payload layouts (big-endian, byte offsets):
 *
 *   HELLO  48  0 fragment u32, 4 version u32, 8 config_hash[32],
 *              40 nr_pages u64
 *   REQ    12  0 page u64, 8 access u8, 9 reserved[3]
 *   INV    12  0 page u64, 8 tid u32
 *   ACK    12  (as INV)
 *   DONE   12  (as INV)
 *   FWD    20  0 page u64, 8 tid u32, 12 access u8, 13 reserved[3],
 *              16 target u32
 *   GRANT  16  0 page u64, 8 tid u32, 12 mode u8, 13 reserved[3]
 *   DATA   16  0 page u64, 8 tid u32, 12 mode u8, 13 flags u8,
 *              14 reserved[2]; then the 4096-byte page unless flags
 *              has DSM_DATA_ZERO (payload 16 or 4112 bytes)
 *   PING   24  0 sent_ns s64, 8 resident u64, 16 exclusive u64
 *   PONG   24  (as PING; sent_ns echoed)
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "migration/dsm/wire.h"

typedef struct QEMU_PACKED DSMWireHeader {
    uint32_t magic;
    uint16_t version;
    uint16_t type;
    uint32_t length;
    uint32_t seq;
} DSMWireHeader;

typedef struct QEMU_PACKED DSMWireHello {
    uint32_t fragment;
    uint32_t version;
    uint8_t config_hash[DSM_CONFIG_HASH_SIZE];
    uint64_t nr_pages;
} DSMWireHello;

typedef struct QEMU_PACKED DSMWireReq {
    uint64_t page;
    uint8_t access;
    uint8_t reserved[3];
} DSMWireReq;

/* INV, ACK and DONE. */
typedef struct QEMU_PACKED DSMWirePageTid {
    uint64_t page;
    uint32_t tid;
} DSMWirePageTid;

typedef struct QEMU_PACKED DSMWireFwd {
    uint64_t page;
    uint32_t tid;
    uint8_t access;
    uint8_t reserved[3];
    uint32_t target;
} DSMWireFwd;

typedef struct QEMU_PACKED DSMWireGrant {
    uint64_t page;
    uint32_t tid;
    uint8_t mode;
    uint8_t reserved[3];
} DSMWireGrant;

#define DSM_DATA_ZERO   0x01

typedef struct QEMU_PACKED DSMWireData {
    uint64_t page;
    uint32_t tid;
    uint8_t mode;
    uint8_t flags;
    uint8_t reserved[2];
} DSMWireData;

typedef struct QEMU_PACKED DSMWireBeat {
    int64_t sent_ns;
    uint64_t resident;
    uint64_t exclusive;
} DSMWireBeat;

QEMU_BUILD_BUG_ON(sizeof(DSMWireHeader) != DSM_HEADER_SIZE);
QEMU_BUILD_BUG_ON(sizeof(DSMWireHello) != 48);
QEMU_BUILD_BUG_ON(sizeof(DSMWireReq) != 12);
QEMU_BUILD_BUG_ON(sizeof(DSMWirePageTid) != 12);
QEMU_BUILD_BUG_ON(sizeof(DSMWireFwd) != 20);
QEMU_BUILD_BUG_ON(sizeof(DSMWireGrant) != 16);
QEMU_BUILD_BUG_ON(sizeof(DSMWireBeat) != 24);
QEMU_BUILD_BUG_ON(sizeof(DSMWireData) + DSM_PAGE_SIZE > DSM_MAX_PAYLOAD);

/* Field checks shared by the decoders.  @name is the message type's. */

static bool dsm_check_page(const char *name, uint64_t page,
                           const DSMLimits *lim, Error **errp)
{
    if (page >= lim->nr_pages) {
        error_setg(errp, "%s page 0x%" PRIx64 " out of range, "
                   "expected below 0x%" PRIx64, name, page, lim->nr_pages);
        return false;
    }
    return true;
}

bool dsm_check_fragment(const char *name, const char *what,
                        uint32_t fragment, const DSMLimits *lim,
                        Error **errp)
{
    if (fragment >= lim->nr_fragments) {
        error_setg(errp, "%s %s fragment %u out of range, "
                   "expected below %u", name, what, fragment,
                   lim->nr_fragments);
        return false;
    }
    return true;
}

/* tid 0 means "no transaction" at the home, so no message carries it. */
static bool dsm_check_tid(const char *name, uint32_t tid, Error **errp)
{
    if (tid == 0) {
        error_setg(errp, "%s tid 0 invalid, expected non-zero", name);
        return false;
    }
    return true;
}

static bool dsm_check_access(const char *name, uint8_t access, Error **errp)
{
    if (access > DSM_ACCESS_WRITE) {
        error_setg(errp, "%s access %u invalid, expected 0 (R) or 1 (W)",
                   name, access);
        return false;
    }
    return true;
}

static bool dsm_check_mode(const char *name, uint8_t mode, Error **errp)
{
    if (mode > DSM_MODE_EXCL) {
        error_setg(errp, "%s mode %u invalid, expected 0 (S) or 1 (E)",
                   name, mode);
        return false;
    }
    return true;
}

bool dsm_check_reserved(const char *name, const uint8_t *reserved,
                        size_t len, Error **errp)
{
    if (!buffer_is_zero(reserved, len)) {
        error_setg(errp, "%s reserved bytes not zero, expected zero",
                   name);
        return false;
    }
    return true;
}

/* Page and tid, the prefix of every DSM message but REQ. */
static bool dsm_check_page_tid(const char *name, uint64_t page, uint32_t tid,
                               const DSMLimits *lim, Error **errp)
{
    return dsm_check_page(name, page, lim, errp) &&
           dsm_check_tid(name, tid, errp);
}

/* HELLO */

static void dsm_encode_hello(const void *p, GByteArray *out)
{
    const DSMMsg *msg = p;
    DSMWireHello w = {
        .fragment = cpu_to_be32(msg->fragment),
        .version = cpu_to_be32(msg->version),
        .nr_pages = cpu_to_be64(msg->nr_pages),
    };

    memcpy(w.config_hash, msg->config_hash, sizeof(w.config_hash));
    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

/*
 * The protocol version and page count are not checked here: the
 * handshake compares them with its own and says which side has what.
 */
static bool dsm_decode_hello(const DSMMsgDesc *desc,
                             const uint8_t *buf, size_t len,
                             const DSMLimits *lim, void *p, Error **errp)
{
    DSMMsg *msg = p;
    DSMWireHello w;

    msg->type = desc->type;
    memcpy(&w, buf, sizeof(w));
    msg->fragment = be32_to_cpu(w.fragment);
    msg->version = be32_to_cpu(w.version);
    msg->nr_pages = be64_to_cpu(w.nr_pages);
    memcpy(msg->config_hash, w.config_hash, sizeof(w.config_hash));
    return dsm_check_fragment("HELLO", "sender", msg->fragment, lim, errp);
}

/* REQ */

static void dsm_encode_req(const void *p, GByteArray *out)
{
    const DSMMsg *msg = p;
    DSMWireReq w = {
        .page = cpu_to_be64(msg->page),
        .access = msg->access,
    };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

static bool dsm_decode_req(const DSMMsgDesc *desc,
                           const uint8_t *buf, size_t len,
                           const DSMLimits *lim, void *p, Error **errp)
{
    DSMMsg *msg = p;
    DSMWireReq w;

    msg->type = desc->type;
    memcpy(&w, buf, sizeof(w));
    msg->page = be64_to_cpu(w.page);
    msg->access = w.access;
    return dsm_check_page("REQ", msg->page, lim, errp) &&
           dsm_check_access("REQ", w.access, errp) &&
           dsm_check_reserved("REQ", w.reserved, sizeof(w.reserved), errp);
}

/* INV, ACK, DONE */

static void dsm_encode_page_tid(const void *p, GByteArray *out)
{
    const DSMMsg *msg = p;
    DSMWirePageTid w = {
        .page = cpu_to_be64(msg->page),
        .tid = cpu_to_be32(msg->tid),
    };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

static bool dsm_decode_page_tid(const DSMMsgDesc *desc,
                                const uint8_t *buf, size_t len,
                                const DSMLimits *lim, void *p, Error **errp)
{
    DSMMsg *msg = p;
    DSMWirePageTid w;

    msg->type = desc->type;
    memcpy(&w, buf, sizeof(w));
    msg->page = be64_to_cpu(w.page);
    msg->tid = be32_to_cpu(w.tid);
    return dsm_check_page_tid(desc->name, msg->page, msg->tid, lim,
                              errp);
}

/* FWD */

static void dsm_encode_fwd(const void *p, GByteArray *out)
{
    const DSMMsg *msg = p;
    DSMWireFwd w = {
        .page = cpu_to_be64(msg->page),
        .tid = cpu_to_be32(msg->tid),
        .access = msg->access,
        .target = cpu_to_be32(msg->target),
    };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

static bool dsm_decode_fwd(const DSMMsgDesc *desc,
                           const uint8_t *buf, size_t len,
                           const DSMLimits *lim, void *p, Error **errp)
{
    DSMMsg *msg = p;
    DSMWireFwd w;

    msg->type = desc->type;
    memcpy(&w, buf, sizeof(w));
    msg->page = be64_to_cpu(w.page);
    msg->tid = be32_to_cpu(w.tid);
    msg->access = w.access;
    msg->target = be32_to_cpu(w.target);
    return dsm_check_page_tid("FWD", msg->page, msg->tid, lim, errp) &&
           dsm_check_access("FWD", w.access, errp) &&
           dsm_check_reserved("FWD", w.reserved, sizeof(w.reserved), errp) &&
           dsm_check_fragment("FWD", "target", msg->target, lim, errp);
}

/* GRANT */

static void dsm_encode_grant(const void *p, GByteArray *out)
{
    const DSMMsg *msg = p;
    DSMWireGrant w = {
        .page = cpu_to_be64(msg->page),
        .tid = cpu_to_be32(msg->tid),
        .mode = msg->mode,
    };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

static bool dsm_decode_grant(const DSMMsgDesc *desc,
                             const uint8_t *buf, size_t len,
                             const DSMLimits *lim, void *p, Error **errp)
{
    DSMMsg *msg = p;
    DSMWireGrant w;

    msg->type = desc->type;
    memcpy(&w, buf, sizeof(w));
    msg->page = be64_to_cpu(w.page);
    msg->tid = be32_to_cpu(w.tid);
    msg->mode = w.mode;
    return dsm_check_page_tid("GRANT", msg->page, msg->tid, lim, errp) &&
           dsm_check_mode("GRANT", w.mode, errp) &&
           dsm_check_reserved("GRANT", w.reserved, sizeof(w.reserved), errp);
}

/* DATA */

static void dsm_encode_data(const void *p, GByteArray *out)
{
    const DSMMsg *msg = p;
    DSMWireData w = {
        .page = cpu_to_be64(msg->page),
        .tid = cpu_to_be32(msg->tid),
        .mode = msg->mode,
        .flags = msg->zero ? DSM_DATA_ZERO : 0,
    };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
    if (!msg->zero) {
        g_byte_array_append(out, msg->data, DSM_PAGE_SIZE);
    }
}

/* The header allowed 16 or 4112 bytes; the ZERO flag says which. */
static bool dsm_check_data_flags(uint8_t flags, size_t len, Error **errp)
{
    size_t want = sizeof(DSMWireData) +
                  ((flags & DSM_DATA_ZERO) ? 0 : DSM_PAGE_SIZE);

    if (flags & ~DSM_DATA_ZERO) {
        error_setg(errp, "DATA flags 0x%x invalid, expected 0x0 or "
                   "0x%x (ZERO)", flags, DSM_DATA_ZERO);
        return false;
    }
    if (len != want) {
        error_setg(errp, "DATA payload is %zu bytes, expected %zu "
                   "for flags 0x%x", len, want, flags);
        return false;
    }
    return true;
}

static bool dsm_decode_data(const DSMMsgDesc *desc,
                            const uint8_t *buf, size_t len,
                            const DSMLimits *lim, void *p, Error **errp)
{
    DSMMsg *msg = p;
    DSMWireData w;

    msg->type = desc->type;
    memcpy(&w, buf, sizeof(w));
    msg->page = be64_to_cpu(w.page);
    msg->tid = be32_to_cpu(w.tid);
    msg->mode = w.mode;
    msg->zero = w.flags & DSM_DATA_ZERO;
    msg->data = msg->zero ? NULL : buf + sizeof(w);
    return dsm_check_page_tid("DATA", msg->page, msg->tid, lim, errp) &&
           dsm_check_mode("DATA", w.mode, errp) &&
           dsm_check_data_flags(w.flags, len, errp) &&
           dsm_check_reserved("DATA", w.reserved, sizeof(w.reserved), errp);
}

/* PING, PONG: any values are valid */

static void dsm_encode_beat(const void *p, GByteArray *out)
{
    const DSMMsg *msg = p;
    DSMWireBeat w = {
        .sent_ns = cpu_to_be64(msg->beat.sent_ns),
        .resident = cpu_to_be64(msg->beat.resident),
        .exclusive = cpu_to_be64(msg->beat.exclusive),
    };

    g_byte_array_append(out, (const guint8 *)&w, sizeof(w));
}

static bool dsm_decode_beat(const DSMMsgDesc *desc,
                            const uint8_t *buf, size_t len,
                            const DSMLimits *lim, void *p, Error **errp)
{
    DSMMsg *msg = p;
    DSMWireBeat w;

    msg->type = desc->type;
    memcpy(&w, buf, sizeof(w));
    msg->beat = (DSMBeat) {
        .sent_ns = be64_to_cpu(w.sent_ns),
        .resident = be64_to_cpu(w.resident),
        .exclusive = be64_to_cpu(w.exclusive),
    };
    return true;
}

#define DSM_DESC(t, n, w, x, e, d) \
    { DSM_MSG_ ## t, n, sizeof(w), x, e, d, .msg_size = sizeof(DSMMsg) }

static const DSMMsgDesc dsm_link_descs[] = {
    DSM_DESC(HELLO, "HELLO", DSMWireHello, 0, dsm_encode_hello,
             dsm_decode_hello),
    DSM_DESC(PING, "PING", DSMWireBeat, 0, dsm_encode_beat, dsm_decode_beat),
    DSM_DESC(PONG, "PONG", DSMWireBeat, 0, dsm_encode_beat, dsm_decode_beat),
};

static const DSMMsgDesc dsm_page_descs[] = {
    DSM_DESC(REQ, "REQ", DSMWireReq, 0, dsm_encode_req, dsm_decode_req),
    DSM_DESC(INV, "INV", DSMWirePageTid, 0, dsm_encode_page_tid,
             dsm_decode_page_tid),
    DSM_DESC(ACK, "ACK", DSMWirePageTid, 0, dsm_encode_page_tid,
             dsm_decode_page_tid),
    DSM_DESC(FWD, "FWD", DSMWireFwd, 0, dsm_encode_fwd, dsm_decode_fwd),
    DSM_DESC(DATA, "DATA", DSMWireData, DSM_PAGE_SIZE, dsm_encode_data,
             dsm_decode_data),
    DSM_DESC(GRANT, "GRANT", DSMWireGrant, 0, dsm_encode_grant,
             dsm_decode_grant),
    DSM_DESC(DONE, "DONE", DSMWirePageTid, 0, dsm_encode_page_tid,
             dsm_decode_page_tid),
};

const DSMFamilyCodec dsm_link_codec = {
    .family = DSM_FAMILY_LINK,
    .name = "link",
    .descs = dsm_link_descs,
    .nr_descs = ARRAY_SIZE(dsm_link_descs),
};

const DSMFamilyCodec dsm_page_codec = {
    .family = DSM_FAMILY_DSM,
    .name = "DSM",
    .descs = dsm_page_descs,
    .nr_descs = ARRAY_SIZE(dsm_page_descs),
};

const DSMMsgDesc *dsm_codec_find(const DSMFamilyCodec *codec, uint16_t type)
{
    size_t i;

    for (i = 0; codec && i < codec->nr_descs; i++) {
        if (codec->descs[i].type == type) {
            return &codec->descs[i];
        }
    }
    return NULL;
}

const char *dsm_msg_type_name(uint16_t type)
{
    const DSMMsgDesc *desc = dsm_codec_find(&dsm_page_codec, type);

    desc = desc ?: dsm_codec_find(&dsm_link_codec, type);
    return desc ? desc->name : "unknown";
}

const DSMMsgDesc *dsm_codec_lookup(DSMCodecLookupFn *lookup, void *opaque,
                                   uint16_t type, Error **errp)
{
    const DSMFamilyCodec *codec = lookup(opaque, DSM_MSG_FAMILY(type));
    const DSMMsgDesc *desc = dsm_codec_find(codec, type);

    if (desc) {
        return desc;
    }
    if (codec) {
        error_setg(errp, "message type 0x%04x unknown to the %s family",
                   type, codec->name);
    } else {
        error_setg(errp, "message type 0x%04x unknown: no family 0x%02x "
                   "on this fragment", type, DSM_MSG_FAMILY(type));
    }
    return NULL;
}

void dsm_msg_encode(const DSMMsgDesc *desc, const void *msg, GByteArray *out)
{
    DSMWireHeader hdr;
    guint start = out->len;

    hdr = (DSMWireHeader) {
        .magic = cpu_to_be32(DSM_WIRE_MAGIC),
        .version = cpu_to_be16(DSM_WIRE_VERSION),
        .type = cpu_to_be16(desc->type),
    };
    g_byte_array_append(out, (const guint8 *)&hdr, sizeof(hdr));
    desc->encode(msg, out);

    /* Only now is the payload's length known: patch it in. */
    hdr.length = cpu_to_be32(out->len - start - sizeof(hdr));
    assert(out->len - start - sizeof(hdr) <= DSM_MAX_PAYLOAD);
    memcpy(out->data + start, &hdr, sizeof(hdr));
}

void dsm_header_set_seq(uint8_t *buf, size_t len, uint32_t seq)
{
    assert(len >= sizeof(DSMWireHeader));
    stl_be_p(buf + offsetof(DSMWireHeader, seq), seq);
}

bool dsm_check_length(const DSMMsgDesc *desc, uint32_t length, Error **errp)
{
    if (desc->varies) {
        if (length > desc->size && length - desc->size <= desc->extra) {
            return true;
        }
        error_setg(errp, "%s payload is %u bytes, expected %u to %u",
                   desc->name, length, desc->size + 1,
                   desc->size + desc->extra);
        return false;
    }
    if (length == desc->size ||
        (desc->extra && length == desc->size + desc->extra)) {
        return true;
    }
    if (desc->extra) {
        error_setg(errp, "%s payload is %u bytes, expected %u or %u",
                   desc->name, length, desc->size, desc->size + desc->extra);
    } else {
        error_setg(errp, "%s payload is %u bytes, expected %u",
                   desc->name, length, desc->size);
    }
    return false;
}

/* Magic and version: is this our protocol at all? */
static bool dsm_check_header_ids(const DSMWireHeader *w, Error **errp)
{
    uint32_t magic = be32_to_cpu(w->magic);
    uint16_t version = be16_to_cpu(w->version);

    if (magic != DSM_WIRE_MAGIC) {
        error_setg(errp, "received magic 0x%08x, expected 0x%08x",
                   magic, DSM_WIRE_MAGIC);
        return false;
    }
    if (version != DSM_WIRE_VERSION) {
        error_setg(errp, "received version %u, expected %u",
                   version, DSM_WIRE_VERSION);
        return false;
    }
    return true;
}

bool dsm_header_decode(const uint8_t *buf, size_t len, DSMHeader *hdr,
                       Error **errp)
{
    DSMWireHeader w;

    if (len < sizeof(w)) {
        error_setg(errp, "header is %zu bytes, expected %zu",
                   len, sizeof(w));
        return false;
    }
    memcpy(&w, buf, sizeof(w));
    if (!dsm_check_header_ids(&w, errp)) {
        return false;
    }
    *hdr = (DSMHeader) {
        .type = be16_to_cpu(w.type),
        .length = be32_to_cpu(w.length),
        .seq = be32_to_cpu(w.seq),
    };
    return true;
}

bool dsm_payload_decode(const DSMMsgDesc *desc, const uint8_t *buf,
                        size_t len, const DSMLimits *lim, void *msg,
                        Error **errp)
{
    uint64_t m[DSM_MAX_DECODED / sizeof(uint64_t)];

    assert(desc->msg_size <= sizeof(m));
    memset(m, 0, desc->msg_size);
    if (!dsm_check_length(desc, len, errp) ||
        !desc->decode(desc, buf, len, lim, m, errp)) {
        return false;
    }
    memcpy(msg, m, desc->msg_size);
    return true;
}

bool dsm_msg_decode(DSMCodecLookupFn *lookup, void *opaque,
                    const uint8_t *buf, size_t len, const DSMLimits *lim,
                    DSMHeader *hdr, const DSMMsgDesc **desc, void *msg,
                    Error **errp)
{
    DSMHeader h;
    const DSMMsgDesc *d;

    if (!dsm_header_decode(buf, len, &h, errp)) {
        return false;
    }
    d = dsm_codec_lookup(lookup, opaque, h.type, errp);
    if (!d || !dsm_check_length(d, h.length, errp)) {
        return false;
    }
    if (len - DSM_HEADER_SIZE != h.length) {
        error_setg(errp, "%s message has %zu payload bytes, header says %u",
                   d->name, len - DSM_HEADER_SIZE, h.length);
        return false;
    }
    if (!dsm_payload_decode(d, buf + DSM_HEADER_SIZE, h.length, lim, msg,
                            errp)) {
        return false;
    }
    *hdr = h;
    *desc = d;
    return true;
}
