/*
 * aggvm DSM: unit tests for the fragment-link message codec
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/*
 * Every type of every family round-trips; one golden vector pins the
 * byte layout; and a table of malformed buffers, each made by mutating
 * a valid encoding, must be refused with a specific error and leave the
 * output untouched.  The families' codecs are the link's and the DSM's
 * (migration/dsm/wire.c) and the machine's (hw/aggregate/<f>-wire.c).
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "migration/dsm/wire.h"
#include "hw/aggregate/wire.h"

#define NR_PAGES        100
#define NR_FRAGMENTS    4

static uint8_t test_page[DSM_PAGE_SIZE];

static void init_test_page(void)
{
    size_t i;

    for (i = 0; i < sizeof(test_page); i++) {
        test_page[i] = i * 7 + 3;
    }
}

/*
 * The test's view of a message: every family's fields side by side, so
 * that one table can hold samples of every type.  to_payload() and
 * from_payload() convert to and from the type's own decoded struct.
 */
typedef struct TestMsg {
    uint16_t type;
    uint32_t seq;
    uint64_t page;
    uint32_t tid;
    DSMAccess access;
    DSMMode mode;
    uint32_t target;
    bool zero;
    const uint8_t *data;
    uint32_t fragment;
    uint32_t version;
    uint8_t config_hash[DSM_CONFIG_HASH_SIZE];
    uint64_t nr_pages;
    DSMIOAccess io;
    DSMIrq irq;
    DSMCpuEvent cpu_event;
    DSMApicState apic;
    uint32_t cause;
    bool running;
    DSMClock clock;
    DSMIOMap io_map;
    DSMVcpu vcpu;
    DSMBeat beat;
    DSMNet net;
} TestMsg;

static const DSMFamilyCodec *const test_codecs[] = {
    &dsm_link_codec, &dsm_page_codec, &aggregate_io_codec,
    &aggregate_irq_codec, &aggregate_lifecycle_codec, &aggregate_clock_codec,
    &aggregate_vcpu_codec, &aggregate_net_codec,
};

static const DSMFamilyCodec *test_codec_of(void *opaque, DSMMsgFamily family)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(test_codecs); i++) {
        if (test_codecs[i]->family == family) {
            return test_codecs[i];
        }
    }
    return NULL;
}

static const DSMMsgDesc *test_desc(uint16_t type)
{
    return dsm_codec_find(test_codec_of(NULL, DSM_MSG_FAMILY(type)), type);
}

static const char *test_type_name(uint16_t type)
{
    const DSMMsgDesc *desc = test_desc(type);

    return desc ? desc->name : "unknown";
}

/* The decoded struct of @t's type, into @buf (DSM_MAX_DECODED bytes). */
static void to_payload(const TestMsg *t, void *buf)
{
    memset(buf, 0, DSM_MAX_DECODED);
    switch (DSM_MSG_FAMILY(t->type)) {
    case DSM_FAMILY_LINK:
    case DSM_FAMILY_DSM:
        *(DSMMsg *)buf = (DSMMsg) {
            .type = t->type, .page = t->page, .tid = t->tid,
            .access = t->access, .mode = t->mode, .target = t->target,
            .zero = t->zero, .data = t->data, .fragment = t->fragment,
            .version = t->version, .nr_pages = t->nr_pages,
            .beat = t->beat,
        };
        memcpy(((DSMMsg *)buf)->config_hash, t->config_hash,
               DSM_CONFIG_HASH_SIZE);
        break;
    case DSM_FAMILY_IO:
        if (t->type == DSM_MSG_IO_MAP) {
            *(DSMIOMap *)buf = t->io_map;
        } else {
            *(DSMIOAccess *)buf = t->io;
        }
        break;
    case DSM_FAMILY_IRQ:
        if (t->type == DSM_MSG_CPU_EVENT) {
            *(DSMCpuEvent *)buf = t->cpu_event;
        } else if (t->type == DSM_MSG_APIC_STATE) {
            *(DSMApicState *)buf = t->apic;
        } else {
            *(DSMIrq *)buf = t->irq;
        }
        break;
    case DSM_FAMILY_LIFECYCLE:
        *(DSMLifecycle *)buf = (DSMLifecycle) {
            .cause = t->cause, .running = t->running,
        };
        break;
    case DSM_FAMILY_CLOCK:
        *(DSMClock *)buf = t->clock;
        break;
    case DSM_FAMILY_VCPU:
        *(DSMVcpu *)buf = t->vcpu;
        break;
    case DSM_FAMILY_NET:
        *(DSMNet *)buf = t->net;
        break;
    default:
        g_assert_not_reached();
    }
}

static void from_payload(const DSMHeader *hdr, const void *buf, TestMsg *t)
{
    const DSMMsg *m = buf;

    *t = (TestMsg) { .type = hdr->type, .seq = hdr->seq };
    switch (DSM_MSG_FAMILY(hdr->type)) {
    case DSM_FAMILY_LINK:
    case DSM_FAMILY_DSM:
        g_assert_cmpint(m->type, ==, hdr->type);
        t->page = m->page;
        t->tid = m->tid;
        t->access = m->access;
        t->mode = m->mode;
        t->target = m->target;
        t->zero = m->zero;
        t->data = m->data;
        t->fragment = m->fragment;
        t->version = m->version;
        memcpy(t->config_hash, m->config_hash, DSM_CONFIG_HASH_SIZE);
        t->nr_pages = m->nr_pages;
        t->beat = m->beat;
        break;
    case DSM_FAMILY_IO:
        if (hdr->type == DSM_MSG_IO_MAP) {
            t->io_map = *(const DSMIOMap *)buf;
        } else {
            t->io = *(const DSMIOAccess *)buf;
        }
        break;
    case DSM_FAMILY_IRQ:
        if (hdr->type == DSM_MSG_CPU_EVENT) {
            t->cpu_event = *(const DSMCpuEvent *)buf;
        } else if (hdr->type == DSM_MSG_APIC_STATE) {
            t->apic = *(const DSMApicState *)buf;
        } else {
            t->irq = *(const DSMIrq *)buf;
        }
        break;
    case DSM_FAMILY_LIFECYCLE:
        t->cause = ((const DSMLifecycle *)buf)->cause;
        t->running = ((const DSMLifecycle *)buf)->running;
        break;
    case DSM_FAMILY_CLOCK:
        t->clock = *(const DSMClock *)buf;
        break;
    case DSM_FAMILY_VCPU:
        t->vcpu = *(const DSMVcpu *)buf;
        break;
    case DSM_FAMILY_NET:
        t->net = *(const DSMNet *)buf;
        break;
    default:
        g_assert_not_reached();
    }
}

