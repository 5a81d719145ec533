/*
 * aggvm DSM: what the wire codec's two halves share (migration/dsm only)
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * wire.c frames messages and codes the link and DSM families;
 * wire-machine.c codes the machine's families (I/O, interrupts,
 * lifecycle, clock, vCPUs).  Each describes its messages in a table of
 * DSMMsgDesc; wire.c looks a type up in both.
 */

#ifndef MIGRATION_DSM_WIRE_CODEC_H
#define MIGRATION_DSM_WIRE_CODEC_H

#include "migration/dsm/wire.h"

/* The bounds a peer's indexes are checked against. */
typedef struct DSMLimits {
    uint64_t nr_pages;
    uint32_t nr_fragments;
} DSMLimits;

typedef void DSMEncodeFn(const DSMMsg *msg, GByteArray *out);
typedef bool DSMDecodeFn(const uint8_t *buf, size_t len,
                         const DSMLimits *lim, DSMMsg *msg, Error **errp);

typedef struct DSMMsgDesc {
    DSMMsgType type;
    const char *name;
    uint32_t size;              /* fixed part of the payload */
    uint32_t extra;             /* optional tail: DATA's page, else 0 */
    DSMEncodeFn *encode;
    DSMDecodeFn *decode;
    bool varies;                /* the tail is 1 to @extra bytes long */
} DSMMsgDesc;

/* Field checks shared by the decoders.  @name is the message type's. */
bool dsm_check_fragment(const char *name, const char *what,
                        uint32_t fragment, const DSMLimits *lim,
                        Error **errp);
bool dsm_check_reserved(const char *name, const uint8_t *reserved,
                        size_t len, Error **errp);

/* The machine's message types (wire-machine.c). */
extern const DSMMsgDesc dsm_machine_msg_descs[];
extern const size_t dsm_nr_machine_msg_descs;

#endif /* MIGRATION_DSM_WIRE_CODEC_H */
