/**
 * A fault-injecting TCP proxy on loopback, for the nemesis (demo/nemesis.ts) and the fault tests:
 * one listening port in front of one target port, forwarding every connection byte for byte, with
 * a fault per direction, each on its own:
 *
 *   - `up` is client → target, `down` is target → client (for a KV process in front of an etcd
 *     member: its requests, and etcd's answers and watch events);
 *   - `delay`: every chunk is held `delayMs` before it is written on (order kept: a chunk never
 *     overtakes the one before it), so a watch can lag while the link stays up;
 *   - `stall`: the direction's source socket stops being read (socket.pause()); TCP's own flow
 *     control then stalls the sender (its kernel buffers fill, tcp(7)), and nothing is lost: on
 *     heal the bytes flow again, as after a partition that heals before TCP gives up;
 *   - `cut`: the direction's bytes are discarded from now on, on open connections and new ones
 *     (a one-way black hole: the peer sees silence, never a reset); since a byte stream with a
 *     hole cannot be resumed, every connection that lost bytes is reset when the fault is lifted
 *     (the client then reconnects, as it would after TCP's retransmission timeout).
 *
 * `reset()` resets every open connection at once. Faults are invariant per direction: exactly one
 * of pass / delay / stall / cut holds at any time; setting one replaces the previous one.
 * @module
 */
import { createServer, Socket, type Server } from "node:net";

/** Which way the bytes go: `up` client → target, `down` target → client. */
export type ProxyDirection = "up" | "down";

/** A direction's fault (`pass`: none). */
export type LinkFault = { kind: "pass" } | { kind: "delay"; delayMs: number } | { kind: "stall" } | { kind: "cut" };

/** A fault or a direction the proxy cannot apply (negative, NaN or huge delays, unknown kinds). */
export class ProxyFaultError extends Error {
  readonly code = "ERR_LEASE_PROXY_FAULT";
  override get name(): string {
    return "ProxyFaultError";
  }
}

/** The longest delay the proxy accepts (setTimeout's own limit is 2^31-1 ms, timers(3)). */
export const MAX_DELAY_MS = 600_000;

function checkFault(direction: unknown, fault: unknown): asserts fault is LinkFault {
  if (direction !== "up" && direction !== "down") throw new ProxyFaultError(`direction must be "up" or "down", got ${String(direction)}`);
  const f = fault as { kind?: unknown; delayMs?: unknown } | null;
  if (typeof f !== "object" || f === null) throw new ProxyFaultError("fault must be an object");
  if (f.kind === "delay") {
    if (typeof f.delayMs !== "number" || !Number.isFinite(f.delayMs) || f.delayMs <= 0 || f.delayMs > MAX_DELAY_MS) {
      throw new ProxyFaultError(`delayMs must be a number in (0, ${MAX_DELAY_MS}], got ${String(f.delayMs)}`);
    }
  } else if (f.kind !== "pass" && f.kind !== "stall" && f.kind !== "cut") {
    throw new ProxyFaultError(`fault kind must be pass, delay, stall or cut, got ${String(f.kind)}`);
  }
}

/** One direction of one proxied connection. */
class Pipe {
  /** Chunks waiting for their release time (delay), in order. */
  readonly #queue: { atMs: number; chunk: Buffer }[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #lastReleaseMs = 0;
  /** Bytes were discarded (cut): the stream is broken and must be reset when the cut lifts. */
  holed = false;

  constructor(
    readonly from: Socket,
    readonly to: Socket,
    readonly fault: () => LinkFault,
    readonly counted: (n: number) => void,
  ) {
    from.on("data", (chunk: Buffer) => {
      counted(chunk.length);
      this.#onData(chunk);
    });
  }

  #onData(chunk: Buffer): void {
    const f = this.fault();
    if (f.kind === "cut") {
      this.holed = true;
      return;
    }
    const delayMs = f.kind === "delay" ? f.delayMs : 0;
    if (delayMs === 0 && this.#queue.length === 0) {
      this.to.write(chunk);
      return;
    }
    const atMs = Math.max(performance.now() + delayMs, this.#lastReleaseMs);
    this.#lastReleaseMs = atMs;
    this.#queue.push({ atMs, chunk });
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#queue.length === 0) return;
    const waitMs = Math.max(0, this.#queue[0]!.atMs - performance.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const now = performance.now();
      while (this.#queue.length > 0 && this.#queue[0]!.atMs <= now) {
        if (this.to.destroyed) break;
        this.to.write(this.#queue.shift()!.chunk);
      }
      this.#schedule();
    }, waitMs);
  }

  /** Applies the current fault to the source socket's reading (stall = not read at all). */
  apply(): void {
    if (this.fault().kind === "stall") this.from.pause();
    else this.from.resume();
  }