/* Decode one whole message as a link would; @out untouched on failure. */
static bool test_decode(const uint8_t *buf, size_t len, TestMsg *out,
                        Error **errp)
{
    const DSMLimits lim = { NR_PAGES, NR_FRAGMENTS };
    uint64_t payload[DSM_MAX_DECODED / sizeof(uint64_t)];
    const DSMMsgDesc *desc;
    DSMHeader hdr;

    if (!dsm_msg_decode(test_codec_of, NULL, buf, len, &lim, &hdr, &desc,
                        payload, errp)) {
        return false;
    }
    from_payload(&hdr, payload, out);
    return true;
}

static const TestMsg sample_msgs[] = {
    { .type = DSM_MSG_HELLO, .seq = 1, .fragment = 3, .version = 1,
      .config_hash = { 0xde, 0xad, 0xbe, 0xef, [31] = 0x42 },
      .nr_pages = 0x123456789aULL },
    { .type = DSM_MSG_REQ, .seq = 2, .page = 99,
      .access = DSM_ACCESS_WRITE },
    { .type = DSM_MSG_REQ, .seq = 3, .page = 0, .access = DSM_ACCESS_READ },
    { .type = DSM_MSG_INV, .seq = 4, .page = 7, .tid = 0xfffffffe },
    { .type = DSM_MSG_ACK, .seq = 5, .page = 8, .tid = 9 },
    { .type = DSM_MSG_FWD, .seq = 6, .page = 10, .tid = 11,
      .access = DSM_ACCESS_READ, .target = 3 },
    { .type = DSM_MSG_FWD, .seq = 7, .page = 12, .tid = 13,
      .access = DSM_ACCESS_WRITE, .target = 0 },
    { .type = DSM_MSG_DATA, .seq = 8, .page = 14, .tid = 15,
      .mode = DSM_MODE_SHARED, .zero = true },
    { .type = DSM_MSG_DATA, .seq = 9, .page = 16, .tid = 17,
      .mode = DSM_MODE_EXCL, .data = test_page },
    { .type = DSM_MSG_GRANT, .seq = 10, .page = 18, .tid = 19,
      .mode = DSM_MODE_EXCL },
    { .type = DSM_MSG_GRANT, .seq = 11, .page = 20, .tid = 21,
      .mode = DSM_MODE_SHARED },
    { .type = DSM_MSG_DONE, .seq = 0xffffffff, .page = 22, .tid = 1 },
    { .type = DSM_MSG_IO_REQ, .seq = 12,
      .io = { .id = 7, .space = DSM_IO_SPACE_MEMORY, .size = 8,
              .write = true, .cpu = 3, .attrs = DSM_IO_ATTR_SECURE,
              .addr = 0xfed00000, .data = 0x0123456789abcdefULL } },
    { .type = DSM_MSG_IO_REQ, .seq = 13,
      .io = { .id = 8, .space = DSM_IO_SPACE_IO, .size = 1,
              .cpu = DSM_IO_NO_CPU, .addr = 0xffff } },
    { .type = DSM_MSG_IO_RESP, .seq = 14,
      .io = { .id = 8, .result = 1, .data = 0xff } },
    { .type = DSM_MSG_IRQ, .seq = 15,
      .irq = { .cpu = 5, .vector = 0xec, .level = true } },
    { .type = DSM_MSG_CPU_EVENT, .seq = 16,
      .cpu_event = { .cpu = 1, .events = DSM_CPU_EVENT_INIT |
                     DSM_CPU_EVENT_SIPI, .sipi_vector = 0x9f } },
    { .type = DSM_MSG_APIC_STATE, .seq = 18,
      .apic = { .cpu = 2, .id = 2, .log_dest = 0x04, .dest_mode = 0xf } },
    { .type = DSM_MSG_APIC_STATE, .seq = 19,
      .apic = { .cpu = 17, .id = 17, .log_dest = 0x10002, .x2apic = true } },
    { .type = DSM_MSG_SHUTDOWN, .seq = 20, .cause = 3 },
    { .type = DSM_MSG_EOI, .seq = 22, .irq = { .cpu = 3, .vector = 0x41 } },
    { .type = DSM_MSG_RESET, .seq = 21, .cause = 10 },
    { .type = DSM_MSG_RESET_DONE, .seq = 33, .cause = 10 },
    { .type = DSM_MSG_RUN_STATE, .seq = 25, .running = true },
    { .type = DSM_MSG_CLOCK_REQ, .seq = 23, .clock = { .id = 9 } },
    { .type = DSM_MSG_CLOCK_RESP, .seq = 24,
      .clock = { .id = 9, .ticks = 0x123456789abcdefULL,
                 .virtual_ns = -2 } },
    { .type = DSM_MSG_CLOCK_RESP, .seq = 32,
      .clock = { .id = 10, .ticks = 1, .virtual_ns = 0x7edcba9876543210LL,
                 .running = true } },
    { .type = DSM_MSG_IO_MAP, .seq = 17,
      .io_map = { .offset = 0x90, .len = 15,
                  .bytes = { 0x30, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33 } } },
    { .type = DSM_MSG_PING, .seq = 30,
      .beat = { .sent_ns = 123456789, .resident = 5, .exclusive = 2 } },
    { .type = DSM_MSG_PONG, .seq = 31,
      .beat = { .sent_ns = -1, .resident = ~0ULL, .exclusive = 0 } },
    { .type = DSM_MSG_VCPU_MIGRATE, .seq = 26,
      .vcpu = { .cpu = 7, .fragment = 3 } },
    { .type = DSM_MSG_VCPU_OWNER, .seq = 27,
      .vcpu = { .cpu = 0xffffffff, .fragment = 0, .epoch = 0x80000001 } },
    { .type = DSM_MSG_VCPU_STATE, .seq = 28,
      .vcpu = { .cpu = 2, .fragment = 1, .epoch = 5,
                .clock_ns = -12345678901LL, .len = 100,
                .state = test_page } },
    { .type = DSM_MSG_VCPU_STATE, .seq = 29,
      .vcpu = { .cpu = 3, .fragment = 2, .epoch = 6, .clock_ns = 1,
                .len = DSM_PAGE_SIZE, .state = test_page } },
    { .type = DSM_MSG_NET_START, .seq = 34,
      .net = { .nic = 1, .pair = 3, .update = true, .status = 0xf,
               .curr_pairs = 4, .features = 0x1300ffc3ULL,
               .q = { { .desc = 0x12345000, .avail = 0x12346000,
                        .used = 0x12347000, .notify = 0xfe003008,
                        .msi_addr = 0xfee01000, .msi_data = 0x4023,
                        .num = 256, .last_avail = 0xfffe, .vector = 5 },
                      { .desc = 0x100000000ULL, .avail = 0x100001000ULL,
                        .used = 0x100002000ULL, .notify = 0,
                        .msi_addr = 0xfee00000, .msi_data = 0x41,
                        .num = 32768, .last_avail = 1, .vector = 6,
                        .msi_masked = true } } } },
    { .type = DSM_MSG_NET_STOP, .seq = 35, .net = { .nic = 0, .pair = 7 } },
    { .type = DSM_MSG_NET_KICK, .seq = 36,
      .net = { .nic = 2, .pair = 1, .vq = 1 } },
    { .type = DSM_MSG_NET_TX, .seq = 37,
      .net = { .nic = 0, .pair = 1, .len = 1, .data = test_page } },
    { .type = DSM_MSG_NET_RX, .seq = 38,
      .net = { .nic = 0, .pair = 2, .len = DSM_PAGE_SIZE,
               .data = test_page } },
};

