/*
 * dsm-floors: the costs a DSM remote page fault can never beat, and the
 * DSM's own figures
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * A remote read fault in the aggvm DSM is at least one userfaultfd fault
 * round trip (fault, wake the handler, UFFDIO_COPY, wake the faulting
 * thread) plus one network request/response round trip (a small request,
 * a 4 KiB page back).  This program measures those two floors on the
 * machine it runs on, so that DSM figures can be quoted as ratios against
 * them; its dsm mode measures the DSM itself, through running fragments.
 *
 * Modes (see bench_modes[]):
 *   uffd        fault round trips served by a local handler thread:
 *               read fault + UFFDIO_COPY, the same with UFFDIO_COPY_MODE_WP
 *               (how the DSM installs Shared pages), and a write-protect
 *               fault lifted with UFFDIO_WRITEPROTECT.  Extras: the cost
 *               of a write-protect ioctl and of MADV_DONTNEED on one page,
 *               with and without another thread of the process running
 *               on another CPU (TLB shootdown).
 *   tcp-server  answers each 64-byte request with 4096 bytes; one client.
 *   tcp-client  times request/response round trips against tcp-server.
 *   dsm         remote read faults, write faults with sharers to
 *               invalidate and sequential fetch throughput, through three
 *               running fragments of an aggregate VM driven over qtest
 *               (started by bench/dsm/run; see "dsm mode" below).
 *
 * Output: one line per figure,
 *   KIND NAME median_us=M p90_us=P p99_us=Q mean_us=A n=N
 * where KIND is "floor", "extra" or "dsm"; a figure the kernel cannot
 * measure is
 *   KIND NAME unsupported reason=WORD
 * Throughput figures (dsm seq_*) print pages_per_s= and us_per_page=.
 * and lines starting with '#' are context.  Percentiles use the nearest
 * rank.  Every loop has a fixed count; errors are one line on stderr and
 * a non-zero exit.
 *
 * Assumptions: Linux with userfaultfd on anonymous memory (root, or
 * vm.unprivileged_userfaultfd=1), 4 KiB base pages.  The handler thread
 * is the only reader of the userfaultfd; the main thread is the only one
 * that touches the region.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/userfaultfd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define BENCH_PAGE_SIZE         4096
#define DEFAULT_ITERATIONS      10000
#define DEFAULT_WARMUP          1000
#define DEFAULT_REGION_MIB      64
#define DEFAULT_FRAG_MIB        256
#define TCP_REQUEST_SIZE        64
#define TCP_REPLY_SIZE          4096
#define TCP_IO_TIMEOUT_S        10
#define TCP_ACCEPT_TIMEOUT_S    30

typedef struct BenchOptions {
    const char *mode;
    const char *address;        /* HOST:PORT (tcp modes), DIR (dsm) */
    long iterations;            /* measured samples per figure */
    long warmup;                /* unmeasured samples before them */
    long region_mib;            /* uffd region size */
    long frag_mib;              /* dsm: guest RAM homed on each fragment */
} BenchOptions;

typedef struct BenchMode {
    const char *name;
    const char *help;
    const char *arg;            /* what the mode's argument is, or NULL */
    int (*run)(const BenchOptions *opts);
} BenchMode;

typedef struct Samples {
    uint64_t *ns;
    size_t n;
    size_t cap;
} Samples;

