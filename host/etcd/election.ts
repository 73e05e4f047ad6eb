/**
 * The election of `lease-core/etcd` (docs/etcd.md §1, §4, §5): the campaign txn on
 * `<prefix>/leader`, the catch-up and the takeover hold on every path to leadership, the watch
 * of the leader key, the etcd versions that decide the revoke guard, and the resign marker.
 * @module
 */
import { ClusterClient, Etcd3, MaintenanceClient, type IKeyValue } from "etcd3";
import { MS, S } from "./margin.js";
import { grant, renew } from "./keepalive.js";
import { metaRevisionOf, readTxn, waitApplied } from "./replica.js";
import type { NodeState } from "./state.js";
import { endStream, sleep, type Duplex } from "./util.js";

/** Whether an etcd server version carries the early-revoke fix (etcd-io/etcd PR #16822; 3.4
 *  backport #17465 in 3.4.31, 3.5 backport #17425 in 3.5.13, 3.6.0 onwards). */
export function etcdHasRevokeFix(version: string): boolean {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (m === null) return false;
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (major !== 3) return major > 3;
  if (minor === 4) return patch >= 31;
  if (minor === 5) return patch >= 13;
  return minor >= 6;
}

/**
 * Campaigns until closed. Every path to leadership (a won campaign, or our own key found from
 * before: a watch hiccup, a catch-up that timed out, a campaign whose answer was lost to its
 * deadline) goes through the same two waits before anything is served (docs/etcd.md §4, §5):
 *
 * 1. catch-up: the campaign txn is linearizable (it carries a put, so it goes through raft) and
 *    reads the meta key, which every acknowledged write puts: its mod revision is at least every
 *    write acknowledged before it. The local state must have applied it.
 * 2. the takeover hold: unless the key's last holder resigned (the marker), any previous
 *    holder's lease must have lapsed: it was confirmed before its key went, so it ends within
 *    one TTL of this txn's answer.
 */
export async function campaignLoop(s: NodeState): Promise<void> {
  const signal = s.stop.signal;
  while (!signal.aborted) {
    try {
      if (s.leaseId === null) await grant(s);
      const txn = await s.kv.txn(
        {
          compare: [{ key: s.leaderKey, target: "Create", result: "Equal", create_revision: "0" }],
          success: [
            { request_put: { key: s.leaderKey, value: Buffer.from(s.id), lease: s.leaseId! } },
            { request_range: { key: s.metaKey } },
            { request_range: { key: s.resignedKey } },
            { request_delete_range: { key: s.resignedKey } },
          ],
          failure: [{ request_range: { key: s.leaderKey } }, { request_range: { key: s.metaKey } }],
        },
        s.callOptions(),
      );
      // After the answer, so after the previous holder's key was gone.
      const answeredAtNs = s.core.now();
      let createRevision: bigint;
      let retake = false;
      if (txn.succeeded) {
        createRevision = BigInt(txn.header.revision);
        // Every creation clears the marker, and only a resign writes it (in the txn that deletes
        // the key), naming the resigned key's create revision. It counts only when it names
        // the last holder this node saw (a node of an older release, which does not clear it,
        // may have held the key since): then that holder stopped serving before its key went.
        const marker = txn.responses[2]?.response_range.kvs[0];
        const resigned = marker !== undefined && s.lastHolderCreateRevision !== 0n && marker.value.toString() === s.lastHolderCreateRevision.toString();
        startHold(s, createRevision, resigned ? undefined : answeredAtNs);
        // No marker: the previous key may have been deleted by someone else while its holder
        // still serves (docs/etcd.md §5): lengthen the hold if its lease is alive or unknown.
        if (!resigned) s.holdLookup = liveHolderHoldNs(s, s.lastHolderLease).then((ns) => raiseHold(s, ns));
      } else {
        const kv: IKeyValue | undefined = txn.responses[0]?.response_range.kvs[0];
        if (kv === undefined) continue;
        s.leaderId = kv.value.toString();
        if (s.state !== "shutdown") s.state = "follower";
        if (s.leaderId !== s.id || BigInt(kv.lease) !== BigInt(s.leaseId ?? "0")) {
          noteHolder(s, kv);
          s.lastHolderCreateRevision = BigInt(kv.create_revision);
          s.lastHolderLease = String(kv.lease);
          await watchKey(s, BigInt(kv.create_revision), BigInt(txn.header.revision) + 1n, false);
          continue;
        }
        // Our own key from before. Whether its creation found a resign marker is unknown
        // here: hold, unless this key already served or its hold is already running.
        createRevision = BigInt(kv.create_revision);
        retake = true;
        if (createRevision !== s.servedCreateRevision && createRevision !== s.holdFor) startHold(s, createRevision, answeredAtNs);
      }
      if (!(retake && __UNSAFE_RETAKE_WITHOUT_CATCH_UP__)) await waitApplied(s, metaRevisionOf(txn), signal);
      // On every path (a retake after a catch-up timeout too): the hold's length may still be
      // growing from this takeover's live-holder lookup.
      await s.holdLookup;
      if (createRevision !== s.servedCreateRevision) await waitHold(s, signal);
      if (signal.aborted) return;
      s.createRevision = createRevision;
      s.servedCreateRevision = createRevision;
      s.leaderId = s.id;
      s.state = "leader";
      if (retake) s.counters.takeovers!++;
      s.event("elected", `create revision ${createRevision}${retake ? " (own key from before)" : ""}, applied ${s.applied}`);
      const lost = new Promise<void>((resolve) => (s.stepDown = resolve));
      void renew(s, "loop").catch(() => undefined); // the first anchor, right away
      await Promise.race([lost, watchKey(s, createRevision, (retake ? BigInt(txn.header.revision) : createRevision) + 1n, true)]);
      if (s.state === "leader" && s.createRevision === createRevision && !signal.aborted) {
        // The own-key watch ended without a verdict (stream error): check by a read.
        const check = await readTxn(s).catch(() => undefined);
        const kv = check?.responses[0]?.response_range.kvs[0];
        if (check !== undefined && kv !== undefined && BigInt(kv.create_revision) === createRevision) {
          continue; // still ours: the loop's txn fails and retakes it (still caught up, no hold)
        }
        if (check !== undefined) s.loseLeadership("own-key-deleted");
      }
    } catch {
      await sleep(100, signal);
    }
  }
}

