/*
 * shared-lease.pml -- Promela model of lease-core's lock-free shared lease.
 *
 * The design is in docs/shared-lease.md. One lease is two 64-bit words in a
 * shared WebAssembly.Memory:
 *
 *   W = (q << GEN_BITS) | (gen mod 2^GEN_BITS)   every extend/invalidate is one cmpxchg on W
 *   H = full generation, a lower bound of the    bumped (atomic add) after an invalidate's cmpxchg
 *       true one (lags by invalidations in flight)
 *
 * The model keeps the word as the pair (Eq, Wg), always read and written together
 * inside one atomic step (that is what one i64.atomic.load / i64.atomic.rmw.cmpxchg
 * does). Time is abstract: an expiry is a number 1..MAXQ in quantum units, 0 = no
 * lease, and a reader treats every nonzero expiry as valid (the worst case: "now" is
 * earlier than every expiry). The generation field is gen mod M with M = 2^K tiny, so
 * wraparound of the field is exercised: the initial generation is any value 0..M-1.
 *
 * Processes: two writers (each does NOPS operations, each either invalidate() or
 * "sample generation(); <quorum operation>; extend(u, sample)" with u chosen
 * nondeterministically, so equal expiries -- the clock tie -- are explored), one
 * reader looping forever on the two-load snapshot (H then W), and a monitor for the
 * state invariants.
 *
 * Invariants (each an assertion on a named boolean, so a violation names it):
 *   inv1_no_resurrection   (a) an extend's cmpxchg only succeeds when its sample is the
 *                              current generation; (b) state: a nonzero expiry was installed
 *                              by an extend whose sample is >= the generation produced by
 *                              every *completed* invalidate.
 *   inv2_reader_no_new_gen_old_expiry
 *                          a reader's snapshot never pairs a generation newer than the one
 *                          the visible (nonzero) expiry was installed under.
 *   inv3_fresh_lease_kept  once an extend has returned true, the expiry it installed stays
 *                          exactly as installed until an invalidate or a later successful
 *                          extend (the clock-tie race cannot erase it).
 *   inv4_monotone          within one generation an extend never lowers the expiry; a
 *                          successful extend strictly raises it.
 *   generation_exact       generation()/snapshot reconstruction H + ((W.gen - H) mod M)
 *                          equals the true generation.
 *
 * Variants (spin -D...):
 *   (none)                 the design. Must verify with 0 errors, search complete.
 *   MAXINV=M NOPS=M        allows 2^K invalidations inside one extend's load..cmpxchg
 *                          window: exhibits the (documented) ABA bound -> counterexample.
 *   BUG_VALUE_ROLLBACK     reference-store style two words E/G: extend stores E, re-checks G,
 *                          rolls back with a value-compared cmpxchg(E, until, prev) -> the
 *                          clock-tie race erases the fresh lease (inv3) / resurrects (inv1).
 *   BUG_CLEAR_THEN_BUMP    invalidate as two RMWs on W (and: clear q; then add: bump gen);
 *                          a stale extend lands in between -> resurrection (inv1).
 *   BUG_BUMP_THEN_CLEAR    invalidate bumps gen first, clears q second -> a reader sees the
 *                          new generation with the old valid expiry (inv2).
 *   NO_INV1 .. NO_INV4, NO_GENX   disable individual checks (to isolate a counterexample).
 */

#ifndef K
#define K 2
#endif
#define M (1 << K)

#ifndef MAXQ
#define MAXQ 3
#endif

#ifndef NOPS
#define NOPS 3
#endif

#ifndef MAXINV
#define MAXINV (M - 1)
#endif

#ifdef BUG_VALUE_ROLLBACK
#define TWO_WORD 1
#endif

/* ---- shared memory ---- */
byte Eq;            /* W.q: expiry field (0 = no lease). TWO_WORD: the expiry word E  */
byte Wg;            /* W.gen: generation mod M.           TWO_WORD: the full gen word G */
byte H;             /* full generation lower bound (unused in TWO_WORD)                 */