/* ---- errors, time, statistics ---- */

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
    va_list ap;

    fputs("dsm-floors: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void samples_init(Samples *s, size_t cap)
{
    s->ns = calloc(cap, sizeof(*s->ns));
    if (!s->ns) {
        die("out of memory for %zu samples", cap);
    }
    s->n = 0;
    s->cap = cap;
}

static void samples_free(Samples *s)
{
    free(s->ns);
    s->ns = NULL;
}

/* Keeps the sample if @index is past the warm-up. */
static void samples_add(Samples *s, long index, long warmup, uint64_t ns)
{
    if (index >= warmup && s->n < s->cap) {
        s->ns[s->n++] = ns;
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted samples, in microseconds. */
static double percentile_us(const Samples *s, unsigned pct)
{
    size_t rank = (s->n * pct + 99) / 100;

    return s->ns[rank ? rank - 1 : 0] / 1000.0;
}

static void report_figure(const char *kind, const char *name, Samples *s)
{
    double sum = 0;
    size_t i;

    if (!s->n) {
        die("figure %s has no samples", name);
    }
    qsort(s->ns, s->n, sizeof(*s->ns), cmp_u64);
    for (i = 0; i < s->n; i++) {
        sum += s->ns[i];
    }
    printf("%s %s median_us=%.1f p90_us=%.1f p99_us=%.1f mean_us=%.1f "
           "n=%zu\n", kind, name, percentile_us(s, 50), percentile_us(s, 90),
           percentile_us(s, 99), sum / s->n / 1000.0, s->n);
    fflush(stdout);
}

static void report_unsupported(const char *kind, const char *name,
                               const char *reason)
{
    printf("%s %s unsupported reason=%s\n", kind, name, reason);
    fflush(stdout);
}

/* ---- uffd mode ---- */

typedef struct UffdBench {
    /* Set up before the handler starts; read-only afterwards */
    int uffd;
    int stop_fd;                /* eventfd: the handler exits when readable */
    char *region;
    size_t region_pages;
    char *payload;              /* the 4 KiB page UFFDIO_COPY installs */
    bool have_wp;               /* registered with UFFDIO_REGISTER_MODE_WP */
    pthread_t handler;

    /*
     * Written by the main thread only while no fault is outstanding, read
     * by the handler when it serves one.  The fault itself orders the two;
     * the atomics keep the compiler honest.
     */
    int copy_mode;              /* 0 or UFFDIO_COPY_MODE_WP */
} UffdBench;

static int uffd_open(uint64_t features, uint64_t *supported)
{
    struct uffdio_api api = { .api = UFFD_API, .features = features };
    int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

    if (fd < 0 && errno == EPERM) {
        die("userfaultfd: permission denied: needs root (CAP_SYS_PTRACE) "
            "or sysctl vm.unprivileged_userfaultfd=1");
    }
    if (fd < 0) {
        die("userfaultfd: %s", strerror(errno));
    }
    if (ioctl(fd, UFFDIO_API, &api) < 0) {
        die("UFFDIO_API with features 0x%llx: %s",
            (unsigned long long)features, strerror(errno));
    }
    if (supported) {
        *supported = api.features;
    }
    return fd;
}

/* UFFDIO_API can be called once per fd: probe on a throwaway one. */
static uint64_t uffd_probe_features(void)
{
    uint64_t supported;
    int fd = uffd_open(0, &supported);

    close(fd);
    return supported;
}

static void uffd_register(UffdBench *b)
{
    struct uffdio_register reg = {
        .range = { .start = (uintptr_t)b->region,
                   .len = b->region_pages * BENCH_PAGE_SIZE },
        .mode = UFFDIO_REGISTER_MODE_MISSING,
    };

    if (b->have_wp) {
        reg.mode |= UFFDIO_REGISTER_MODE_WP;
    }
    if (ioctl(b->uffd, UFFDIO_REGISTER, &reg) < 0) {
        die("UFFDIO_REGISTER mode 0x%llx: %s",
            (unsigned long long)reg.mode, strerror(errno));
    }
    if (!(reg.ioctls & (1ull << _UFFDIO_COPY))) {
        die("UFFDIO_REGISTER: kernel offers no UFFDIO_COPY on this range");
    }
    if (b->have_wp && !(reg.ioctls & (1ull << _UFFDIO_WRITEPROTECT))) {
        b->have_wp = false;
    }
}

static void *map_anon(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED) {
        die("mmap %zu bytes: %s", len, strerror(errno));
    }
    return p;
}

static void uffd_wake(int uffd, uintptr_t page)
{
    struct uffdio_range range = { .start = page, .len = BENCH_PAGE_SIZE };

    if (ioctl(uffd, UFFDIO_WAKE, &range) < 0) {
        die("UFFDIO_WAKE 0x%lx: %s", (unsigned long)page, strerror(errno));
    }
}

static void uffd_copy_page(UffdBench *b, uintptr_t page)
{
    struct uffdio_copy copy = {
        .dst = page,
        .src = (uintptr_t)b->payload,
        .len = BENCH_PAGE_SIZE,
        .mode = __atomic_load_n(&b->copy_mode, __ATOMIC_ACQUIRE),
    };

    if (ioctl(b->uffd, UFFDIO_COPY, &copy) == 0) {
        return;
    }
    if (errno == EEXIST) {
        /* Already installed (lost race, as in uffd-stress): just wake. */
        uffd_wake(b->uffd, page);
        return;
    }
    die("UFFDIO_COPY 0x%lx mode 0x%llx: %s", (unsigned long)page,
        (unsigned long long)copy.mode, strerror(errno));
}

static void uffd_set_wp(int uffd, uintptr_t page, bool protect)
{
    struct uffdio_writeprotect wp = {
        .range = { .start = page, .len = BENCH_PAGE_SIZE },
        .mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
    };

    if (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) < 0) {
        die("UFFDIO_WRITEPROTECT 0x%lx %s: %s", (unsigned long)page,
            protect ? "on" : "off", strerror(errno));
    }
}

/* Missing fault: install the payload.  WP fault: lift the protection. */
static void uffd_serve_fault(UffdBench *b, const struct uffd_msg *msg)
{
    uintptr_t page = msg->arg.pagefault.address & ~(uintptr_t)
                     (BENCH_PAGE_SIZE - 1);

    if (msg->event != UFFD_EVENT_PAGEFAULT) {
        die("userfaultfd: unexpected event 0x%x, expected 0x%x",
            msg->event, UFFD_EVENT_PAGEFAULT);
    }
    if (msg->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) {
        uffd_set_wp(b->uffd, page, false);
    } else {
        uffd_copy_page(b, page);
    }
}

/* Returns false when the stop eventfd fired. */
static bool uffd_wait(UffdBench *b)
{
    struct pollfd pfd[2] = {
        { .fd = b->uffd, .events = POLLIN },
        { .fd = b->stop_fd, .events = POLLIN },
    };

    while (poll(pfd, 2, -1) < 0) {
        if (errno != EINTR) {
            die("poll on userfaultfd: %s", strerror(errno));
        }
    }
    if (pfd[1].revents) {
        return false;
    }
    if (pfd[0].revents & (POLLERR | POLLHUP)) {
        die("userfaultfd: poll revents 0x%x", pfd[0].revents);
    }
    return true;
}

/*
 * Fault-service thread: poll, read one message, resolve it.  Runs until
 * the main thread writes stop_fd.  Any failure exits the process, since
 * the faulting thread would otherwise wait forever.
 */
static void *uffd_handler_thread(void *opaque)
{
    UffdBench *b = opaque;
    struct uffd_msg msg;
    ssize_t len;

    while (uffd_wait(b)) {
        len = read(b->uffd, &msg, sizeof(msg));
        if (len < 0 && (errno == EAGAIN || errno == EINTR)) {
            continue;
        }
        if (len != sizeof(msg)) {
            die("read userfaultfd: got %zd bytes, expected %zu: %s",
                len, sizeof(msg), len < 0 ? strerror(errno) : "short");
        }
        uffd_serve_fault(b, &msg);
    }
    return NULL;
}

static void uffd_setup(UffdBench *b, const BenchOptions *opts)
{
    uint64_t supported = uffd_probe_features();
    uint64_t wanted = supported & UFFD_FEATURE_PAGEFAULT_FLAG_WP;
    size_t len = (size_t)opts->region_mib << 20;

    memset(b, 0, sizeof(*b));
    b->have_wp = wanted != 0;
    b->uffd = uffd_open(wanted, NULL);
    b->region_pages = len / BENCH_PAGE_SIZE;
    b->region = map_anon(len);
    /* THP would fill 2 MiB per fault; QEMU's postcopy turns it off too. */
    madvise(b->region, len, MADV_NOHUGEPAGE);
    b->payload = map_anon(BENCH_PAGE_SIZE);
    memset(b->payload, 0xa5, BENCH_PAGE_SIZE);
    uffd_register(b);
    b->stop_fd = eventfd(0, EFD_CLOEXEC);
    if (b->stop_fd < 0) {
        die("eventfd: %s", strerror(errno));
    }
    if (pthread_create(&b->handler, NULL, uffd_handler_thread, b)) {
        die("cannot start the fault handler thread");
    }
    printf("# uffd: features=0x%llx register=%s region_mib=%ld warmup=%ld "
           "iterations=%ld\n", (unsigned long long)supported,
           b->have_wp ? "missing+wp" : "missing", opts->region_mib,
           opts->warmup, opts->iterations);
}

static void uffd_teardown(UffdBench *b)
{
    uint64_t one = 1;

    if (write(b->stop_fd, &one, sizeof(one)) != sizeof(one)) {
        die("stop the fault handler: %s", strerror(errno));
    }
    pthread_join(b->handler, NULL);
    close(b->stop_fd);
    close(b->uffd);
    munmap(b->region, b->region_pages * BENCH_PAGE_SIZE);
    munmap(b->payload, BENCH_PAGE_SIZE);
}

/* Drops every page of the region so that each touch faults again. */
static void uffd_rearm(UffdBench *b)
{
    if (madvise(b->region, b->region_pages * BENCH_PAGE_SIZE,
                MADV_DONTNEED) < 0) {
        die("madvise(MADV_DONTNEED) on the region: %s", strerror(errno));
    }
}

/* Hands out pages in order, re-arming the region when it runs out. */
static volatile char *uffd_next_page(UffdBench *b, size_t *next)
{
    if (*next == b->region_pages) {
        uffd_rearm(b);
        *next = 0;
    }
    return b->region + (*next)++ * BENCH_PAGE_SIZE;
}

static uint64_t timed_read(volatile char *p)
{
    uint64_t t0 = now_ns();

    (void)*p;
    return now_ns() - t0;
}

static uint64_t timed_write(volatile char *p)
{
    uint64_t t0 = now_ns();

    *p = 1;
    return now_ns() - t0;
}

static void uffd_set_copy_mode(UffdBench *b, int mode)
{
    __atomic_store_n(&b->copy_mode, mode, __ATOMIC_RELEASE);
}

/* Missing read fault resolved by UFFDIO_COPY in @copy_mode. */
static void uffd_measure_read_faults(UffdBench *b, const BenchOptions *opts,
                                     int copy_mode, const char *name)
{
    long total = opts->warmup + opts->iterations;
    size_t next = 0;
    Samples s;
    long i;

    samples_init(&s, opts->iterations);
    uffd_set_copy_mode(b, copy_mode);
    uffd_rearm(b);
    for (i = 0; i < total; i++) {
        samples_add(&s, i, opts->warmup, timed_read(uffd_next_page(b, &next)));
    }
    report_figure("floor", name, &s);
    samples_free(&s);
}

/*
 * Write to a page installed write-protected (untimed read fault first),
 * resolved by UFFDIO_WRITEPROTECT clearing the protection.
 */
static void uffd_measure_wp_faults(UffdBench *b, const BenchOptions *opts)
{
    long total = opts->warmup + opts->iterations;
    volatile char *page;
    size_t next = 0;
    Samples s;
    long i;

    samples_init(&s, opts->iterations);
    uffd_set_copy_mode(b, UFFDIO_COPY_MODE_WP);
    uffd_rearm(b);
    for (i = 0; i < total; i++) {
        page = uffd_next_page(b, &next);
        (void)*page;
        samples_add(&s, i, opts->warmup, timed_write(page));
    }
    report_figure("floor", "uffd_wp_fault", &s);
    samples_free(&s);
}

/* ---- extras: single-page ioctls, with and without a busy sibling ---- */

/*
 * A thread of this process spinning on another CPU, as a vCPU thread
 * would.  While it runs there, every PTE downgrade in this mm needs a TLB
 * shootdown IPI to that CPU.  On a shared machine it is often preempted,
 * so it counts its loops and a sample only counts as "with spinner" when
 * the count moved across it.
 */
typedef struct Spinner {
    uint64_t loops __attribute__((aligned(64)));    /* atomic */
    int stop __attribute__((aligned(64)));          /* atomic */
    int cpu;
    pthread_t thread;
} Spinner;

/* One timed single-page operation; prepare and undo are not timed. */
typedef struct PageOp {
    void (*prepare)(void *opaque);      /* page present, writable, TLB-hot */
    void (*run)(void *opaque);          /* the timed operation */
    void (*undo)(void *opaque);         /* may be NULL */
} PageOp;

static void pin_self(int cpu)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) < 0) {
        die("sched_setaffinity to CPU %d: %s", cpu, strerror(errno));
    }
}