/** Starts the takeover hold for the leader key `createRevision`, from `fromNs` (a clock
 *  reading after the previous holder's key was gone; 0n: the next good reading), or none
 *  (`undefined`: the last holder resigned). */
function startHold(s: NodeState, createRevision: bigint, fromNs: bigint | undefined): void {
  s.holdFor = createRevision;
  s.holdLookup = undefined;
  // Whether this takeover waited out every previous holder: it holds (or etcd revokes only from
  // its real leader), or the last holder's marker says that holder had. A node that serves
  // unprotected (`takeoverHold: "never"` on an unfixed etcd) may not vouch for its
  // predecessor's lapse, so its resign writes no marker (see resign()).
  s.holdProtected = fromNs === undefined || s.revokeGuard !== "unprotected";
  s.holdStartNs = fromNs ?? 0n;
  s.holdLengthNs = fromNs === undefined ? 0n : holdNs(s);
  s.holdFaults = s.clockFaults();
}

/** How long a takeover holds: the longest TTL a previous holder's etcd lease may have had
 *  (this node's own, or a longer one it saw granted to another holder), or 0n when the
 *  cluster revokes only from the real leader (`revokeGuard`). The previous holder's lease was
 *  confirmed before its key went, so it ran out by TTL - margin after that; the margin covers
 *  the drift between the two hosts' clocks (docs/etcd.md §5). */
export function holdNs(s: NodeState): bigint {
  if (s.revokeGuard === "etcd" || s.revokeGuard === "unprotected") return 0n;
  return fullHoldNs(s);
}

/** The hold that waits out any previous holder's lease whatever the revoke guard: the longest
 *  TTL this node knows a holder's lease may have (its own, or one seen granted to another),
 *  plus the frozen-clock budget (as holdNs under "takeover-hold"). */
function fullHoldNs(s: NodeState): bigint {
  const own = s.ttlNs > 0n ? s.ttlNs : BigInt(s.ttlAskedS) * S;
  // Plus this clock's frozen-clock budget: the hold starts from a reading that may lag true
  // time by up to that budget (a frozen clock is safe as a lease's sample, never as the start
  // of a wait: docs/edge-clocks.md, docs/etcd.md §5).
  return (own > s.holderTtlNs ? own : s.holderTtlNs) + s.core.freezeBudgetNs;
}

/**
 * The hold a takeover WITHOUT a resign marker needs because its previous key may have been
 * deleted by someone else (an operator's `etcdctl del`, a bug: docs/etcd.md §5, "Many groups on
 * one lease" case (d)) while its holder, its watch lagging, still serves until its next round
 * finds the key gone. Holds whatever the revoke guard and `takeoverHold` say, since neither an
 * etcd with the early-revoke fix nor the "never" opt-out (which is about that etcd bug) makes an
 * external delete safe. Asks etcd for the previous holder's lease (`lease`, decimal id, as the
 * local copy saw it bound to the key):
 * - gone (LeaseTimeToLive answers TTL -1, etcd's answer for a lease it no longer has:
 *   server/etcdserver/api/v3rpc/lease.go): the holder's key went with its lease (expiry or
 *   revoke), so the existing rule (holdNs) stands: 0n here;
 * - alive (TTL >= 0; 0 still exists: etcd truncates the remaining seconds): that lease's granted
 *   TTL plus the frozen-clock budget, at least fullHoldNs; the holder's last anchor was sent
 *   before its key went (its round checks the key), so it ends within that from the takeover;
 * - unknown (no holder seen, a key bound to no lease) or the lookup failed: fullHoldNs (fail
 *   closed).
 * Only where holdNs is 0 (revoke guard "etcd" or "unprotected"); otherwise the hold already
 * covers any lease and no call is made. One call per previous lease: callers share it.
 */
