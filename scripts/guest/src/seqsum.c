/*
 * aggvm guest program: the checksum workload in one process.
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Usage: seqsum CPU START STRIDE N
 *
 * Pinned to CPU, prints the SHA-256 (FIPS 180-4) of the decimal
 * numbers START, START + STRIDE, ... up to N, one per line, as
 * `seq START STRIDE N | sha256sum` does, then the guest's uptime in
 * milliseconds when it finished (the clock of /proc/uptime).  The
 * same digest without the pipe, the second process and their system
 * calls: CPU-bound, touching only its own memory, it measures how fast
 * a vCPU computes, not how fast its kernel shares state with the
 * other CPUs.
 */

#define _GNU_SOURCE
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct Sha256 {
    uint32_t h[8];
    uint8_t block[64];
    size_t used;
    uint64_t bytes;
} Sha256;

static const uint32_t k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
    0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t ror(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

static void sha256_init(Sha256 *s)
{
    static const uint32_t h0[8] = {
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    };

    memcpy(s->h, h0, sizeof(h0));
    s->used = 0;
    s->bytes = 0;
}

static void sha256_block(Sha256 *s)
{
    uint32_t w[64], v[8], t1, t2;
    int i;

    for (i = 0; i < 16; i++) {
        w[i] = (uint32_t)s->block[4 * i] << 24 |
               (uint32_t)s->block[4 * i + 1] << 16 |
               (uint32_t)s->block[4 * i + 2] << 8 | s->block[4 * i + 3];
    }
    for (; i < 64; i++) {
        w[i] = w[i - 16] + w[i - 7] +
               (ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3)) +
               (ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10));
    }
    memcpy(v, s->h, sizeof(v));
    for (i = 0; i < 64; i++) {
        t1 = v[7] + (ror(v[4], 6) ^ ror(v[4], 11) ^ ror(v[4], 25)) +
             ((v[4] & v[5]) ^ (~v[4] & v[6])) + k[i] + w[i];
        t2 = (ror(v[0], 2) ^ ror(v[0], 13) ^ ror(v[0], 22)) +
             ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
        memmove(&v[1], &v[0], 7 * sizeof(v[0]));
        v[4] += t1;
        v[0] = t1 + t2;
    }
    for (i = 0; i < 8; i++) {
        s->h[i] += v[i];
    }
}

static void sha256_update(Sha256 *s, const char *data, size_t len)
{
    s->bytes += len;
    while (len) {
        size_t n = sizeof(s->block) - s->used;

        if (n > len) {
            n = len;
        }
        memcpy(s->block + s->used, data, n);
        s->used += n;
        data += n;
        len -= n;
        if (s->used == sizeof(s->block)) {
            sha256_block(s);
            s->used = 0;
        }
    }
}

static void sha256_final(Sha256 *s, char hex[65])
{
    uint64_t bits = s->bytes * 8;
    uint8_t pad[72] = { 0x80 };
    size_t padlen = (s->used < 56 ? 56 : 120) - s->used;
    int i;

    for (i = 0; i < 8; i++) {
        pad[padlen + i] = bits >> (56 - 8 * i);
    }
    sha256_update(s, (const char *)pad, padlen + 8);
    for (i = 0; i < 8; i++) {
        sprintf(hex + 8 * i, "%08x", s->h[i]);
    }
}

/* A whole decimal number, or false. */
static bool parse_number(const char *arg, unsigned long long *value)
{
    char rest;

    return sscanf(arg, "%llu%c", value, &rest) == 1;
}

int main(int argc, char **argv)
{
    unsigned long long cpu, start, stride, n, i;
    cpu_set_t set;
    struct timespec done;
    Sha256 s;
    char line[32], hex[65];

    if (argc != 5) {
        fprintf(stderr, "usage: seqsum CPU START STRIDE N\n");
        return 2;
    }
    if (!parse_number(argv[1], &cpu) || !parse_number(argv[2], &start) ||
        !parse_number(argv[3], &stride) || !parse_number(argv[4], &n) ||
        !stride || cpu >= CPU_SETSIZE) {
        fprintf(stderr, "seqsum: CPU, START, STRIDE and N are numbers, "
                "STRIDE at least 1\n");
        return 2;
    }
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set)) {
        perror("sched_setaffinity");
        return 1;
    }
    sha256_init(&s);
    for (i = start; i <= n; i += stride) {
        sha256_update(&s, line, sprintf(line, "%llu\n", i));
    }
    sha256_final(&s, hex);
    clock_gettime(CLOCK_BOOTTIME, &done);
    printf("%s  -\n%lld\n", hex,
           (long long)done.tv_sec * 1000 + done.tv_nsec / 1000000);
    return 0;
}