static void *spinner_thread(void *opaque)
{
    Spinner *sp = opaque;

    pin_self(sp->cpu);
    while (!__atomic_load_n(&sp->stop, __ATOMIC_RELAXED)) {
        __atomic_store_n(&sp->loops, sp->loops + 1, __ATOMIC_RELAXED);
        __builtin_ia32_pause();
    }
    return NULL;
}

static void spinner_start(Spinner *sp, int cpu)
{
    memset(sp, 0, sizeof(*sp));
    sp->cpu = cpu;
    if (pthread_create(&sp->thread, NULL, spinner_thread, sp)) {
        die("cannot start the spinner thread");
    }
    usleep(20000);              /* let it reach its CPU */
}

static void spinner_stop(Spinner *sp)
{
    __atomic_store_n(&sp->stop, 1, __ATOMIC_RELAXED);
    pthread_join(sp->thread, NULL);
}

static uint64_t spinner_loops(const Spinner *sp)
{
    return sp ? __atomic_load_n(&sp->loops, __ATOMIC_RELAXED) : 0;
}

/*
 * Times @op until @opts->iterations samples are kept, or gives up after
 * 20 times that many attempts.  With @sp, only samples during which the
 * spinner was seen running are kept.
 */
static void measure_page_op(const BenchOptions *opts, const char *name,
                            const PageOp *op, void *opaque,
                            const Spinner *sp)
{
    long attempts, max_attempts = (opts->warmup + opts->iterations) * 20;
    uint64_t before, t0, t1;
    Samples s;

    samples_init(&s, opts->iterations);
    for (attempts = 0; s.n < s.cap && attempts < max_attempts; attempts++) {
        op->prepare(opaque);
        before = spinner_loops(sp);
        t0 = now_ns();
        op->run(opaque);
        t1 = now_ns();
        if (!sp || spinner_loops(sp) != before) {
            samples_add(&s, attempts, opts->warmup, t1 - t0);
        }
        if (op->undo) {
            op->undo(opaque);
        }
    }
    if (sp) {
        printf("# %s: kept %zu of %ld samples (spinner seen running)\n",
               name, s.n, attempts - opts->warmup);
    }
    if (s.n) {
        report_figure("extra", name, &s);
    } else {
        report_unsupported("extra", name, "spinner-never-ran");
    }
    samples_free(&s);
}

static void page_write(void *opaque)
{
    UffdBench *b = opaque;

    *(volatile char *)b->region = 1;
}

static void page_wp_on(void *opaque)
{
    UffdBench *b = opaque;

    uffd_set_wp(b->uffd, (uintptr_t)b->region, true);
}

static void page_wp_off(void *opaque)
{
    UffdBench *b = opaque;

    uffd_set_wp(b->uffd, (uintptr_t)b->region, false);
}

/* Write-protect the first region page (UFFDIO_WRITEPROTECT), lift it. */
static const PageOp wp_ioctl_op = {
    .prepare = page_write,
    .run = page_wp_on,
    .undo = page_wp_off,
};

static void plain_page_write(void *opaque)
{
    *(volatile char *)opaque = 1;
}

static void plain_page_discard(void *opaque)
{
    if (madvise(opaque, BENCH_PAGE_SIZE, MADV_DONTNEED) < 0) {
        die("madvise(MADV_DONTNEED) one page: %s", strerror(errno));
    }
}

/* Discard one page of plain anonymous memory (ram_block_discard_range). */
static const PageOp dontneed_op = {
    .prepare = plain_page_write,
    .run = plain_page_discard,
};

static void uffd_measure_page_ops(UffdBench *b, const BenchOptions *opts,
                                  const Spinner *sp)
{
    const char *suffix = sp ? "spinner" : "idle";
    char *plain = map_anon(BENCH_PAGE_SIZE);
    char name[64];

    snprintf(name, sizeof(name), "uffd_wp_ioctl_%s", suffix);
    if (b->have_wp) {
        uffd_set_copy_mode(b, 0);
        uffd_rearm(b);
        measure_page_op(opts, name, &wp_ioctl_op, b, sp);
    } else {
        report_unsupported("extra", name, "no-uffd-wp");
    }
    snprintf(name, sizeof(name), "madv_dontneed_%s", suffix);
    measure_page_op(opts, name, &dontneed_op, plain, sp);
    munmap(plain, BENCH_PAGE_SIZE);
}

/* Returns the @nth CPU this process may run on, or -1. */
static int allowed_cpu(const cpu_set_t *set, int nth)
{
    int cpu;

    for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (CPU_ISSET(cpu, set) && nth-- == 0) {
            return cpu;
        }
    }
    return -1;
}

/*
 * Main thread pinned to one CPU: first with no other thread of the
 * process running (the fault handler sleeps in poll), then with the
 * spinner on a second CPU.
 */
static void uffd_measure_extras(UffdBench *b, const BenchOptions *opts)
{
    cpu_set_t saved;
    Spinner sp;
    int here, there;

    if (sched_getaffinity(0, sizeof(saved), &saved) < 0) {
        die("sched_getaffinity: %s", strerror(errno));
    }
    here = allowed_cpu(&saved, 0);
    there = allowed_cpu(&saved, 1);
    if (there < 0) {
        report_unsupported("extra", "tlb_shootdown", "one-cpu");
        return;
    }
    printf("# extras: main thread on CPU %d, spinner on CPU %d\n",
           here, there);
    pin_self(here);
    uffd_measure_page_ops(b, opts, NULL);
    spinner_start(&sp, there);
    uffd_measure_page_ops(b, opts, &sp);
    spinner_stop(&sp);
    if (sched_setaffinity(0, sizeof(saved), &saved) < 0) {
        die("restore affinity: %s", strerror(errno));
    }
}

static int mode_uffd(const BenchOptions *opts)
{
    UffdBench b;

    uffd_setup(&b, opts);
    uffd_measure_read_faults(&b, opts, 0, "uffd_read_fault");
    if (b.have_wp) {
        uffd_measure_read_faults(&b, opts, UFFDIO_COPY_MODE_WP,
                                 "uffd_read_fault_wp");
        uffd_measure_wp_faults(&b, opts);
    } else {
        report_unsupported("floor", "uffd_read_fault_wp", "no-uffd-wp");
        report_unsupported("floor", "uffd_wp_fault", "no-uffd-wp");
    }
    uffd_measure_extras(&b, opts);
    uffd_teardown(&b);
    return 0;
}

/* ---- tcp modes ---- */

/* Splits HOST:PORT (or [V6HOST]:PORT) into @host and @port; @buf backs. */
static void split_address(const char *address, char *buf, size_t size,
                          char **host, char **port)
{
    char *colon;

    if (snprintf(buf, size, "%s", address) >= (int)size) {
        die("address too long: %s", address);
    }
    colon = strrchr(buf, ':');
    if (!colon || colon == buf || !colon[1]) {
        die("address '%s': expected HOST:PORT", address);
    }
    *colon = '\0';
    *host = buf;
    *port = colon + 1;
    if (buf[0] == '[' && colon[-1] == ']') {
        colon[-1] = '\0';
        *host = buf + 1;
    }
}

static struct addrinfo *resolve(const char *address, bool passive)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0),
    };
    struct addrinfo *res;
    char buf[256], *host, *port;
    int err;

    split_address(address, buf, sizeof(buf), &host, &port);
    err = getaddrinfo(host, port, &hints, &res);
    if (err) {
        die("resolve '%s': %s", address, gai_strerror(err));
    }
    return res;
}

