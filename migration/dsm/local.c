/*
 * aggvm DSM: a page as one fragment holds it
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * later.  See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/*
 * The requester and holder side of the protocol for one page at one
 * fragment, as directory.c is the home's: pure (no userfaultfd, no
 * clock, no links), so that the unit tests drive it alone.  Each
 * transition updates the page and says which steps the engine (dsm.c)
 * must carry out, in DSMLocalStep order, under the page lock.
 *
 * Assumptions:
 * - The caller serializes the events of one page (its page lock).
 * - Messages come from peers that may be buggy.  A transition that can
 *   meet one that makes no sense here checks first and changes nothing
 *   when it refuses.
 * - A fault is a hint: the page may already be usable (another thread
 *   faulted first), and then the faulting thread is only woken.
 * - The home answers each REQ with DATA or GRANT; a fragment has at
 *   most one request open per page, and asks for W only once the R it
 *   has open is answered (want_write remembers the write fault).
 *
 * INVARIANTS (dsm_local_check())
 *
 *  (1) state is I, S or E and pend is NONE, R or W.
 *  (2) want_write implies pend R: it is the write that must follow it.
 *  (3) pend R implies state I: a page held at all needs no read.
 *  (4) state E implies pend NONE: a page held writable needs nothing.
 *
 * TRANSITIONS (one function each)
 *
 *  fault   E, or S for a read: wake.  No request open: open one (REQ).
 *          A read open and this is a write: remember it (want_write).
 *  DATA    only with a request open and the page I: install it S or E,
 *          then DONE, then REQ(W) if a write waited (want_write on S).
 *  GRANT   only with a request open and the page held: S to E
 *          (unprotect), else wake; then DONE as DATA does.
 *  INV     held and installed too recently (the hold): defer.  Else
 *          discard the page if held, and ACK in every case (an INV for
 *          a copy already dropped is still answered).
 *  FWD     only for a page held; held too recently: defer.  E is
 *          write-protected first (no local write after the copy), the
 *          page is copied, then for W discarded; DATA(E) for W, DATA(S)
 *          for R, which leaves S here.
 *  cut off the links are gone: serve the page here, writable (zeroes
 *          if it was not here), and forget the open request.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "migration/dsm/local.h"

static const char *const dsm_local_state_names[] = { "I", "S", "E" };
static const char *const dsm_pend_names[] = { "none", "R", "W" };

static const char *state_name(const DSMLocalPage *p)
{
    return p->state <= DSM_LOCAL_E ? dsm_local_state_names[p->state] : "?";
}

static const char *pend_name(const DSMLocalPage *p)
{
    return p->pend <= DSM_PEND_W ? dsm_pend_names[p->pend] : "?";
}

bool dsm_local_check(const DSMLocalPage *p, Error **errp)
{
    if (p->state > DSM_LOCAL_E || p->pend > DSM_PEND_W) {
        error_setg(errp, "state %u or request %u out of range (1)",
                   p->state, p->pend);
    } else if (p->want_write && p->pend != DSM_PEND_R) {
        error_setg(errp, "a write waits with request %s open (2)",
                   pend_name(p));
    } else if (p->pend == DSM_PEND_R && p->state != DSM_LOCAL_I) {
        error_setg(errp, "a read is open for a page held %s (3)",
                   state_name(p));
    } else if (p->state == DSM_LOCAL_E && p->pend != DSM_PEND_NONE) {
        error_setg(errp, "request %s open for a page held E (4)",
                   pend_name(p));
    } else {
        return true;
    }
    return false;
}

static void dsm_local_request(DSMLocalPage *p, DSMPending need, int64_t now,
                              DSMLocalResult *res)
{
    p->pend = need;
    p->fault_ns = now;
    res->steps |= DSM_STEP_SEND_REQ;
    res->req = need;
}

void dsm_local_fault(DSMLocalPage *p, DSMPending need, int64_t now,
                     DSMLocalResult *res)
{
    *res = (DSMLocalResult) { };
    if (p->state == DSM_LOCAL_E ||
        (p->state == DSM_LOCAL_S && need == DSM_PEND_R)) {
        res->steps = DSM_STEP_WAKE;
    } else if (p->pend == DSM_PEND_NONE) {
        dsm_local_request(p, need, now, res);
    } else if (p->pend == DSM_PEND_R && need == DSM_PEND_W) {
        p->want_write = true;
    }
}

/* After DATA or GRANT: hold it, DONE, then the write that waited. */
static void dsm_local_installed(DSMLocalPage *p, int64_t now,
                                int64_t hold_ns, DSMLocalResult *res)
{
    bool upgrade = p->want_write && p->state == DSM_LOCAL_S;

    res->waited_ns = now - p->fault_ns;
    p->hold_until = now + hold_ns;
    p->pend = DSM_PEND_NONE;
    p->want_write = false;
    res->steps |= DSM_STEP_SEND_DONE;
    if (upgrade) {
        dsm_local_request(p, DSM_PEND_W, now, res);
    }
}