static void assert_msg_equal(const TestMsg *a, const TestMsg *b)
{
    g_assert_cmpint(a->type, ==, b->type);
    g_assert_cmpuint(a->seq, ==, b->seq);
    g_assert_cmpuint(a->page, ==, b->page);
    g_assert_cmpuint(a->tid, ==, b->tid);
    g_assert_cmpint(a->access, ==, b->access);
    g_assert_cmpint(a->mode, ==, b->mode);
    g_assert_cmpuint(a->target, ==, b->target);
    g_assert_cmpint(a->zero, ==, b->zero);
    g_assert_cmpuint(a->fragment, ==, b->fragment);
    g_assert_cmpuint(a->version, ==, b->version);
    g_assert_cmpmem(a->config_hash, sizeof(a->config_hash),
                    b->config_hash, sizeof(b->config_hash));
    g_assert_cmpuint(a->nr_pages, ==, b->nr_pages);
    g_assert_cmpmem(&a->io, sizeof(a->io), &b->io, sizeof(b->io));
    g_assert_cmpuint(a->irq.cpu, ==, b->irq.cpu);
    g_assert_cmpuint(a->irq.vector, ==, b->irq.vector);
    g_assert_cmpint(a->irq.level, ==, b->irq.level);
    g_assert_cmpmem(&a->cpu_event, sizeof(a->cpu_event),
                    &b->cpu_event, sizeof(b->cpu_event));
    g_assert_cmpmem(&a->apic, sizeof(a->apic), &b->apic, sizeof(b->apic));
    g_assert_cmpuint(a->cause, ==, b->cause);
    g_assert_cmpint(a->running, ==, b->running);
    g_assert_cmpuint(a->clock.id, ==, b->clock.id);
    g_assert_cmpuint(a->clock.ticks, ==, b->clock.ticks);
    g_assert_cmpint(a->clock.virtual_ns, ==, b->clock.virtual_ns);
    g_assert_cmpint(a->clock.running, ==, b->clock.running);
    g_assert_cmpuint(a->io_map.offset, ==, b->io_map.offset);
    g_assert_cmpmem(a->io_map.bytes, a->io_map.len,
                    b->io_map.bytes, b->io_map.len);
    g_assert(!a->data == !b->data);
    if (a->data) {
        g_assert_cmpmem(a->data, DSM_PAGE_SIZE, b->data, DSM_PAGE_SIZE);
    }
    g_assert_cmpmem(&a->beat, sizeof(a->beat), &b->beat, sizeof(b->beat));
    g_assert_cmpuint(a->vcpu.cpu, ==, b->vcpu.cpu);
    g_assert_cmpuint(a->vcpu.fragment, ==, b->vcpu.fragment);
    g_assert_cmpuint(a->vcpu.epoch, ==, b->vcpu.epoch);
    g_assert_cmpint(a->vcpu.clock_ns, ==, b->vcpu.clock_ns);
    g_assert(!a->vcpu.state == !b->vcpu.state);
    g_assert_cmpmem(a->vcpu.state, a->vcpu.len, b->vcpu.state, b->vcpu.len);
    g_assert_cmpuint(a->net.nic, ==, b->net.nic);
    g_assert_cmpuint(a->net.pair, ==, b->net.pair);
    g_assert_cmpuint(a->net.vq, ==, b->net.vq);
    g_assert_cmpint(a->net.update, ==, b->net.update);
    g_assert_cmpuint(a->net.status, ==, b->net.status);
    g_assert_cmpuint(a->net.curr_pairs, ==, b->net.curr_pairs);
    g_assert_cmpuint(a->net.features, ==, b->net.features);
    g_assert_cmpmem(a->net.q, sizeof(a->net.q), b->net.q, sizeof(b->net.q));
    g_assert(!a->net.data == !b->net.data);
    g_assert_cmpmem(a->net.data, a->net.len, b->net.data, b->net.len);
}

