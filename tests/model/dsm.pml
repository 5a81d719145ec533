/*
 * aggvm DSM: Promela model of the protocol as migration/dsm implements
 * it, with the TCG translated-code rule of patch 0010
 *
 * Copyright (c) 2026 The aggvm authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * What is modelled (README.md in this directory says more, and what is
 * left out):
 *
 *  - NF fragments (default 2), two guest pages: PC, a code page that
 *    vCPUs execute and write, and PF, a flag page they read and write.
 *    Each page has its home (HOME_C, HOME_F) running directory.c's state
 *    machine: mode, holders, zero ("written"), tid, the open transaction
 *    (requester, access, supplier, inv_pending, waiting) and its FIFO.
 *  - The links: one FIFO channel per ordered pair of fragments,
 *    including a fragment's link to itself (link.c delivers those through
 *    a local thread, through the same queue), each drained by its own
 *    receive thread, as link.c runs one per link.  Nothing orders two
 *    links.
 *  - Per fragment and page, dsm.c's local state: I/S/E, pend, want_write,
 *    the hold, the page lock; the hold queue and the hold thread.
 *  - Per fragment, TCG's view of the code page: the PageDesc, the epoch,
 *    the TB cache (at most one TB, as for one pc); per vCPU the exit
 *    request.  Each fragment has a vCPU that translates (t1..t7 of the
 *    rule), enters cached TBs, stores to the code page (stock notdirty
 *    invalidation) and reads and writes the flag page; -DV2 adds a
 *    second vCPU on fragment 0, -DDMA=f a second thread on fragment f
 *    that stores to the flag page.
 *
 * Properties (assertions; pan also reports deadlocks as invalid end
 * states):
 *
 *  P1  once a fragment has sent the ACK of an INV or the DATA of an
 *      FWD(W) for the code page, none of its vCPUs starts a TB
 *      translated from a copy taken before that give-up;
 *  P2  every TB a vCPU starts was translated from the latest value
 *      written to the code page anywhere (holds because a fragment's
 *      code stores come from one vCPU; off with STOCK_RACE);
 *  P3  message passing: a vCPU that read the flag and saw version v of
 *      the code (the writer set the flag after writing it) never starts
 *      a TB older than v;
 *  D1  single writer: E at one fragment means I everywhere else;
 *  D2  data value: a fragment holding a page has its latest value, and
 *      every read returns it;
 *  D3  the directory's own invariants (1)-(9) of directory.c after every
 *      event, its input checks never fail (a peer it would reject is a
 *      bug here), and an idle page's entry is exactly what the fragments
 *      hold;
 *  D4  the requester checks of dsm_handle_data/grant/fwd never fail.
 *
 * Broken variants, each with one -D macro (check runs them):
 *
 *  BROKEN_ACK_BEFORE_DROP  the give-up sends ACK/DATA right after the
 *                          discard, before the TB invalidation
 *  BROKEN_NO_EPOCH_CHECK   the translator links without the epoch check
 *  BROKEN_EPOCH_AFTER_COPY the translator reads the epoch after copying
 *  BROKEN_NO_DESC          the translator reads the epoch before making
 *                          sure the PageDesc exists
 *  BROKEN_NO_EXIT_REQUEST  the invalidation raises no exit request
 *                          (also: a TB that does not test it, CF_NOIRQ)
 *  BROKEN_GRANT_BEFORE_ACKS the home answers a write before the ACKs
 *  BROKEN_NO_WP            FWD(R) does not write-protect an E page
 *  BROKEN_RUN_ONCE         patch 0010 before cca5b72: a stale TB is
 *                          linked, invalidated at once and run once
 *  BROKEN_SYNC_IF_REMOVED  a give-up raises the exit request only if it
 *                          removed a TB itself (patch 0010 before 45cb739)
 *  STOCK_NOTDIRTY          no second invalidation after a store to the
 *                          code page (stock TCG, without patch 0014)
 *
 * Other knobs: NF, OPS (OPS0, OPS1, OPS2, OPSV per vCPU), HOME_C, HOME_F,
 * CAP, TIDMOD; NO_P1, NO_P2, NO_P3 drop a property (to see what the
 * others catch); with V2, STOCK_RACE lets fragment 0's two vCPUs store
 * to the code page (P2 is then off: it does not hold between two vCPUs
 * of one process).
 *
 * Atomic steps.  Each `atomic` below is one step that no other thread
 * can interleave with.  A step is made atomic only where the code holds
 * a lock that every conflicting thread takes too (the DSM page lock, the
 * directory lock, the TCG page lock, a link lock), or where it only
 * reads a value nobody else can change at that moment; the comments say
 * which.  Where the code holds the DSM page lock across several
 * actions that other threads (the vCPU, which takes no DSM lock)
 * observe between them, the give-up, the model splits them into steps
 * and keeps the lock in plk[] across them.
 */

/* ---- configuration */

#ifndef NF
#define NF      2               /* fragments */
#endif
#define NP      2               /* pages */
#define PC      0               /* the code page */
#define PF      1               /* the flag page */
#ifndef HOME_C
#define HOME_C  0
#endif
#ifndef HOME_F
#define HOME_F  (NF - 1)
#endif
#ifndef OPS
#define OPS     3               /* operations per vCPU ... */
#endif
#ifndef OPS0
#define OPS0    OPS             /* ... or per vCPU of fragment 0, 1, 2 */
#endif
#ifndef OPS1
#define OPS1    OPS
#endif
#ifndef OPS2
#define OPS2    OPS
#endif
#define OPSOF(c)        ((c) == 0 -> OPS0 : ((c) == 1 -> OPS1 : \
                         ((c) == 2 && NF > 2 -> OPS2 : OPSV)))
