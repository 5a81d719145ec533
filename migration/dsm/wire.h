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

#ifndef MIGRATION_DSM_WIRE_H
#define MIGRATION_DSM_WIRE_H

/*
 * Every message on a fragment link is a 16-byte header followed by
 * exactly `length` payload bytes.  All fields are big-endian; no host
 * struct is ever sent raw.
 *
 *   0       4       6       8           12          16
 *   +-------+-------+-------+-----------+-----------+---------------+
 *   | magic | vers. | type  |  length   | sequence  | payload ...   |
 *   | u32   | u16   | u16   |  u32      | u32       | length bytes  |
 *   +-------+-------+-------+-----------+-----------+---------------+
 *
 * This file is the frame and the codec framework; each message family
 * brings its own codec (DSMFamilyCodec: one DSMMsgDesc per type, with
 * its decoded struct), so the frame knows nothing of what families
 * carry.  The link and DSM families are here (wire.c); the machine's
 * live with their families under hw/aggregate/ (*-wire.c).
 *
 * The codec is pure: it neither reads sockets nor keeps state.  A stream
 * reader reads DSM_HEADER_SIZE bytes, validates them with
 * dsm_header_decode(), finds the type's DSMMsgDesc in its family's
 * codec (dsm_codec_lookup()), bounds `length` by the type with
 * dsm_check_length() before any payload is read, reads exactly
 * hdr.length bytes and hands them to dsm_payload_decode().
 * dsm_msg_decode() does all of it for a whole buffer.  A decoded
 * message is fully validated: handlers need no further checks on its
 * fields, only on whether the message makes sense in their state.
 */

#define DSM_WIRE_MAGIC          0x41474731      /* "AGG1" */
#define DSM_WIRE_VERSION        2
#define DSM_HEADER_SIZE         16
#define DSM_PAGE_SIZE           4096
#define DSM_CONFIG_HASH_SIZE    32
/*
 * The largest payload any family may declare (the machine's NET_TX and
 * NET_RX carry a 64 KiB GSO frame with its headers), and the largest
 * decoded struct of any type; link.c sizes its buffers by these.
 */
#define DSM_MAX_PAYLOAD         (64 * 1024 + 520)
#define DSM_MAX_DECODED         512

/*
 * Message types.  The high byte is the family, the low byte the message
 * within it; families are reserved up front so adding one never
 * renumbers another.  Type 0 is never valid.  The numbers of the
 * families are reserved here; the types of a family are its own
 * (the machine's: hw/aggregate/wire.h).  A type no registered family
 * knows is rejected as unknown.
 */
#define DSM_MSG_FAMILY(type)    ((type) >> 8)

typedef enum DSMMsgFamily {
    DSM_FAMILY_LINK = 0x00,         /* link handshake */
    DSM_FAMILY_DSM = 0x01,          /* page coherence */
    DSM_FAMILY_IO = 0x02,           /* PIO/MMIO forwarding */
    DSM_FAMILY_IRQ = 0x03,          /* IRQ, CPU_EVENT, APIC_STATE, EOI */
    DSM_FAMILY_LIFECYCLE = 0x04,    /* SHUTDOWN, RESET, RUN_STATE, ... */
    DSM_FAMILY_CLOCK = 0x05,        /* CLOCK_REQ, CLOCK_RESP */
    DSM_FAMILY_VCPU = 0x06,         /* VCPU_MIGRATE, VCPU_STATE, ... */
    DSM_FAMILY_NET = 0x07,          /* virtio-net queue pairs */
} DSMMsgFamily;

/* The link family's and the DSM's. */
typedef enum DSMMsgType {
    DSM_MSG_HELLO = 0x0001,
    DSM_MSG_PING = 0x0002,
    DSM_MSG_PONG = 0x0003,
    DSM_MSG_REQ = 0x0101,
    DSM_MSG_INV = 0x0102,
    DSM_MSG_ACK = 0x0103,
    DSM_MSG_FWD = 0x0104,
    DSM_MSG_DATA = 0x0105,
    DSM_MSG_GRANT = 0x0106,
    DSM_MSG_DONE = 0x0107,
} DSMMsgType;