  /** Releases every delayed chunk now (on heal). */
  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const { chunk } of this.#queue.splice(0)) if (!this.to.destroyed) this.to.write(chunk);
    this.#lastReleaseMs = 0;
  }

  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#queue.length = 0;
  }
}

interface Connection {
  client: Socket;
  target: Socket;
  up: Pipe;
  down: Pipe;
}

/** A proxy in front of `127.0.0.1:targetPort`; see the module comment. */
export class FaultProxy {
  readonly targetPort: number;
  readonly #server: Server;
  readonly #connections = new Set<Connection>();
  readonly #faults: Record<ProxyDirection, LinkFault> = { up: { kind: "pass" }, down: { kind: "pass" } };
  #port = 0;
  #closed = false;
  /** Connections accepted so far (for the tests and the nemesis's report). */
  accepted = 0;
  /** Bytes read from each side so far, per direction (the nemesis finds which member carries a
   *  process's watch by the direction `down` that grows with every write). */
  readonly bytes: Record<ProxyDirection, number> = { up: 0, down: 0 };

  private constructor(targetPort: number) {
    this.targetPort = targetPort;
    this.#server = createServer((client) => this.#accept(client));
  }

  /** Starts a proxy to `127.0.0.1:targetPort` on a random loopback port (`port`). */
  static async start(targetPort: number): Promise<FaultProxy> {
    if (!Number.isInteger(targetPort) || targetPort < 1 || targetPort > 65535) throw new ProxyFaultError(`targetPort must be a TCP port, got ${String(targetPort)}`);
    const proxy = new FaultProxy(targetPort);
    await new Promise<void>((resolve, reject) => {
      proxy.#server.once("error", reject);
      proxy.#server.listen(0, "127.0.0.1", () => resolve());
    });
    const address = proxy.#server.address();
    proxy.#port = typeof address === "object" && address !== null ? address.port : 0;
    return proxy;
  }

  /** The loopback port clients connect to. */
  get port(): number {
    return this.#port;
  }

  /** Open connections. */
  get connections(): number {
    return this.#connections.size;
  }

  /** The fault on `direction` now. */
  fault(direction: ProxyDirection): LinkFault {
    return this.#faults[direction];
  }

  /** Sets `direction`'s fault (replacing the one before). Lifting a cut resets the connections
   *  it broke; lifting a delay or a stall lets what was held flow on. @throws ProxyFaultError */
  set(direction: ProxyDirection, fault: LinkFault): void {
    checkFault(direction, fault);
    const before = this.#faults[direction];
    this.#faults[direction] = fault.kind === "delay" ? { kind: "delay", delayMs: fault.delayMs } : { kind: fault.kind };
    for (const c of [...this.#connections]) {
      const pipe = c[direction];
      if (before.kind === "cut" && fault.kind !== "cut" && pipe.holed) {
        this.#drop(c);
        continue;
      }
      if (before.kind === "delay" && fault.kind !== "delay") pipe.flush();
      pipe.apply();
    }
  }

  /** Lifts both directions' faults. */
  heal(): void {
    this.set("up", { kind: "pass" });
    this.set("down", { kind: "pass" });
  }

  /** Resets every open connection now (both sockets destroyed). */
  reset(): void {
    for (const c of [...this.#connections]) this.#drop(c);
  }

  /** Stops listening and resets every connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.reset();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    if (this.#closed) {
      client.destroy();
      return;
    }
    this.accepted++;
    client.setNoDelay(true);
    const target = new Socket();
    target.setNoDelay(true);
    const c: Connection = {
      client,
      target,
      up: new Pipe(client, target, () => this.#faults.up, (n) => (this.bytes.up += n)),
      down: new Pipe(target, client, () => this.#faults.down, (n) => (this.bytes.down += n)),
    };
    this.#connections.add(c);
    // Data from the client before the target is connected is written into the target socket,
    // which buffers it until the connect completes (net.Socket queues writes while connecting).
    target.connect(this.targetPort, "127.0.0.1");
    const end = () => this.#drop(c);
    for (const s of [client, target]) {
      s.on("error", end);
      s.on("close", end);
    }
    // A half-close is forwarded as a half-close (HTTP/2 never relies on it, but be faithful).
    client.on("end", () => target.end());
    target.on("end", () => client.end());
    c.up.apply();
    c.down.apply();
  }

  #drop(c: Connection): void {
    if (!this.#connections.delete(c)) return;
    c.up.stop();
    c.down.stop();
    for (const s of [c.client, c.target]) if (!s.destroyed) s.resetAndDestroy();
  }
}