#ifndef OPSV
#define OPSV    OPS             /* ... or of the second vCPU (V2) */
#endif

/*
 * V2: a second vCPU on fragment 0, vCPU NF (vCPU c < NF is fragment c's
 * first).  Unless STOCK_RACE, fragment 0's vCPUs do not store to the code
 * page: two vCPUs of one fragment modifying code under each other is
 * stock TCG's business (see README.md), not the DSM's.
 */
#ifdef V2
#define NV      (NF + 1)
#define ALSO(f, stmt)   if :: (f) == 0 -> stmt :: else fi
#else
#define NV      NF
#define ALSO(f, stmt)   skip
#endif
/* epoch bump: every vCPU of f that has read the epoch sees it moved */
#define BUMP(f)         epok[f] = false; ALSO(f, epok[NF] = false)
#ifndef CAP
#define CAP     4               /* link capacity; asserted never reached */
#endif
#ifndef TIDMOD
#define TIDMOD  4               /* tids 1..TIDMOD-1, see dir_start */
#endif

/* What each vCPU may do, one of them per operation (see cpu()). */
#define OP_XC   1               /* execute the code page */
#define OP_WC   2               /* store to the code page */
#define OP_RF   3               /* read the flag page */
#define OP_WF   4               /* write the flag page */

/* ---- messages (wire.h DSM family), fields of a link channel */

mtype = { REQ, INV, ACK, FWD, DATA, GRANT, DONE };

/* DSMAccess (REQ, FWD) */
#define AR      0
#define AW      1
/* DSMLocalState, also DSMMode in DATA and GRANT (S_ or E_) */
#define I_      0
#define S_      1
#define E_      2
/* DSMPending */
#define PN      0
#define PR      1
#define PW      2
/* DSMDirMode */
#define DNONE   0
#define DSHARED 1
#define DEXCL   2

#define NOSUP   255             /* DSM_DIR_NO_SUPPLIER */

#define IX(f, p)        ((f) * NP + (p))
#define BIT(f)          (1 << (f))
#define HAS(m, f)       (((m) >> (f)) & 1)
#define HOMEOF(p)       ((p) == PC -> HOME_C : HOME_F)
#define LINK(a, b)      link[(a) * NF + (b)]

/* type, page, tid, arg (access or mode), target (FWD), value (DATA) */
chan link[NF * NF] = [CAP] of { mtype, byte, byte, byte, byte, byte };

/* ---- per fragment and page: DSMLocalPage, dsm.c */

byte st[NF * NP];               /* I_/S_/E_: also what the PTE allows */
byte pend[NF * NP];             /* our open request */
bool want[NF * NP];             /* want_write */
bool held[NF * NP];             /* hold_until not passed (giveup_first) */
bool plk[NF * NP];              /* page lock held across a give-up */
byte mem[NF * NP];              /* the page's contents here (0 if I) */

/* The hold queue: at most one INV or FWD per page can wait (asserted). */
mtype hq_t[NF * NP];
byte hq_src[NF * NP], hq_tid[NF * NP], hq_arg[NF * NP], hq_tgt[NF * NP];

/* ---- per page, at its home: DSMDirPage and DSMDirTxn, directory.c */

byte d_holders[NP];
byte d_mode[NP];
byte d_tid[NP];                 /* last tid handed out (TIDMOD) */
bool d_written[NP];             /* !zero */
bool t_open[NP];                /* pg->txn != NULL */
byte t_req[NP], t_acc[NP], t_sup[NP], t_invp[NP], t_wait[NP];
byte t_q[NP * NF];              /* FIFO of fragment << 1 | access */
byte t_qlen[NP];

/* ---- per fragment: TCG's state for the code page (patch 0010) */

bool desc[NF];                  /* the page's PageDesc exists */
/*
 * epok: the vCPU has read the epoch (t2) and no invalidation has bumped
 * it since.  Comparing the counter read at t2 with the counter at t5 is
 * exactly "no bump in between" (the counter does not wrap within a
 * run); this flag is that comparison without a counter that would make
 * otherwise equal states differ.
 */
bool epok[NV];
bool tbv[NF];                   /* a TB for the page is in the cache */
byte tbval[NF];                 /* the value it was translated from */
bool tbold[NF];                 /* ghost: its copy predates a give-up */
bool exitreq[NV];               /* icount_decr.u16.high = -1 */

/* ---- ghosts */

byte latest[NP];                /* last value written to the page */
/*
 * P1's ghosts.  xp[c] is where vCPU c is in an execution of the code
 * page (see cpu()); cpold[c] says its copy (xp 5, 6) and curold[c] the
 * TB it is about to enter (xp 4, 7) predate a give-up of the code page
 * by its fragment, as tbold[] does for the cached TB.  Flags rather
 * than a count of give-ups, which would grow without bound in the runs
 * where two fragments take a page from each other for ever.
 */
byte xp[NV];
bool cpold[NV];
bool curold[NV];

/*
 * P1's ghost update when fragment f sends the ACK or DATA that gives up
 * the code page: whatever TB or copy f has now predates the give-up.
 */
#define GAVE_UP(c) \
    cpold[c] = (cpold[c] || xp[c] == 5 || xp[c] == 6); \
    curold[c] = (curold[c] || xp[c] == 4 || xp[c] == 7)

inline gave_up(gav_f)
{
    tbold[gav_f] = tbv[gav_f];
    GAVE_UP(gav_f);
    ALSO(gav_f, GAVE_UP(NF))
}