static void set_sockopt_int(int fd, int level, int opt, int val,
                            const char *what)
{
    if (setsockopt(fd, level, opt, &val, sizeof(val)) < 0) {
        die("setsockopt %s: %s", what, strerror(errno));
    }
}

/* TCP_NODELAY, and bounded blocking reads and writes. */
static void tcp_tune(int fd)
{
    struct timeval tv = { .tv_sec = TCP_IO_TIMEOUT_S };

    set_sockopt_int(fd, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY");
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
        die("setsockopt SO_RCVTIMEO/SO_SNDTIMEO: %s", strerror(errno));
    }
}

/* Returns false on a clean EOF before the first byte. */
static bool read_full(int fd, void *buf, size_t len, const char *peer)
{
    size_t done = 0;
    ssize_t r;

    while (done < len) {
        r = read(fd, (char *)buf + done, len - done);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            die("no data from %s within %d s", peer, TCP_IO_TIMEOUT_S);
        }
        if (r < 0) {
            die("read from %s: %s", peer, strerror(errno));
        }
        if (r == 0 && done == 0) {
            return false;
        }
        if (r == 0) {
            die("%s closed mid-message: got %zu of %zu bytes", peer, done,
                len);
        }
        done += r;
    }
    return true;
}

static void write_full(int fd, const void *buf, size_t len, const char *peer)
{
    size_t done = 0;
    ssize_t r;

    while (done < len) {
        r = write(fd, (const char *)buf + done, len - done);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            die("write to %s: %s", peer, strerror(errno));
        }
        done += r;
    }
}

static int tcp_listen(const char *address)
{
    struct addrinfo *ai = resolve(address, true);
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        die("socket: %s", strerror(errno));
    }
    set_sockopt_int(fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        die("bind %s: %s", address, strerror(errno));
    }
    if (listen(fd, 1) < 0) {
        die("listen %s: %s", address, strerror(errno));
    }
    freeaddrinfo(ai);
    return fd;
}

static void print_bound(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[128], port[16];

    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 ||
        getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), port,
                    sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV)) {
        die("cannot read back the listening address");
    }
    printf("# tcp-server listening %s:%s\n", host, port);
    fflush(stdout);
}

static int tcp_accept_one(int lfd)
{
    struct pollfd pfd = { .fd = lfd, .events = POLLIN };
    int r = poll(&pfd, 1, TCP_ACCEPT_TIMEOUT_S * 1000);
    int fd;

    if (r == 0) {
        die("tcp-server: no client within %d s", TCP_ACCEPT_TIMEOUT_S);
    }
    if (r < 0) {
        die("poll on listening socket: %s", strerror(errno));
    }
    fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        die("accept: %s", strerror(errno));
    }
    return fd;
}

/* Echoes the request's first 8 bytes (a sequence number) in each reply. */
static int mode_tcp_server(const BenchOptions *opts)
{
    char req[TCP_REQUEST_SIZE], reply[TCP_REPLY_SIZE];
    int lfd = tcp_listen(opts->address);
    long served = 0;
    int fd;

    print_bound(lfd);
    fd = tcp_accept_one(lfd);
    close(lfd);
    tcp_tune(fd);
    memset(reply, 0x5a, sizeof(reply));
    while (read_full(fd, req, sizeof(req), "client")) {
        memcpy(reply, req, sizeof(uint64_t));
        write_full(fd, reply, sizeof(reply), "client");
        served++;
    }
    close(fd);
    printf("# tcp-server served %ld requests\n", served);
    return 0;
}

static void tcp_wait_connected(int fd, const char *address)
{
    struct pollfd pfd = { .fd = fd, .events = POLLOUT };
    socklen_t len = sizeof(int);
    int r = poll(&pfd, 1, TCP_IO_TIMEOUT_S * 1000);
    int err = 0;

    if (r == 0) {
        die("connect to %s: no answer within %d s", address,
            TCP_IO_TIMEOUT_S);
    }
    if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
        die("connect to %s: %s", address, strerror(errno));
    }
    if (err == ECONNREFUSED) {
        die("connect to %s refused: is 'dsm-floors tcp-server' running "
            "there?", address);
    }
    if (err) {
        die("connect to %s: %s", address, strerror(err));
    }
}

/* Non-blocking connect bounded by TCP_IO_TIMEOUT_S, then blocking I/O. */
static int tcp_connect(const char *address)
{
    struct addrinfo *ai = resolve(address, false);
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    0);

    if (fd < 0) {
        die("socket: %s", strerror(errno));
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 &&
        errno != EINPROGRESS) {
        die("connect to %s: %s", address, strerror(errno));
    }
    tcp_wait_connected(fd, address);
    freeaddrinfo(ai);
    if (fcntl(fd, F_SETFL, 0) < 0) {
        die("fcntl: %s", strerror(errno));
    }
    tcp_tune(fd);
    return fd;
}

static uint64_t tcp_round_trip(int fd, uint64_t seq)
{
    char req[TCP_REQUEST_SIZE] = { 0 }, reply[TCP_REPLY_SIZE];
    uint64_t t0, echoed;

    memcpy(req, &seq, sizeof(seq));
    t0 = now_ns();
    write_full(fd, req, sizeof(req), "server");
    if (!read_full(fd, reply, sizeof(reply), "server")) {
        die("server closed the connection after %llu round trips",
            (unsigned long long)seq);
    }
    t0 = now_ns() - t0;
    memcpy(&echoed, reply, sizeof(echoed));
    if (echoed != seq) {
        die("reply %llu answers request %llu",
            (unsigned long long)echoed, (unsigned long long)seq);
    }
    return t0;
}

static int mode_tcp_client(const BenchOptions *opts)
{
    long total = opts->warmup + opts->iterations;
    int fd = tcp_connect(opts->address);
    Samples s;
    long i;

    printf("# tcp-client: server=%s request=%d reply=%d warmup=%ld "
           "iterations=%ld\n", opts->address, TCP_REQUEST_SIZE,
           TCP_REPLY_SIZE, opts->warmup, opts->iterations);
    samples_init(&s, opts->iterations);
    for (i = 0; i < total; i++) {
        samples_add(&s, i, opts->warmup, tcp_round_trip(fd, i));
    }
    close(fd);
    report_figure("floor", "tcp_64b_4k_round_trip", &s);
    samples_free(&s);
    return 0;
}

/* ---- dsm mode: the real DSM, driven over qtest ---- */

/*
 * bench/dsm/run starts three fragments f0, f1, f2 of one aggregate
 * machine under -accel qtest, each in its own network namespace, with
 * their qtest and QMP sockets in DIR (DIR/qtN.sock, DIR/qmpN.sock).
 * This mode connects to all six and times guest RAM accesses made with
 * qtest readl/writel.  QEMU serves such an access on its main thread
 * with a plain load or store into guest RAM, so a page the fragment
 * lacks faults into the DSM exactly as a vCPU access would, and the
 * reply comes back once the page is installed.
 *
 * Each timed sample is one qtest command on a page chosen so that it
 * takes exactly the path named by the figure (fresh pages: a fetched
 * page stays cached).  A qtest command costs a unix-socket round trip
 * and parsing on top of the fault, so the same commands on pages that
 * are already present with the right rights are timed first
 * (qtest_readl_hit, qtest_writel_hit); every latency figure is printed
 * raw and, as NAME_net, minus that baseline's median.  All figures'
 * pages are set up first; then the figures are timed in interleaved
 * rounds (dsm_figures_run()), so that a burst of load on a shared
 * machine lands on all of them alike.  query-dsm is read on every
 * fragment around each timed slice: the faulting fragment's fault
 * counters must have moved by exactly the number of samples (or by 0
 * for a baseline), and its fault-latency histogram (in-QEMU: request
 * sent to page installed) is printed as a cross-check.  Every value read
 * is checked against the last value written, so the figures are also a
 * coherence test.
 *
 * Guest-physical page p is homed on fragment p / pages_per_home; pages
 * below DSM_FIRST_PAGE of each home are left alone (BIOS areas), as in
 * tests/qtest/aggvm/aggregate-dsm-test.c.
 */