export async function liveHolderHoldNs(s: NodeState, lease: string | undefined): Promise<bigint> {
  if (s.revokeGuard !== "etcd" && s.revokeGuard !== "unprotected") return 0n;
  const full = fullHoldNs(s);
  if (lease === undefined || lease === "0") {
    s.event("takeover-live-holder", `previous holder's lease unknown: hold ${full / MS} ms`);
    return full;
  }
  s.counters.liveHolderLookups!++;
  try {
    const res = await s.leases.leaseTimeToLive({ ID: lease }, s.callOptions());
    if (BigInt(res.TTL) < 0n) return 0n;
    const grantedNs = BigInt(res.grantedTTL) * S + s.core.freezeBudgetNs;
    const holdLengthNs = grantedNs > full ? grantedNs : full;
    s.event("takeover-live-holder", `previous holder's lease ${lease} alive (TTL ${res.TTL} s of ${res.grantedTTL} s): its key was deleted by someone else; hold ${holdLengthNs / MS} ms`);
    return holdLengthNs;
  } catch {
    s.event("takeover-live-holder", `previous holder's lease ${lease}: lookup failed: hold ${full / MS} ms`);
    return full;
  }
}

/** Lengthens `hold` to `lengthNs` if that is longer; its start
 *  stays the reading after the previous key was gone. */
export function raiseHold(hold: Hold, lengthNs: bigint): void {
  if (lengthNs > hold.holdLengthNs) hold.holdLengthNs = lengthNs;
}

/** A takeover hold in progress: the node's own (NodeState's fields), or one group's. */
export interface Hold {
  holdStartNs: bigint;
  holdLengthNs: bigint;
  holdFaults: number;
}

/** Waits out `hold` (the node's own by default); a clock fault restarts it from the next good
 *  reading. */
export async function waitHold(s: NodeState, signal: AbortSignal, hold: Hold = s): Promise<void> {
  if (hold.holdLengthNs === 0n) return;
  s.counters.holds!++;
  while (!signal.aborted) {
    const nowNs = s.core.now();
    const faults = s.clockFaults();
    if (faults !== hold.holdFaults) {
      // A clock fault during the hold: its start is no longer comparable; start again.
      hold.holdFaults = faults;
      hold.holdStartNs = 0n;
    }
    if (nowNs !== 0n && hold.holdStartNs === 0n) hold.holdStartNs = nowNs;
    const leftNs = hold.holdStartNs === 0n ? hold.holdLengthNs : hold.holdStartNs + hold.holdLengthNs - nowNs;
    if (nowNs !== 0n && leftNs <= 0n) {
      hold.holdLengthNs = 0n;
      return;
    }
    await sleep(Math.max(1, Math.min(50, Number(leftNs / MS) + 1)), signal);
  }
}

/** Remembers the TTL etcd granted another holder's lease (for the hold's length). */
export function noteHolder(s: NodeState, kv: IKeyValue): void {
  const lease = String(kv.lease);
  if (lease === "0" || s.holdersNoted.has(lease)) return;
  s.holdersNoted.add(lease);
  if (s.holdersNoted.size > 1024) s.holdersNoted.clear();
  void s.leases
    .leaseTimeToLive({ ID: lease }, s.callOptions())
    .then((res) => {
      const grantedNs = BigInt(res.grantedTTL) * S;
      if (grantedNs > s.holderTtlNs) s.holderTtlNs = grantedNs;
    })
    .catch(() => s.holdersNoted.delete(lease));
}

/** Reads every member's etcd version (bounded by the request timeout) and decides the revoke
 *  guard: the members etcd lists (any of them can be the stuck leader), plus the endpoints
 *  given. A member that does not answer, or no member list, counts as unfixed. */