/* ---- sending */

/*
 * dsm_links_send() never blocks (it queues); a full channel here would
 * be the model's limit, not the protocol's, so it is an error.
 */
inline send(sen_a, sen_b, sen_t, sen_p, sen_tid, sen_arg, sen_tgt, sen_v)
{
    assert(nfull(LINK(sen_a, sen_b)));
    LINK(sen_a, sen_b)!sen_t, sen_p, sen_tid, sen_arg, sen_tgt, sen_v
}

/* ---- the home directory (directory.c); all under its dir lock */

/* dsm_dir_check_page(): the invariants, after every event. */
inline dir_check(dir_p)
{
    /* (1) holders of existing fragments only */
    assert((d_holders[dir_p] >> NF) == 0);
    /* (2) NONE no holder, SHARED at least one, EXCL exactly one */
    assert(d_mode[dir_p] != DNONE || d_holders[dir_p] == 0);
    assert(d_mode[dir_p] != DSHARED || d_holders[dir_p] != 0);
    assert(d_mode[dir_p] != DEXCL ||
           (d_holders[dir_p] != 0 &&
            (d_holders[dir_p] & (d_holders[dir_p] - 1)) == 0));
    /* (3) zero implies not EXCL; (4) NONE implies zero */
    assert(d_written[dir_p] || d_mode[dir_p] != DEXCL);
    assert(!d_written[dir_p] || d_mode[dir_p] != DNONE);
    if
    :: t_open[dir_p] ->
        /* (6) waiting is the requester plus the queue, no duplicate */
        x = BIT(t_req[dir_p]);
        k = 0;
        do
        :: k < t_qlen[dir_p] ->
            assert(!HAS(x, t_q[dir_p * NF + k] >> 1));
            x = x | BIT(t_q[dir_p * NF + k] >> 1);
            k++
        :: else -> break
        od;
        assert(x == t_wait[dir_p]);
        /* (7) a supplier iff the requester has no copy and it is written */
        if
        :: !HAS(d_holders[dir_p], t_req[dir_p]) && d_written[dir_p] ->
            assert(t_sup[dir_p] != NOSUP && t_sup[dir_p] != t_req[dir_p] &&
                   HAS(d_holders[dir_p], t_sup[dir_p]))
        :: else -> assert(t_sup[dir_p] == NOSUP)
        fi;
        /* (9) INVs only for W, to holders but the requester, supplier */
        assert(t_invp[dir_p] == 0 || t_acc[dir_p] == AW);
        assert((t_invp[dir_p] & ~d_holders[dir_p]) == 0);
        assert(!HAS(t_invp[dir_p], t_req[dir_p]));
        assert(t_sup[dir_p] == NOSUP || !HAS(t_invp[dir_p], t_sup[dir_p]));
    :: else ->
        /* (8) an idle page has no queue */
        assert(t_qlen[dir_p] == 0)
    fi;
    x = 0; k = 0
}

/* dsm_dir_supply(): GRANT, DATA ZERO or FWD, decided on the directory. */
inline dir_supply(dir_p)
{
    if
    :: HAS(d_holders[dir_p], t_req[dir_p]) ->
        send(d, t_req[dir_p], GRANT, dir_p, d_tid[dir_p],
             (t_acc[dir_p] == AW -> E_ : S_), 0, 0)
    :: !HAS(d_holders[dir_p], t_req[dir_p]) && !d_written[dir_p] ->
        send(d, t_req[dir_p], DATA, dir_p, d_tid[dir_p],
             (t_acc[dir_p] == AW -> E_ : S_), 0, 0)
    :: !HAS(d_holders[dir_p], t_req[dir_p]) && d_written[dir_p] ->
        send(d, t_sup[dir_p], FWD, dir_p, d_tid[dir_p], t_acc[dir_p],
             t_req[dir_p], 0)
    fi
}

/* dsm_dir_start(): open a transaction for @from. */
inline dir_start(dir_p, dir_from, dir_acc)
{
    /*
     * dsm_dir_next_tid(): 32 bits that skip 0 when they wrap.  Here they
     * wrap at TIDMOD, so that runs in which two fragments take a page
     * from each other for ever have finitely many states; a stale ACK or
     * DONE TIDMOD - 1 transactions old would pass the tid check.
     */
    d_tid[dir_p] = (d_tid[dir_p] + 1 == TIDMOD -> 1 : d_tid[dir_p] + 1);
    t_req[dir_p] = dir_from;
    t_acc[dir_p] = dir_acc;
    t_invp[dir_p] = 0;
    /* dsm_dir_pick_supplier(): the home's own copy, else the lowest */
    if
    :: HAS(d_holders[dir_p], dir_from) || !d_written[dir_p] ->
        t_sup[dir_p] = NOSUP
    :: else ->
        if
        :: HAS(d_holders[dir_p], d) -> t_sup[dir_p] = d
        :: else ->
            k = 0;
            do
            :: !HAS(d_holders[dir_p], k) -> k++
            :: else -> break
            od;
            t_sup[dir_p] = k
        fi
    fi;
    /* dsm_dir_invalidate(): every copy but the requester's, supplier's */
    if
    :: dir_acc == AW ->
        x = d_holders[dir_p] & ~BIT(dir_from);
        if
        :: t_sup[dir_p] != NOSUP -> x = x & ~BIT(t_sup[dir_p])
        :: else
        fi;
        t_invp[dir_p] = x;
        k = 0;
        do
        :: k < NF ->
            if
            :: HAS(x, k) -> send(d, k, INV, dir_p, d_tid[dir_p], 0, 0, 0)
            :: else
            fi;
            k++
        :: else -> break
        od
    :: else
    fi;
#ifdef BROKEN_GRANT_BEFORE_ACKS
    /* Broken: answer at once; the ACKs are still counted. */
    dir_supply(dir_p);
#else
    if
    :: t_invp[dir_p] == 0 -> dir_supply(dir_p)
    :: else
    fi;
#endif
    x = 0; k = 0
}