#define DSM_FRAGS               3
#define DSM_FIRST_PAGE          0x200
#define DSM_IO_TIMEOUT_S        30
#define DSM_BATCH               64          /* pipelined untimed commands */
#define DSM_SEQ_MIB             64
#define DSM_LATENCY_BUCKETS     16
#define DSM_LINE_MAX            65536
#define DSM_ROUNDS              10          /* interleaved slices */

enum { F0, F1, F2 };

typedef enum DsmOp { DSM_READ, DSM_WRITE } DsmOp;

/* A unix stream socket read line by line. */
typedef struct LineConn {
    int fd;
    char what[32];
    char buf[DSM_LINE_MAX];
    size_t start, end;          /* unread bytes are buf[start, end) */
} LineConn;

/* The query-dsm counters this mode looks at. */
typedef struct DsmCounters {
    uint64_t read_faults;
    uint64_t write_faults;
    uint64_t remote_fetches;
    uint64_t zero_fills;
    uint64_t upgrades;
    uint64_t inv_sent;
    uint64_t inv_received;
    uint64_t supplied;
    uint64_t msgs_out;
    uint64_t latency[DSM_LATENCY_BUCKETS];
} DsmCounters;

typedef struct DsmBench {
    LineConn qt[DSM_FRAGS];
    LineConn qmp[DSM_FRAGS];
    uint64_t pages_per_home;
    uint64_t next_page[DSM_FRAGS];  /* next fresh page of each home */
    uint32_t *expect;               /* last value written, per page */
    uint32_t generation;
    long warmup;
    long iterations;
    double readl_hit_us;            /* baseline medians, for _net */
    double writel_hit_us;
} DsmBench;

static void conn_open(LineConn *c, const char *path, const char *what)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct timeval tv = { .tv_sec = DSM_IO_TIMEOUT_S };

    memset(c, 0, sizeof(*c));
    snprintf(c->what, sizeof(c->what), "%s", what);
    if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path) >=
        (int)sizeof(sa.sun_path)) {
        die("socket path too long: %s", path);
    }
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        die("socket: %s", strerror(errno));
    }
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        die("connect to %s (%s): %s", what, path, strerror(errno));
    }
    if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
        die("setsockopt SO_RCVTIMEO/SO_SNDTIMEO: %s", strerror(errno));
    }
}

/* The next line, without its end of line; valid until the next call. */
static char *conn_line(LineConn *c)
{
    char *nl;
    ssize_t r;

    for (;;) {
        nl = memchr(c->buf + c->start, '\n', c->end - c->start);
        if (nl) {
            char *line = c->buf + c->start;

            c->start = nl + 1 - c->buf;
            *nl = '\0';
            if (nl > line && nl[-1] == '\r') {
                nl[-1] = '\0';
            }
            return line;
        }
        if (c->start) {
            memmove(c->buf, c->buf + c->start, c->end - c->start);
            c->end -= c->start;
            c->start = 0;
        }
        if (c->end == sizeof(c->buf)) {
            die("%s: line longer than %d bytes", c->what, DSM_LINE_MAX);
        }
        r = read(c->fd, c->buf + c->end, sizeof(c->buf) - c->end);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            die("%s: no answer within %d s", c->what, DSM_IO_TIMEOUT_S);
        }
        if (r <= 0) {
            die("%s: %s", c->what, r ? strerror(errno) : "connection closed");
        }
        c->end += r;
    }
}

static void conn_write(LineConn *c, const char *buf, size_t len)
{
    write_full(c->fd, buf, len, c->what);
}

/* ---- QMP: query-dsm, parsed just enough */

static uint64_t json_uint(const char *json, const char *key, const char *who)
{
    char pat[64];
    const char *p;

    snprintf(pat, sizeof(pat), "\"%s\":", key);
    p = strstr(json, pat);
    if (!p) {
        die("%s: query-dsm reply has no \"%s\": %.200s", who, key, json);
    }
    return strtoull(p + strlen(pat), NULL, 10);
}

static void json_latency(const char *json, uint64_t *buckets, const char *who)
{
    const char *p = strstr(json, "\"fault-latency-us\":");
    char *end;
    int i;

    if (!p || !(p = strchr(p, '['))) {
        die("%s: query-dsm reply has no fault-latency-us", who);
    }
    p++;
    for (i = 0; i < DSM_LATENCY_BUCKETS; i++) {
        buckets[i] = strtoull(p, &end, 10);
        if (end == p) {
            die("%s: fault-latency-us has fewer than %d buckets", who,
                DSM_LATENCY_BUCKETS);
        }
        p = end + strspn(end, " ,");
    }
}

/* Sends @cmd and returns the "return" line, skipping events. */
static char *qmp_execute(LineConn *c, const char *cmd)
{
    char *line;

    conn_write(c, cmd, strlen(cmd));
    for (;;) {
        line = conn_line(c);
        if (strstr(line, "\"event\"")) {
            continue;
        }
        if (strncmp(line, "{\"return\"", 9)) {
            die("%s: %s: %.300s", c->what, cmd, line);
        }
        return line;
    }
}

static void qmp_open(LineConn *c, const char *path, const char *what)
{
    conn_open(c, path, what);
    if (!strstr(conn_line(c), "\"QMP\"")) {
        die("%s: no QMP greeting", what);
    }
    qmp_execute(c, "{\"execute\": \"qmp_capabilities\"}\n");
}

static void dsm_query(DsmBench *d, int f, DsmCounters *st)
{
    const char *who = d->qmp[f].what;
    char *r = qmp_execute(&d->qmp[f], "{\"execute\": \"query-dsm\"}\n");

    st->read_faults = json_uint(r, "read-faults", who);
    st->write_faults = json_uint(r, "write-faults", who);
    st->remote_fetches = json_uint(r, "remote-fetches", who);
    st->zero_fills = json_uint(r, "zero-fills", who);
    st->upgrades = json_uint(r, "upgrades", who);
    st->inv_sent = json_uint(r, "invalidations-sent", who);
    st->inv_received = json_uint(r, "invalidations-received", who);
    st->supplied = json_uint(r, "pages-supplied", who);
    st->msgs_out = json_uint(r, "messages-out", who);
    json_latency(r, st->latency, who);
}

static void dsm_query_all(DsmBench *d, DsmCounters *st)
{
    int f;

    for (f = 0; f < DSM_FRAGS; f++) {
        dsm_query(d, f, &st[f]);
    }
}

/* "[lo,hi)" of histogram bucket @i, in microseconds. */
static void bucket_name(int i, char *buf, size_t size)
{
    unsigned lo = 1u << (i & 31), hi = (1u << ((i + 1) & 31)) - 1;

    if (i == 0) {
        snprintf(buf, size, "0-1");
    } else if (i == DSM_LATENCY_BUCKETS - 1) {
        snprintf(buf, size, "%u+", lo);
    } else {
        snprintf(buf, size, "%u-%u", lo, hi);
    }
}

/*
 * Prints what query-dsm says happened between @a and @b: the faulting
 * fragment @f's counters and latency histogram, and the aggregate's
 * invalidations and supplies.  @want_faults is how many faults of kind
 * @op @f must have taken (0 for a baseline); a mismatch means a sample
 * did not take the path its figure names, and is flagged.
 */