static GByteArray *encode(const TestMsg *msg)
{
    GByteArray *buf = g_byte_array_new();
    uint64_t payload[DSM_MAX_DECODED / sizeof(uint64_t)];
    const DSMMsgDesc *desc = test_desc(msg->type);

    g_assert(desc);
    to_payload(msg, payload);
    dsm_msg_encode(desc, payload, buf);
    dsm_header_set_seq(buf->data, buf->len, msg->seq);
    return buf;
}

static void test_roundtrip(void)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(sample_msgs); i++) {
        g_autoptr(GByteArray) buf = encode(&sample_msgs[i]);
        TestMsg out;

        g_assert(test_decode(buf->data, buf->len, &out, &error_abort));
        assert_msg_equal(&out, &sample_msgs[i]);
        /* The page is not copied: it points into the buffer. */
        if (out.data) {
            g_assert(out.data == buf->data + DSM_HEADER_SIZE + 16);
        }
    }
}

/* The stream reader's path: header first, then exactly `length` bytes. */
static void test_header_then_payload(void)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(sample_msgs); i++) {
        g_autoptr(GByteArray) buf = encode(&sample_msgs[i]);
        const DSMLimits lim = { NR_PAGES, NR_FRAGMENTS };
        uint64_t payload[DSM_MAX_DECODED / sizeof(uint64_t)];
        const DSMMsgDesc *desc;
        DSMHeader hdr;
        TestMsg out;

        g_assert(dsm_header_decode(buf->data, DSM_HEADER_SIZE, &hdr,
                                   &error_abort));
        g_assert_cmpint(hdr.type, ==, sample_msgs[i].type);
        g_assert_cmpuint(hdr.seq, ==, sample_msgs[i].seq);
        g_assert_cmpuint(hdr.length, ==, buf->len - DSM_HEADER_SIZE);
        g_assert_cmpuint(hdr.length, <=, DSM_MAX_PAYLOAD);
        desc = dsm_codec_lookup(test_codec_of, NULL, hdr.type, &error_abort);
        g_assert(dsm_check_length(desc, hdr.length, &error_abort));
        g_assert(dsm_payload_decode(desc, buf->data + DSM_HEADER_SIZE,
                                    hdr.length, &lim, payload,
                                    &error_abort));
        from_payload(&hdr, payload, &out);
        assert_msg_equal(&out, &sample_msgs[i]);
    }
}

/* The link stamps the sequence number into an encoded message. */
static void test_set_seq(void)
{
    TestMsg msg = { .type = DSM_MSG_INV, .page = 5, .tid = 9, .seq = 1 };
    g_autoptr(GByteArray) buf = encode(&msg);
    DSMHeader hdr;
    TestMsg out;

    dsm_header_set_seq(buf->data, buf->len, 0x89abcdef);
    g_assert_cmphex((uint32_t)ldl_be_p(buf->data + 12), ==, 0x89abcdef);
    g_assert(dsm_header_decode(buf->data, DSM_HEADER_SIZE, &hdr,
                               &error_abort));
    g_assert_cmphex(hdr.seq, ==, 0x89abcdef);
    g_assert(test_decode(buf->data, buf->len, &out, &error_abort));
    g_assert_cmphex(out.seq, ==, 0x89abcdef);
    g_assert_cmpuint(out.page, ==, 5);
    g_assert_cmpuint(out.tid, ==, 9);
}

/* Pin the layout: big-endian fields at the documented offsets. */
static void test_golden(void)
{
    static const uint8_t want[] = {
        0x41, 0x47, 0x47, 0x31,                     /* magic "AGG1" */
        0x00, 0x02,                                 /* version */
        0x01, 0x04,                                 /* type FWD */
        0x00, 0x00, 0x00, 0x14,                     /* length 20 */
        0x01, 0x02, 0x03, 0x04,                     /* seq */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, /* page */
        0x00, 0x00, 0x01, 0x00,                     /* tid */
        0x01, 0x00, 0x00, 0x00,                     /* access W, rsvd */
        0x00, 0x00, 0x00, 0x02,                     /* target */
    };
    TestMsg msg = {
        .type = DSM_MSG_FWD, .seq = 0x01020304, .page = 42, .tid = 256,
        .access = DSM_ACCESS_WRITE, .target = 2,
    };
    g_autoptr(GByteArray) buf = encode(&msg);

    g_assert_cmpmem(buf->data, buf->len, want, sizeof(want));
}

static void test_type_names(void)
{
    static const struct {
        uint16_t type;
        const char *name;
    } names[] = {
        { DSM_MSG_HELLO, "HELLO" }, { DSM_MSG_REQ, "REQ" },
        { DSM_MSG_INV, "INV" }, { DSM_MSG_ACK, "ACK" },
        { DSM_MSG_FWD, "FWD" }, { DSM_MSG_DATA, "DATA" },
        { DSM_MSG_GRANT, "GRANT" }, { DSM_MSG_DONE, "DONE" },
        { DSM_MSG_IO_REQ, "IO_REQ" }, { DSM_MSG_IO_RESP, "IO_RESP" },
        { DSM_MSG_IRQ, "IRQ" },
        { DSM_MSG_CPU_EVENT, "CPU_EVENT" },
        { DSM_MSG_IO_MAP, "IO_MAP" },
        { DSM_MSG_APIC_STATE, "APIC_STATE" },
        { DSM_MSG_SHUTDOWN, "SHUTDOWN" }, { DSM_MSG_RESET, "RESET" },
        { DSM_MSG_EOI, "EOI" }, { DSM_MSG_CLOCK_REQ, "CLOCK_REQ" },
        { DSM_MSG_CLOCK_RESP, "CLOCK_RESP" },
        { DSM_MSG_RUN_STATE, "RUN_STATE" },
        { DSM_MSG_NET_START, "NET_START" }, { DSM_MSG_NET_STOP, "NET_STOP" },
        { DSM_MSG_NET_KICK, "NET_KICK" }, { DSM_MSG_NET_TX, "NET_TX" },
        { DSM_MSG_NET_RX, "NET_RX" }, { 0x0706, "unknown" },
        { 0, "unknown" }, { 0x0108, "unknown" }, { 0x0204, "unknown" },
    };
    size_t i;

    for (i = 0; i < ARRAY_SIZE(names); i++) {
        g_assert_cmpstr(test_type_name(names[i].type), ==, names[i].name);
        if (DSM_MSG_FAMILY(names[i].type) <= DSM_FAMILY_DSM) {
            g_assert_cmpstr(dsm_msg_type_name(names[i].type), ==,
                            names[i].name);
        }
    }
}