/* dsm_dir_request() */
inline dir_request(dir_p, dir_from, dir_acc)
{
    /* dsm_dir_check_request(): a duplicate REQ closes the link */
    assert(!(t_open[dir_p] && HAS(t_wait[dir_p], dir_from)));
    if
    :: t_open[dir_p] ->
        t_q[dir_p * NF + t_qlen[dir_p]] = dir_from * 2 + dir_acc;
        t_qlen[dir_p]++;
        t_wait[dir_p] = t_wait[dir_p] | BIT(dir_from)
    :: else ->
        t_open[dir_p] = true;
        t_wait[dir_p] = BIT(dir_from);
        dir_start(dir_p, dir_from, dir_acc)
    fi;
    dir_check(dir_p)
}

/* dsm_dir_ack() */
inline dir_ack(dir_p, dir_from, dir_tid)
{
    /* dsm_dir_check_ack() */
    assert(t_open[dir_p] && dir_tid == d_tid[dir_p] &&
           HAS(t_invp[dir_p], dir_from));
    t_invp[dir_p] = t_invp[dir_p] & ~BIT(dir_from);
#ifndef BROKEN_GRANT_BEFORE_ACKS
    if
    :: t_invp[dir_p] == 0 -> dir_supply(dir_p)
    :: else
    fi;
#endif
    dir_check(dir_p)
}

/* dsm_dir_done(): commit, then start the head of the FIFO */
inline dir_done(dir_p, dir_from, dir_tid)
{
    /* dsm_dir_check_done() */
    assert(t_open[dir_p] && dir_tid == d_tid[dir_p] &&
           dir_from == t_req[dir_p] &&
           t_invp[dir_p] == 0);
    /* dsm_dir_commit() */
    if
    :: t_acc[dir_p] == AW ->
        d_holders[dir_p] = BIT(dir_from);
        d_mode[dir_p] = DEXCL;
        d_written[dir_p] = true
    :: t_acc[dir_p] == AR &&
       !(d_mode[dir_p] == DEXCL && d_holders[dir_p] == BIT(dir_from)) ->
        d_holders[dir_p] = d_holders[dir_p] | BIT(dir_from);
        d_mode[dir_p] = DSHARED
    :: else
    fi;
    t_wait[dir_p] = t_wait[dir_p] & ~BIT(dir_from);
    if
    :: t_qlen[dir_p] > 0 ->
        /* dsm_dir_dequeue(): the ring as a shifted array, same order */
        x = t_q[dir_p * NF];
        k = 0;
        do
        :: k + 1 < t_qlen[dir_p] ->
            t_q[dir_p * NF + k] = t_q[dir_p * NF + k + 1];
            k++
        :: else -> break
        od;
        t_q[dir_p * NF + k] = 0;
        t_qlen[dir_p]--;
        dir_start(dir_p, x >> 1, x & 1)
    :: else ->
        /* g_free(txn): clear what it held so equal states compare equal */
        t_open[dir_p] = false;
        t_req[dir_p] = 0; t_acc[dir_p] = 0; t_sup[dir_p] = 0;
        t_invp[dir_p] = 0;
        t_wait[dir_p] = 0
    fi;
    dir_check(dir_p)
}

/* ---- the requester side (dsm.c) */

/*
 * dsm_installed(): after DATA or GRANT, under the page lock: start the
 * hold, clear pend, DONE to the home, then the deferred upgrade.  The
 * DONE and the REQ(W) go on the same link, in that order, which the
 * directory relies on (else the REQ is a duplicate).
 */
inline installed(ins_f, ins_p, ins_tid)
{
    x = (want[IX(ins_f, ins_p)] && st[IX(ins_f, ins_p)] == S_);
    held[IX(ins_f, ins_p)] = true;
    pend[IX(ins_f, ins_p)] = PN;
    want[IX(ins_f, ins_p)] = false;
    send(ins_f, HOMEOF(ins_p), DONE, ins_p, ins_tid, 0, 0, 0);
    if
    :: x ->
        /* dsm_send_req(W) */
        pend[IX(ins_f, ins_p)] = PW;
        send(ins_f, HOMEOF(ins_p), REQ, ins_p, 0, AW, 0, 0)
    :: else
    fi;
    x = 0
}

/* dsm_handle_data(), under the page lock (the caller waits for it) */
inline handle_data(han_f, han_p, han_tid, han_mode, han_v)
{
    /* "unexpected DATA": a protocol violation */
    assert(pend[IX(han_f, han_p)] != PN && st[IX(han_f, han_p)] == I_);
    /* UFFDIO_COPY (MODE_WP for S) makes the PTE and wakes, then state */
    mem[IX(han_f, han_p)] = han_v;
    st[IX(han_f, han_p)] = han_mode;
    installed(han_f, han_p, han_tid)
}

