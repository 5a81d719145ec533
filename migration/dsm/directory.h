/*
 * aggvm DSM: home directory state machine
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef MIGRATION_DSM_DIRECTORY_H
#define MIGRATION_DSM_DIRECTORY_H

#include "migration/dsm/wire.h"

/*
 * The directory a home fragment keeps for the pages it is home for: who
 * holds each page in which mode, and the one open transaction per page
 * with the requests queued behind it.  It is pure: events go in
 * (dsm_dir_request(), dsm_dir_ack(), dsm_dir_done()) and the messages
 * the home must send come out, appended to a caller-provided GArray of
 * DSMAction.  It does no I/O, takes no lock and keeps no pointer to the
 * caller's memory; the caller serializes calls for a page and routes
 * every action, including those addressed to the home itself (whose own
 * requests take the same path).  See directory.c for the invariants and
 * the state machine.
 */

/* Holders are a uint64_t bitmap of fragment indexes. */
#define DSM_MAX_FRAGMENTS   64

typedef enum DSMDirMode {
    DSM_DIR_NONE,           /* no fragment holds the page */
    DSM_DIR_SHARED,         /* one or more read-only copies */
    DSM_DIR_EXCL,           /* one writable copy */
} DSMDirMode;

/* One message the home must send: @msg to fragment @to. */
typedef struct DSMAction {
    uint32_t to;
    DSMMsg msg;
} DSMAction;

/*
 * Counters.  Plain fields for now, updated by whoever serializes the
 * directory; they become Stat64 once several threads update them.
 */
typedef struct DSMDirStats {
    uint64_t requests;      /* REQs accepted */
    uint64_t queued;        /* of those, REQs that waited behind a busy page */
    uint64_t grants;        /* GRANTs sent (S and E) */
    uint64_t forwards;      /* FWDs sent (R and W) */
    uint64_t invalidations; /* INVs sent */
    uint64_t zero_fills;    /* DATA ZERO sent (S and E) */
    uint64_t commits;       /* DONEs accepted: transactions completed */
    uint64_t rejected;      /* peer events refused as protocol violations */
} DSMDirStats;

/* A snapshot of one page's entry, for tests, QMP and trace events. */
typedef struct DSMDirPageInfo {
    DSMDirMode mode;
    uint64_t holders;       /* bitmap of fragments holding a copy */
    uint32_t tid;           /* last transaction id handed out */
    uint32_t busy;          /* tid of the open transaction, or 0 */
    bool zero;              /* never written: no payload anywhere */
    uint32_t requester;     /* busy: who the open transaction serves */
    DSMAccess access;       /* busy: what it asked for */
    uint64_t inv_pending;   /* busy: INVs sent whose ACK is missing */
    uint32_t queued;        /* requests waiting behind the open one */
} DSMDirPageInfo;

typedef struct DSMDirectory DSMDirectory;

/*
 * dsm_dir_new: the directory of fragment @self (of @nr_fragments, at
 * most DSM_MAX_FRAGMENTS) for global pages [@first_page, @first_page +
 * @nr_pages).  Every page starts NONE, zero, with no holder.
 */
DSMDirectory *dsm_dir_new(uint32_t self, uint32_t nr_fragments,
                          uint64_t first_page, uint64_t nr_pages);
void dsm_dir_free(DSMDirectory *dir);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DSMDirectory, dsm_dir_free)

/*
 * The events.  Each validates its input against the directory first;
 * a protocol violation by a peer (page not homed here, duplicate REQ,
 * ACK or DONE that does not match the open transaction) returns false
 * with @errp set and changes nothing: no state, no action appended.
 * On success the actions to send, in order, are appended to @out (a
 * GArray of DSMAction).  Messages of one call to the same destination
 * must be sent in the order given.
 */
bool dsm_dir_request(DSMDirectory *dir, uint64_t page, uint32_t from,
                     DSMAccess access, GArray *out, Error **errp);
bool dsm_dir_ack(DSMDirectory *dir, uint64_t page, uint32_t tid,
                 uint32_t from, GArray *out, Error **errp);
bool dsm_dir_done(DSMDirectory *dir, uint64_t page, uint32_t tid,
                  uint32_t from, GArray *out, Error **errp);

/* dsm_dir_handle_msg: dispatch a decoded REQ, ACK or DONE from @from. */
bool dsm_dir_handle_msg(DSMDirectory *dir, uint32_t from, const DSMMsg *msg,
                        GArray *out, Error **errp);

/* dsm_dir_is_home: whether global @page is homed in @dir. */
bool dsm_dir_is_home(const DSMDirectory *dir, uint64_t page);

const DSMDirStats *dsm_dir_stats(const DSMDirectory *dir);
void dsm_dir_page_info(const DSMDirectory *dir, uint64_t page,
                       DSMDirPageInfo *info);
const char *dsm_dir_mode_name(DSMDirMode mode);

/*
 * dsm_dir_check_page: check the invariants of directory.c for @page;
 * on a violation return false with @errp saying which one.  A violation
 * is a bug in the directory, never a peer's doing.
 * dsm_dir_assert_page_state() aborts on one; the events call it on
 * every page they change.
 */
bool dsm_dir_check_page(const DSMDirectory *dir, uint64_t page,
                        Error **errp);
void dsm_dir_assert_page_state(const DSMDirectory *dir, uint64_t page);

#endif /* MIGRATION_DSM_DIRECTORY_H */
