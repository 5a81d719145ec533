/*
 * aggvm guest program: a cross-modifying-code litmus test.
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Usage: xmc a|b|c WRITER_CPU CALLER_CPU ROUNDS
 *
 * Two threads, pinned to WRITER_CPU and CALLER_CPU.  In round k =
 * 1..ROUNDS the writer rewrites a small function in an anonymous
 * read-write-execute mapping so that it returns a value derived from
 * k, then stores flag = k (release).  The caller waits for flag == k
 * (acquire), executes cpuid (the serializing instruction x86 asks of
 * the processor that executes cross-modified code), calls the function
 * and checks what it returns, then stores ack = k; the writer waits
 * for ack == k before the next round.  While it waits for the flag the
 * caller also calls the function every 64 polls, ignoring the result
 * (old and new code are both legal then), so that translations of the
 * old and the new code race with the writer's stores.
 *
 * Only the bytes of aligned 32-bit immediates change, each with one
 * aligned 32-bit store, so the code is valid at every instant.
 *
 *   a  the function in code page A; flag and ack in page B (+0, +64):
 *        A+0: 90 90 90 b8 <imm32 = k> c3        returns k
 *   b  the function, flag and ack in one page (flag at +2048, ack at
 *      +2112): the same code at +0
 *   c  the function spans two consecutive code pages, one immediate on
 *      each, written imm0 = k then imm1 = k:
 *        P0+4091: b8 <imm0 @4092>
 *        P1+0:    90 90 90 05 <imm1 @4+4096> c3   returns imm0 + imm1
 *      the caller expects 2k; flag and ack in a separate page
 *
 * Every shared object is on its own page-aligned mmap, and nothing
 * else the two threads share lives on those pages: in an aggregate VM,
 * whose fragments keep RAM coherent page by page, each page the case
 * names moves between the two CPUs' fragments every round.
 *
 * Prints one line:
 *
 *   rounds=N errors=E first_bad_round=R first_bad_value=V elapsed_ms=T
 *
 * N: rounds checked, E: rounds whose call returned the wrong value, R
 * and V: the first of them and what the function returned (0 and 0
 * without errors), T: wall time of the whole run (CLOCK_MONOTONIC).
 * When a wait lasts more than 120 s the line ends with
 * " stuck_round=K stuck_thread=writer|caller" (the writer waits for
 * ack, the caller for flag) and the exit status is 1.  Exit status 0
 * iff all rounds ran and none was wrong; 1 otherwise; 2 for bad
 * arguments.
 *
 * -DXMC_SELFTEST_BREAK=M builds a broken writer that skips the rewrite
 * in every round that is a multiple of M, to show the check fails.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define WAIT_MS 120000LL
#define MAX_ROUNDS 1000000000L
#define RACE_EVERY 64           /* polls per racing call (power of 2) */
#define CLOCK_EVERY 1024        /* polls per timeout check (power of 2) */

typedef uint32_t (*Fn)(void);

/* Read-only once the threads run; each thread takes its own copy. */
typedef struct Config {
    char kind;
    int wcpu, ccpu;
    long rounds;
    uint8_t *code;              /* the function's entry */
    uint32_t *imm0, *imm1;      /* imm1: case c only */
    uint64_t *flag, *ack;
    long long t0_ms;
} Config;
static Config cfg;

/*
 * Written by the caller only (read by main after the join, or by the
 * thread that reports a stuck wait): on a page of its own, so that it
 * does not move to the writer's CPU while the test runs.
 */
struct __attribute__((aligned(PAGE))) Result {  /* sizeof: one page */
    long rounds, errors, first_bad_round;
    uint32_t first_bad_value;
};
static struct Result res;

static int reported;

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void print_result(void)
{
    printf("rounds=%ld errors=%ld first_bad_round=%ld first_bad_value=%u "
           "elapsed_ms=%lld",
           __atomic_load_n(&res.rounds, __ATOMIC_RELAXED),
           __atomic_load_n(&res.errors, __ATOMIC_RELAXED),
           __atomic_load_n(&res.first_bad_round, __ATOMIC_RELAXED),
           __atomic_load_n(&res.first_bad_value, __ATOMIC_RELAXED),
           now_ms() - cfg.t0_ms);
}