/* ---- ghost state (verification only) ---- */
byte tg;            /* the true generation: bumped at the invalidate's linearization point */
byte qgen;          /* sample of the extend that installed the current nonzero Eq          */
byte doneGen;       /* max generation produced by a completed invalidate()                 */
bool freshLive;     /* an extend returned true and nothing superseded it since            */
byte freshVal;      /* ... and this is the expiry it installed                             */
byte ninv;          /* invalidations started (bounded by MAXINV)                           */
byte provisional;   /* TWO_WORD: extenders between their store of E and their return      */
byte eqgen;         /* TWO_WORD: tg when E was last written                                */
byte ebyW;          /* TWO_WORD: 1 + id of the extender whose store wrote E (0: other)      */
byte invBusy;       /* two-step invalidates between their first and last visible step     */

/* ---- checks ---- */
#ifdef ONLY_INV1
#define NO_INV2
#define NO_INV3
#define NO_INV4
#define NO_GENX
#endif
#ifdef ONLY_INV2
#define NO_INV1
#define NO_INV3
#define NO_INV4
#define NO_GENX
#endif
#ifdef ONLY_INV3
#define NO_INV1
#define NO_INV2
#define NO_INV4
#define NO_GENX
#endif
#ifdef ONLY_INV4
#define NO_INV1
#define NO_INV2
#define NO_INV3
#define NO_GENX
#endif
#ifdef ONLY_GENX
#define NO_INV1
#define NO_INV2
#define NO_INV3
#define NO_INV4
#endif

#define CHECK(v, c)   v = (c); assert(v)

#ifndef NO_INV1
#define CHECK1(c) CHECK(inv1_no_resurrection, c)
#define INV1 (Eq == 0 || qgen >= doneGen)
#else
#define CHECK1(c) skip
#define INV1 true
#endif

#ifndef NO_INV2
#define CHECK2(c) CHECK(inv2_reader_no_new_gen_old_expiry, c)
#else
#define CHECK2(c) skip
#endif

#ifndef NO_INV3
#define INV3 (!freshLive || provisional > 0 || Eq == freshVal)
#else
#define INV3 true
#endif

#ifndef NO_INV4
#define CHECK4(c) CHECK(inv4_monotone, c)
#else
#define CHECK4(c) skip
#endif

#if defined(NO_GENX) || defined(TWO_WORD)
#define CHECKGX(c) skip
#else
#define CHECKGX(c) CHECK(generation_exact, c)
#endif

/* full generation from H (loaded first) and the gen field of W (loaded second) */
#define RECONSTRUCT(h, lg) ((h) + (((lg) % M) - ((h) % M) + M) % M)

/* ---------------------------------------------------------------------------
 * generation(): two loads, H then W, no retry.
 */
inline generation(res) {
#ifdef TWO_WORD
  res = Wg;                                        /* load G */
#else
  h = H;                                           /* atomic.load<u64>(H) */
  atomic {
    lg = Wg; gt = tg;                              /* atomic.load<u64>(W) */
    res = RECONSTRUCT(h, lg);
    CHECKGX(res == gt);
    h = 0; lg = 0; gt = 0
  }
#endif
}

/* ---------------------------------------------------------------------------
 * extend(u, s): the design (one cmpxchg on W), or the value-rollback bug.
 */
