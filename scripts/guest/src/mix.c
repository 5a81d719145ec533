/*
 * aggvm guest program: shared-memory synchronisation between CPUs.
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Usage: mix mutex NTHREADS ITERS
 *        mix msgpass NTHREADS MSGS
 *
 * One thread per CPU 0..NTHREADS-1, each pinned to its CPU.
 *
 * mutex: a pthread mutex (futex-based: contended waiters sleep in the
 * kernel and are woken by the unlocking CPU) protects 64 uint64_t
 * counters spread over two pages, 32 to a page, each on a cache line
 * of its own.  Each thread, ITERS times, takes the mutex, adds 1 to
 * every counter and releases it.  Then every counter must be
 * NTHREADS * ITERS.  Prints
 *
 *   threads=T iters=I ok=1|0 bad_elements=B
 *
 * (B: counters with another value).
 *
 * msgpass: the threads form a ring; thread i sends MSGS messages to
 * thread (i + 1) % NTHREADS through a single-producer single-consumer
 * ring buffer of 128 slots in a page of its own (producer index,
 * consumer index and slots on different cache lines), published with
 * __atomic release stores and read with acquire loads.  A message is
 * (sender, seq = 1..MSGS, payload = a hash of sender and seq).  Each
 * thread interleaves sending and receiving, so no thread waits for
 * room while its own predecessor waits for it.  The receiver checks
 * that messages come from its predecessor, in order, with the right
 * payload.  Prints
 *
 *   threads=T msgs=M ok=1|0 bad=B
 *
 * (B: messages received with a wrong sender, sequence number or
 * payload).
 *
 * Every wait is bounded: a thread that waits more than 120 s (for the
 * mutex, for the other threads to start, or without a message sent or
 * received) prints "threads=T ... ok=0 stuck=1 stuck_thread=K" and the
 * process exits 1.  Exit status 0 iff ok=1; 1 on a failed check, a
 * stuck wait or an error (such as a CPU that does not exist); 2 for
 * bad arguments.
 *
 * -DMIX_SELFTEST_BREAK=M builds a broken program, to show that the
 * checks fail: in mutex mode every M-th iteration of a thread adds to
 * the counters without the lock (read all, pause, write all back), in
 * msgpass mode every M-th message is published before its slot is
 * written (and the slot written after a pause).  Both races lose or
 * corrupt data when threads on other CPUs run at the same time, so the
 * broken build fails with NTHREADS >= 2.
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
#define LINE 64
#define WAIT_MS 120000LL
#define MAX_THREADS 256
#define MAX_COUNT 1000000000L
#define NCOUNTERS 64
#define RING_SLOTS 128          /* power of 2 */
#define CLOCK_EVERY 1024        /* idle polls per clock read (power of 2) */
#define YIELD_EVERY 256         /* idle polls per sched_yield (power of 2) */

typedef struct Msg {
    uint64_t sender, seq, payload;
} Msg;

/* One page: written by one producer, read by one consumer. */
typedef struct Ring {
    uint64_t head;              /* messages published (producer) */
    uint8_t pad0[LINE - sizeof(uint64_t)];
    uint64_t tail;              /* messages consumed (consumer) */
    uint8_t pad1[LINE - sizeof(uint64_t)];
    Msg slot[RING_SLOTS];
} Ring;

_Static_assert(sizeof(Ring) <= PAGE, "a ring fits in a page");

static int mode_mutex;
static long nthreads, count;
static int started, reported;

/* mutex mode */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t *counters;      /* NCOUNTERS, LINE apart, on two pages */

/* msgpass mode: rings[i] carries thread i's messages */
static Ring *rings;
static long bad[MAX_THREADS];   /* written by each thread, read after join */

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static inline uint64_t *counter(int i)
{
    return counters + (size_t)i * (LINE / sizeof(uint64_t));
}