/* dsm_handle_grant(), under the page lock */
inline handle_grant(han_f, han_p, han_tid, han_mode)
{
    /* "unexpected GRANT": a protocol violation */
    assert(pend[IX(han_f, han_p)] != PN && st[IX(han_f, han_p)] != I_);
    if
    :: han_mode == E_ && st[IX(han_f, han_p)] == S_ ->
        st[IX(han_f, han_p)] = E_
    :: else                     /* uffd_wakeup only */
    fi;
    installed(han_f, han_p, han_tid)
}

/*
 * dsm_fault() for an access needing @need that the PTE refuses, run by
 * the fault thread under the page lock.  The fault thread is folded into
 * the faulting vCPU: it handles the uffd message some time after the
 * fault, against the state it finds then, which is this step taken
 * later.  A fault that would change nothing (a request of ours is open
 * and would be answered) is not a step: the vCPU just sleeps until the
 * PTE lets it through.
 */
#define ALLOWED(f, p, need) \
    ((need) == PR -> st[IX(f, p)] != I_ : st[IX(f, p)] == E_)
#define CAN_FAULT(f, p, need) \
    (!plk[IX(f, p)] && !ALLOWED(f, p, need) && \
     (pend[IX(f, p)] == PN || \
      (pend[IX(f, p)] == PR && (need) == PW && !want[IX(f, p)])))

inline fault(fau_f, fau_p, fau_need)
{
    if
    :: pend[IX(fau_f, fau_p)] == PN ->
        pend[IX(fau_f, fau_p)] = fau_need;
        send(fau_f, HOMEOF(fau_p), REQ, fau_p, 0,
             (fau_need == PW -> AW : AR), 0, 0)
    :: else ->
        want[IX(fau_f, fau_p)] = true
    fi
}

/* ---- the holder side (dsm.c): INV and FWD, possibly held */

/* dsm_defer_if_held(): to the hold queue */
inline defer(def_f, def_s, def_t, def_p, def_tid, def_arg, def_tgt)
{
    assert(hq_t[IX(def_f, def_p)] == 0);
    hq_t[IX(def_f, def_p)] = def_t;
    hq_src[IX(def_f, def_p)] = def_s;
    hq_tid[IX(def_f, def_p)] = def_tid;
    hq_arg[IX(def_f, def_p)] = def_arg;
    hq_tgt[IX(def_f, def_p)] = def_tgt
}

/*
 * The first step of dsm_handle_inv() or dsm_handle_fwd(), under the
 * page lock, from a link thread or the hold thread.  The hold is time:
 * the model does not keep time, so while held[] is set the handler
 * either finds the hold still running (and defers) or finds it passed
 * (and clears held[]); the hold thread runs a message only once its
 * hold has passed.  After an INV with the page here or an FWD(W), the
 * lock stays held (plk) and gv says which step of the give-up is next:
 * 1 the TB invalidation, 2 the exit requests, 3 the send.
 *
 * Order of a give-up (dsm.c top comment, hazard 3): write-protect, copy,
 * discard, invalidate translated code, then send.  The write-protect,
 * the copy and the discard are one step here: between them a vCPU can
 * only read (the PTE is read-only from the first), and it reads the
 * value the copy takes.
 */
inline giveup_first(giv_f, giv_s, giv_t, giv_p, giv_tid, giv_arg, giv_tgt)
{
    if
    :: giv_t == INV && st[IX(giv_f, giv_p)] != I_ && held[IX(giv_f, giv_p)] ->
        defer(giv_f, giv_s, giv_t, giv_p, giv_tid, giv_arg, giv_tgt); gv = 9
    :: giv_t == FWD && held[IX(giv_f, giv_p)] ->
        /* dsm_handle_fwd() checks "does not hold" before the hold */
        assert(st[IX(giv_f, giv_p)] != I_);
        defer(giv_f, giv_s, giv_t, giv_p, giv_tid, giv_arg, giv_tgt); gv = 9
    :: else -> skip
    :: held[IX(giv_f, giv_p)] -> skip   /* the hold has passed */
    fi;
    if
    :: gv == 9 -> gv = 0
    :: else ->
        held[IX(giv_f, giv_p)] = false;
        if
        :: giv_t == INV && st[IX(giv_f, giv_p)] == I_ ->
            /* not here (any more): just ACK, nothing to discard */
            send(giv_f, giv_s, ACK, giv_p, giv_tid, 0, 0, 0);
            if :: giv_p == PC -> gave_up(giv_f) :: else fi
        :: giv_t == INV && st[IX(giv_f, giv_p)] != I_ ->
            /* dsm_discard(): ram_block_discard_range() */
            st[IX(giv_f, giv_p)] = I_;
            mem[IX(giv_f, giv_p)] = 0;
            plk[IX(giv_f, giv_p)] = true;
            gv = (giv_p == PC -> 1 : 3)
        :: giv_t == FWD ->
            /* "FWD for page ... which this fragment does not hold" */
            assert(st[IX(giv_f, giv_p)] != I_);
#ifndef BROKEN_NO_WP
            if
            :: st[IX(giv_f, giv_p)] == E_ ->
                st[IX(giv_f, giv_p)] = S_       /* write-protect */
            :: else
            fi;
#endif
            v = mem[IX(giv_f, giv_p)];                          /* the copy */
            if
            :: giv_arg == AR ->
                send(giv_f, giv_tgt, DATA, giv_p, giv_tid, S_, 0, v)
            :: else ->
                st[IX(giv_f, giv_p)] = I_;      /* dsm_discard() */
                mem[IX(giv_f, giv_p)] = 0;
                plk[IX(giv_f, giv_p)] = true;
                gv = (giv_p == PC -> 1 : 3)
            fi
        fi;
#ifdef BROKEN_ACK_BEFORE_DROP
        /* Broken: the answer leaves before the TBs are dropped. */
        if
        :: gv == 1 ->
            if
            :: giv_t == INV -> send(giv_f, giv_s, ACK, giv_p, giv_tid, 0, 0, 0)
            :: else -> send(giv_f, giv_tgt, DATA, giv_p, giv_tid, E_, 0, v)
            fi;
            gave_up(giv_f)
        :: else
        fi
#endif
    fi
}