static void dsm_cross_check(const char *name, int f, DsmOp op,
                            const DsmCounters *a, const DsmCounters *b,
                            uint64_t want_faults)
{
    uint64_t hist[DSM_LATENCY_BUCKETS], total = 0, cum = 0;
    uint64_t inv_sent = 0, inv_recv = 0, supplied = 0;
    uint64_t rf = b[f].read_faults - a[f].read_faults;
    uint64_t wf = b[f].write_faults - a[f].write_faults;
    uint64_t faults = op == DSM_READ ? rf : wf;
    uint64_t other = op == DSM_READ ? wf : rf;
    char bname[32], line[1024];
    int i, median = -1, len = 0;

    for (i = 0; i < DSM_FRAGS; i++) {
        inv_sent += b[i].inv_sent - a[i].inv_sent;
        inv_recv += b[i].inv_received - a[i].inv_received;
        supplied += b[i].supplied - a[i].supplied;
    }
    for (i = 0; i < DSM_LATENCY_BUCKETS; i++) {
        hist[i] = b[f].latency[i] - a[f].latency[i];
        total += hist[i];
    }
    line[0] = '\0';
    for (i = 0; i < DSM_LATENCY_BUCKETS; i++) {
        cum += hist[i];
        if (median < 0 && total && cum * 2 >= total) {
            median = i;
        }
        if (hist[i] && len < (int)sizeof(line) - 64) {
            bucket_name(i, bname, sizeof(bname));
            len += snprintf(line + len, sizeof(line) - len, " %s:%llu",
                            bname, (unsigned long long)hist[i]);
        }
    }
    printf("# qmp %s: f%d read-faults+%llu write-faults+%llu "
           "remote-fetches+%llu upgrades+%llu; all fragments "
           "invalidations-sent+%llu invalidations-received+%llu "
           "pages-supplied+%llu; check=%s\n", name, f,
           (unsigned long long)rf, (unsigned long long)wf,
           (unsigned long long)(b[f].remote_fetches - a[f].remote_fetches),
           (unsigned long long)(b[f].upgrades - a[f].upgrades),
           (unsigned long long)inv_sent, (unsigned long long)inv_recv,
           (unsigned long long)supplied,
           faults == want_faults && other == 0 ? "ok" : "MISMATCH");
    if (total) {
        bucket_name(median, bname, sizeof(bname));
        printf("# qmp %s: f%d in-QEMU fault-latency-us histogram%s; "
               "median in %s us\n", name, f, line, bname);
    }
    fflush(stdout);
}

/* ---- qtest commands */

static uint64_t dsm_gpa(uint64_t page)
{
    return page * BENCH_PAGE_SIZE;
}

/* A value not yet seen in guest RAM, never 0 (never-written pages). */
static uint32_t dsm_next_value(DsmBench *d, uint64_t page)
{
    return (uint32_t)(page << 12) ^ (++d->generation) ^ 0x80000000u;
}

static int dsm_format(DsmBench *d, DsmOp op, uint64_t page, char *buf,
                      size_t size)
{
    if (op == DSM_READ) {
        return snprintf(buf, size, "readl 0x%llx\n",
                        (unsigned long long)dsm_gpa(page));
    }
    d->expect[page] = dsm_next_value(d, page);
    return snprintf(buf, size, "writel 0x%llx 0x%x\n",
                    (unsigned long long)dsm_gpa(page), d->expect[page]);
}

static void dsm_check_reply(DsmBench *d, int f, DsmOp op, uint64_t page,
                            const char *reply)
{
    unsigned long long v;

    if (op == DSM_WRITE) {
        if (strcmp(reply, "OK")) {
            die("f%d: writel page 0x%llx: '%s', expected 'OK'", f,
                (unsigned long long)page, reply);
        }
        return;
    }
    if (sscanf(reply, "OK 0x%llx", &v) != 1) {
        die("f%d: readl page 0x%llx: '%s', expected 'OK 0x...'", f,
            (unsigned long long)page, reply);
    }
    if (v != d->expect[page]) {
        die("f%d: readl page 0x%llx returned 0x%llx, expected 0x%x (the "
            "last value written): the DSM is not coherent", f,
            (unsigned long long)page, v, d->expect[page]);
    }
}

/* One command on fragment @f, timed from the write to the reply. */
static uint64_t dsm_timed_op(DsmBench *d, int f, DsmOp op, uint64_t page)
{
    char cmd[64];
    int len = dsm_format(d, op, page, cmd, sizeof(cmd));
    uint64_t t0 = now_ns();
    char *reply;

    conn_write(&d->qt[f], cmd, len);
    reply = conn_line(&d->qt[f]);
    t0 = now_ns() - t0;
    dsm_check_reply(d, f, op, page, reply);
    return t0;
}

/* @n untimed commands on @f, DSM_BATCH in flight at a time. */
static void dsm_ops(DsmBench *d, int f, DsmOp op, const uint64_t *pages,
                    size_t n)
{
    char buf[DSM_BATCH * 64];
    size_t i, j, k;
    int len;

    for (i = 0; i < n; i += k) {
        k = n - i < DSM_BATCH ? n - i : DSM_BATCH;
        for (j = 0, len = 0; j < k; j++) {
            len += dsm_format(d, op, pages[i + j], buf + len,
                              sizeof(buf) - len);
        }
        conn_write(&d->qt[f], buf, len);
        for (j = 0; j < k; j++) {
            dsm_check_reply(d, f, op, pages[i + j], conn_line(&d->qt[f]));
        }
    }
}

/* @n consecutive fresh pages homed on fragment @home. */
static uint64_t *dsm_fresh_pages(DsmBench *d, int home, size_t n)
{
    uint64_t *pages = calloc(n, sizeof(*pages));
    uint64_t end = (home + 1) * d->pages_per_home;
    size_t i;

    if (!pages) {
        die("out of memory for %zu pages", n);
    }
    if (d->next_page[home] + n > end) {
        die("home f%d has no %zu fresh pages left: lower --iterations or "
            "raise --frag-mib", home, n);
    }
    for (i = 0; i < n; i++) {
        pages[i] = d->next_page[home]++;
    }
    return pages;
}

/* One access of a figure's set-up: fragment @frag does @op on every page. */
typedef struct DsmStep {
    int frag;
    DsmOp op;
} DsmStep;

/* One latency figure: what is timed, on which pages, and what it got. */
typedef struct DsmFigure {
    const char *name;
    int frag;                       /* the fragment whose access is timed */
    DsmOp op;
    bool faults;                    /* one DSM fault per sample, else none */
    const double *baseline_us;      /* qtest baseline for NAME_net, or NULL */
    uint64_t *pages;                /* warmup + iterations fresh pages */
    long next;                      /* index of the next page to time */
    Samples s;
    DsmCounters moved[DSM_FRAGS];   /* query-dsm deltas over timed samples */
} DsmFigure;

static void counters_add_delta(DsmCounters *acc, const DsmCounters *a,
                               const DsmCounters *b)
{
    int i;

    acc->read_faults += b->read_faults - a->read_faults;
    acc->write_faults += b->write_faults - a->write_faults;
    acc->remote_fetches += b->remote_fetches - a->remote_fetches;
    acc->zero_fills += b->zero_fills - a->zero_fills;
    acc->upgrades += b->upgrades - a->upgrades;
    acc->inv_sent += b->inv_sent - a->inv_sent;
    acc->inv_received += b->inv_received - a->inv_received;
    acc->supplied += b->supplied - a->supplied;
    acc->msgs_out += b->msgs_out - a->msgs_out;
    for (i = 0; i < DSM_LATENCY_BUCKETS; i++) {
        acc->latency[i] += b->latency[i] - a->latency[i];
    }
}

/*
 * Sets up @fig: fresh pages homed on @home, brought to the state the
 * figure needs by @setup (terminated by frag -1), untimed.  @path says
 * what a timed access then does; it is printed.
 */
static void dsm_figure_init(DsmBench *d, DsmFigure *fig, const char *name,
                            int home, int frag, DsmOp op, bool faults,
                            const double *baseline_us, const DsmStep *setup,
                            const char *path)
{
    size_t n = d->warmup + d->iterations;

    memset(fig, 0, sizeof(*fig));
    fig->name = name;
    fig->frag = frag;
    fig->op = op;
    fig->faults = faults;
    fig->baseline_us = baseline_us;
    fig->pages = dsm_fresh_pages(d, home, n);
    samples_init(&fig->s, d->iterations);
    printf("# %s: pages homed on f%d", name, home);
    for (; setup->frag >= 0; setup++) {
        printf(", f%d %s", setup->frag,
               setup->op == DSM_WRITE ? "writes" : "reads");
        dsm_ops(d, setup->frag, setup->op, fig->pages, n);
    }
    printf("; timed: f%d %s each page once: %s\n", frag,
           op == DSM_WRITE ? "writes" : "reads", path);
    fflush(stdout);
}

