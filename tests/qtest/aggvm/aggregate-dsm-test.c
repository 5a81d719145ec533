/*
 * aggvm qtest: DSM coherence across fragment processes
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Starts three fragments of one aggregate machine under -accel qtest,
 * each in its own network namespace when running as root (loopback
 * otherwise), so they share nothing but their TCP links.  Guest RAM is
 * written and read with qtest memwrite/memread on different fragments
 * and checked against a reference model kept here.
 */

#include "qemu/osdep.h"
#include <sys/wait.h>
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "qobject/qnum.h"
#include "qemu/atomic.h"
#include "qemu/bswap.h"

#define NR_FRAGS        3
#define FRAG_MEM_MB     64
#define PAGE            4096
#define RANDOM_OPS      20000
#define RANDOM_PAGES    300

typedef struct Aggregate {
    QTestState *qts[NR_FRAGS];
    char *netns[NR_FRAGS];          /* NULL: loopback */
    char *prefix;                   /* of the namespaces, or NULL */
    char *addr[NR_FRAGS];
} Aggregate;

static Aggregate agg;
static bool use_netns;

/* ---- network namespaces: one per fragment, joined by a bridge */

/* Whether a wait status from g_spawn_*() means "exited with 0". */
static bool exited_ok(int status)
{
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static bool run_cmd(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

static bool run_cmd(const char *fmt, ...)
{
    g_autofree char *cmd = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    int status;
    va_list ap;

    va_start(ap, fmt);
    cmd = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (!g_spawn_command_line_sync(cmd, &out, &err, &status, NULL) ||
        !exited_ok(status)) {
        g_test_message("'%s' failed: %s", cmd, err ? err : "");
        return false;
    }
    return true;
}

/* tests/functional/aggvm/aggvm-netns: see tests/qtest/aggvm/meson.build. */
static const char *netns_helper(void)
{
    const char *path = g_getenv("AGGVM_NETNS_HELPER");

    return path && access(path, X_OK) == 0 ? path : NULL;
}

static void netns_teardown(void)
{
    if (agg.prefix) {
        run_cmd("%s down %s", netns_helper(), agg.prefix);
    }
}

/*
 * Namespaces made by aggvm-netns: aggvm-qt<pid>-f<i>, on a bridge in
 * aggvm-qt<pid>-sw.  A run that aborted (a failed assertion) left its
 * namespaces behind, since atexit() handlers do not run on abort: the
 * helper deletes those of dead runs first.
 */
static bool netns_setup(void)
{
    int i;

    if (geteuid() != 0 || !netns_helper()) {
        return false;
    }
    run_cmd("%s reap '^aggvm-qt([0-9]+)-'", netns_helper());
    agg.prefix = g_strdup_printf("aggvm-qt%d", getpid());
    if (!run_cmd("%s up %s %d", netns_helper(), agg.prefix, NR_FRAGS)) {
        g_clear_pointer(&agg.prefix, g_free);
        return false;
    }
    atexit(netns_teardown);
    for (i = 0; i < NR_FRAGS; i++) {
        agg.netns[i] = g_strdup_printf("%s-f%d", agg.prefix, i);
        agg.addr[i] = g_strdup_printf("10.77.0.%d:7000", i + 1);
    }
    return true;
}

/* A TCP port on loopback that was free a moment ago. */
static int free_port(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g_assert(fd >= 0);
    g_assert(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    g_assert(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
    port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static void loopback_setup(void)
{
    int i;

    for (i = 0; i < NR_FRAGS; i++) {
        agg.addr[i] = g_strdup_printf("127.0.0.1:%d", free_port());
    }
}

/* ---- fragments */

/* The command line every fragment shares, but for fragment=. */
static char *common_args(const char *extra)
{
    GString *s = g_string_new("");
    int i;

    /* A long hold time makes the hold queue work in every test. */
    g_string_append_printf(s, "-machine aggregate,connect-timeout=30,"
                           "hold-time=3000 "
                           "-m %dM -smp %d -nodefaults -display none ",
                           FRAG_MEM_MB * NR_FRAGS, NR_FRAGS);
    for (i = 0; i < NR_FRAGS; i++) {
        g_string_append_printf(s, "-object aggregate-fragment,id=f%d,"
                               "address=%s,cpus=%d,mem=%dM ", i,
                               agg.addr[i], i, FRAG_MEM_MB);
    }
    g_string_append(s, extra ? extra : "");
    return g_string_free(s, false);
}

static QTestState *start_fragment(int i)
{
    g_autofree char *common = common_args(NULL);
    g_autofree char *args = g_strdup_printf("%s -machine fragment=f%d",
                                            common, i);
    g_autofree char *var = g_strdup_printf("AGGVM_QEMU_F%d", i);

    if (agg.netns[i]) {
        g_autofree char *bin = g_strdup_printf("ip netns exec %s %s",
                                               agg.netns[i],
                                               getenv("QTEST_QEMU_BINARY"));
        g_setenv(var, bin, true);
    }
    return qtest_init_with_env(var, args, true);
}

static void start_aggregate(void)
{
    int i;

    for (i = 0; i < NR_FRAGS; i++) {
        agg.qts[i] = start_fragment(i);
    }
}

static void stop_aggregate(void)
{
    int i;

    for (i = NR_FRAGS - 1; i >= 0; i--) {
        if (agg.qts[i]) {
            qtest_quit(agg.qts[i]);
            agg.qts[i] = NULL;
        }
    }
}

/* Guest-physical address of @page (RAM below 4 GiB starts at 0). */
static uint64_t gpa(uint64_t page, unsigned offset)
{
    return page * PAGE + offset;
}

/* A page homed on fragment @home, away from the BIOS areas. */
static uint64_t page_on(int home, unsigned n)
{
    return (uint64_t)home * FRAG_MEM_MB * 256 + 0x200 + n;
}

/* ---- tests */

static void test_read_after_remote_write(void)
{
    int w, r, home;

    for (home = 0; home < NR_FRAGS; home++) {
        for (w = 0; w < NR_FRAGS; w++) {
            uint64_t a = gpa(page_on(home, w), 0x10 * w);
            uint32_t v = 0x1000 * home + 0x10 * w + 1;

            qtest_writel(agg.qts[w], a, v);
            for (r = 0; r < NR_FRAGS; r++) {
                g_assert_cmphex(qtest_readl(agg.qts[r], a), ==, v);
            }
        }
    }
}

static void test_write_ping_pong(void)
{
    uint64_t a = gpa(page_on(1, 20), 0x80);
    uint32_t k;

    qtest_writel(agg.qts[0], a, 0);
    for (k = 1; k <= 300; k++) {
        QTestState *writer = agg.qts[k % NR_FRAGS];

        g_assert_cmpuint(qtest_readl(writer, a), ==, k - 1);
        qtest_writel(writer, a, k);
    }
    g_assert_cmpuint(qtest_readl(agg.qts[2], a), ==, 300);
}

static void test_false_sharing(void)
{
    uint64_t page = page_on(2, 30);
    int round, i, j;

    for (round = 0; round < 20; round++) {
        for (i = 0; i < NR_FRAGS; i++) {
            qtest_writel(agg.qts[i], gpa(page, 4 * i), round * 16 + i);
        }
    }
    for (j = 0; j < NR_FRAGS; j++) {
        for (i = 0; i < NR_FRAGS; i++) {
            g_assert_cmpuint(qtest_readl(agg.qts[j], gpa(page, 4 * i)), ==,
                             19 * 16 + i);
        }
    }
}

static void test_message_passing(void)
{
    int round;

    for (round = 0; round < 30; round++) {
        int producer = round % NR_FRAGS;
        int consumer = (round + 1) % NR_FRAGS;
        uint64_t data = gpa(page_on(consumer, 40 + round), 0);
        uint64_t flag = gpa(page_on(producer, 80 + round), 0);

        qtest_writeq(agg.qts[producer], data, 0xda7a0000ULL + round);
        qtest_writel(agg.qts[producer], flag, 1);
        if (qtest_readl(agg.qts[consumer], flag)) {
            g_assert_cmphex(qtest_readq(agg.qts[consumer], data), ==,
                            0xda7a0000ULL + round);
        } else {
            g_assert_not_reached();
        }
    }
}

static void test_page_boundary(void)
{
    uint64_t a = gpa(page_on(0, 120) + 1, 0) - 8;
    uint8_t out[16], in[16];
    int i, r;

    for (i = 0; i < 16; i++) {
        out[i] = 0xa0 + i;
    }
    qtest_memwrite(agg.qts[1], a, out, sizeof(out));
    for (r = 0; r < NR_FRAGS; r++) {
        memset(in, 0, sizeof(in));
        qtest_memread(agg.qts[r], a, in, sizeof(in));
        g_assert_cmpmem(in, sizeof(in), out, sizeof(out));
    }
}

/*
 * Random reads and writes of 32-bit words on a few hundred pages
 * homed everywhere, from every fragment, against a reference model.
 */
static void test_random(void)
{
    g_autofree uint32_t *model = g_new0(uint32_t, RANDOM_PAGES * 4);
    g_autofree uint8_t *first = g_malloc(RANDOM_PAGES * PAGE);
    g_autofree uint8_t *other = g_malloc(RANDOM_PAGES * PAGE);
    uint64_t base = gpa(page_on(0, 0x1000), 0);
    uint64_t span = (uint64_t)FRAG_MEM_MB * NR_FRAGS * 256 - 0x2000;
    int n, f;

    /* Pages spread over all three homes. */
    for (n = 0; n < RANDOM_OPS; n++) {
        int frag = g_test_rand_int_range(0, NR_FRAGS);
        int slot = g_test_rand_int_range(0, RANDOM_PAGES * 4);
        uint64_t page = (slot / 4) * (span / RANDOM_PAGES);
        uint64_t a = base + gpa(page, (slot % 4) * 1024);

        if (g_test_rand_bit()) {
            uint32_t v = g_test_rand_int();

            qtest_writel(agg.qts[frag], a, v);
            model[slot] = v;
        } else {
            g_assert_cmphex(qtest_readl(agg.qts[frag], a), ==, model[slot]);
        }
    }
    /* Every fragment ends up with the same memory. */
    for (f = 0; f < NR_FRAGS; f++) {
        uint8_t *buf = f ? other : first;
        int p;

        for (p = 0; p < RANDOM_PAGES; p++) {
            qtest_memread(agg.qts[f], base + gpa(p * (span / RANDOM_PAGES), 0),
                          buf + p * PAGE, PAGE);
        }
        if (f) {
            g_assert_cmpmem(first, RANDOM_PAGES * PAGE, other,
                            RANDOM_PAGES * PAGE);
        }
    }
    for (n = 0; n < RANDOM_PAGES * 4; n++) {
        uint32_t v;

        memcpy(&v, first + (n / 4) * PAGE + (n % 4) * 1024, 4);
        g_assert_cmphex(le32_to_cpu(v), ==, model[n]);
    }
}

/* ---- I/O forwarding: devices live on the origin, f0 */

/*
 * PCI config space through 0xcf8/0xcfc: what one fragment writes, every
 * fragment reads back, because all of them reach the origin's chipset.
 * The register is the LPC bridge's PIRQA routing (00:1f.0, 0x60).
 */
static void test_io_pci_config(void)
{
    const uint32_t pirqa = 0x80000000 | (0x1f << 11) | 0x60;
    int w, r;

    for (w = 0; w < NR_FRAGS; w++) {
        qtest_outl(agg.qts[w], 0xcf8, pirqa);
        qtest_outb(agg.qts[w], 0xcfc, 0x03 + w);
        for (r = 0; r < NR_FRAGS; r++) {
            qtest_outl(agg.qts[r], 0xcf8, pirqa);
            g_assert_cmphex(qtest_inb(agg.qts[r], 0xcfc), ==, 0x03 + w);
        }
    }
}

/* A CMOS scratch register written on f1 and f2 is the origin's. */
static void test_io_cmos_write(void)
{
    int i;

    for (i = 1; i < NR_FRAGS; i++) {
        qtest_outb(agg.qts[i], 0x70, 0x0f);
        qtest_outb(agg.qts[i], 0x71, 0x50 + i);
        qtest_outb(agg.qts[0], 0x70, 0x0f);
        g_assert_cmphex(qtest_inb(agg.qts[0], 0x71), ==, 0x50 + i);
    }
}

/* MMIO: the HPET's registers, read and written from another fragment. */
static void test_io_mmio(void)
{
    uint64_t hpet = 0xfed00000;
    uint32_t caps = qtest_readl(agg.qts[0], hpet);
    int i;

    g_assert_cmphex(caps, !=, 0);
    for (i = 1; i < NR_FRAGS; i++) {
        g_assert_cmphex(qtest_readl(agg.qts[i], hpet), ==, caps);
        /* The comparator of timer 0 is read/write. */
        qtest_writel(agg.qts[i], hpet + 0x108, 0x1234000 + i);
        g_assert_cmphex(qtest_readl(agg.qts[0], hpet + 0x108), ==,
                        0x1234000 + i);
    }
}

/* ---- interrupt vectors reach the fragment that runs their vCPU */

static char *lapic_irr(QTestState *qts, int apic_id)
{
    g_autofree char *cmd = g_strdup_printf("info lapic %d", apic_id);
    char *out = qtest_hmp(qts, "%s", cmd);
    char *irr = strstr(out, "IRR\t");
    char *end;

    g_assert_nonnull(irr);
    end = strpbrk(irr, "\r\n");
    irr = g_strndup(irr, end ? end - irr : strlen(irr));
    g_free(out);
    return irr;
}

/*
 * An MSI written on one fragment, for the vCPU of another: the vector
 * becomes pending in the APIC of the fragment that runs the vCPU, and
 * only there.  CPU i runs on fragment i; APIC id i.
 */
static void test_irq_msi_to_remote_vcpu(void)
{
    int src, dst;

    for (src = 0; src < NR_FRAGS; src++) {
        dst = (src + 1) % NR_FRAGS;
        qtest_writel(agg.qts[src], 0xfee00000 | (dst << 12), 0x40 + src);
    }
    for (src = 0; src < NR_FRAGS; src++) {
        g_autofree char *vec = g_strdup_printf(" %d ", 0x40 + src);
        int f;

        dst = (src + 1) % NR_FRAGS;
        /* The IRQ travels on its own: wait for it there, bounded. */
        for (f = 0; f < 100; f++) {
            g_autofree char *irr = lapic_irr(agg.qts[dst], dst);

            if (strstr(irr, vec)) {
                break;
            }
            g_usleep(100 * 1000);
        }
        for (f = 0; f < NR_FRAGS; f++) {
            g_autofree char *irr = lapic_irr(agg.qts[f], dst);

            g_test_message("fragment f%d, APIC %d: %s", f, dst, irr);
            g_assert((strstr(irr, vec) != NULL) == (f == dst));
        }
    }
}

/* query-dsm: per-fragment counters that add up across the aggregate. */
static void test_query_dsm(void)
{
    uint64_t inv_sent = 0, inv_received = 0, supplied = 0, fetched = 0;
    uint64_t held = 0;
    uint64_t a = gpa(page_on(0, 40), 0);
    uint32_t k;
    int i;

    /*
     * Traffic of its own, so that the counts below do not depend on
     * which tests ran before: writes that move one page around every
     * fragment within the hold time (FWD, deferrals), each after every
     * fragment has read it (INV to the sharers); every fragment ends
     * up holding it.
     */
    qtest_writel(agg.qts[0], a, 0);
    for (k = 1; k <= 30; k++) {
        for (i = 0; i < NR_FRAGS; i++) {
            g_assert_cmpuint(qtest_readl(agg.qts[i], a), ==, k - 1);
        }
        qtest_writel(agg.qts[k % NR_FRAGS], a, k);
    }
    for (i = 0; i < NR_FRAGS; i++) {
        g_assert_cmpuint(qtest_readl(agg.qts[i], a), ==, 30);
    }

    for (i = 0; i < NR_FRAGS; i++) {
        QDict *rsp = qtest_qmp(agg.qts[i], "{ 'execute': 'query-dsm' }");
        QDict *ret = qdict_get_qdict(rsp, "return");
        g_autofree char *id = g_strdup_printf("f%d", i);
        QListEntry *e;
        uint64_t latencies = 0;

        g_assert_nonnull(ret);
        g_assert_cmpstr(qdict_get_str(ret, "fragment"), ==, id);
        g_assert_cmpuint(qdict_get_int(ret, "pages"), ==,
                         FRAG_MEM_MB * NR_FRAGS * 256);
        g_assert_cmpuint(qdict_get_int(ret, "homed-pages"), ==,
                         FRAG_MEM_MB * 256);
        g_assert_cmpuint(qdict_get_int(ret, "resident-pages"), >, 0);
        g_assert_cmpuint(qdict_get_int(ret, "bytes-in"), >, 0);
        QLIST_FOREACH_ENTRY(qdict_get_qlist(ret, "fault-latency-us"), e) {
            latencies += qnum_get_uint(qobject_to(QNum, qlist_entry_obj(e)));
        }
        g_assert_cmpuint(latencies, >=, qdict_get_int(ret, "read-faults") +
                                        qdict_get_int(ret, "write-faults"));
        inv_sent += qdict_get_int(ret, "invalidations-sent");
        inv_received += qdict_get_int(ret, "invalidations-received");
        supplied += qdict_get_int(ret, "pages-supplied");
        fetched += qdict_get_int(ret, "remote-fetches");
        held += qdict_get_int(ret, "hold-deferrals");
        qobject_unref(rsp);
    }
    /* Quiescent: every INV was carried out, every FWD's DATA arrived. */
    g_assert_cmpuint(inv_sent, >, 0);
    g_assert_cmpuint(inv_sent, ==, inv_received);
    g_assert_cmpuint(supplied, ==, fetched);
    /* Ping-pong takes pages away within the hold time. */
    g_assert_cmpuint(held, >, 0);
}

/* The DSM owns guest RAM's userfaultfd: no migration, no snapshots. */
static void test_migration_blocked(void)
{
    QDict *rsp = qtest_qmp(agg.qts[0], "{ 'execute': 'migrate', "
                           "'arguments': { 'uri': 'exec:cat >/dev/null' } }");
    QDict *err = qdict_get_qdict(rsp, "error");

    g_assert_nonnull(err);
    g_assert_nonnull(strstr(qdict_get_str(err, "desc"),
                            "aggregate VMs cannot be migrated"));
    qobject_unref(rsp);
}

static char *query_status(QTestState *qts)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-status' }");
    char *status = g_strdup(qdict_get_str(qdict_get_qdict(rsp, "return"),
                                          "status"));

    qobject_unref(rsp);
    return status;
}

/* Wait (bounded) until @qts reports @want. */
static void wait_status(QTestState *qts, const char *want)
{
    g_autofree char *status = NULL;
    int tries;

    for (tries = 0; tries < 100; tries++) {
        g_free(status);
        status = query_status(qts);
        if (!strcmp(status, want)) {
            break;
        }
        g_usleep(100 * 1000);
    }
    g_assert_cmpstr(status, ==, want);
}

static void wait_all_status(const char *want)
{
    int i;

    for (i = 0; i < NR_FRAGS; i++) {
        wait_status(agg.qts[i], want);
    }
}

/* QMP stop on one fragment stops all of them; cont on another resumes. */
static void test_stop_cont(void)
{
    qobject_unref(qtest_qmp(agg.qts[0], "{ 'execute': 'stop' }"));
    wait_all_status("paused");
    qobject_unref(qtest_qmp(agg.qts[1], "{ 'execute': 'cont' }"));
    wait_all_status("running");
    /* Memory still coherent after the round trip. */
    qtest_writel(agg.qts[2], gpa(page_on(1, 200), 0), 0x5eed);
    g_assert_cmphex(qtest_readl(agg.qts[0], gpa(page_on(1, 200), 0)), ==,
                    0x5eed);
}

/* Runs last: a dead fragment stops the VM on the others, loudly. */
/*
 * Every fragment lists the same fragments and placement, sees its links
 * up, and after a heartbeat knows each peer's memory and round trip.
 */
static void check_fragment_info(int self, int i, QDict *f)
{
    g_autofree char *id = g_strdup_printf("f%d", i);
    QList *vcpus = qdict_get_qlist(f, "vcpus");

    g_assert_cmpstr(qdict_get_str(f, "id"), ==, id);
    g_assert_cmpstr(qdict_get_str(f, "address"), ==, agg.addr[i]);
    g_assert_cmpint(qdict_get_bool(f, "origin"), ==, i == 0);
    g_assert_cmpstr(qdict_get_str(f, "link"), ==, i == self ? "self" : "up");
    g_assert_cmpuint(qlist_size(vcpus), ==, 1);
    g_assert_cmpint(qnum_get_int(qobject_to(QNum, qlist_peek(vcpus))), ==,
                    i);
    g_assert_cmpuint(qdict_get_int(f, "homed-pages"), ==, FRAG_MEM_MB * 256);
    g_assert_cmpuint(qdict_get_int(f, "resident-pages"), >, 0);
    g_assert_cmpuint(qdict_get_int(f, "exclusive-pages"), <=,
                     qdict_get_int(f, "resident-pages"));
    g_assert_cmpint(qdict_haskey(f, "round-trip-us"), ==, i != self);
}

/*
 * Only the others agree with the origin on the guest's clocks, and
 * only once a vCPU of theirs is about to run (none does under qtest).
 */
static void check_clock_info(int self, QDict *clock)
{
    g_assert_nonnull(clock);
    g_assert_true(qdict_haskey(clock, "virtual-clock-ns"));
    g_assert_true(qdict_haskey(clock, "ticks"));
    g_assert_cmpint(qdict_haskey(clock, "agreements"), ==, self != 0);
    g_assert_cmpint(qdict_haskey(clock, "virtual-clock-delta-ns"), ==,
                    self != 0);
    if (self) {
        g_assert_cmpint(qdict_get_int(clock, "agreements"), ==, 0);
    }
}

/* Has every fragment heard a heartbeat answer from every peer? */
static bool heartbeats_known(void)
{
    int i;

    for (i = 0; i < NR_FRAGS; i++) {
        QDict *rsp = qtest_qmp(agg.qts[i],
                               "{ 'execute': 'query-aggregate' }");
        QListEntry *e;
        int j = 0;
        bool known = true;

        QLIST_FOREACH_ENTRY(qdict_get_qlist(qdict_get_qdict(rsp, "return"),
                                            "fragments"), e) {
            QDict *f = qobject_to(QDict, qlist_entry_obj(e));

            known &= j++ == i || (qdict_haskey(f, "round-trip-us") &&
                                  qdict_get_int(f, "resident-pages") > 0);
        }
        qobject_unref(rsp);
        if (!known) {
            return false;
        }
    }
    return true;
}

static void test_query_aggregate(void)
{
    int64_t deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
    int i, j;

    /* Each holds a page; a heartbeat a second tells the others. */
    for (i = 0; i < NR_FRAGS; i++) {
        qtest_writel(agg.qts[i], gpa(page_on(i, 50), 0), i);
    }
    while (!heartbeats_known()) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(100 * 1000);
    }
    for (i = 0; i < NR_FRAGS; i++) {
        QDict *rsp = qtest_qmp(agg.qts[i],
                               "{ 'execute': 'query-aggregate' }");
        QDict *ret = qdict_get_qdict(rsp, "return");
        g_autofree char *id = g_strdup_printf("f%d", i);
        g_autofree char *hmp = qtest_hmp(agg.qts[i], "info aggregate");
        QListEntry *e;

        g_assert_nonnull(ret);
        g_assert_cmpstr(qdict_get_str(ret, "fragment"), ==, id);
        j = 0;
        QLIST_FOREACH_ENTRY(qdict_get_qlist(ret, "fragments"), e) {
            check_fragment_info(i, j++, qobject_to(QDict, qlist_entry_obj(e)));
        }
        g_assert_cmpint(j, ==, NR_FRAGS);
        check_clock_info(i, qdict_get_qdict(ret, "clock"));
        g_assert_nonnull(strstr(hmp, "f0 (origin) at "));
        g_assert_nonnull(strstr(hmp, "virtual clock "));
        g_assert_nonnull(strstr(hmp, "vCPUs 2; pages: "));
        qobject_unref(rsp);
    }
}

/* A read, in a thread of its own, that waits for a peer. */
typedef struct PendingRead {
    QTestState *qts;
    uint64_t addr;
    uint32_t value;
    bool done;
} PendingRead;

static gpointer pending_read(gpointer opaque)
{
    PendingRead *r = opaque;

    r->value = qtest_readl(r->qts, r->addr);
    qatomic_set(&r->done, true);
    return NULL;
}

/*
 * SIGSTOP reaches one thread first, which then stops the others: wait
 * until the whole process has stopped (its parent is told then).
 */
static void stop_fragment(int i)
{
    pid_t pid = qtest_pid(agg.qts[i]);
    int status;

    g_assert_cmpint(kill(pid, SIGSTOP), ==, 0);
    g_assert_cmpint(waitpid(pid, &status, WUNTRACED), ==, pid);
    g_assert_true(WIFSTOPPED(status));
}

/*
 * SIGKILL, not qtest_kill_qemu(), which counts a death by signal as a
 * failure.  Its QTestState is left behind, unused.
 */
static void kill_fragment(int i)
{
    pid_t pid = qtest_pid(agg.qts[i]);
    int status;

    g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    qtest_remove_abrt_handler(agg.qts[i]);
    agg.qts[i] = NULL;
}

/*
 * f2 dies while f0 and f1 wait for a page it is home for: both report
 * it lost and stop, and the reads come back (from then on faults are
 * served locally: a thread blocked in a fault that waits for f2 could
 * not be paused, and QEMU would hang in the VM stop and at exit).  f2
 * is stopped first so that the requests are surely pending when it
 * dies.
 */
static void test_peer_death(void)
{
    PendingRead reads[NR_FRAGS - 1] = {};
    GThread *threads[NR_FRAGS - 1];
    QDict *ev;
    int i;

    stop_fragment(2);
    for (i = 0; i < NR_FRAGS - 1; i++) {
        reads[i].qts = agg.qts[i];
        reads[i].addr = gpa(page_on(2, 0x2000 + i), 0);
        threads[i] = g_thread_new("pending-read", pending_read, &reads[i]);
    }
    g_usleep(500 * 1000);
    for (i = 0; i < NR_FRAGS - 1; i++) {
        g_assert_false(qatomic_read(&reads[i].done));
    }
    kill_fragment(2);
    for (i = 0; i < NR_FRAGS - 1; i++) {
        int tries;

        for (tries = 0; tries < 600 && !qatomic_read(&reads[i].done);
             tries++) {
            g_usleep(100 * 1000);
        }
        g_assert_true(qatomic_read(&reads[i].done));
        g_thread_join(threads[i]);
        g_assert_cmphex(reads[i].value, ==, 0);
    }
    for (i = 0; i < NR_FRAGS - 1; i++) {
        wait_status(agg.qts[i], "internal-error");
        ev = qtest_qmp_eventwait_ref(agg.qts[i], "AGGREGATE_FRAGMENT_LOST");
        g_assert_cmpstr(qdict_get_str(qdict_get_qdict(ev, "data"),
                                      "fragment"), ==, "f2");
        qobject_unref(ev);
        /* Pages f2 was home for read as zeroes now, at once. */
        g_assert_cmphex(qtest_readl(agg.qts[i],
                                    gpa(page_on(2, 0x2100 + i), 0)), ==, 0);
    }
    /*
     * Their memory is no longer coherent: after a system_reset (which
     * leaves internal-error), cont is accepted but the VM stops again.
     */
    qtest_system_reset(agg.qts[0]);
    qtest_qmp_assert_success(agg.qts[0], "{ 'execute': 'cont' }");
    for (i = 0; i < NR_FRAGS - 1; i++) {
        wait_status(agg.qts[i], "internal-error");
    }
    /* The survivors exit cleanly: stop_aggregate() checks they exit 0. */
}

/* ---- start-up refusals: run plain QEMU processes and read stderr */

typedef struct Refusal {
    const char *name;
    const char *args;           /* appended to a 1-fragment aggregate */
    const char *error;          /* expected in stderr */
    bool own_accel;             /* args choose the accelerator */
} Refusal;

static const Refusal refusals[] = {
    { "no-fragment-id", "-machine aggregate -m 64M "
      "-object aggregate-fragment,id=f0,address=127.0.0.1:1,cpus=0,mem=64M",
      "needs fragment=ID" },
    { "unknown-fragment", "-machine aggregate,fragment=f9 -m 64M "
      "-object aggregate-fragment,id=f0,address=127.0.0.1:1,cpus=0,mem=64M",
      "no aggregate-fragment has that id (known: f0)" },
    { "mem-mismatch", "-machine aggregate,fragment=f0 -m 128M "
      "-object aggregate-fragment,id=f0,address=127.0.0.1:1,cpus=0,mem=64M",
      "add up to 67108864 bytes, but -m is 134217728 bytes" },
    { "cpu-overlap", "-machine aggregate,fragment=f0 -m 128M -smp 2 "
      "-object aggregate-fragment,id=f0,address=127.0.0.1:1,cpus=0-1,mem=64M "
      "-object aggregate-fragment,id=f1,address=127.0.0.1:2,cpus=1,mem=64M",
      "vCPU 1 is already in another fragment" },
    { "cpu-missing", "-machine aggregate,fragment=f0 -m 64M -smp 2 "
      "-object aggregate-fragment,id=f0,address=127.0.0.1:1,cpus=0,mem=64M",
      "vCPU 1 is in no fragment's cpus=" },
    { "socket-split", "-machine aggregate,fragment=f0 -m 128M "
      "-smp 2,sockets=1,cores=2 "
      "-object aggregate-fragment,id=f0,address=127.0.0.1:1,cpus=0,mem=64M "
      "-object aggregate-fragment,id=f1,address=127.0.0.1:2,cpus=1,mem=64M",
      "vCPUs 0 and 1 share a socket but run on fragments 'f0' and 'f1'" },
    { "service-priority", "-machine aggregate,fragment=f0,"
      "service-priority=100 -m 64M "
      "-object aggregate-fragment,id=f0,address=127.0.0.1:1,cpus=0,mem=64M",
      "service-priority=100 is above the highest real-time priority" },
    { "prealloc", "-machine aggregate,fragment=f0 -m 64M -mem-prealloc "
      "-object aggregate-fragment,id=f0,address=127.0.0.1:1,cpus=0,mem=64M",
      "preallocated guest RAM" },
    { "mem-lock", "-machine aggregate,fragment=f0 -m 64M "
      "-overcommit mem-lock=on "
      "-object aggregate-fragment,id=f0,address=127.0.0.1:1,cpus=0,mem=64M",
      "mem-lock=on is not supported" },
    { "shared-ram", "-machine aggregate,fragment=f0,memory-backend=m -m 64M "
      "-object memory-backend-ram,id=m,size=64M,share=on "
      "-object aggregate-fragment,id=f0,address=127.0.0.1:1,cpus=0,mem=64M",
      "shared guest RAM (share=on) is not supported" },
    { "balloon", "-machine aggregate,fragment=f0 -m 64M "
      "-device virtio-balloon-pci "
      "-object aggregate-fragment,id=f0,address=127.0.0.1:0,cpus=0,mem=64M",
      "device virtio-balloon-device is not supported" },
    { "tcg-accel", "-accel tcg -machine aggregate,fragment=f0 -m 64M "
      "-object aggregate-fragment,id=f0,address=127.0.0.1:0,cpus=0,mem=64M",
      "-machine aggregate needs -accel aggregate", true },
    { "single-threaded-tcg", "-accel aggregate,thread=single "
      "-machine aggregate,fragment=f0 -m 64M "
      "-object aggregate-fragment,id=f0,address=127.0.0.1:0,cpus=0,mem=64M",
      "-accel aggregate needs multi-threaded TCG", true },
    { "aggregate-accel-without-machine", "-accel aggregate -machine q35",
      "-accel aggregate needs -machine aggregate", true },
    { "numa", "-machine aggregate,fragment=f0 -m 64M "
      "-object memory-backend-ram,id=n0,size=64M -numa node,memdev=n0 "
      "-object aggregate-fragment,id=f0,address=127.0.0.1:0,cpus=0,mem=64M",
      "-numa memdev= is not supported" },
    { "direct-io", "-machine aggregate,fragment=f0 -m 64M "
      "-drive if=none,id=d0,driver=null-co,cache.direct=on "
      "-object aggregate-fragment,id=f0,address=127.0.0.1:0,cpus=0,mem=64M",
      "drive 'd0' uses cache.direct=on" },
    { "net-more-pairs-than-vcpus", "-machine aggregate,fragment=f0 -m 64M "
      "-netdev tap,id=n0,script=no,downscript=no,queues=2,vhost=off "
      "-device virtio-net-pci,netdev=n0,mq=on,vectors=6 "
      "-object aggregate-fragment,id=f0,address=127.0.0.1:0,cpus=0,mem=64M",
      "netdev 'n0' has 2 queue pairs, but queue pair i goes to the "
      "fragment of vCPU i and there are 1 vCPUs" },
    { "bad-cpus", "-machine aggregate,fragment=f0 -m 64M "
      "-object aggregate-fragment,id=f0,address=127.0.0.1:1,cpus=x,mem=64M",
      "cpus='x' is not a list of vCPU indexes" },
};

/* Run QEMU with @args; return its exit status, stderr in @err. */
static int run_qemu_accel(const char *args, bool own_accel, char **err)
{
    g_autofree char *cmd = g_strdup_printf("%s %s -display none "
                                           "-nodefaults %s",
                                           getenv("QTEST_QEMU_BINARY"),
                                           own_accel ? "" : "-accel qtest",
                                           args);
    g_auto(GStrv) argv = NULL;
    int status;

    g_assert(g_shell_parse_argv(cmd, NULL, &argv, NULL));
    g_assert(g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                          NULL, err, &status, NULL));
    return status;
}

static int run_qemu(const char *args, char **err)
{
    return run_qemu_accel(args, false, err);
}

static void test_refusal(const void *opaque)
{
    const Refusal *r = opaque;
    g_autofree char *err = NULL;
    int status = run_qemu_accel(r->args, r->own_accel, &err);

    g_test_message("stderr: %s", err);
    g_assert_false(exited_ok(status));
    g_assert_nonnull(strstr(err, r->error));
}

/* Two fragments whose command lines differ: both refuse, naming it. */
static void test_config_mismatch(void)
{
    int p0 = free_port(), p1 = free_port();
    g_autofree char *base = g_strdup_printf(
        "-machine aggregate,connect-timeout=20 -smp 2 "
        "-object aggregate-fragment,id=f0,address=127.0.0.1:%d,cpus=0,"
        "mem=32M -object aggregate-fragment,id=f1,address=127.0.0.1:%d,"
        "cpus=1,mem=%%s", p0, p1);
    g_autofree char *a0 = g_strdup_printf(base, "32M");
    g_autofree char *a1 = g_strdup_printf(base, "64M");
    g_autofree char *args0 = g_strdup_printf("%s -m 64M -machine fragment=f0",
                                             a0);
    g_autofree char *args1 = g_strdup_printf("%s -m 96M -machine fragment=f1",
                                             a1);
    g_autofree char *cmd0 = g_strdup_printf("%s -accel qtest -display none "
                                            "-nodefaults %s",
                                            getenv("QTEST_QEMU_BINARY"),
                                            args0);
    g_auto(GStrv) argv0 = NULL;
    g_autofree char *err1 = NULL;
    GPid pid0;
    int err0_fd, status0, status1;
    char buf[4096] = "";
    ssize_t n;

    g_assert(g_shell_parse_argv(cmd0, NULL, &argv0, NULL));
    g_assert(g_spawn_async_with_pipes(NULL, argv0, NULL,
                                      G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                                      &pid0, NULL, NULL, &err0_fd, NULL));
    status1 = run_qemu(args1, &err1);
    g_assert(waitpid(pid0, &status0, 0) == pid0);
    n = read(err0_fd, buf, sizeof(buf) - 1);
    buf[MAX(n, 0)] = 0;
    close(err0_fd);
    g_test_message("f0: %s", buf);
    g_test_message("f1: %s", err1);
    g_assert_false(exited_ok(status0));
    g_assert_false(exited_ok(status1));
    g_assert_nonnull(strstr(buf, "has a different aggregate configuration"));
    g_assert_nonnull(strstr(err1, "has a different aggregate configuration"));
}

/* A peer that never comes up: start-up fails in time, naming it. */
static void test_unreachable_peer(void)
{
    g_autofree char *args = g_strdup_printf(
        "-machine aggregate,fragment=f1,connect-timeout=2 -m 64M -smp 2 "
        "-object aggregate-fragment,id=f0,address=127.0.0.1:%d,cpus=0,"
        "mem=32M -object aggregate-fragment,id=f1,address=127.0.0.1:%d,"
        "cpus=1,mem=32M", free_port(), free_port());
    g_autofree char *err = NULL;
    int status = run_qemu(args, &err);

    g_test_message("stderr: %s", err);
    g_assert_false(exited_ok(status));
    g_assert_nonnull(strstr(err, "fragment f0 (tcp:127.0.0.1:"));
    g_assert_nonnull(strstr(err, "did not come up in time"));
}

/*
 * A hostile peer: the test itself plays fragment f1 of a 2-fragment
 * aggregate, completes a valid handshake with f0, then sends one bad
 * message.  f0 must close the link, stop the VM and leave guest memory
 * as it was.
 */
typedef struct BadMessage {
    const char *name;
    uint32_t magic;             /* header as sent */
    uint16_t version;
    uint16_t type;
    uint32_t length;
    uint8_t payload[136];       /* then these bytes */
    size_t payload_len;
    bool nic;                   /* f0 has a multi-queue virtio-net */
    uint32_t seq;               /* its number on the link: 1 unless set */
    const char *reason;         /* in AGGREGATE_FRAGMENT_LOST's reason */
} BadMessage;

#define MAGIC       0x41474731
/* migration/dsm/wire.h's DSM_WIRE_VERSION */
#define WIRE_VERSION 2
#define REQ         0x0101
#define DATA        0x0105
#define IRQ         0x0301
#define CLOCK_RESP  0x0502
#define VCPU_STATE  0x0602
#define VCPU_OWNER  0x0603
#define NET_START   0x0701
#define NET_KICK    0x0703
#define NET_TX      0x0704

/* Pages of the hostile test: f0 homes 0..16383 and has written one. */
#define HOSTILE_PAGE    0x300

static const BadMessage bad_messages[] = {
    /* A valid REQ, but numbered 5 where 1 is due: lost or replayed. */
    { "wrong-sequence", MAGIC, WIRE_VERSION, REQ, 12, { 0 }, 12, .seq = 5,
      .reason = "REQ is message 5 on the link, expected 1" },
    { "bad-magic", 0x41474732, WIRE_VERSION, REQ, 12, { 0 }, 12,
      .reason = "received magic 0x41474732" },
    { "wrong-version", MAGIC, 9, REQ, 12, { 0 }, 12,
      .reason = "received version 9" },
    { "unknown-type", MAGIC, WIRE_VERSION, 0x017f, 12, { 0 }, 12,
      .reason = "message type 0x017f unknown" },
    { "oversized", MAGIC, WIRE_VERSION, REQ, 0x100000, { 0 }, 0,
      .reason = "REQ payload is 1048576 bytes" },
    /* Two of the twelve payload bytes, then the link is shut. */
    { "truncated", MAGIC, WIRE_VERSION, REQ, 12, { 0 }, 2,
      .reason = "connection closed in the middle of REQ" },
    { "page-out-of-range", MAGIC, WIRE_VERSION, REQ, 12,
      { 0, 0, 0, 0, 0, 0x10, 0, 0 }, 12,
      .reason = "REQ page 0x100000 out of range" },
    /* Well-formed, but DATA(E, ZERO) for a page f0 never asked for. */
    { "unsolicited-data", MAGIC, WIRE_VERSION, DATA, 16,
      { 0, 0, 0, 0, 0, 0, 0x03, 0x00, 0, 0, 0, 1, 1, 1, 0, 0 }, 16,
      .reason = "unexpected DATA for page 0x300" },
    /* Well-formed machine messages that make no sense from f1. */
    { "irq-for-no-vcpu", MAGIC, WIRE_VERSION, IRQ, 8, { 0, 0, 0, 5, 0x30 }, 8,
      .reason = "IRQ for vCPU 5" },
    { "clock-answer-not-from-origin", MAGIC, WIRE_VERSION, CLOCK_RESP, 24,
      { 0, 0, 0, 1, 1 }, 24,
      .reason = "CLOCK_RESP from fragment 1, which is not the origin" },
    { "vcpu-owner-of-no-vcpu", MAGIC, WIRE_VERSION, VCPU_OWNER, 16,
      { 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 1 }, 16,
      .reason = "VCPU_OWNER for vCPU 9" },
    /* Says it comes from f0, the receiver itself. */
    { "vcpu-state-wrong-sender", MAGIC, WIRE_VERSION, VCPU_STATE, 25,
      { 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, [24] = 0x41 }, 25,
      .reason = "says it comes from fragment 0" },
    /* A vCPU's state for a fragment that runs none (-accel qtest). */
    { "vcpu-state-not-loaded", MAGIC, WIRE_VERSION, VCPU_STATE, 25,
      { 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, [24] = 0x41 }, 25,
      .reason = "VCPU_STATE for vCPU 1, but this fragment runs no vCPUs" },
    /*
     * The net family (f0 has a 2-pair virtio-net): a packet for a NIC
     * that does not exist, a notify for a pair that does not exist, a
     * hand-over sent to the origin, one with a ring of 3 entries, a
     * packet of no bytes, and a hand-over with an MSI-X vector the
     * device does not have.
     */
    { "net-tx-for-no-nic", MAGIC, WIRE_VERSION, NET_TX, 68,
      { 0, 0, 0, 3, 0, 0, 0, 0, 0xff, 0xff }, 68, true,
      .reason = "NET_TX for NIC 3" },
    { "net-kick-for-no-pair", MAGIC, WIRE_VERSION, NET_KICK, 16,
      { 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1 }, 16, true,
      .reason = "NET_KICK for queue pair 9" },
    { "net-start-to-origin", MAGIC, WIRE_VERSION, NET_START, 136,
      { 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0x0f, [22] = 1,
        [24 + 46] = 1, [80 + 46] = 1 }, 136, true,
      .reason = "it goes from the origin" },
    { "net-start-ring-of-3", MAGIC, WIRE_VERSION, NET_START, 136,
      { 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0x0f,
        [24 + 47] = 3, [80 + 46] = 1 }, 136, true,
      .reason = "queue of 3 entries" },
    { "net-tx-empty", MAGIC, WIRE_VERSION, NET_TX, 8, { 0 }, 8, true,
      .reason = "NET_TX payload is 8 bytes" },
    /* Vector 99 of the 6 the device has: checked before it is used. */
    { "net-start-vector-out-of-range", MAGIC, WIRE_VERSION, NET_START, 136,
      { 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0x0f,
        [24 + 46] = 1, [24 + 51] = 99, [80 + 46] = 1 }, 136, true,
      .reason = "MSI-X vector 99 of 6" },
};

/*
 * Header and payload of @bad, into @buf; returns the size.  It is the
 * first message after HELLO (number 1 on the link) unless it says.
 */
static size_t bad_message_bytes(const BadMessage *bad, uint8_t *buf)
{
    stl_be_p(buf, bad->magic);
    stw_be_p(buf + 4, bad->version);
    stw_be_p(buf + 6, bad->type);
    stl_be_p(buf + 8, bad->length);
    stl_be_p(buf + 12, bad->seq ? bad->seq : 1);
    memcpy(buf + 16, bad->payload, bad->payload_len);
    return 16 + bad->payload_len;
}

static void hostile_hash(uint8_t *hash, int p0, int p1)
{
    g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
    g_autofree char *text = g_strdup_printf(
        "aggvm-config-v1 ram=%d cpus=2 maxcpus=2\n"
        "fragment id=f0 address=127.0.0.1:%d cpus=0 mem=%d\n"
        "fragment id=f1 address=127.0.0.1:%d cpus=1 mem=%d\n",
        128 << 20, p0, 64 << 20, p1, 64 << 20);
    gsize len = 32;

    g_checksum_update(sum, (const guchar *)text, -1);
    g_checksum_get_digest(sum, hash, &len);
}

static int hostile_connect(int port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_port = htons(port) };
    int tries, fd;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (tries = 0; tries < 100; tries++) {
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            return fd;
        }
        close(fd);
        g_usleep(50 * 1000);
    }
    g_assert_not_reached();
}