/*
 * Called every CLOCK_EVERY polls of a wait: has it lasted WAIT_MS?  The
 * clock starts at the first call, so that a wait that ends quickly
 * reads no clock.
 */
static int timed_out(long long *deadline)
{
    long long t = now_ms();

    if (!*deadline) {
        *deadline = t + WAIT_MS;
    }
    return t > *deadline;
}

/* A wait timed out: report it (once) and end the process. */
static void stuck(long k, const char *thread)
{
    if (__atomic_exchange_n(&reported, 1, __ATOMIC_SEQ_CST)) {
        for (;;) {
            pause();            /* the other thread is exiting */
        }
    }
    print_result();
    printf(" stuck_round=%ld stuck_thread=%s\n", k, thread);
    fflush(stdout);
    _exit(1);
}

static void pin(int cpu)
{
    cpu_set_t set;
    int err;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    if (err) {
        fprintf(stderr, "xmc: cannot pin a thread to CPU %d: %s\n", cpu,
                strerror(err));
        _exit(1);
    }
}

static inline void serialize(void)
{
    uint32_t a = 0, b, c = 0, d;

    __asm__ __volatile__("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d)
                         : : "memory");
}

static void *writer(void *arg)
{
    const Config c = cfg;
    int same = c.wcpu == c.ccpu;
    long k, polls;
    long long deadline;

    pin(c.wcpu);
    for (k = 1; k <= c.rounds; k++) {
#ifdef XMC_SELFTEST_BREAK
        if (k % (XMC_SELFTEST_BREAK) != 0)
#endif
        {
            __atomic_store_n(c.imm0, (uint32_t)k, __ATOMIC_RELEASE);
            if (c.imm1) {
                __atomic_store_n(c.imm1, (uint32_t)k, __ATOMIC_RELEASE);
            }
        }
        __atomic_store_n(c.flag, (uint64_t)k, __ATOMIC_RELEASE);
        deadline = 0;
        for (polls = 1;
             __atomic_load_n(c.ack, __ATOMIC_ACQUIRE) != (uint64_t)k;
             polls++) {
            if (!(polls & (CLOCK_EVERY - 1)) && timed_out(&deadline)) {
                stuck(k, "writer");
            }
            if (same) {
                sched_yield();
            }
        }
    }
    return arg;
}

static void *caller(void *arg)
{
    const Config c = cfg;
    Fn fn = (Fn)(void *)c.code;
    int same = c.wcpu == c.ccpu;
    long k, polls, errors = 0;
    long long deadline;
    uint32_t v, want;

    pin(c.ccpu);
    for (k = 1; k <= c.rounds; k++) {
        deadline = 0;
        for (polls = 1;
             __atomic_load_n(c.flag, __ATOMIC_ACQUIRE) != (uint64_t)k;
             polls++) {
            if (!(polls & (RACE_EVERY - 1))) {
                (void)fn();     /* old or new code: either is legal */
            }
            if (!(polls & (CLOCK_EVERY - 1)) && timed_out(&deadline)) {
                stuck(k, "caller");
            }
            if (same) {
                sched_yield();
            }
        }
        serialize();
        v = fn();
        want = c.kind == 'c' ? 2 * (uint32_t)k : (uint32_t)k;
        if (v != want && !errors++) {
            __atomic_store_n(&res.first_bad_round, k, __ATOMIC_RELAXED);
            __atomic_store_n(&res.first_bad_value, v, __ATOMIC_RELAXED);
        }
        __atomic_store_n(&res.errors, errors, __ATOMIC_RELAXED);
        __atomic_store_n(&res.rounds, k, __ATOMIC_RELAXED);
        __atomic_store_n(c.ack, (uint64_t)k, __ATOMIC_RELEASE);
    }
    return arg;
}