static uint64_t payload(uint64_t sender, uint64_t seq)
{
    uint64_t z = (sender << 40) ^ seq ^ 0x9e3779b97f4a7c15ull;

    /* splitmix64's finalizer */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A wait timed out: report it (once) and end the process. */
static void stuck(long thread)
{
    if (__atomic_exchange_n(&reported, 1, __ATOMIC_SEQ_CST)) {
        for (;;) {
            pause();            /* another thread is exiting */
        }
    }
    printf("threads=%ld %s=%ld ok=0 stuck=1 stuck_thread=%ld\n", nthreads,
           mode_mutex ? "iters" : "msgs", count, thread);
    fflush(stdout);
    _exit(1);
}

/*
 * Called every CLOCK_EVERY idle polls of a wait: has it lasted
 * WAIT_MS?  The clock starts at the first call, so that a wait that
 * ends quickly reads no clock.
 */
static void check_wait(long long *deadline, long thread)
{
    long long t = now_ms();

    if (!*deadline) {
        *deadline = t + WAIT_MS;
    } else if (t > *deadline) {
        stuck(thread);
    }
}

static void idle(long polls, long long *deadline, long thread)
{
    if (!(polls & (CLOCK_EVERY - 1))) {
        check_wait(deadline, thread);
    }
    if (!(polls & (YIELD_EVERY - 1))) {
        sched_yield();          /* another task may share this CPU */
    } else {
        __builtin_ia32_pause();
    }
}

#ifdef MIX_SELFTEST_BREAK
/* Widen the window of the deliberate races. */
static void dawdle(void)
{
    int i;

    for (i = 0; i < 2000; i++) {
        __builtin_ia32_pause();
    }
}
#endif

static void pin(long cpu)
{
    cpu_set_t set;
    int err;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    if (err) {
        fprintf(stderr, "mix: cannot pin a thread to CPU %ld: %s\n", cpu,
                strerror(err));
        _exit(1);
    }
}

/* Pin the thread, then wait until all threads are pinned. */
static void start(long self)
{
    long long deadline = 0;
    long polls;

    pin(self);
    __atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
    for (polls = 1; __atomic_load_n(&started, __ATOMIC_ACQUIRE) < nthreads;
         polls++) {
        idle(polls, &deadline, self);
    }
}

static void take_lock(long self)
{
    struct timespec abs;
    int err;

    err = pthread_mutex_trylock(&lock);
    if (err == EBUSY) {
        clock_gettime(CLOCK_MONOTONIC, &abs);
        abs.tv_sec += WAIT_MS / 1000;
        err = pthread_mutex_clocklock(&lock, CLOCK_MONOTONIC, &abs);
        if (err == ETIMEDOUT) {
            stuck(self);
        }
    }
    if (err) {
        fprintf(stderr, "mix: pthread_mutex_lock: %s\n", strerror(err));
        _exit(1);
    }
}

static void *mutex_thread(void *arg)
{
    long self = (long)arg, k;
    int i;

    start(self);
    for (k = 1; k <= count; k++) {
#ifdef MIX_SELFTEST_BREAK
        if (k % (MIX_SELFTEST_BREAK) == 0) {
            uint64_t v[NCOUNTERS];

            for (i = 0; i < NCOUNTERS; i++) {
                v[i] = __atomic_load_n(counter(i), __ATOMIC_RELAXED);
            }
            dawdle();
            for (i = 0; i < NCOUNTERS; i++) {
                __atomic_store_n(counter(i), v[i] + 1, __ATOMIC_RELAXED);
            }
            continue;
        }
#endif
        take_lock(self);
        for (i = 0; i < NCOUNTERS; i++) {
            (*counter(i))++;
        }
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

/* Send if there is room: 1 if sent. */
static int try_send(Ring *r, long self, uint64_t seq, uint64_t *tail)
{
    uint64_t head = r->head;    /* only this thread writes it */
    Msg *m;

    if (head - *tail >= RING_SLOTS) {
        *tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
        if (head - *tail >= RING_SLOTS) {
            return 0;
        }
    }
    m = &r->slot[head % RING_SLOTS];
#ifdef MIX_SELFTEST_BREAK
    if (seq % (MIX_SELFTEST_BREAK) == 0) {
        __atomic_store_n(&r->head, head + 1, __ATOMIC_RELEASE);
        dawdle();
        __atomic_store_n(&m->sender, self, __ATOMIC_RELAXED);
        __atomic_store_n(&m->seq, seq, __ATOMIC_RELAXED);
        __atomic_store_n(&m->payload, payload(self, seq), __ATOMIC_RELAXED);
        return 1;
    }
#endif
    m->sender = self;
    m->seq = seq;
    m->payload = payload(self, seq);
    __atomic_store_n(&r->head, head + 1, __ATOMIC_RELEASE);
    return 1;
}

/* Receive and check a message if there is one: 1 if received. */
static int try_receive(Ring *r, long from, uint64_t seq, uint64_t *head,
                       long *nbad)
{
    uint64_t tail = r->tail;    /* only this thread writes it */
    Msg m;

    if (tail == *head) {
        *head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
        if (tail == *head) {
            return 0;
        }
    }
    m = r->slot[tail % RING_SLOTS];
    if (m.sender != (uint64_t)from || m.seq != seq ||
        m.payload != payload(from, seq)) {
        (*nbad)++;
    }
    __atomic_store_n(&r->tail, tail + 1, __ATOMIC_RELEASE);
    return 1;
}

static void *msgpass_thread(void *arg)
{
    long self = (long)arg, from = (self + nthreads - 1) % nthreads;
    Ring *out = &rings[self], *in = &rings[from];
    uint64_t sent = 0, received = 0, out_tail = 0, in_head = 0;
    long long deadline = 0;
    long polls = 0, nbad = 0;
    int progress;

    start(self);
    while (sent < (uint64_t)count || received < (uint64_t)count) {
        progress = 0;
        if (sent < (uint64_t)count &&
            try_send(out, self, sent + 1, &out_tail)) {
            sent++;
            progress = 1;
        }
        if (received < (uint64_t)count &&
            try_receive(in, from, received + 1, &in_head, &nbad)) {
            received++;
            progress = 1;
        }
        if (progress) {
            polls = 0;
            deadline = 0;
        } else {
            idle(++polls, &deadline, self);
        }
    }
    bad[self] = nbad;
    return NULL;
}

static void *map_pages(size_t n)
{
    void *p = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED) {
        perror("mix: mmap");
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
    fprintf(stderr, "usage: mix mutex NTHREADS ITERS\n"
            "       mix msgpass NTHREADS MSGS\n"
            "  NTHREADS: 1..%d (thread i on CPU i), ITERS, MSGS: 1..%ld\n",
            MAX_THREADS, MAX_COUNT);
    return 2;
}

int main(int argc, char **argv)
{
    pthread_t tid[MAX_THREADS];
    long i, nbad = 0;
    uint64_t want;
    int err;

    if (argc != 4 ||
        (strcmp(argv[1], "mutex") && strcmp(argv[1], "msgpass")) ||
        parse_long(argv[2], 1, MAX_THREADS, &nthreads) ||
        parse_long(argv[3], 1, MAX_COUNT, &count)) {
        return usage();
    }
    mode_mutex = !strcmp(argv[1], "mutex");
    if (mode_mutex) {
        counters = map_pages(2);
    } else {
        rings = map_pages(nthreads);
    }

    fflush(stdout);
    for (i = 0; i < nthreads; i++) {
        err = pthread_create(&tid[i], NULL,
                             mode_mutex ? mutex_thread : msgpass_thread,
                             (void *)i);
        if (err) {
            fprintf(stderr, "mix: pthread_create: %s\n", strerror(err));
            return 1;
        }
    }
    for (i = 0; i < nthreads; i++) {
        pthread_join(tid[i], NULL);
    }

    if (mode_mutex) {
        want = (uint64_t)nthreads * (uint64_t)count;
        for (i = 0; i < NCOUNTERS; i++) {
            nbad += *counter(i) != want;
        }
        printf("threads=%ld iters=%ld ok=%d bad_elements=%ld\n", nthreads,
               count, !nbad, nbad);
    } else {
        for (i = 0; i < nthreads; i++) {
            nbad += bad[i];
        }
        printf("threads=%ld msgs=%ld ok=%d bad=%ld\n", nthreads, count,
               !nbad, nbad);
    }
    return nbad != 0;
}