static void hostile_send_hello(int fd, int p0, int p1)
{
    uint8_t msg[16 + 48] = { };

    stl_be_p(msg, MAGIC);
    stw_be_p(msg + 4, WIRE_VERSION);
    stw_be_p(msg + 6, 0x0001);                  /* HELLO */
    stl_be_p(msg + 8, 48);
    msg[19] = 1;                                /* fragment f1 */
    msg[23] = WIRE_VERSION;                     /* HELLO's version */
    hostile_hash(msg + 24, p0, p1);
    stq_be_p(msg + 56, 32768);                  /* 128 MiB of pages */
    g_assert_cmpint(write(fd, msg, sizeof(msg)), ==, sizeof(msg));
}

/* Wait (bounded) for f0 to close its end of the link. */
static void hostile_wait_closed(int fd)
{
    uint8_t buf[256];
    struct timeval tv = { .tv_sec = 10 };
    ssize_t n;

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    do {
        n = read(fd, buf, sizeof(buf));         /* f0's HELLO, then EOF */
    } while (n > 0);
    g_assert_cmpint(n, ==, 0);
}

static void test_hostile_peer(const void *opaque)
{
    const BadMessage *bad = opaque;
    int p0 = free_port(), p1 = free_port();
    uint64_t a = (uint64_t)HOSTILE_PAGE * PAGE;
    g_autofree char *args = g_strdup_printf(
        "-machine aggregate,fragment=f0,connect-timeout=20 -m 128M -smp 2 "
        "-nodefaults -object aggregate-fragment,id=f0,"
        "address=127.0.0.1:%d,cpus=0,mem=64M -object aggregate-fragment,"
        "id=f1,address=127.0.0.1:%d,cpus=1,mem=64M", p0, p1);
    g_autofree char *nic_args = g_strdup_printf(
        "%s -netdev tap,id=n0,script=no,downscript=no,queues=2,vhost=off "
        "-device virtio-net-pci,netdev=n0,mq=on,vectors=6", args);
    QTestState *qts = qtest_init(bad->nic ? nic_args : args);
    int fd = hostile_connect(p0);
    uint8_t bytes[16 + sizeof(bad->payload)];
    size_t len = bad_message_bytes(bad, bytes);
    const char *reason;
    QDict *rsp;
    int tries;

    hostile_send_hello(fd, p0, p1);
    qtest_writel(qts, a, 0x600df00d);           /* f0 holds it Exclusive */
    g_assert_cmpint(write(fd, bytes, len), ==, len);
    if (!strcmp(bad->name, "truncated")) {
        shutdown(fd, SHUT_WR);
    }
    hostile_wait_closed(fd);
    close(fd);
    for (tries = 0; tries < 100; tries++) {
        bool stopped;

        rsp = qtest_qmp(qts, "{ 'execute': 'query-status' }");
        stopped = !strcmp(qdict_get_str(qdict_get_qdict(rsp, "return"),
                                        "status"), "internal-error");
        qobject_unref(rsp);
        if (stopped) {
            break;
        }
        g_usleep(100 * 1000);
    }
    g_assert_cmpint(tries, <, 100);
    g_assert_cmphex(qtest_readl(qts, a), ==, 0x600df00d);
    rsp = qtest_qmp_eventwait_ref(qts, "AGGREGATE_FRAGMENT_LOST");
    reason = qdict_get_str(qdict_get_qdict(rsp, "data"), "reason");
    g_test_message("f0: %s", reason);
    g_assert_nonnull(strstr(reason, bad->reason));
    qobject_unref(rsp);
    qtest_quit(qts);
}