static void *map_pages(size_t n, int prot)
{
    void *p = mmap(NULL, n * PAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED) {
        perror("xmc: mmap");
        exit(1);
    }
    return p;
}

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;

    errno = 0;
    *out = strtol(s, &end, 10);
    return !*s || *end || errno || *out < min || *out > max;
}

static int usage(void)
{
    fprintf(stderr, "usage: xmc a|b|c WRITER_CPU CALLER_CPU ROUNDS\n"
            "  a: code page, separate flag/ack page\n"
            "  b: code, flag and ack in one page\n"
            "  c: code spanning two pages, separate flag/ack page\n"
            "  ROUNDS: 1..%ld\n", MAX_ROUNDS);
    return 2;
}

int main(int argc, char **argv)
{
    const int rwx = PROT_READ | PROT_WRITE | PROT_EXEC;
    static const uint8_t fn_ab[] = { 0x90, 0x90, 0x90, 0xb8, 0, 0, 0, 0,
                                     0xc3 };
    static const uint8_t fn_c1[] = { 0x90, 0x90, 0x90, 0x05, 0, 0, 0, 0,
                                     0xc3 };
    pthread_t wt, ct;
    long wcpu, ccpu;
    uint8_t *page, *data;
    int err;

    if (argc != 5 || strlen(argv[1]) != 1 || !strchr("abc", argv[1][0]) ||
        parse_long(argv[2], 0, CPU_SETSIZE - 1, &wcpu) ||
        parse_long(argv[3], 0, CPU_SETSIZE - 1, &ccpu) ||
        parse_long(argv[4], 1, MAX_ROUNDS, &cfg.rounds)) {
        return usage();
    }
    cfg.kind = argv[1][0];
    cfg.wcpu = wcpu;
    cfg.ccpu = ccpu;

    switch (cfg.kind) {
    case 'a':
        page = map_pages(1, rwx);
        data = map_pages(1, PROT_READ | PROT_WRITE);
        memset(page, 0xcc, PAGE);                   /* int3 */
        memcpy(page, fn_ab, sizeof(fn_ab));
        cfg.code = page;
        cfg.imm0 = (uint32_t *)(page + 4);
        break;
    case 'b':
        page = map_pages(1, rwx);
        memset(page, 0xcc, PAGE);
        memcpy(page, fn_ab, sizeof(fn_ab));
        memset(page + 2048, 0, PAGE - 2048);
        data = page + 2048;
        cfg.code = page;
        cfg.imm0 = (uint32_t *)(page + 4);
        break;
    default:
        page = map_pages(2, rwx);
        data = map_pages(1, PROT_READ | PROT_WRITE);
        memset(page, 0xcc, 2 * PAGE);
        page[PAGE - 5] = 0xb8;                      /* mov $imm0,%eax */
        memset(page + PAGE - 4, 0, 4);
        memcpy(page + PAGE, fn_c1, sizeof(fn_c1));  /* add $imm1,%eax */
        cfg.code = page + PAGE - 5;
        cfg.imm0 = (uint32_t *)(page + PAGE - 4);
        cfg.imm1 = (uint32_t *)(page + PAGE + 4);
        break;
    }
    cfg.flag = (uint64_t *)data;
    cfg.ack = (uint64_t *)(data + 64);              /* another line */
    *cfg.flag = 0;
    *cfg.ack = 0;

    fflush(stdout);
    cfg.t0_ms = now_ms();
    err = pthread_create(&ct, NULL, caller, NULL);
    if (!err) {
        err = pthread_create(&wt, NULL, writer, NULL);
    }
    if (err) {
        fprintf(stderr, "xmc: pthread_create: %s\n", strerror(err));
        return 1;
    }
    pthread_join(wt, NULL);
    pthread_join(ct, NULL);
    print_result();
    printf("\n");
    return res.errors || res.rounds != cfg.rounds;
}