/*
 * Step 1 of the give-up of the code page: tb_invalidate_phys_range_sync()
 * -> tb_invalidate_phys_page_range__locked(): under the TCG page lock,
 * bump the epoch and remove the page's TBs.  One step: the translator's
 * check-and-link (t4..t7) holds the same lock, and the vCPU's lookup
 * sees the TB either still there or gone.  No PageDesc: no lock, no
 * bump, and no TB either.
 */
inline tb_invalidate(tb__f)
{
    if
    :: desc[tb__f] ->
        BUMP(tb__f);
        removed = tbv[tb__f];
        tbv[tb__f] = false; tbval[tb__f] = 0; tbold[tb__f] = false
    :: else -> removed = false
    fi
}

/* The rest of a give-up, gv = 1, 2, 3; the page lock is still held. */
inline giveup_rest(giv_f, giv_s, giv_t, giv_p, giv_tid, giv_tgt)
{
    if
    :: gv == 1 ->
        tb_invalidate(giv_f);
        gv = 2
    :: gv == 2 ->
        /*
         * then the exit request on every vCPU, whenever the page has a
         * PageDesc, even if this call removed nothing: a local store's
         * invalidation, which raises none, may have removed the TB a
         * vCPU is about to enter.  BROKEN_SYNC_IF_REMOVED: only if this
         * call removed a TB (patch 0010 as first written).
         */
#ifndef BROKEN_NO_EXIT_REQUEST
        if
#ifndef BROKEN_SYNC_IF_REMOVED
        :: desc[giv_f] ->
            exitreq[giv_f] = true; ALSO(giv_f, exitreq[NF] = true)
        :: else
#else
        :: removed -> exitreq[giv_f] = true; ALSO(giv_f, exitreq[NF] = true)
        :: else
#endif
        fi;
#endif
        removed = false;
        gv = 3
    :: gv == 3 ->
#ifdef BROKEN_ACK_BEFORE_DROP
        if
        :: giv_p == PF ->
#endif
        if
        :: giv_t == INV -> send(giv_f, giv_s, ACK, giv_p, giv_tid, 0, 0, 0)
        :: else -> send(giv_f, giv_tgt, DATA, giv_p, giv_tid, E_, 0, v)
        fi;
        if :: giv_p == PC -> gave_up(giv_f) :: else fi;
#ifdef BROKEN_ACK_BEFORE_DROP
        :: else
        fi;
#endif
        plk[IX(giv_f, giv_p)] = false;
        gv = 0
    fi
}

/* ---- threads */

/*
 * The receive thread of link s -> d: takes the next message in link
 * order and handles it to the end before the next (dsm_recv() on the
 * link's thread).  A message whose page lock is held waits for it
 * (atomicity is lost only there, with the message taken).
 */
proctype rx(byte s; byte d)
{
    mtype t;
    byte p, tid, arg, tgt, v, x, k, gv;
    bool removed;

end_rx:
    do
    :: atomic {
        gv == 0 && nempty(LINK(s, d)) ->
        LINK(s, d)?t, p, tid, arg, tgt, v;
        if
        :: t == REQ || t == ACK || t == DONE ->
            /* dsm_handle_home(), under the dir lock */
            assert(d == HOMEOF(p));
            if
            :: t == REQ -> dir_request(p, s, arg)
            :: t == ACK -> dir_ack(p, s, tid)
            :: t == DONE -> dir_done(p, s, tid)
            fi
        :: t == DATA ->
            !plk[IX(d, p)];
            handle_data(d, p, tid, arg, v)
        :: t == GRANT ->
            !plk[IX(d, p)];
            handle_grant(d, p, tid, arg)
        :: t == INV || t == FWD ->
            !plk[IX(d, p)];
            giveup_first(d, s, t, p, tid, arg, tgt)
        fi;
        if
        :: gv == 0 -> t = 0; p = 0; tid = 0; arg = 0; tgt = 0; v = 0
        :: else
        fi
       }
    :: atomic {
        gv != 0;
        giveup_rest(d, s, t, p, tid, tgt);
        if
        :: gv == 0 -> t = 0; p = 0; tid = 0; arg = 0; tgt = 0; v = 0
        :: else
        fi
       }
    od
}

/*
 * dsm_hold_thread(): runs a deferred INV or FWD once its page's hold has
 * passed, through dsm_recv(), like a link thread.  dsm_next_due() takes
 * the first due message in arrival order; with the due times left free,
 * any waiting message may be the first due.
 */
