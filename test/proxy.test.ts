// The nemesis's fault-injecting TCP proxy (demo/proxy.ts): bytes pass unchanged; each direction's
// delay, stall and cut act on that direction only; a stall loses nothing, a cut loses what it
// dropped and resets the connections it broke when lifted; bad faults are refused unchanged.
import { createServer, Socket, type Server } from "node:net";
import { afterEach, describe, expect, test } from "vitest";
import { FaultProxy, ProxyFaultError } from "../demo/proxy.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A server that echoes what it gets, and can push bytes to its clients on its own. */
async function echoServer(): Promise<{ port: number; push: (text: string) => void }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on("data", (d) => s.write(d));
    s.on("error", () => undefined);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  cleanups.push(() => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }));
  const address = server.address();
  return { port: typeof address === "object" && address !== null ? address.port : 0, push: (t) => { for (const s of sockets) s.write(t); } };
}

interface Client { socket: Socket; received: () => string; closed: () => boolean }
async function connect(port: number): Promise<Client> {
  const socket = new Socket();
  let text = "";
  let closed = false;
  socket.on("data", (d) => (text += d.toString()));
  socket.on("error", () => undefined);
  socket.on("close", () => (closed = true));
  await new Promise<void>((r) => socket.connect(port, "127.0.0.1", () => r()));
  cleanups.push(() => void socket.destroy());
  return { socket, received: () => text, closed: () => closed };
}

async function until(cond: () => boolean, ms = 3000): Promise<boolean> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function setup() {
  const server = await echoServer();
  const proxy = await FaultProxy.start(server.port);
  cleanups.push(() => proxy.close());
  const client = await connect(proxy.port);
  return { server, proxy, client };
}

describe("FaultProxy", () => {
  test("passes bytes both ways unchanged, in order, and counts them per direction", async () => {
    const { proxy, client } = await setup();
    const sent = Array.from({ length: 200 }, (_, i) => `m${i};`).join("");
    for (let i = 0; i < sent.length; i += 37) client.socket.write(sent.slice(i, i + 37));
    expect(await until(() => client.received().length >= sent.length)).toBe(true);
    expect(client.received()).toBe(sent);
    expect(proxy.bytes).toEqual({ up: sent.length, down: sent.length });
  });

  test("delay holds each chunk at least delayMs, keeps the order, and flushes on heal", async () => {
    const { proxy, client } = await setup();
    proxy.set("up", { kind: "delay", delayMs: 150 });
    const t0 = performance.now();
    client.socket.write("a");
    await sleep(20);
    client.socket.write("b");
    expect(await until(() => client.received() === "ab")).toBe(true);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(150);
    proxy.set("up", { kind: "delay", delayMs: 60_000 });
    client.socket.write("c");
    await sleep(100);
    expect(client.received()).toBe("ab");
    proxy.heal(); // what was held flows at once
    expect(await until(() => client.received() === "abc")).toBe(true);
  });

  test("a stall in one direction holds its bytes and loses none; the other direction flows", async () => {
    const { server, proxy, client } = await setup();
    client.socket.write("x");
    expect(await until(() => client.received() === "x")).toBe(true);
    proxy.set("up", { kind: "stall" });
    client.socket.write("held");
    server.push("P"); // down is not stalled: the server's own bytes still arrive
    expect(await until(() => client.received() === "xP")).toBe(true);
    await sleep(150);
    expect(client.received()).toBe("xP");
    proxy.set("up", { kind: "pass" });
    expect(await until(() => client.received() === "xPheld")).toBe(true);
    expect(client.closed()).toBe(false);
  });

  test("a down stall holds the answers while the requests go through", async () => {
    const { proxy, client } = await setup();
    proxy.set("down", { kind: "stall" });
    client.socket.write("q1");
    await sleep(150);
    expect(client.received()).toBe("");
    proxy.heal();
    expect(await until(() => client.received() === "q1")).toBe(true);
  });

  test("a cut drops its direction's bytes; lifting it resets the broken connection; new connections work", async () => {
    const { server, proxy, client } = await setup();
    proxy.set("down", { kind: "cut" });
    client.socket.write("lost");
    server.push("also-lost");
    await sleep(150);
    expect(client.received()).toBe("");
    expect(client.closed()).toBe(false); // silence, not a reset
    proxy.set("down", { kind: "pass" });
    expect(await until(() => client.closed())).toBe(true);
    expect(client.received()).toBe("");
    const again = await connect(proxy.port);
    again.socket.write("ok");
    expect(await until(() => again.received() === "ok")).toBe(true);
  });

  test("a cut that dropped nothing leaves the connection open", async () => {
    const { proxy, client } = await setup();
    proxy.set("up", { kind: "cut" });
    await sleep(30);
    proxy.set("up", { kind: "pass" });
    client.socket.write("fine");
    expect(await until(() => client.received() === "fine")).toBe(true);
    expect(client.closed()).toBe(false);
  });

  test("reset() closes every open connection", async () => {
    const { proxy, client } = await setup();
    const other = await connect(proxy.port);
    expect(await until(() => proxy.connections === 2)).toBe(true);
    proxy.reset();
    expect(await until(() => client.closed() && other.closed())).toBe(true);
    expect(proxy.connections).toBe(0);
  });

  test("bad faults are refused with ProxyFaultError and change nothing", async () => {
    const { proxy } = await setup();
    proxy.set("up", { kind: "delay", delayMs: 5 });
    for (const [dir, fault] of [
      ["up", { kind: "delay", delayMs: -1 }],
      ["up", { kind: "delay", delayMs: 0 }],
      ["up", { kind: "delay", delayMs: Number.NaN }],
      ["up", { kind: "delay", delayMs: 1e12 }],
      ["up", { kind: "delay", delayMs: "5" }],
      ["up", { kind: "drop" }],
      ["up", null],
      ["sideways", { kind: "stall" }],
    ] as const) {
      let caught: unknown;
      try {
        proxy.set(dir as never, fault as never);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ProxyFaultError);
      expect((caught as ProxyFaultError).code).toBe("ERR_LEASE_PROXY_FAULT");
      expect((caught as Error).name).toBe("ProxyFaultError");
      expect(proxy.fault("up")).toEqual({ kind: "delay", delayMs: 5 });
      expect(proxy.fault("down")).toEqual({ kind: "pass" });
    }
    await expect(FaultProxy.start(0)).rejects.toBeInstanceOf(ProxyFaultError);
  });
});