/* Malformed input: a valid encoding, then up to three mutations. */

typedef enum MutKind {
    MUT_NONE,
    MUT_TRUNC,          /* keep the first `val` bytes */
    MUT_APPEND,         /* append `val` zero bytes */
    MUT_SET8,           /* store `val` at `off`, big-endian */
    MUT_SET16,
    MUT_SET32,
    MUT_SET64,
} MutKind;

typedef struct Mutation {
    MutKind kind;
    size_t off;
    uint64_t val;
} Mutation;

typedef struct BadCase {
    const char *name;
    TestMsg msg;
    Mutation mut[3];
    const char *error;      /* expected substring */
} BadCase;

/* Header offsets, and payload offsets counted from the buffer start. */
#define OFF_MAGIC       0
#define OFF_VERSION     4
#define OFF_TYPE        6
#define OFF_LENGTH      8
#define OFF_PAGE        16
#define OFF_TID         24
#define OFF_REQ_ACCESS  24
#define OFF_REQ_RSVD    25
#define OFF_FWD_ACCESS  28
#define OFF_FWD_TARGET  32
#define OFF_MODE        28      /* GRANT and DATA */
#define OFF_DATA_FLAGS  29
#define OFF_IO_SPACE    20      /* IO_REQ */
#define OFF_IO_SIZE     21
#define OFF_IO_WRITE    22
#define OFF_IO_ATTRS    28
#define OFF_IO_ADDR     32

#define IO_PIO { .type = DSM_MSG_IO_REQ, \
                 .io = { .id = 1, .space = DSM_IO_SPACE_IO, .size = 2, \
                         .cpu = 0, .addr = 0x70 } }
#define OFF_HELLO_FRAG  16
#define OFF_PAYLOAD     16

#define CPU_EV  { .type = DSM_MSG_CPU_EVENT, \
                  .cpu_event = { .events = DSM_CPU_EVENT_NMI } }
#define APIC_1  { .type = DSM_MSG_APIC_STATE, \
                  .apic = { .cpu = 1, .id = 1, .dest_mode = 0xf } }
#define IO_MAP_PAM { .type = DSM_MSG_IO_MAP, \
                     .io_map = { .offset = 0x90, .len = 15 } }

#define REQ_R   { .type = DSM_MSG_REQ, .page = 5 }
#define VCPU_MIG { .type = DSM_MSG_VCPU_MIGRATE, .vcpu = { .cpu = 1 } }
#define NET_START_1 { .type = DSM_MSG_NET_START, \
                      .net = { .curr_pairs = 1, \
                               .q = { { .num = 256 }, { .num = 256 } } } }
#define NET_TX_1 { .type = DSM_MSG_NET_TX, \
                   .net = { .len = 60, .data = test_page } }
#define NET_RX_1 { .type = DSM_MSG_NET_RX, \
                   .net = { .len = 60, .data = test_page } }
#define VCPU_ST { .type = DSM_MSG_VCPU_STATE, \
                  .vcpu = { .cpu = 1, .len = 100, .state = test_page } }
#define INV_1   { .type = DSM_MSG_INV, .page = 5, .tid = 1 }
#define FWD_1   { .type = DSM_MSG_FWD, .page = 5, .tid = 1, .target = 1 }
#define GRANT_1 { .type = DSM_MSG_GRANT, .page = 5, .tid = 1 }
#define ZERO_1  { .type = DSM_MSG_DATA, .page = 5, .tid = 1, .zero = true }
#define DATA_1  { .type = DSM_MSG_DATA, .page = 5, .tid = 1, \
                  .data = test_page }
#define HELLO_1 { .type = DSM_MSG_HELLO, .fragment = 1, .version = 1 }

