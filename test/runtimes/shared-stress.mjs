// One stress worker for the shared lease table (test/shared.test.ts). Portable across Node
// worker_threads, Bun and Deno workers: it only needs the attached table.
//
// The checker: every extend encodes the generation it used in the expiry it asks for
// (until = epoch + (gen * 8 + k) * 4096, k in 0..7, so writers often tie on the exact same
// expiry), so any expiry read back names the generation that installed it. With
// `completed[slot]` = the highest generation some thread saw right after an invalidate returned:
//   - resurrection: an extend that sampled gen g, then saw completed > g, must not succeed;
//     and no reader may see an expiry installed under a generation below the completed one
//     it read before looking;
//   - lost invalidation: right after my invalidate, the lease is empty or re-extended under a
//     generation past the one I invalidated;
//   - erased fresh lease (clock tie): right after my extend succeeded, the lease holds at least
//     my expiry under my generation, unless the generation moved on (an invalidate).
// Evidence of contention, which one thread alone can never produce: `foreign` counts the times
// this thread found a slot's generation moved by an invalidate it did not make, and
// `staleRefused` the extends refused because another thread invalidated between this thread's
// generation sample and its extend.
const UNIT = 4096n;

export function runStress(table, { ops, seed, slots, completed }) {
  const epoch = table.epochNs;
  const leases = Array.from({ length: slots }, (_, i) => table.lease(i));
  const gExt = (e) => (e === 0n ? -1n : (e - epoch) / UNIT / 8n);
  let x = seed >>> 0 || 1;
  const rand = () => ((x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5), x >>> 0);
  const violations = [];
  const counts = { extend: 0, extended: 0, invalidate: 0, read: 0, validTrue: 0, foreign: 0, staleRefused: 0 };
  const known = leases.map((l) => l.generation()); // per slot: the generation this thread last saw or made
  const see = (slot, g) => {
    if (g > known[slot]) {
      counts.foreign++;
      known[slot] = g;
    }
  };
  const nowValid = epoch + 1n; // any expiry on the grid is later: valid() = "holds a lease"
  const fail = (kind, detail) => violations.length < 20 && violations.push({ kind, ...detail });
  const spin = (n) => { let s = 0; for (let i = 0; i < n; i++) s += i; return s; };

  for (let i = 0; i < ops; i++) {
    const r = rand();
    const slot = r % slots;
    const lease = leases[slot];
    const op = (r >>> 8) % 16;
    if (op < 7) {
      counts.extend++;
      const g = lease.generation();
      see(slot, g);
      if ((r >>> 12) % 4 === 0) spin((r >>> 16) % 64); // widen the window between sample and extend
      const done = Atomics.load(completed, slot);
      const until = epoch + (g * 8n + BigInt((r >>> 20) % 8) + 1n) * UNIT;
      const ok = lease.extend(until, g);
      if (!ok && lease.generation() !== g) counts.staleRefused++;
      if (ok) {
        counts.extended++;
        if (BigInt(done) > g) fail("resurrection: a stale extend succeeded", { slot, g, done });
        const e = lease.expiry();
        if (e === 0n || gExt(e) < g) {
          if (lease.generation() <= g) fail("fresh lease erased without an invalidate", { slot, g, until, e });
        } else if (gExt(e) === g && e < until) {
          fail("fresh lease shortened under its own generation", { slot, g, until, e });
        }
      }
    } else if (op < 10) {
      counts.invalidate++;
      const before = lease.generation();
      see(slot, before);
      lease.invalidate();
      const e = lease.expiry();
      if (e !== 0n && gExt(e) < before + 1n) fail("lost invalidation", { slot, before, e });
      const after = lease.generation();
      if (after < before + 1n) fail("generation did not move", { slot, before, after });
      if (after > before + 1n) counts.foreign++; // another thread's invalidate landed in between
      known[slot] = after;
      // publish: every generation below `after` is dead
      let seen = Atomics.load(completed, slot);
      const target = Number(after);
      while (seen < target) {
        const prev = Atomics.compareExchange(completed, slot, seen, target);
        if (prev === seen) break;
        seen = prev;
      }
    } else {
      counts.read++;
      const done = Atomics.load(completed, slot);
      const e = lease.expiry();
      if (e !== 0n && gExt(e) < BigInt(done)) fail("reader saw a lease of a dead generation", { slot, e, done });
      if (lease.valid(nowValid)) counts.validTrue++;
    }
  }
  return { ops, violations, counts };
}