int main(int argc, char **argv)
{
    size_t i;
    int ret;

    g_test_init(&argc, &argv, NULL);
    if (!qtest_has_machine("aggregate")) {
        g_test_skip("machine aggregate is not built");
        return g_test_run();
    }
    if (access("/dev/userfaultfd", R_OK | W_OK) && geteuid() != 0) {
        g_test_skip("userfaultfd needs root here");
        return g_test_run();
    }
    use_netns = netns_setup();
    if (!use_netns) {
        g_test_message("network namespaces unavailable: using loopback");
        netns_teardown();
        memset(&agg, 0, sizeof(agg));
        loopback_setup();
    }

    for (i = 0; i < ARRAY_SIZE(refusals); i++) {
        g_autofree char *path = g_strdup_printf("/aggregate/refuse/%s",
                                                refusals[i].name);

        qtest_add_data_func(path, &refusals[i], test_refusal);
    }
    qtest_add_func("/aggregate/refuse/config-mismatch", test_config_mismatch);
    qtest_add_func("/aggregate/refuse/unreachable-peer",
                   test_unreachable_peer);
    for (i = 0; i < ARRAY_SIZE(bad_messages); i++) {
        g_autofree char *path = g_strdup_printf("/aggregate/hostile-peer/%s",
                                                bad_messages[i].name);

        qtest_add_data_func(path, &bad_messages[i], test_hostile_peer);
    }
    /* GLib runs suites in the order they first appear: io before dsm. */
    qtest_add_func("/aggregate/io/pci-config", test_io_pci_config);
    qtest_add_func("/aggregate/io/cmos-write", test_io_cmos_write);
    qtest_add_func("/aggregate/io/mmio", test_io_mmio);
    qtest_add_func("/aggregate/io/msi-to-remote-vcpu",
                   test_irq_msi_to_remote_vcpu);
    qtest_add_func("/aggregate/dsm/read-after-remote-write",
                   test_read_after_remote_write);
    qtest_add_func("/aggregate/dsm/write-ping-pong", test_write_ping_pong);
    qtest_add_func("/aggregate/dsm/false-sharing", test_false_sharing);
    qtest_add_func("/aggregate/dsm/message-passing", test_message_passing);
    qtest_add_func("/aggregate/dsm/page-boundary", test_page_boundary);
    qtest_add_func("/aggregate/dsm/random", test_random);
    qtest_add_func("/aggregate/dsm/query-dsm", test_query_dsm);
    qtest_add_func("/aggregate/dsm/migration-blocked",
                   test_migration_blocked);
    /* In the dsm group, so that peer-death still runs last. */
    qtest_add_func("/aggregate/dsm/stop-cont", test_stop_cont);
    qtest_add_func("/aggregate/dsm/query-aggregate", test_query_aggregate);
    qtest_add_func("/aggregate/dsm/peer-death", test_peer_death);

    start_aggregate();
    ret = g_test_run();
    stop_aggregate();
    return ret;
}
