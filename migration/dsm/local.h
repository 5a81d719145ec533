/*
 * aggvm DSM: a page as one fragment holds it (the requester and holder
 * side of the protocol)
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef MIGRATION_DSM_LOCAL_H
#define MIGRATION_DSM_LOCAL_H

#include "migration/dsm/wire.h"

/* What this fragment may do with the page. */
typedef enum DSMLocalState {
    DSM_LOCAL_I,                /* nothing: not mapped here */
    DSM_LOCAL_S,                /* read: mapped write-protected */
    DSM_LOCAL_E,                /* read and write: mapped writable */
} DSMLocalState;

/* The request this fragment has open at the page's home. */
typedef enum DSMPending {
    DSM_PEND_NONE,
    DSM_PEND_R,
    DSM_PEND_W,
} DSMPending;

/* One guest page as this fragment sees it; under its page lock. */
typedef struct DSMLocalPage {
    uint8_t state;              /* DSMLocalState */
    uint8_t pend;               /* DSMPending: our open request */
    bool want_write;            /* a write fault came while pend == R */
    int64_t fault_ns;           /* when the open request was sent */
    int64_t hold_until;         /* no INV/FWD takes it before this */
} DSMLocalPage;

/*
 * The steps a transition asks of the engine (dsm.c), which carries them
 * out under the page lock in this order, the order of a give-up
 * (review, hazard 3: write-protect, copy, discard, then send) and of an
 * install (install, then DONE, then any next request):
 */
typedef enum DSMLocalStep {
    DSM_STEP_DEFER = 1 << 0,        /* held: queue the message, do nothing */
    DSM_STEP_PROTECT = 1 << 1,      /* write-protect the mapped page */
    DSM_STEP_COPY = 1 << 2,         /* copy it out, for DATA */
    DSM_STEP_DISCARD = 1 << 3,      /* unmap it and drop its translations */
    DSM_STEP_INSTALL = 1 << 4,      /* map the received contents (wakes) */
    DSM_STEP_INSTALL_ZERO = 1 << 5, /* map zeroes, writable (wakes) */
    DSM_STEP_UNPROTECT = 1 << 6,    /* make it writable (wakes writers) */
    DSM_STEP_WAKE = 1 << 7,         /* wake the threads faulting on it */
    DSM_STEP_SEND_DONE = 1 << 8,    /* DONE to the home */
    DSM_STEP_SEND_REQ = 1 << 9,     /* REQ(@req) to the home */
    DSM_STEP_SEND_ACK = 1 << 10,    /* ACK to the INV's sender */
    DSM_STEP_SEND_DATA = 1 << 11,   /* DATA(@mode) to the FWD's target */
} DSMLocalStep;

typedef struct DSMLocalResult {
    unsigned steps;             /* DSMLocalStep bits */
    DSMMode mode;               /* INSTALL: S (protected) or E; SEND_DATA */
    DSMPending req;             /* SEND_REQ: R or W */
    int64_t waited_ns;          /* SEND_DONE: since the request was sent */
} DSMLocalResult;

/*
 * The transitions.  Each updates @p and fills @res; @now is the
 * caller's clock (ns), @hold_ns how long an installed page stays before
 * an INV or FWD may take it, @page names the page in errors.  Those
 * that can meet a message that makes no sense in the page's state
 * return false with @errp set and leave @p as it was: a protocol
 * violation by the sender.
 *
 * State diagram (pend, the open request, beside it):
 *
 *   I --fault--> I,pend  --DATA(S)--> S    --DATA(E)--> E
 *   S --write fault--> S,pend W --GRANT(E)--> E
 *   S,E --INV--> I (ACK)           E --FWD(R)--> S (DATA(S))
 *   S,E --FWD(W)--> I (DATA(E))    any --cut off--> E, no pend
 */
void dsm_local_fault(DSMLocalPage *p, DSMPending need, int64_t now,
                     DSMLocalResult *res);
bool dsm_local_data(DSMLocalPage *p, uint64_t page, DSMMode mode,
                    int64_t now, int64_t hold_ns, DSMLocalResult *res,
                    Error **errp);
bool dsm_local_grant(DSMLocalPage *p, uint64_t page, DSMMode mode,
                     int64_t now, int64_t hold_ns, DSMLocalResult *res,
                     Error **errp);
void dsm_local_inv(DSMLocalPage *p, int64_t now, DSMLocalResult *res);
bool dsm_local_fwd(DSMLocalPage *p, uint64_t page, DSMAccess access,
                   int64_t now, DSMLocalResult *res, Error **errp);
void dsm_local_cut_off(DSMLocalPage *p, DSMLocalResult *res);

/*
 * dsm_local_check: do @p's fields hold the invariants written at the
 * top of local.c?  False, with @errp naming the broken one, if not.
 */
bool dsm_local_check(const DSMLocalPage *p, Error **errp);

#endif /* MIGRATION_DSM_LOCAL_H */