static const BadCase bad_cases[] = {
    { "empty", REQ_R, { { MUT_TRUNC, 0, 0 } },
      "header is 0 bytes, expected 16" },
    { "truncated-header", REQ_R, { { MUT_TRUNC, 0, 10 } },
      "header is 10 bytes, expected 16" },
    { "truncated-payload", REQ_R, { { MUT_TRUNC, 0, 25 } },
      "REQ message has 9 payload bytes, header says 12" },
    { "truncated-page", DATA_1, { { MUT_TRUNC, 0, 100 } },
      "DATA message has 84 payload bytes, header says 4112" },
    { "trailing-bytes", REQ_R, { { MUT_APPEND, 0, 4 } },
      "REQ message has 16 payload bytes, header says 12" },
    { "length-short-for-type", REQ_R,
      { { MUT_SET32, OFF_LENGTH, 9 }, { MUT_TRUNC, 0, 25 } },
      "REQ payload is 9 bytes, expected 12" },
    { "length-long-for-type", REQ_R,
      { { MUT_SET32, OFF_LENGTH, 13 }, { MUT_APPEND, 0, 1 } },
      "REQ payload is 13 bytes, expected 12" },
    { "length-huge", INV_1, { { MUT_SET32, OFF_LENGTH, 0xffffffff } },
      "INV payload is 4294967295 bytes, expected 12" },
    { "data-length-between", ZERO_1,
      { { MUT_SET32, OFF_LENGTH, 100 }, { MUT_APPEND, 0, 84 } },
      "DATA payload is 100 bytes, expected 16 or 4112" },
    { "data-zero-with-page", DATA_1, { { MUT_SET8, OFF_DATA_FLAGS, 1 } },
      "DATA payload is 4112 bytes, expected 16 for flags 0x1" },
    { "data-without-page", ZERO_1, { { MUT_SET8, OFF_DATA_FLAGS, 0 } },
      "DATA payload is 16 bytes, expected 4112 for flags 0x0" },
    { "data-unknown-flag", ZERO_1, { { MUT_SET8, OFF_DATA_FLAGS, 3 } },
      "DATA flags 0x3 invalid" },
    { "type-unknown", REQ_R, { { MUT_SET16, OFF_TYPE, 0x17 } },
      "message type 0x0017 unknown" },
    { "type-zero", REQ_R, { { MUT_SET16, OFF_TYPE, 0 } },
      "message type 0x0000 unknown" },
    { "type-past-dsm", REQ_R, { { MUT_SET16, OFF_TYPE, 0x0108 } },
      "message type 0x0108 unknown" },
    { "type-past-net", REQ_R, { { MUT_SET16, OFF_TYPE, 0x0706 } },
      "message type 0x0706 unknown" },
    { "type-of-unknown-family", REQ_R, { { MUT_SET16, OFF_TYPE, 0x0801 } },
      "message type 0x0801 unknown" },
    { "net-start-short", NET_START_1,
      { { MUT_SET32, OFF_LENGTH, 80 }, { MUT_TRUNC, 0, 96 } },
      "NET_START payload is 80 bytes, expected 136" },
    { "net-start-no-pairs-in-use", NET_START_1,
      { { MUT_SET32, OFF_PAYLOAD + 8, 0 } },
      "NET_START with 0 queue pairs in use" },
    { "net-start-bad-update", NET_START_1,
      { { MUT_SET8, OFF_PAYLOAD + 13, 2 } }, "(update 2)" },
    { "net-start-reserved", NET_START_1,
      { { MUT_SET8, OFF_PAYLOAD + 15, 1 } },
      "NET_START reserved bytes not zero" },
    { "net-start-queue-size-0", NET_START_1,
      { { MUT_SET32, OFF_PAYLOAD + 24 + 44, 0 } },
      "NET_START with a queue of 0 entries" },
    { "net-start-queue-size-odd", NET_START_1,
      { { MUT_SET32, OFF_PAYLOAD + 80 + 44, 384 } },
      "NET_START with a queue of 384 entries" },
    { "net-start-queue-too-big", NET_START_1,
      { { MUT_SET32, OFF_PAYLOAD + 24 + 44, 65536 } },
      "NET_START with a queue of 65536 entries" },
    { "net-start-bad-mask", NET_START_1,
      { { MUT_SET8, OFF_PAYLOAD + 80 + 52, 2 } },
      "NET_START with MSI-X mask 2" },
    { "net-start-vq-reserved", NET_START_1,
      { { MUT_SET8, OFF_PAYLOAD + 24 + 55, 1 } },
      "NET_START reserved bytes not zero" },
    { "net-stop-long", { .type = DSM_MSG_NET_STOP },
      { { MUT_SET32, OFF_LENGTH, 9 }, { MUT_APPEND, 0, 1 } },
      "NET_STOP payload is 9 bytes, expected 8" },
    { "net-kick-bad-vq", { .type = DSM_MSG_NET_KICK },
      { { MUT_SET32, OFF_PAYLOAD + 8, 2 } },
      "NET_KICK for virtqueue 2 of a pair" },
    { "net-kick-reserved", { .type = DSM_MSG_NET_KICK },
      { { MUT_SET8, OFF_PAYLOAD + 15, 1 } },
      "NET_KICK reserved bytes not zero" },
    { "net-tx-empty", NET_TX_1,
      { { MUT_SET32, OFF_LENGTH, 8 }, { MUT_TRUNC, 0, 24 } },
      "NET_TX payload is 8 bytes, expected 9 to 66056" },
    { "net-rx-too-long", NET_RX_1,
      { { MUT_SET32, OFF_LENGTH, 8 + DSM_NET_PACKET_MAX + 1 } },
      "NET_RX payload is 66057 bytes, expected 9 to 66056" },
    { "type-past-link", REQ_R, { { MUT_SET16, OFF_TYPE, 0x0004 } },
      "message type 0x0004 unknown" },
    { "ping-short", { .type = DSM_MSG_PING },
      { { MUT_SET32, OFF_LENGTH, 16 }, { MUT_TRUNC, 0, 32 } },
      "PING payload is 16 bytes, expected 24" },
    { "type-past-vcpu", REQ_R, { { MUT_SET16, OFF_TYPE, 0x0604 } },
      "message type 0x0604 unknown" },
    { "vcpu-target-out-of-range", VCPU_MIG,
      { { MUT_SET32, OFF_PAYLOAD + 4, 4 } },
      "VCPU_MIGRATE named fragment 4 out of range, expected below 4" },
    { "vcpu-reserved", VCPU_MIG, { { MUT_SET8, OFF_PAYLOAD + 15, 1 } },
      "VCPU_MIGRATE reserved bytes not zero" },
    { "vcpu-owner-short", { .type = DSM_MSG_VCPU_OWNER },
      { { MUT_SET32, OFF_LENGTH, 8 }, { MUT_TRUNC, 0, 24 } },
      "VCPU_OWNER payload is 8 bytes, expected 16" },
    { "vcpu-state-empty", VCPU_ST,
      { { MUT_SET32, OFF_LENGTH, 24 }, { MUT_TRUNC, 0, 40 } },
      "VCPU_STATE payload is 24 bytes, expected 25 to 65560" },
    { "vcpu-state-too-long", VCPU_ST,
      { { MUT_SET32, OFF_LENGTH, 24 + DSM_VCPU_STATE_MAX + 1 } },
      "VCPU_STATE payload is 65561 bytes, expected 25 to 65560" },
    { "vcpu-state-sender-out-of-range", VCPU_ST,
      { { MUT_SET32, OFF_PAYLOAD + 4, 9 } },
      "VCPU_STATE named fragment 9 out of range" },
    { "vcpu-state-truncated", VCPU_ST, { { MUT_TRUNC, 0, 50 } },
      "VCPU_STATE message has 34 payload bytes, header says 124" },
    { "type-past-clock", REQ_R, { { MUT_SET16, OFF_TYPE, 0x0503 } },
      "message type 0x0503 unknown" },
    { "clock-reserved", { .type = DSM_MSG_CLOCK_RESP },
      { { MUT_SET8, OFF_PAYLOAD + 5, 1 } }, "CLOCK_RESP reserved" },
    { "clock-bad-flags", { .type = DSM_MSG_CLOCK_RESP },
      { { MUT_SET8, OFF_PAYLOAD + 4, 3 } }, "CLOCK_RESP flags 0x3 invalid" },
    { "type-past-lifecycle", REQ_R, { { MUT_SET16, OFF_TYPE, 0x0405 } },
      "message type 0x0405 unknown" },
    { "run-state-bad", { .type = DSM_MSG_RUN_STATE },
      { { MUT_SET8, OFF_PAYLOAD, 2 } }, "RUN_STATE 2 invalid" },
    { "shutdown-reserved", { .type = DSM_MSG_SHUTDOWN },
      { { MUT_SET8, OFF_PAYLOAD + 5, 1 } }, "SHUTDOWN reserved" },
    { "irq-bad-trigger", { .type = DSM_MSG_IRQ, .irq = { .vector = 0x31 } },
      { { MUT_SET8, 21, 2 } }, "IRQ trigger 2 invalid" },
    { "type-past-io", REQ_R, { { MUT_SET16, OFF_TYPE, 0x0204 } },
      "message type 0x0204 unknown" },
    { "type-past-irq", REQ_R, { { MUT_SET16, OFF_TYPE, 0x0305 } },
      "message type 0x0305 unknown" },
    { "apic-bad-format", APIC_1, { { MUT_SET8, OFF_PAYLOAD + 12, 0x7 } },
      "APIC_STATE destination format 0x7 invalid" },
    { "apic-bad-x2apic", APIC_1, { { MUT_SET8, OFF_PAYLOAD + 13, 2 } },
      "APIC_STATE x2APIC flag 2 invalid" },
    { "cpu-event-none", CPU_EV, { { MUT_SET8, OFF_PAYLOAD + 4, 0 } },
      "CPU_EVENT events 0x0 invalid" },
    { "cpu-event-unknown", CPU_EV, { { MUT_SET8, OFF_PAYLOAD + 4, 0x12 } },
      "CPU_EVENT events 0x12 invalid" },
    { "io-map-empty", IO_MAP_PAM, { { MUT_SET8, OFF_PAYLOAD + 2, 0 } },
      "IO_MAP of 0 bytes at 0x90 is outside" },
    { "io-map-too-long", IO_MAP_PAM, { { MUT_SET8, OFF_PAYLOAD + 2, 17 } },
      "IO_MAP of 17 bytes at 0x90 is outside" },
    { "io-map-past-header", IO_MAP_PAM,
      { { MUT_SET16, OFF_PAYLOAD, 0xf8 } },
      "IO_MAP of 15 bytes at 0xf8 is outside" },
    { "io-bad-space", IO_PIO, { { MUT_SET8, OFF_IO_SPACE, 2 } },
      "IO_REQ space 2 invalid" },
    { "io-bad-size", IO_PIO, { { MUT_SET8, OFF_IO_SIZE, 3 } },
      "IO_REQ size 3 invalid" },
    { "io-size-16", IO_PIO, { { MUT_SET8, OFF_IO_SIZE, 16 } },
      "IO_REQ size 16 invalid" },
    { "io-bad-write-flag", IO_PIO, { { MUT_SET8, OFF_IO_WRITE, 2 } },
      "IO_REQ flags 0x2/0x0 invalid" },
    { "io-unknown-attrs", IO_PIO, { { MUT_SET32, OFF_IO_ATTRS, 0x100 } },
      "IO_REQ attributes 0x100 invalid" },
    { "io-port-out-of-range", IO_PIO, { { MUT_SET64, OFF_IO_ADDR, 0xffff } },
      "IO_REQ port 0xffff out of range" },
    { "wrong-version", REQ_R, { { MUT_SET16, OFF_VERSION, 1 } },
      "received version 1, expected 2" },
    { "bad-magic", REQ_R, { { MUT_SET32, OFF_MAGIC, 0x41474732 } },
      "received magic 0x41474732, expected 0x41474731" },
    { "req-page-out-of-range", REQ_R, { { MUT_SET64, OFF_PAGE, 100 } },
      "REQ page 0x64 out of range, expected below 0x64" },
    { "inv-page-out-of-range", INV_1, { { MUT_SET64, OFF_PAGE, ~0ULL } },
      "INV page 0xffffffffffffffff out of range" },
    { "fwd-page-out-of-range", FWD_1, { { MUT_SET64, OFF_PAGE, 1000 } },
      "FWD page 0x3e8 out of range" },
    { "grant-page-out-of-range", GRANT_1, { { MUT_SET64, OFF_PAGE, 100 } },
      "GRANT page 0x64 out of range" },
    { "data-page-out-of-range", DATA_1, { { MUT_SET64, OFF_PAGE, 100 } },
      "DATA page 0x64 out of range" },
    { "ack-page-out-of-range",
      { .type = DSM_MSG_ACK, .page = 5, .tid = 1 },
      { { MUT_SET64, OFF_PAGE, 100 } }, "ACK page 0x64 out of range" },
    { "done-page-out-of-range",
      { .type = DSM_MSG_DONE, .page = 5, .tid = 1 },
      { { MUT_SET64, OFF_PAGE, 100 } }, "DONE page 0x64 out of range" },
    { "fwd-target-out-of-range", FWD_1,
      { { MUT_SET32, OFF_FWD_TARGET, 4 } },
      "FWD target fragment 4 out of range, expected below 4" },
    { "hello-fragment-out-of-range", HELLO_1,
      { { MUT_SET32, OFF_HELLO_FRAG, 7 } },
      "HELLO sender fragment 7 out of range, expected below 4" },
    { "req-bad-access", REQ_R, { { MUT_SET8, OFF_REQ_ACCESS, 2 } },
      "REQ access 2 invalid, expected 0 (R) or 1 (W)" },
    { "fwd-bad-access", FWD_1, { { MUT_SET8, OFF_FWD_ACCESS, 0xff } },
      "FWD access 255 invalid" },
    { "grant-bad-mode", GRANT_1, { { MUT_SET8, OFF_MODE, 2 } },
      "GRANT mode 2 invalid, expected 0 (S) or 1 (E)" },
    { "data-bad-mode", DATA_1, { { MUT_SET8, OFF_MODE, 9 } },
      "DATA mode 9 invalid" },
    { "req-reserved-set", REQ_R, { { MUT_SET8, OFF_REQ_RSVD + 2, 1 } },
      "REQ reserved bytes not zero" },
    { "inv-tid-0", INV_1, { { MUT_SET32, OFF_TID, 0 } },
      "INV tid 0 invalid" },
    { "grant-tid-0", GRANT_1, { { MUT_SET32, OFF_TID, 0 } },
      "GRANT tid 0 invalid" },
};

