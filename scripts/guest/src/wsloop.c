/*
 * aggvm guest program: a CPU-bound loop over a private working set.
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Usage: wsloop CPU MEGABYTES SECONDS
 *
 * Pinned to CPU, writes one word in every 64-byte line of a MEGABYTES
 * working set, pass after pass, for SECONDS, and every 100 ms of the
 * guest's monotonic clock prints how many lines it wrote in that
 * interval:
 *
 *     AGGVM-RATE <ms since start> <lines written>
 *
 * In an aggregate VM whose vCPU moves to another fragment, the rate
 * drops while the working set's pages follow it through the DSM and
 * comes back once they are all local again.
 */

#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LINE 64
#define INTERVAL_NS 100000000LL

static long long now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    cpu_set_t set;
    long cpu, mb, secs;
    size_t size, line, lines = 0;
    long long start, next, end;
    volatile unsigned long *ws;     /* every store must reach the page */

    if (argc != 4) {
        fprintf(stderr, "usage: wsloop CPU MEGABYTES SECONDS\n");
        return 2;
    }
    cpu = atol(argv[1]);
    mb = atol(argv[2]);
    secs = atol(argv[3]);
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set)) {
        perror("sched_setaffinity");
        return 1;
    }
    size = (size_t)mb << 20;
    ws = malloc(size);
    if (!ws) {
        perror("malloc");
        return 1;
    }
    memset((void *)ws, 1, size);
    start = now_ns();
    next = start + INTERVAL_NS;
    end = start + secs * 1000000000LL;
    for (;;) {
        for (line = 0; line < size / LINE; line++) {
            ws[line * (LINE / sizeof(*ws))] += line;
            if (!(++lines & 1023) && now_ns() >= next) {
                printf("AGGVM-RATE %lld %zu\n", (next - start) / 1000000,
                       lines);
                fflush(stdout);
                lines = 0;
                next += INTERVAL_NS;
                if (next > end) {
                    return 0;
                }
            }
        }
    }
}
