/*
 * aggvm guest program: processes on every CPU increment one counter.
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Usage: counter N
 *
 * Forks one child per online CPU, pinned to it, and each adds 1 to a
 * counter in shared anonymous memory N times with an atomic
 * fetch-and-add (a locked instruction).  Prints the total, which must
 * be N times the number of CPUs: in an aggregate VM the counter's page
 * moves between fragments on nearly every increment.
 */

#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static void pin(int cpu)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set)) {
        perror("sched_setaffinity");
        exit(1);
    }
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10000;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    long *counter = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int status, failed = 0;
    long cpu, i;

    if (counter == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    for (cpu = 0; cpu < ncpu; cpu++) {
        if (fork() == 0) {
            pin(cpu);
            for (i = 0; i < n; i++) {
                __atomic_fetch_add(counter, 1, __ATOMIC_SEQ_CST);
            }
            _exit(0);
        }
    }
    while (wait(&status) > 0) {
        failed |= !WIFEXITED(status) || WEXITSTATUS(status);
    }
    printf("%ld %ld %ld\n", ncpu, n, *counter);
    return failed;
}