/* Times the next @count samples of @fig, with query-dsm around them. */
static void dsm_figure_chunk(DsmBench *d, DsmFigure *fig, long count)
{
    DsmCounters before[DSM_FRAGS], after[DSM_FRAGS];
    long i;
    int f;

    dsm_query_all(d, before);
    for (i = 0; i < count; i++) {
        fig->s.ns[fig->s.n++] = dsm_timed_op(d, fig->frag, fig->op,
                                             fig->pages[fig->next++]);
    }
    dsm_query_all(d, after);
    for (f = 0; f < DSM_FRAGS; f++) {
        counters_add_delta(&fig->moved[f], &before[f], &after[f]);
    }
}

/*
 * Sequential fetch: f1 reads a 64 MiB run of consecutive pages f0 wrote
 * (home f0), one readl per page, DSM_BATCH commands in flight.  The DSM
 * fetches one page at a time, as one vCPU touching memory would.  The
 * same pass again, on pages now present, is the qtest cost of it.  The
 * run is read in DSM_ROUNDS consecutive slices, one per round of
 * dsm_figures_run().
 */
typedef struct DsmSeq {
    uint64_t *pages;
    size_t n;
    size_t next;                    /* first page of the next slice */
    double fetch_s;                 /* time of the fetching passes */
    double hit_s;                   /* time of the passes on present pages */
    DsmCounters fetch_moved[DSM_FRAGS];
    DsmCounters hit_moved[DSM_FRAGS];
} DsmSeq;

static void dsm_seq_init(DsmBench *d, DsmSeq *q)
{
    memset(q, 0, sizeof(*q));
    q->n = (size_t)DSM_SEQ_MIB << 20 >> 12;
    q->pages = dsm_fresh_pages(d, F0, q->n);
    printf("# seq_fetch: pages homed on f0, f0 writes %d MiB of consecutive "
           "pages; timed: f1 reads each once with readl, %d commands in "
           "flight, in %d slices\n", DSM_SEQ_MIB, DSM_BATCH, DSM_ROUNDS);
    fflush(stdout);
    dsm_ops(d, F0, DSM_WRITE, q->pages, q->n);
}

/* Times one pipelined pass of f1 over @count pages: seconds taken. */
static double dsm_seq_pass(DsmBench *d, const uint64_t *pages, size_t count,
                           DsmCounters *moved)
{
    DsmCounters before[DSM_FRAGS], after[DSM_FRAGS];
    uint64_t t0;
    int f;

    dsm_query_all(d, before);
    t0 = now_ns();
    dsm_ops(d, F1, DSM_READ, pages, count);
    t0 = now_ns() - t0;
    dsm_query_all(d, after);
    for (f = 0; f < DSM_FRAGS; f++) {
        counters_add_delta(&moved[f], &before[f], &after[f]);
    }
    return t0 / 1e9;
}

/* The next slice of the run (@last: all that is left), fetched, then hit. */
static void dsm_seq_slice(DsmBench *d, DsmSeq *q, bool last)
{
    size_t count = last ? q->n - q->next : q->n / DSM_ROUNDS;
    const uint64_t *pages = q->pages + q->next;

    q->fetch_s += dsm_seq_pass(d, pages, count, q->fetch_moved);
    q->hit_s += dsm_seq_pass(d, pages, count, q->hit_moved);
    q->next += count;
}

static void dsm_seq_report(DsmSeq *q)
{
    static const DsmCounters zero[DSM_FRAGS];
    double net_us = (q->fetch_s - q->hit_s) * 1e6 / q->n;

    dsm_cross_check("seq_fetch", F1, DSM_READ, zero, q->fetch_moved, q->n);
    dsm_cross_check("seq_qtest_hit", F1, DSM_READ, zero, q->hit_moved, 0);
    printf("dsm seq_fetch pages_per_s=%.0f mib_per_s=%.1f us_per_page=%.1f "
           "n=%zu\n", q->n / q->fetch_s, DSM_SEQ_MIB / q->fetch_s,
           q->fetch_s * 1e6 / q->n, q->n);
    printf("dsm seq_qtest_hit pages_per_s=%.0f us_per_page=%.1f n=%zu\n",
           q->n / q->hit_s, q->hit_s * 1e6 / q->n, q->n);
    printf("dsm seq_fetch_net pages_per_s=%.0f us_per_page=%.1f n=%zu\n",
           net_us > 0 ? 1e6 / net_us : 0, net_us, q->n);
    fflush(stdout);
}

/*
 * Times all figures in DSM_ROUNDS rounds, each round a slice of every
 * figure, starting with a different figure each round: a burst of load
 * on this shared machine then hits all figures alike rather than one.
 * Each figure's warm-up runs just before its first slice.  Each round
 * ends with a slice of the sequential fetch.
 */
static void dsm_figures_run(DsmBench *d, DsmFigure *figs, int nr_figs,
                            DsmSeq *seq)
{
    long slice = (d->iterations + DSM_ROUNDS - 1) / DSM_ROUNDS;
    int r, k;

    for (r = 0; r < DSM_ROUNDS; r++) {
        for (k = 0; k < nr_figs; k++) {
            DsmFigure *fig = &figs[(r + k) % nr_figs];
            long left = d->iterations - (long)fig->s.n;

            for (; r == 0 && fig->next < d->warmup; fig->next++) {
                dsm_timed_op(d, fig->frag, fig->op, fig->pages[fig->next]);
            }
            dsm_figure_chunk(d, fig, left < slice ? left : slice);
        }
        dsm_seq_slice(d, seq, r == DSM_ROUNDS - 1);
    }
}

static double median_us(Samples *s)
{
    qsort(s->ns, s->n, sizeof(*s->ns), cmp_u64);
    return percentile_us(s, 50);
}

/*
 * The query-dsm cross-check, then the raw figure and, when it has a
 * baseline, the same minus the baseline's median as NAME_net.
 */
static void dsm_figure_report(DsmFigure *fig)
{
    static const DsmCounters zero[DSM_FRAGS];
    uint64_t base_ns;
    char net[96];
    size_t i;

    dsm_cross_check(fig->name, fig->frag, fig->op, zero, fig->moved,
                    fig->faults ? fig->s.n : 0);
    report_figure("dsm", fig->name, &fig->s);
    if (!fig->baseline_us) {
        return;
    }
    base_ns = (uint64_t)(*fig->baseline_us * 1000.0);
    for (i = 0; i < fig->s.n; i++) {
        fig->s.ns[i] = fig->s.ns[i] > base_ns ? fig->s.ns[i] - base_ns : 0;
    }
    snprintf(net, sizeof(net), "%s_net", fig->name);
    report_figure("dsm", net, &fig->s);
}

static void dsm_connect(DsmBench *d, const BenchOptions *opts)
{
    char path[PATH_MAX], what[32];
    int f;

    memset(d, 0, sizeof(*d));
    if (opts->warmup < 1) {
        die("dsm mode needs --warmup of at least 1");
    }
    d->warmup = opts->warmup;
    d->iterations = opts->iterations;
    d->pages_per_home = (uint64_t)opts->frag_mib << 20 >> 12;
    d->expect = calloc(d->pages_per_home * DSM_FRAGS, sizeof(*d->expect));
    if (!d->expect) {
        die("out of memory");
    }
    for (f = 0; f < DSM_FRAGS; f++) {
        d->next_page[f] = f * d->pages_per_home + DSM_FIRST_PAGE;
        snprintf(path, sizeof(path), "%s/qt%d.sock", opts->address, f);
        snprintf(what, sizeof(what), "f%d qtest", f);
        conn_open(&d->qt[f], path, what);
        snprintf(path, sizeof(path), "%s/qmp%d.sock", opts->address, f);
        snprintf(what, sizeof(what), "f%d qmp", f);
        qmp_open(&d->qmp[f], path, what);
    }
}

enum {
    FIG_READL_HIT,
    FIG_WRITEL_HIT,
    FIG_READ_HOME_OWNER,
    FIG_READ_HOME_THIRD,
    FIG_WRITE_UPGRADE_1,
    FIG_WRITE_UPGRADE_2,
    FIG_WRITE_MISS_2,
    NR_FIGS
};