/* What a REQ asks for and what a FWD tells the supplier to serve. */
typedef enum DSMAccess {
    DSM_ACCESS_READ = 0,
    DSM_ACCESS_WRITE = 1,
} DSMAccess;

/* The rights DATA and GRANT confer: Shared or Exclusive. */
typedef enum DSMMode {
    DSM_MODE_SHARED = 0,
    DSM_MODE_EXCL = 1,
} DSMMode;


/*
 * PING and PONG, the heartbeat (heartbeat.c): @sent_ns is when the PING
 * left, on the pinger's clock (PONG echoes it); @resident and
 * @exclusive are the sender's page counts.
 */
typedef struct DSMBeat {
    int64_t sent_ns;
    uint64_t resident;
    uint64_t exclusive;
} DSMBeat;

/*
 * A decoded message of the link or DSM family.  Which fields are
 * meaningful depends on the type (set by the decoder):
 *
 *   HELLO  fragment, version, config_hash, nr_pages
 *   PING   beat
 *   PONG   beat
 *   REQ    page, access
 *   INV    page, tid
 *   ACK    page, tid
 *   FWD    page, tid, access, target
 *   DATA   page, tid, mode, zero, data (when !zero)
 *   GRANT  page, tid, mode
 *   DONE   page, tid
 *
 * The others are zero after decoding and ignored by the encoder.
 */
typedef struct DSMMsg {
    DSMMsgType type;
    uint64_t page;              /* global page index, < nr_pages */
    uint32_t tid;               /* home's per-page transaction id, != 0 */
    DSMAccess access;
    DSMMode mode;
    uint32_t target;            /* FWD: the requester to send DATA to */
    bool zero;                  /* DATA: all-zero page, no payload */
    /*
     * DATA without zero: DSM_PAGE_SIZE bytes.  After decoding it points
     * into the caller's buffer and lives as long as that buffer does.
     */
    const uint8_t *data;
    uint32_t fragment;          /* HELLO: the sender's fragment index */
    uint32_t version;           /* HELLO: protocol version */
    uint8_t config_hash[DSM_CONFIG_HASH_SIZE];  /* HELLO */
    uint64_t nr_pages;          /* HELLO: the sender's DSM page count */
    DSMBeat beat;               /* PING, PONG */
} DSMMsg;

/*
 * A validated header, in host byte order.  `seq` is the message's number
 * on its link, per direction (HELLO is 0): link.c stamps it with
 * dsm_header_set_seq() in the order messages reach the socket and
 * checks it on receipt; the codec only carries it.
 */
typedef struct DSMHeader {
    uint16_t type;
    uint32_t length;            /* payload bytes */
    uint32_t seq;
} DSMHeader;

/* The bounds a peer's indexes are checked against. */
typedef struct DSMLimits {
    uint64_t nr_pages;
    uint32_t nr_fragments;
} DSMLimits;

typedef struct DSMMsgDesc DSMMsgDesc;

/*
 * A type's codec.  encode appends the payload of @msg (the type's
 * decoded struct) to @out; @msg must be valid, so encoding an invalid
 * message is a bug and may abort.  decode fills the struct at @msg
 * from the @len payload bytes at @buf (a length dsm_check_length()
 * accepted) and validates every field it can; on failure it returns
 * false with @errp set.  Pointers it stores (a page, a packet) point
 * into @buf.
 */
typedef void DSMEncodeFn(const void *msg, GByteArray *out);
typedef bool DSMDecodeFn(const DSMMsgDesc *desc, const uint8_t *buf,
                         size_t len, const DSMLimits *lim, void *msg,
                         Error **errp);

struct DSMMsgDesc {
    uint16_t type;
    const char *name;           /* "REQ", "IRQ", ... for traces, errors */
    uint32_t size;              /* fixed part of the payload */
    uint32_t extra;             /* optional tail: DATA's page, else 0 */
    DSMEncodeFn *encode;
    DSMDecodeFn *decode;
    bool varies;                /* the tail is 1 to @extra bytes long */
    size_t msg_size;            /* of the decoded struct */
};