proctype hold(byte d)
{
    mtype t;
    byte s, p, tid, arg, tgt, v, gv;
    bool removed;

end_hold:
    do
    :: atomic {
        gv == 0 && (hq_t[IX(d, PC)] != 0 || hq_t[IX(d, PF)] != 0) ->
        if
        :: hq_t[IX(d, PC)] != 0 -> p = PC
        :: hq_t[IX(d, PF)] != 0 -> p = PF
        fi;
        t = hq_t[IX(d, p)]; s = hq_src[IX(d, p)]; tid = hq_tid[IX(d, p)];
        arg = hq_arg[IX(d, p)]; tgt = hq_tgt[IX(d, p)];
        hq_t[IX(d, p)] = 0; hq_src[IX(d, p)] = 0; hq_tid[IX(d, p)] = 0;
        hq_arg[IX(d, p)] = 0; hq_tgt[IX(d, p)] = 0;
        held[IX(d, p)] = false;         /* it is due */
        !plk[IX(d, p)];
        giveup_first(d, s, t, p, tid, arg, tgt);
        if
        :: gv == 0 -> t = 0; s = 0; p = 0; tid = 0; arg = 0; tgt = 0; v = 0
        :: else
        fi
       }
    :: atomic {
        gv != 0;
        giveup_rest(d, s, t, p, tid, tgt);
        if
        :: gv == 0 -> t = 0; s = 0; p = 0; tid = 0; arg = 0; tgt = 0; v = 0
        :: else
        fi
       }
    od
}

/*
 * vCPU c of fragment me: OPSOF(c) operations, each any of the four.
 * tv is the TB it is about to enter (its value), cv its translator's
 * copy, seen the newest code version it knows (P3).  xp[c] is where an
 * execution of the code page is:
 *   1 cpu_exec() loop: clear the exit request, tb_lookup()
 *   2 tb_gen_code() again after a stale translation: t1, t2
 *   3 t3: copy the page (faults while it is not here)
 *   6 (BROKEN_EPOCH_AFTER_COPY only) t2 after the copy
 *   5 t4..t7: lock, compare the epoch, link, unlock
 *   7 (BROKEN_RUN_ONCE only) after the link, before the late check
 *   4 the TB's first instruction (gen_tb_start()): test the exit request
 */
proctype cpu(byte c; byte me)
{
    byte n, op, tv, cv, seen;

    do
    :: n < OPSOF(c) ->
        if
        :: op = OP_XC
#if defined(V2) && !defined(STOCK_RACE)
        :: me != 0 -> op = OP_WC
#else
        :: op = OP_WC
#endif
        :: op = OP_RF
        :: op = OP_WF
        fi;
        if
        :: op == OP_RF ->
            do
            :: atomic {
                st[IX(me, PF)] != I_ ->
                assert(mem[IX(me, PF)] == latest[PF]);          /* D2 */
                if
                :: mem[IX(me, PF)] > seen -> seen = mem[IX(me, PF)]
                :: else
                fi;
                break
               }
            :: atomic { CAN_FAULT(me, PF, PR) -> fault(me, PF, PR) }
            od
        :: op == OP_WF ->
            /* publish the newest code version this vCPU knows */
            do
            :: atomic {
                st[IX(me, PF)] == E_ ->
                mem[IX(me, PF)] = seen;
                latest[PF] = seen;
                break
               }
            :: atomic { CAN_FAULT(me, PF, PW) -> fault(me, PF, PW) }
            od
        :: op == OP_WC ->
            /*
             * A store to a page with TBs goes through notdirty_write():
             * tb_invalidate_phys_range_fast() (epoch bump and removal
             * under the page lock, no exit request), then the store; a
             * store to a page without TBs is a plain store.  Then (patch
             * 0014) the store helper invalidates once more, as a step of
             * its own, if the page has a PageDesc: a vCPU that translated
             * between the first invalidation and the store linked a TB
             * from the bytes before it.  STOCK_NOTDIRTY: without that
             * second invalidation (stock TCG).  Only visible with two
             * vCPUs on the fragment storing and executing (STOCK_RACE).
             */
            do
            :: atomic {
                st[IX(me, PC)] == E_ && !tbv[me] ->
                latest[PC]++;
                mem[IX(me, PC)] = latest[PC];
                seen = latest[PC];
                break
               }
            :: atomic {
                st[IX(me, PC)] == E_ && tbv[me] ->
                BUMP(me);
                tbv[me] = false; tbval[me] = 0; tbold[me] = false
               }
            :: atomic { CAN_FAULT(me, PC, PW) -> fault(me, PC, PW) }
            od;
#ifndef STOCK_NOTDIRTY
            atomic {
                if
                :: desc[me] ->
                    BUMP(me);
                    tbv[me] = false; tbval[me] = 0; tbold[me] = false
                :: else
                fi
            }
#endif
        :: op == OP_XC ->
            xp[c] = 1;
            do
            :: atomic {
                /* the loop clears the request before it looks up */
                xp[c] == 1 ->
                exitreq[c] = false;
                if
                :: tbv[me] -> tv = tbval[me]; curold[c] = tbold[me]; xp[c] = 4
                :: else ->
                    /* miss: tb_gen_code(), t1 and t2 */
#ifndef BROKEN_NO_DESC
                    desc[me] = true;
#endif
#ifndef BROKEN_EPOCH_AFTER_COPY
                    epok[c] = true;
#endif
                    xp[c] = 3
                fi
               }
            :: atomic {
                xp[c] == 2 ->
#ifndef BROKEN_NO_DESC
                desc[me] = true;
#endif
#ifndef BROKEN_EPOCH_AFTER_COPY
                epok[c] = true;
#endif
                xp[c] = 3
               }
            :: atomic {
                /* t3: the copy; the fault takes no TCG lock */
                xp[c] == 3 && st[IX(me, PC)] != I_ ->
                cv = mem[IX(me, PC)];
                cpold[c] = false;
#ifdef BROKEN_EPOCH_AFTER_COPY
                xp[c] = 6
#else
                xp[c] = 5
#endif
               }
#ifdef BROKEN_EPOCH_AFTER_COPY
            :: atomic { xp[c] == 6 -> epok[c] = true; xp[c] = 5 }
#endif
            :: atomic {
                xp[c] == 3 && CAN_FAULT(me, PC, PR) -> fault(me, PC, PR)
               }
            :: atomic {
                /*
                 * t4..t7 hold the TCG page lock, so nothing that bumps
                 * the epoch or touches the TB list runs in between.
                 */
                xp[c] == 5 ->
#ifdef BROKEN_NO_DESC
                desc[me] = true;        /* tb_lock_page0() allocates it */
#endif
#if !defined(BROKEN_NO_EPOCH_CHECK) && !defined(BROKEN_RUN_ONCE)
                if
                :: !epok[c] ->
                    /* tb_code_snapshot_stale(): drop it, start over */
                    cv = 0; cpold[c] = false; xp[c] = 2
                :: else
                fi;
#endif
                if
                :: xp[c] == 5 ->
                    if
                    :: !tbv[me] ->
                        tbv[me] = true; tbval[me] = cv; tbold[me] = cpold[c]
                    :: else             /* tb_link_page(): existing TB */
                    fi;
                    tv = tbval[me]; curold[c] = tbold[me];
                    cv = 0; cpold[c] = false;
#ifdef BROKEN_RUN_ONCE
                    xp[c] = 7
#else
                    xp[c] = 4;
                    epok[c] = false
#endif
                :: else -> epok[c] = false
                fi
               }
#ifdef BROKEN_RUN_ONCE
            :: atomic {
                /*
                 * Patch 0010 before cca5b72: after tb_link_page(), with
                 * the lock dropped, a stale TB is invalidated (no exit
                 * request), and the translator still enters it once.
                 * (Approximation: it drops whatever TB of that value is
                 * cached, ours or one equal to it.)
                 */
                xp[c] == 7 ->
                if
                :: !epok[c] && tbv[me] && tbval[me] == tv ->
                    tbv[me] = false; tbval[me] = 0; tbold[me] = false
                :: else
                fi;
                epok[c] = false;
                xp[c] = 4
               }
#endif
            :: atomic {
                xp[c] == 4 ->
                if
                :: exitreq[c] ->
                    /* TB_EXIT_REQUESTED at its first instruction */
                    tv = 0; curold[c] = false; xp[c] = 1
                :: else ->
                    /* the TB starts: it runs what it was translated from */
#ifndef NO_P1
                    assert(!curold[c]);                         /* P1 */
#endif
#if !defined(STOCK_RACE) && !defined(NO_P2)
                    assert(tv == latest[PC]);                   /* P2 */
#endif
#ifndef NO_P3
                    assert(tv >= seen);                         /* P3 */
#endif
                    seen = tv;
                    tv = 0; xp[c] = 0;
                    break
                fi
               }
            od
        fi;
        op = 0;
        n++
    :: else -> break
    od
}