static int mode_dsm(const BenchOptions *opts)
{
    static const DsmStep own_write[] = { { F1, DSM_WRITE }, { -1, DSM_READ } };
    static const DsmStep f0_writes[] = { { F0, DSM_WRITE }, { -1, DSM_READ } };
    static const DsmStep shared_f1_f2[] = {
        { F2, DSM_WRITE }, { F1, DSM_READ }, { -1, DSM_READ } };
    static const DsmStep shared_f0_f1_f2[] = {
        { F2, DSM_WRITE }, { F1, DSM_READ }, { F0, DSM_READ }, { -1, DSM_READ } };
    static const DsmStep shared_f0_f2[] = {
        { F2, DSM_WRITE }, { F0, DSM_READ }, { -1, DSM_READ } };
    DsmFigure figs[NR_FIGS];
    DsmSeq seq;
    DsmBench d;
    int f, k;

    dsm_connect(&d, opts);
    printf("# dsm: fragments f0 f1 f2, %ld MiB homed on each, qtest "
           "readl/writel; warmup=%ld iterations=%ld per figure, timed in "
           "%d interleaved rounds\n", opts->frag_mib, opts->warmup,
           opts->iterations, DSM_ROUNDS);
    dsm_figure_init(&d, &figs[FIG_READL_HIT], "qtest_readl_hit", F1, F1,
                    DSM_READ, false, NULL, own_write,
                    "no fault (f1 holds it Exclusive): the qtest round trip");
    dsm_figure_init(&d, &figs[FIG_WRITEL_HIT], "qtest_writel_hit", F1, F1,
                    DSM_WRITE, false, NULL, own_write,
                    "no fault (f1 holds it Exclusive): the qtest round trip");
    dsm_figure_init(&d, &figs[FIG_READ_HOME_OWNER],
                    "remote_read_fault_home_is_owner", F0, F1, DSM_READ, true,
                    &d.readl_hit_us, f0_writes,
                    "Exclusive at f0 = home; REQ(R) f1->f0, FWD(R) f0->f0 "
                    "(self link), DATA(S) f0->f1");
    dsm_figure_init(&d, &figs[FIG_READ_HOME_THIRD],
                    "remote_read_fault_home_third", F2, F1, DSM_READ, true,
                    &d.readl_hit_us, f0_writes,
                    "Exclusive at f0, home f2; REQ(R) f1->f2, FWD(R) f2->f0, "
                    "DATA(S) f0->f1");
    dsm_figure_init(&d, &figs[FIG_WRITE_UPGRADE_1],
                    "write_fault_upgrade_1_sharer", F0, F1, DSM_WRITE, true,
                    &d.writel_hit_us, shared_f1_f2,
                    "f1 holds it Shared, 1 other sharer (f2); REQ(W) f1->f0, "
                    "INV f0->f2, ACK f2->f0, GRANT(E) f0->f1");
    dsm_figure_init(&d, &figs[FIG_WRITE_UPGRADE_2],
                    "write_fault_upgrade_2_sharers", F0, F1, DSM_WRITE, true,
                    &d.writel_hit_us, shared_f0_f1_f2,
                    "f1 holds it Shared, 2 other sharers (f0, f2); REQ(W) "
                    "f1->f0, INV f0->f0 (self link) and INV f0->f2, 2 ACKs, "
                    "GRANT(E) f0->f1");
    dsm_figure_init(&d, &figs[FIG_WRITE_MISS_2],
                    "write_fault_miss_2_sharers", F0, F1, DSM_WRITE, true,
                    &d.writel_hit_us, shared_f0_f2,
                    "f1 holds nothing, 2 sharers (f0, f2); REQ(W) f1->f0, "
                    "INV f0->f2, ACK f2->f0, FWD(W) f0->f0 (self link), "
                    "DATA(E) f0->f1");
    dsm_seq_init(&d, &seq);
    dsm_figures_run(&d, figs, NR_FIGS, &seq);
    dsm_figure_report(&figs[FIG_READL_HIT]);
    d.readl_hit_us = median_us(&figs[FIG_READL_HIT].s);
    dsm_figure_report(&figs[FIG_WRITEL_HIT]);
    d.writel_hit_us = median_us(&figs[FIG_WRITEL_HIT].s);
    for (k = FIG_READ_HOME_OWNER; k < NR_FIGS; k++) {
        dsm_figure_report(&figs[k]);
    }
    for (k = 0; k < NR_FIGS; k++) {
        samples_free(&figs[k].s);
        free(figs[k].pages);
    }
    dsm_seq_report(&seq);
    free(seq.pages);
    for (f = 0; f < DSM_FRAGS; f++) {
        close(d.qt[f].fd);
        close(d.qmp[f].fd);
    }
    free(d.expect);
    return 0;
}

/* ---- command line ---- */

static const BenchMode bench_modes[] = {
    { "uffd", "userfaultfd fault round trips, local handler thread",
      NULL, mode_uffd },
    { "tcp-server", "answer 64-byte requests with 4096 bytes, one client",
      "HOST:PORT", mode_tcp_server },
    { "tcp-client", "time 64-byte/4096-byte round trips to tcp-server",
      "HOST:PORT", mode_tcp_client },
    { "dsm", "faults through the aggvm DSM of 3 fragments whose qtest\n"
      "              and QMP sockets are DIR/qtN.sock, DIR/qmpN.sock (N=0..2)",
      "DIR", mode_dsm },
};

static void usage(FILE *f)
{
    size_t i;

    fprintf(f, "usage: dsm-floors MODE [HOST:PORT|DIR] [options]\n\n"
            "modes:\n");
    for (i = 0; i < sizeof(bench_modes) / sizeof(bench_modes[0]); i++) {
        fprintf(f, "  %-11s %s%s%s\n", bench_modes[i].name,
                bench_modes[i].arg ? bench_modes[i].arg : "",
                bench_modes[i].arg ? ": " : "", bench_modes[i].help);
    }
    fprintf(f, "\noptions:\n"
            "  --iterations N  measured samples per figure (default %d)\n"
            "  --warmup N      unmeasured samples first (default %d)\n"
            "  --region-mib M  uffd region size (default %d)\n"
            "  --frag-mib M    dsm: guest RAM per fragment, its mem= "
            "(default %d)\n",
            DEFAULT_ITERATIONS, DEFAULT_WARMUP, DEFAULT_REGION_MIB,
            DEFAULT_FRAG_MIB);
}

static long parse_count(const char *arg, const char *what, long min)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(arg, &end, 10);
    if (errno || *end || v < min || v > 100000000) {
        die("%s: '%s' is not a number in [%ld, 100000000]", what, arg, min);
    }
    return v;
}

static void parse_options(int argc, char **argv, BenchOptions *opts)
{
    static const struct option longopts[] = {
        { "iterations", required_argument, NULL, 'n' },
        { "warmup", required_argument, NULL, 'w' },
        { "region-mib", required_argument, NULL, 'r' },
        { "frag-mib", required_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            opts->iterations = parse_count(optarg, "--iterations", 1);
            break;
        case 'w':
            opts->warmup = parse_count(optarg, "--warmup", 0);
            break;
        case 'r':
            opts->region_mib = parse_count(optarg, "--region-mib", 1);
            break;
        case 'f':
            opts->frag_mib = parse_count(optarg, "--frag-mib", 4);
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
}

static const BenchMode *find_mode(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(bench_modes) / sizeof(bench_modes[0]); i++) {
        if (!strcmp(bench_modes[i].name, name)) {
            return &bench_modes[i];
        }
    }
    die("unknown mode '%s' (try --help)", name);
}

int main(int argc, char **argv)
{
    BenchOptions opts = {
        .iterations = DEFAULT_ITERATIONS,
        .warmup = DEFAULT_WARMUP,
        .region_mib = DEFAULT_REGION_MIB,
        .frag_mib = DEFAULT_FRAG_MIB,
    };
    const BenchMode *mode;

    parse_options(argc, argv, &opts);
    if (optind >= argc) {
        usage(stderr);
        exit(2);
    }
    mode = find_mode(argv[optind++]);
    if (mode->arg && optind >= argc) {
        die("mode %s needs %s", mode->name, mode->arg);
    }
    if (mode->arg) {
        opts.address = argv[optind++];
    }
    if (optind < argc) {
        die("unexpected argument '%s'", argv[optind]);
    }
    opts.mode = mode->name;
    return mode->run(&opts);
}