inline extend(u, s, ok) {
  ok = false;
#ifndef TWO_WORD
  do
  :: h = H;                                        /* atomic.load<u64>(H) */
     atomic { lq = Eq; lg = Wg; g = RECONSTRUCT(h, lg) };   /* w = atomic.load<u64>(W) */
     if
     :: g != s || lq >= u ->                       /* stale generation, or not later: no effect */
        break
     :: else ->
        atomic {                                   /* atomic.cmpxchg<u64>(W, w, pack(u, gen(w))) */
          if
          :: Eq == lq && Wg == lg ->
             printf("MSC: w%d extend(%d, gen %d): cmpxchg(W, (q %d, gen field %d) -> (q %d, gen field %d)) ok, true gen %d\n",
                    id, u, s, lq, lg, u, lg, tg);
             CHECK1(s == tg);
             CHECK4(u > Eq);
             Eq = u; qgen = s; freshLive = (invBusy == 0); freshVal = u; ok = true
          :: else -> skip                          /* W moved: retry from the loads */
          fi
        };
        if
        :: ok -> break
        :: else -> skip
        fi
     fi
  od;
  h = 0; lq = 0; lg = 0; g = 0
#else
  /* BUG_VALUE_ROLLBACK: store, re-check, roll back by value compare */
  if
  :: Wg != s -> skip                               /* load G: stale, no effect */
  :: else ->
     atomic { lq = Eq; pq = qgen };                /* prev = load E */
     if
     :: lq >= u -> skip
     :: else ->
        atomic {                                   /* store E = until (provisional) */
          CHECK4(eqgen != tg || u >= Eq);
          provisional++;
          printf("MSC: w%d extend(%d, gen %d): store E=%d (prev %d)\n", id, u, s, u, lq);
          if
          :: Eq != u -> Eq = u; qgen = s; eqgen = tg; ebyW = id + 1
          :: else -> skip                          /* same value: nothing observable changes */
          fi
        };
        if
        :: atomic { Wg == s ->                     /* re-check G: still ours, return true */
             provisional--; ok = true;
             if                                    /* arm inv3 unless a later store superseded ours */
             :: ebyW == id + 1 -> freshLive = (invBusy == 0); freshVal = u
             :: else -> skip
             fi;
             printf("MSC: w%d extend(%d, gen %d): returns true\n", id, u, s) }
        :: atomic { Wg != s ->                     /* G moved: rollback cmpxchg(E, until, prev) */
             printf("MSC: w%d extend(%d, gen %d): G=%d moved, rollback cmpxchg(E, %d, %d) sees E=%d\n",
                    id, u, s, Wg, u, lq, Eq);
             if
             :: Eq == u -> CHECK4(eqgen != tg || lq >= Eq); Eq = lq; qgen = pq; eqgen = tg; ebyW = 0
             :: else -> skip
             fi;
             provisional-- }
        fi
     fi
  fi;
  lq = 0; pq = 0
#endif
}

/* ---------------------------------------------------------------------------
 * invalidate(): the design (one cmpxchg: q := 0 and gen := gen + 1, then H += 1),
 * or one of the two-step bugs.
 */
inline invalidate() {
#if defined(TWO_WORD)
  atomic { Eq = 0; eqgen = tg; ebyW = 0; freshLive = false; invBusy++;   /* store E = 0 */
           printf("MSC: w%d invalidate step 1: E=0\n", id) };
  atomic { Wg++; tg++; g = tg; invBusy--;                      /* G += 1 */
           printf("MSC: w%d invalidate step 2: G=%d (E=%d)\n", id, Wg, Eq) };
#elif defined(BUG_CLEAR_THEN_BUMP)
  atomic { Eq = 0; freshLive = false; invBusy++;               /* atomic.and(W, GEN_MASK) */
           printf("MSC: w%d invalidate step 1: q=0\n", id) };
  atomic { Wg = (Wg + 1) % M; tg++; g = tg; invBusy--;         /* second RMW: gen += 1 */
           printf("MSC: w%d invalidate step 2: gen=%d (q=%d)\n", id, tg, Eq) };
  H++;
#elif defined(BUG_BUMP_THEN_CLEAR)
  atomic { Wg = (Wg + 1) % M; tg++; g = tg; invBusy++;         /* first RMW: gen += 1 */
           printf("MSC: w%d invalidate step 1: gen=%d (q=%d still)\n", id, tg, Eq) };
  atomic { Eq = 0; freshLive = false; invBusy--;               /* atomic.and(W, GEN_MASK) */
           printf("MSC: w%d invalidate step 2: q=0\n", id) };
  H++;
#else
  ok = false;
  do
  :: atomic { lq = Eq; lg = Wg };                              /* w = atomic.load<u64>(W) */
     atomic {                                                  /* cmpxchg(W, w, (w + 1) & GEN_MASK) */
       if
       :: Eq == lq && Wg == lg ->
          Eq = 0; Wg = (lg + 1) % M; tg++; g = tg; freshLive = false; ok = true;
          printf("MSC: w%d invalidate: cmpxchg ok, q=0 gen=%d\n", id, tg)
       :: else -> skip
       fi
     };
     if
     :: ok -> break
     :: else -> skip
     fi
  od;
  H++;                                                         /* atomic.add<u64>(H, 1) */
#endif
  atomic {                                                     /* invalidate() returns */
    if
    :: g > doneGen -> doneGen = g
    :: else -> skip
    fi
  };
  g = 0; lq = 0; lg = 0; ok = false
}