static void apply_mutation(GByteArray *buf, const Mutation *m)
{
    static const uint8_t zeros[8];
    uint64_t n;

    switch (m->kind) {
    case MUT_NONE:
        break;
    case MUT_TRUNC:
        g_byte_array_set_size(buf, m->val);
        break;
    case MUT_APPEND:
        for (n = 0; n < m->val; n++) {
            g_byte_array_append(buf, zeros, 1);
        }
        break;
    case MUT_SET8:
        buf->data[m->off] = m->val;
        break;
    case MUT_SET16:
        stw_be_p(buf->data + m->off, m->val);
        break;
    case MUT_SET32:
        stl_be_p(buf->data + m->off, m->val);
        break;
    case MUT_SET64:
        stq_be_p(buf->data + m->off, m->val);
        break;
    }
}

static void test_bad_case(gconstpointer opaque)
{
    const BadCase *c = opaque;
    g_autoptr(GByteArray) buf = encode(&c->msg);
    Error *err = NULL;
    TestMsg out, untouched;
    size_t i;

    /* The encoding is valid before the mutations. */
    g_assert(test_decode(buf->data, buf->len, &out, &error_abort));
    for (i = 0; i < ARRAY_SIZE(c->mut); i++) {
        apply_mutation(buf, &c->mut[i]);
    }

    memset(&out, 0xa5, sizeof(out));
    memcpy(&untouched, &out, sizeof(out));
    g_assert_false(test_decode(buf->data, buf->len, &out, &err));
    g_assert_nonnull(err);
    if (!strstr(error_get_pretty(err), c->error)) {
        g_test_message("got \"%s\", want \"%s\"", error_get_pretty(err),
                       c->error);
        g_test_fail();
    }
    g_assert_cmpmem(&out, sizeof(out), &untouched, sizeof(untouched));
    error_free(err);
}