export async function readVersions(s: NodeState): Promise<void> {
  // Each member once, by host:port, dialled with the scheme it was given (an https endpoint
  // with the node's TLS and credentials: a member that needs them otherwise reads "unknown",
  // and the hold is then kept where etcd has the fix).
  const urls = new Map<string, string>();
  const hostPort = (url: string) => url.replace(/^https?:\/\//, "");
  for (const endpoint of s.endpoints) urls.set(hostPort(endpoint), endpoint);
  try {
    const pool = (s.client as unknown as { pool: ConstructorParameters<typeof ClusterClient>[0] }).pool;
    const list = await new ClusterClient(pool).memberList({}, s.callOptions());
    for (const member of list.members) {
      const url = member.clientURLs[0];
      if (url === undefined) urls.set(`${member.name || member.ID} (no client URL)`, "");
      else if (!urls.has(hostPort(url))) urls.set(hostPort(url), url);
    }
  } catch {
    urls.set("member list (unavailable)", "");
  }
  const entries = await Promise.all(
    [...urls].map(async ([endpoint, url]): Promise<[string, string]> => {
      if (url === "") return [endpoint, "unknown"];
      const client = new Etcd3(s.clientOptions(url));
      try {
        const pool = (client as unknown as { pool: ConstructorParameters<typeof MaintenanceClient>[0] }).pool;
        const status = await new MaintenanceClient(pool).status(s.callOptions());
        return [endpoint, status.version];
      } catch {
        return [endpoint, "unknown"];
      } finally {
        client.close();
      }
    }),
  );
  s.etcdVersions = Object.fromEntries(entries);
  const fixed = entries.every(([, version]) => etcdHasRevokeFix(version));
  s.revokeGuard = s.takeoverHold === "always" ? "takeover-hold" : fixed ? "etcd" : s.takeoverHold === "never" ? "unprotected" : "takeover-hold";
  const list = entries.map(([e, v]) => `${e}=${v}`).join(", ");
  s.event("etcd-versions", `${list}: revoke guard ${s.revokeGuard}`);
  if (s.revokeGuard === "unprotected") {
    s.event("etcd-unprotected", `${list}: without the early-revoke fix (etcd 3.4.31, 3.5.13, 3.6.0) and takeoverHold "never", a stuck old etcd leader can end a holder's key while its lease still serves (etcd-io/etcd #15247)`);
  }
}

/**
 * Watches the leader key from `fromRevision` until the key with `createRevision` is deleted
 * or overwritten (resolves), or the stream fails (resolves too: the caller re-reads). When it
 * is our own key, that is a leadership loss, acted on at once.
 */
async function watchKey(s: NodeState, createRevision: bigint, fromRevision: bigint, own: boolean): Promise<void> {
  const signal = s.stop.signal;
  if (signal.aborted) return;
  let stream: Duplex;
  try {
    stream = (await s.watches.watch()) as unknown as Duplex;
  } catch {
    await sleep(100, signal);
    return;
  }
  s.streams.add(stream);
  await new Promise<void>((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      signal.removeEventListener("abort", finish);
      s.streams.delete(stream);
      endStream(stream);
      resolve();
    };
    signal.addEventListener("abort", finish, { once: true });
    if (own) {
      // Also end when we step down for another reason (fence failed, lease expired...).
      const previous = s.stepDown;
      s.stepDown = () => {
        previous?.();
        finish();
      };
    }
    stream.on("data", (res: { canceled?: boolean; events?: { type: string; kv: IKeyValue }[] }) => {
      if (res.canceled) return finish();
      for (const event of res.events ?? []) {
        const gone = event.type === "DELETE" || BigInt(event.kv.create_revision) !== createRevision;
        if (!gone) continue;
        if (own && !s.unsafe.ignoreOwnKeyWatch && s.createRevision === createRevision) {
          s.loseLeadership(event.type === "DELETE" ? "own-key-deleted" : "own-key-overwritten");
        }
        if (!own || !s.unsafe.ignoreOwnKeyWatch) return finish();
      }
    });
    stream.on("error", finish);
    stream.on("end", finish);
    stream.write({ create_request: { key: s.leaderKey, start_revision: fromRevision.toString() } });
  });
}

/**
 * Resigns the leader key `createRevision` on close (docs/etcd.md §5, §6): deletes it iff it is
 * still ours. The marker tells the next leader that this holder stopped serving before its key
 * went (close() invalidated first) and had waited out its own predecessor: no hold needed.
 * Written only by a holder that served under this key after a protected takeover (startHold):
 * an unprotected one's marker would let a successor skip its hold while the early-revoked
 * holder before it still serves. Bounded by `short`; a failure is ignored (the key then lapses
 * with the etcd lease).
 */
export async function resign(s: NodeState, createRevision: bigint, short: { deadline: Date }): Promise<void> {
  const vouch = s.servedCreateRevision === createRevision && s.holdFor === createRevision && s.holdProtected;
  const marker = vouch ? [{ request_put: { key: s.resignedKey, value: Buffer.from(createRevision.toString()) } }] : [];
  await s.kv
    .txn({ compare: [{ key: s.leaderKey, target: "Create", result: "Equal", create_revision: createRevision.toString() }], success: [{ request_delete_range: { key: s.leaderKey } }, ...marker], failure: [] }, short)
    .catch(() => undefined);
}