#ifdef DMA
/*
 * A second thread on fragment DMA that needs write access to the flag
 * page once (a device model or the main loop storing into guest RAM;
 * it stores the value already there, so the properties' values are
 * unchanged).  It is what makes a write fault come while this
 * fragment's read request is open (want_write), and so the upgrade that
 * dsm_installed() sends right after the DONE: with one thread per
 * fragment that path cannot happen.
 */
proctype dma(byte me)
{
    do
    :: atomic {
        st[IX(me, PF)] == E_ ->
        assert(mem[IX(me, PF)] == latest[PF]);
        break
       }
    :: atomic { CAN_FAULT(me, PF, PW) -> fault(me, PF, PW) }
    od
}
#endif

/*
 * D1, D2 and the idle part of D3 in every state.  The monitor's only
 * statement is enabled only when they fail, so it adds no states.
 */
#define OWN(f, p) \
    (st[IX(f, p)] == I_ || mem[IX(f, p)] == latest[p])
#define SOLE(f, g, p) \
    (f == g || st[IX(f, p)] != E_ || st[IX(g, p)] == I_)
#define IDLE(f, p) \
    (t_open[p] || \
     (HAS(d_holders[p], f) == (st[IX(f, p)] != I_) && \
      ((st[IX(f, p)] == E_) == (HAS(d_holders[p], f) && d_mode[p] == DEXCL))))
#define FOR_F(P, p)     (P(0, p) && P(1, p) && (NF < 3 || P(2, p)))
#define D1_F(f, p)      (SOLE(f, 0, p) && SOLE(f, 1, p) && \
                         (NF < 3 || SOLE(f, 2, p)))
#define D1      (FOR_F(D1_F, PC) && FOR_F(D1_F, PF))
#define D2      (FOR_F(OWN, PC) && FOR_F(OWN, PF))
#define D3      (FOR_F(IDLE, PC) && FOR_F(IDLE, PF))

active proctype monitor()
{
    bool single_writer, data_value, idle_entry;

end_mon:
    atomic {
        !(D1 && D2 && D3) ->
        /* named, so that pan's message says which */
        single_writer = D1;
        data_value = D2;
        idle_entry = D3;        /* an idle page's entry = what is held */
        assert(single_writer);
        assert(data_value);
        assert(idle_entry)
    }
}

init {
    byte i, j;

    atomic {
        i = 0;
        do
        :: i < NF ->
            j = 0;
            do
            :: j < NF -> run rx(j, i); j++
            :: else -> break
            od;
            run hold(i);
            run cpu(i, i);
            i++
        :: else -> break
        od;
#ifdef V2
        run cpu(NF, 0);
#endif
#ifdef DMA
        run dma(DMA);
#endif
        i = 0; j = 0
    }
}