/*
 * The header and its type's codec are enough to refuse a bad length:
 * no payload needs to be read.
 */
static void test_header_only_rejects(void)
{
    TestMsg msg = { .type = DSM_MSG_DATA, .page = 1, .tid = 1,
                    .data = test_page };
    g_autoptr(GByteArray) buf = encode(&msg);
    const DSMLimits lim = { NR_PAGES, NR_FRAGMENTS };
    uint64_t payload[DSM_MAX_DECODED / sizeof(uint64_t)];
    const DSMMsgDesc *desc;
    DSMHeader hdr = { .type = 0x7777 }, saved = hdr;
    Error *err = NULL;

    /* Too short for a header: refused, @hdr untouched. */
    g_assert_false(dsm_header_decode(buf->data, DSM_HEADER_SIZE - 1, &hdr,
                                     &err));
    error_free_or_abort(&err);
    g_assert_cmpmem(&hdr, sizeof(hdr), &saved, sizeof(saved));

    stl_be_p(buf->data + OFF_LENGTH, DSM_MAX_PAYLOAD + 1);
    g_assert(dsm_header_decode(buf->data, DSM_HEADER_SIZE, &hdr,
                               &error_abort));
    desc = dsm_codec_lookup(test_codec_of, NULL, hdr.type, &error_abort);
    g_assert_false(dsm_check_length(desc, hdr.length, &err));
    error_free_or_abort(&err);

    /* A payload that does not match its length is refused, too. */
    g_assert_false(dsm_payload_decode(desc, buf->data + DSM_HEADER_SIZE, 15,
                                      &lim, payload, &err));
    error_free_or_abort(&err);
}

int main(int argc, char **argv)
{
    size_t i;

    g_test_init(&argc, &argv, NULL);
    init_test_page();

    g_test_add_func("/dsm/wire/roundtrip", test_roundtrip);
    g_test_add_func("/dsm/wire/header-then-payload",
                    test_header_then_payload);
    g_test_add_func("/dsm/wire/golden", test_golden);
    g_test_add_func("/dsm/wire/set-seq", test_set_seq);
    g_test_add_func("/dsm/wire/type-names", test_type_names);
    g_test_add_func("/dsm/wire/header-only-rejects",
                    test_header_only_rejects);
    for (i = 0; i < ARRAY_SIZE(bad_cases); i++) {
        g_autofree char *path = g_strdup_printf("/dsm/wire/bad/%s",
                                                bad_cases[i].name);

        g_test_add_data_func(path, &bad_cases[i], test_bad_case);
    }
    return g_test_run();
}