bool dsm_local_data(DSMLocalPage *p, uint64_t page, DSMMode mode,
                    int64_t now, int64_t hold_ns, DSMLocalResult *res,
                    Error **errp)
{
    *res = (DSMLocalResult) { };
    if (p->pend == DSM_PEND_NONE || p->state != DSM_LOCAL_I) {
        error_setg(errp, "unexpected DATA for page 0x%" PRIx64
                   " (local state %s, request %s)", page, state_name(p),
                   pend_name(p));
        return false;
    }
    p->state = mode == DSM_MODE_SHARED ? DSM_LOCAL_S : DSM_LOCAL_E;
    res->steps = DSM_STEP_INSTALL;
    res->mode = mode;
    dsm_local_installed(p, now, hold_ns, res);
    return true;
}

bool dsm_local_grant(DSMLocalPage *p, uint64_t page, DSMMode mode,
                     int64_t now, int64_t hold_ns, DSMLocalResult *res,
                     Error **errp)
{
    *res = (DSMLocalResult) { };
    if (p->pend == DSM_PEND_NONE || p->state == DSM_LOCAL_I) {
        error_setg(errp, "unexpected GRANT for page 0x%" PRIx64
                   " (local state %s, request %s)", page, state_name(p),
                   pend_name(p));
        return false;
    }
    if (mode == DSM_MODE_EXCL && p->state == DSM_LOCAL_S) {
        res->steps = DSM_STEP_UNPROTECT;
        p->state = DSM_LOCAL_E;
    } else {
        res->steps = DSM_STEP_WAKE;
    }
    dsm_local_installed(p, now, hold_ns, res);
    return true;
}

void dsm_local_inv(DSMLocalPage *p, int64_t now, DSMLocalResult *res)
{
    *res = (DSMLocalResult) { };
    if (p->state != DSM_LOCAL_I && now < p->hold_until) {
        res->steps = DSM_STEP_DEFER;
        return;
    }
    if (p->state != DSM_LOCAL_I) {
        res->steps |= DSM_STEP_DISCARD;
        p->state = DSM_LOCAL_I;
    }
    res->steps |= DSM_STEP_SEND_ACK;
}

bool dsm_local_fwd(DSMLocalPage *p, uint64_t page, DSMAccess access,
                   int64_t now, DSMLocalResult *res, Error **errp)
{
    *res = (DSMLocalResult) { };
    if (p->state == DSM_LOCAL_I) {
        error_setg(errp, "FWD for page 0x%" PRIx64 " which this fragment "
                   "does not hold", page);
        return false;
    }
    if (now < p->hold_until) {
        res->steps = DSM_STEP_DEFER;
        return true;
    }
    if (p->state == DSM_LOCAL_E) {
        res->steps |= DSM_STEP_PROTECT;     /* no local write after the copy */
        p->state = DSM_LOCAL_S;
    }
    res->steps |= DSM_STEP_COPY | DSM_STEP_SEND_DATA;
    if (access == DSM_ACCESS_WRITE) {
        res->steps |= DSM_STEP_DISCARD;
        p->state = DSM_LOCAL_I;
        res->mode = DSM_MODE_EXCL;
    } else {
        res->mode = DSM_MODE_SHARED;
    }
    return true;
}

void dsm_local_cut_off(DSMLocalPage *p, DSMLocalResult *res)
{
    *res = (DSMLocalResult) { };
    if (p->state == DSM_LOCAL_I) {
        res->steps = DSM_STEP_INSTALL_ZERO;
    } else if (p->state == DSM_LOCAL_S) {
        res->steps = DSM_STEP_UNPROTECT;
    } else {
        res->steps = DSM_STEP_WAKE;
    }
    p->state = DSM_LOCAL_E;
    p->pend = DSM_PEND_NONE;
    p->want_write = false;
}