/* One family's codec: its types, in any order. */
typedef struct DSMFamilyCodec {
    DSMMsgFamily family;
    const char *name;           /* "DSM", "net", ... */
    const DSMMsgDesc *descs;
    size_t nr_descs;
} DSMFamilyCodec;

/* The link family's (HELLO, PING, PONG) and the DSM's (REQ ... DONE). */
extern const DSMFamilyCodec dsm_link_codec;
extern const DSMFamilyCodec dsm_page_codec;

/*
 * Where a reader finds the codec of a family: the registered one, or
 * NULL.
 */
typedef const DSMFamilyCodec *DSMCodecLookupFn(void *opaque,
                                               DSMMsgFamily family);

/*
 * dsm_codec_lookup: the DSMMsgDesc of @type, or NULL with @errp set
 * ("message type 0x.... unknown", naming the family when it is known
 * but the type is not).
 */
const DSMMsgDesc *dsm_codec_lookup(DSMCodecLookupFn *lookup, void *opaque,
                                   uint16_t type, Error **errp);

/*
 * dsm_msg_type_name: the name of a link or DSM family type ("REQ",
 * "DATA", ...), for traces and errors; "unknown" for any other.
 */
const char *dsm_msg_type_name(uint16_t type);

/* dsm_codec_find: @type's row in @codec, or NULL. */
const DSMMsgDesc *dsm_codec_find(const DSMFamilyCodec *codec, uint16_t type);

/*
 * dsm_msg_encode: append @msg (the decoded struct of @desc's type),
 * header and payload, to @out, with sequence number 0.
 */
void dsm_msg_encode(const DSMMsgDesc *desc, const void *msg, GByteArray *out);

/*
 * dsm_header_set_seq: overwrite the sequence number of the encoded
 * message at @buf (@len bytes, at least a header).
 */
void dsm_header_set_seq(uint8_t *buf, size_t len, uint32_t seq);

/*
 * dsm_header_decode: validate the DSM_HEADER_SIZE bytes at @buf (magic,
 * version) and fill @hdr.  @len is how many bytes @buf holds.  On
 * failure return false with @errp set; @hdr is left untouched.
 */
bool dsm_header_decode(const uint8_t *buf, size_t len, DSMHeader *hdr,
                       Error **errp);

/* dsm_check_length: is a payload of @length bytes valid for @desc? */
bool dsm_check_length(const DSMMsgDesc *desc, uint32_t length, Error **errp);

/*
 * dsm_payload_decode: validate the @len payload bytes at @buf, of
 * @desc's type, and fill @msg (@desc->msg_size bytes).  Pages must be
 * below @lim->nr_pages and fragment indexes below @lim->nr_fragments.
 * On failure return false with @errp set; @msg is left untouched.
 */
bool dsm_payload_decode(const DSMMsgDesc *desc, const uint8_t *buf,
                        size_t len, const DSMLimits *lim, void *msg,
                        Error **errp);

/*
 * dsm_msg_decode: decode one complete message, header and payload, that
 * fills exactly @len bytes at @buf: its header in @hdr, its type's
 * codec in @desc, the decoded struct in @msg (DSM_MAX_DECODED bytes).
 * Same contract as dsm_payload_decode().
 */
bool dsm_msg_decode(DSMCodecLookupFn *lookup, void *opaque,
                    const uint8_t *buf, size_t len, const DSMLimits *lim,
                    DSMHeader *hdr, const DSMMsgDesc **desc, void *msg,
                    Error **errp);

/* Field checks for the families' decoders; @name is the type's. */
bool dsm_check_fragment(const char *name, const char *what,
                        uint32_t fragment, const DSMLimits *lim,
                        Error **errp);
bool dsm_check_reserved(const char *name, const uint8_t *reserved,
                        size_t len, Error **errp);

#endif /* MIGRATION_DSM_WIRE_H */