proctype writer(byte id) {
  byte ops, u, s, lq, lg, h, g, gt, pq;
  bool ok;
  bool inv1_no_resurrection = true, inv4_monotone = true, generation_exact = true;

  do
  :: ops < NOPS ->
     ops++;
     if
     :: atomic { ninv < MAXINV -> ninv++ };
        invalidate()
     :: generation(s);                               /* sample before the quorum operation */
        printf("MSC: w%d samples gen %d\n", id, s);
        /* ... the quorum operation: anything may interleave here ... */
        select (u : 1 .. MAXQ);
        extend(u, s, ok);
        printf("MSC: w%d extend(%d, gen %d) -> %d\n", id, u, s, ok)
     fi;
     u = 0; s = 0; ok = false
  :: else -> break
  od
}

proctype reader() {
  byte h, lq, lg, g, gq, gt;
  bool inv2_reader_no_new_gen_old_expiry = true, generation_exact = true;
end:
  do
  :: /* snapshot(): generation and expiry from two loads, no retry. The local
      * arithmetic after the second load is folded into its atomic step (it is
      * invisible to the other processes). */
#ifdef TWO_WORD
     h = Wg;                                       /* load G */
     atomic {
       lq = Eq; gq = qgen;                         /* load E */
       g = h;
#else
     h = H;                                        /* atomic.load<u64>(H) */
     atomic {
       lq = Eq; lg = Wg; gq = qgen; gt = tg;       /* atomic.load<u64>(W); valid() is this load alone */
       g = RECONSTRUCT(h, lg);
       if
       :: g != gt -> printf("MSC: reader: H=%d then W=(q %d, gen field %d) -> gen %d, true gen %d\n", h, lq, lg, g, gt)
       :: else -> skip
       fi;
       CHECKGX(g == gt);
#endif
       if
       :: lq != 0 && g > gq -> printf("MSC: reader: sees gen %d with expiry %d installed under gen %d\n", g, lq, gq)
       :: else -> skip
       fi;
       CHECK2(lq == 0 || g <= gq);
       h = 0; lq = 0; lg = 0; g = 0; gq = 0; gt = 0
     }
  od
}

proctype monitor() {
  bool inv1_no_resurrection = true, inv3_fresh_lease_kept = true;
end:
  atomic {
    !(INV1 && INV3) ->
      printf("MSC: monitor: Eq=%d qgen=%d doneGen=%d tg=%d freshLive=%d freshVal=%d\n",
             Eq, qgen, doneGen, tg, freshLive, freshVal);
      inv1_no_resurrection = INV1;
      inv3_fresh_lease_kept = INV3;
      assert(inv1_no_resurrection);
      assert(inv3_fresh_lease_kept)
  }
}

init {
  atomic {
    select (tg : 0 .. M - 1);                      /* any phase of the generation field */
#ifdef TWO_WORD
    Wg = tg;
#else
    Wg = tg % M; H = tg;
#endif
    select (Eq : 0 .. MAXQ);                       /* cold, or warm from an earlier extend */
    qgen = tg; doneGen = tg; eqgen = tg;
    printf("MSC: start gen=%d q=%d\n", tg, Eq);
    run monitor(); run reader(); run writer(0); run writer(1)
  }
}
