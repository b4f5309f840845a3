// Churn review: a long-running exchange server must not grow without bound. Each test drives an
// in-process server through churn (thousands of WebSocket connections that authenticate with good
// and bad keys, subscribe and unsubscribe or vanish mid-frame; HTTP keep-alive and short
// connections; unknown keys from many addresses; amendments; client order ids past the window;
// orders that end) and then checks that its internal structures are back to their baseline size.
//
// How the internals are reached (src/ is not changed for these tests):
// - public: RunningServer.gateway / .engine, Gateway.feeds, Gateway.amendmentsInFlight, BookViews.size,
//   http.Server.getConnections(), the metrics registry's gauge;
// - private fields read with a cast (marked PRIVATE below): WsApi.clients / connections / bookViews /
//   wss / deps, KeyStore.failures, RateLimiter.buckets, Gateway.amending / clientOrders /
//   clientOrderKeys, EventFeed.listeners, MarketState.orders / trades, SymbolActor.durableListeners /
//   acks / processedWaiters / durableWaiters / marks, Publisher.pending / waiters, MemoryBus.stored /
//   subs, Metrics.httpCounts / collectors; and the process's open descriptors (/proc/self/fd);
// - the server's WsApi instance is found as the `this` of its handleUpgrade (a spy that calls
//   through), and its HTTP server as the upgrade socket's `server`.
// Every wait waits for a condition (a generous deadline turns a hang into a failure); nothing is timed.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { WebSocket, type RawData, type WebSocketServer } from 'ws';
import type { KeyStore, RateLimiter } from '../src/auth.js';
import type { BookViews } from '../src/book-views.js';
import { resolveConfig, type ApiKeyConfig, type InstrumentConfig } from '../src/config.js';
import type { Metrics } from '../src/metrics.js';
import { startServer, type RunningServer, type StartOptions } from '../src/server.js';
import { WsApi } from '../src/ws.js';
import { gatedIO, removeTmpDirs, SEGMENT, silentLogger, SYM, TEST_INSTRUMENT, tmpDir, until, type WsMsg, wsUrl } from './helpers.js';

afterAll(removeTmpDirs);

const SYM2 = 'TEST2';
const INSTRUMENTS: InstrumentConfig[] = [TEST_INSTRUMENT, { ...TEST_INSTRUMENT, symbol: SYM2 }];
const USERS = 8;
const KEYS: ApiKeyConfig[] = Array.from({ length: USERS }, (_, i) => ({ user: `u${i}`, key: `churn-key-${i}-abcdefgh` }));
/** Request bodies and WebSocket frames (the WebSocket churn's server: small, so that a frame can pass it). */
const BODY_LIMIT = 64 * 1024;
const key = (i: number): string => (KEYS[i % USERS] as ApiKeyConfig).key;

// ---------------------------------------------------------------------------------------------
// Process warnings (MaxListenersExceededWarning and any other) fail the test that made them.

const warnings: string[] = [];
const onWarning = (w: Error): void => {
  warnings.push(`${w.name}: ${w.message}`);
};
beforeAll(() => {
  process.on('warning', onWarning);
});
afterAll(() => {
  process.off('warning', onWarning);
});

/** No process warning so far (warnings are emitted on a later tick: one turn of the loop first). */
async function expectNoWarnings(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  expect(warnings, 'process warnings').toEqual([]);
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of closers.splice(0).reverse()) await c();
  warnings.length = 0;
});

// ---------------------------------------------------------------------------------------------
// The internals (PRIVATE: read with a cast).

interface ServerClient {
  ws: WebSocket;
  books: Map<string, number>;
  trades: Set<string>;
}
interface WsInside {
  clients: Set<ServerClient>;
  connections: Map<string, number>;
  bookViews: BookViews;
  wss: WebSocketServer;
  deps: { keys: KeyStore; limiter: RateLimiter; metrics: Metrics; gateway: unknown };
}
interface GatewayInside {
  amending: Map<string, unknown>;
  amendsInFlight: Set<unknown>;
  clientOrders: Map<string, unknown>;
  clientOrderKeys: Map<number, Set<string>>;
}
interface FeedInside {
  listeners: Set<unknown>;
  state: { orders: Map<number, { status: string; resting: boolean }>; trades: unknown[] };
}
interface ActorInside {
  durableListeners: unknown[];
  acks: unknown[];
  processedWaiters: unknown[];
  durableWaiters: unknown[];
  marks: unknown[];
}

interface Booted {
  server: RunningServer;
  ws: WsInside;
  http: http.Server;
  gateway: GatewayInside;
  feed(symbol: string): FeedInside;
  actor(symbol: string): ActorInside;
  failureBuckets(): Map<string, unknown>;
  keyBuckets(): Map<string, unknown>;
  views(): Map<string, Map<number, { subscribers: number }>>;
  wsGauge(): Promise<number>;
  connections(): Promise<number>;
}

async function boot(settings: Record<string, unknown> = {}, options: StartOptions = {}): Promise<Booted> {
  const spy = vi.spyOn(WsApi.prototype, 'handleUpgrade');
  const config = resolveConfig({
    host: '127.0.0.1',
    port: 0,
    dataDir: tmpDir('gx3-churn-'),
    apiKeys: KEYS,
    instruments: INSTRUMENTS,
    rateLimit: 1_000_000,
    rateBurst: 1_000_000,
    ...settings,
  });
  const server = await startServer(config, { logger: silentLogger, ...options, engine: { segmentSize: SEGMENT, ...options.engine } });
  closers.push(() => server.close());
  // One anonymous connection: its upgrade shows the server's WsApi and HTTP server.
  const probe = await Conn.open(server.url);
  await probe.close();
  const at = spy.mock.contexts.findIndex((c) => (c as WsInside).deps.gateway === server.gateway);
  expect(at).toBeGreaterThanOrEqual(0);
  const ws = spy.mock.contexts[at] as WsInside;
  const req = (spy.mock.calls[at] as unknown as [http.IncomingMessage])[0];
  const httpServer = (req.socket as unknown as { server: http.Server }).server;
  spy.mockRestore();
  const b: Booted = {
    server,
    ws,
    http: httpServer,
    gateway: server.gateway as unknown as GatewayInside,
    feed: (symbol) => server.gateway.feeds.get(symbol) as unknown as FeedInside,
    actor: (symbol) => server.engine.actor(symbol) as unknown as ActorInside,
    failureBuckets: () => (ws.deps.keys as unknown as { failures: { buckets: Map<string, unknown> } }).failures.buckets,
    keyBuckets: () => (ws.deps.limiter as unknown as { buckets: Map<string, unknown> }).buckets,
    views: () => (ws.bookViews as unknown as { views: Map<string, Map<number, { subscribers: number }>> }).views,
    wsGauge: async () => (await ws.deps.metrics.wsConnections.get()).values[0]?.value ?? 0,
    connections: () =>
      new Promise((resolve, reject) => {
        httpServer.getConnections((err, n) => {
          if (err) reject(err);
          else resolve(n);
        });
      }),
  };
  await until(() => ws.clients.size === 0, 'the probe connection to end on the server');
  return b;
}

/** Sizes of everything that must come back to where it was. */
async function sizes(b: Booted): Promise<Record<string, number>> {
  const out: Record<string, number> = {
    wsClients: b.ws.clients.size,
    wsConnectionCounts: b.ws.connections.size,
    wssClients: b.ws.wss.clients.size,
    bookViews: b.ws.bookViews.size,
    wsGauge: await b.wsGauge(),
    httpConnections: await b.connections(),
    amending: b.gateway.amending.size,
    amendmentsInFlight: b.server.gateway.amendmentsInFlight,
    httpServerUpgradeListeners: b.http.listenerCount('upgrade'),
    httpServerConnectionListeners: b.http.listenerCount('connection'),
    metricsCollectors: (b.ws.deps.metrics as unknown as { collectors: unknown[] }).collectors.length,
  };
  for (const s of [SYM, SYM2]) {
    out[`${s}.feedListeners`] = b.feed(s).listeners.size;
    const a = b.actor(s);
    out[`${s}.durableListeners`] = a.durableListeners.length;
    out[`${s}.acks`] = a.acks.length;
    out[`${s}.processedWaiters`] = a.processedWaiters.length;
    out[`${s}.durableWaiters`] = a.durableWaiters.length;
    out[`${s}.marks`] = a.marks.length;
    const p = b.server.engine.publisher(s) as unknown as { pending: unknown[]; waiters: unknown[] } | undefined;
    out[`${s}.publisherPending`] = p?.pending.length ?? -1;
    out[`${s}.publisherWaiters`] = p?.waiters.length ?? -1;
  }
  const bus = b.server.bus as unknown as { stored: Map<string, unknown>; subs: Map<string, Set<unknown>> };
  out.busStored = bus.stored.size;
  out.busSubscribers = [...bus.subs.values()].reduce((n, set) => n + set.size, 0);
  // The process's open descriptors (sockets and log files): Linux only.
  out.openFds = fs.existsSync('/proc/self/fd') ? fs.readdirSync('/proc/self/fd').length : 0;
  return out;
}

/** Waits until every size is back to the baseline's; fails showing the sizes that are not. */
async function backToBaseline(b: Booted, baseline: Record<string, number>, what: string): Promise<void> {
  let last: Record<string, number> = {};
  try {
    await until(async () => {
      last = await sizes(b);
      return Object.keys(baseline).every((k) => last[k] === baseline[k]);
    }, what, 20_000);
  } catch {
    // The same comparison, as an assertion that names what stayed up.
    expect(last, `${what}: the structures that did not return to their baseline`).toEqual(baseline);
  }
}

// ---------------------------------------------------------------------------------------------
// A WebSocket client that can bind a local address, answer requests by id, and end in every way.

class Refused extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`upgrade refused with ${status}: ${body}`);
  }
}

class Conn {
  private nextId = 1;
  private readonly pending = new Map<string, { resolve: (m: WsMsg) => void; reject: (e: Error) => void }>();
  closeCode: number | undefined;
  readonly closed: Promise<void>;
  /** Frames received without an id (market data, order updates). */
  pushed = 0;

  private constructor(readonly ws: WebSocket) {
    ws.on('error', () => undefined);
    ws.on('message', (data: RawData) => {
      const text = Buffer.isBuffer(data) ? data.toString('utf8') : Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data).toString('utf8');
      const m = JSON.parse(text) as WsMsg;
      const id = typeof m.id === 'string' ? m.id : undefined;
      const p = id === undefined ? undefined : this.pending.get(id);
      if (p === undefined || id === undefined) {
        this.pushed++;
        return;
      }
      this.pending.delete(id);
      p.resolve(m);
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code: number) => {
        this.closeCode = code;
        for (const p of this.pending.values()) p.reject(new Error('connection closed'));
        this.pending.clear();
        resolve();
      });
    });
  }

  static open(base: string, o: { key?: string; query?: string; local?: string } = {}): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const url = wsUrl(base, o.query === undefined ? '' : `?apiKey=${encodeURIComponent(o.query)}`);
      const ws = new WebSocket(url, { headers: o.key === undefined ? {} : { 'x-api-key': o.key }, ...(o.local === undefined ? {} : { localAddress: o.local }) });
      const c = new Conn(ws);
      ws.once('open', () => {
        resolve(c);
      });
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (s: string) => (body += s));
        res.on('end', () => {
          reject(new Refused(res.statusCode ?? 0, body));
        });
        res.on('error', () => undefined);
      });
      ws.once('error', reject);
    });
  }

  send(frame: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(frame));
  }

  call(frame: Record<string, unknown>): Promise<WsMsg> {
    const id = `r${this.nextId++}`;
    return new Promise((resolve, reject) => {
      if (this.ws.readyState !== WebSocket.OPEN) {
        reject(new Error('connection not open'));
        return;
      }
      this.pending.set(id, { resolve, reject });
      this.send({ ...frame, id });
    });
  }

  /** A graceful close (the closing handshake). */
  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    this.ws.close();
    return this.closed;
  }

  private get socket(): net.Socket {
    return (this.ws as unknown as { _socket: net.Socket })._socket;
  }

  /** The TCP connection destroyed at once (no closing handshake). */
  destroy(): Promise<void> {
    this.socket.destroy();
    return this.closed;
  }

  /** Bytes written as they are on the connection (a frame the client library would not make). */
  writeRaw(data: Buffer): void {
    this.socket.write(data);
  }

  /** Writes the first bytes of a frame that announces 1,000 bytes of payload, then destroys the connection. */
  destroyMidFrame(): Promise<void> {
    const socket = this.socket;
    socket.write(partialFrame(), () => {
      socket.destroy();
    });
    return this.closed;
  }
}

/** A whole masked frame (a client's) with the first byte `head` (FIN and opcode) and a short payload. */
function maskedFrame(head: number, payload: Buffer): Buffer {
  const mask = crypto.randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] = (body[i] as number) ^ (mask[i % 4] as number);
  return Buffer.concat([Buffer.from([head, 0x80 | body.length]), mask, body]);
}

/** A masked text frame's header announcing 1,000 bytes, and the first 40 bytes of its payload. */
function partialFrame(): Buffer {
  const mask = crypto.randomBytes(4);
  const payload = Buffer.from(JSON.stringify({ op: 'subscribe', channel: 'book', symbol: SYM, depth: 5 }).padEnd(1000, ' ')).subarray(0, 40);
  for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] as number) ^ (mask[i % 4] as number);
  return Buffer.concat([Buffer.from([0x81, 0x80 | 126, 0x03, 0xe8]), mask, payload]);
}

/**
 * A WebSocket handshake over a raw socket: destroyed right after the request is written
 * ('now'), halfway through the request ('half'), or once the 101 arrived after a partial frame
 * ('frame'). Resolves once the socket is closed.
 */
function rawUpgrade(port: number, local: string, how: 'now' | 'half' | 'frame', apiKey?: string): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: local });
    s.on('error', () => undefined);
    s.on('close', () => {
      resolve();
    });
    const request =
      `GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
      (apiKey === undefined ? '' : `x-api-key: ${apiKey}\r\n`) +
      '\r\n';
    s.on('connect', () => {
      if (how === 'half') {
        s.write(request.slice(0, 60), () => s.destroy());
      } else if (how === 'now') {
        s.write(request, () => s.destroy());
      } else {
        s.write(request);
      }
    });
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (how === 'frame' && got.includes('\r\n\r\n')) {
        s.write(partialFrame(), () => s.destroy());
      }
    });
  });
}

/** A distinct loopback address per (group, index): the whole of 127/8 reaches the server. */
function local(group: number, i: number): string {
  return `127.${group}.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
}

// ---------------------------------------------------------------------------------------------
// HTTP over real sockets, with an agent of the caller's choice (keep-alive or none).

interface HttpAnswer {
  status: number;
  body: { error?: { code: string }; order?: { orderId: number; status: string }; duplicate?: boolean };
}

function httpRequest(
  port: number,
  o: { method: string; path: string; key?: string; json?: unknown; agent: http.Agent | false; local?: string; close?: boolean },
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const body = o.json === undefined ? undefined : JSON.stringify(o.json);
    const headers: Record<string, string> = {};
    if (o.key !== undefined) headers['x-api-key'] = o.key;
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    if (o.close === true) headers.connection = 'close';
    const req = http.request({ host: '127.0.0.1', port, method: o.method, path: o.path, headers, agent: o.agent, ...(o.local === undefined ? {} : { localAddress: o.local }) }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (s: string) => (text += s));
      res.on('end', () => {
        let parsed: HttpAnswer['body'] = {};
        try {
          parsed = JSON.parse(text) as HttpAnswer['body'];
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Resolves with `run(i)` for i in 0..n-1, at most `width` at a time. */
async function pool<T>(n: number, width: number, run: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(n);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      out[i] = await run(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, n) }, worker));
  return out;
}

/** A standing book on both symbols (u7's): 60 bid levels and 60 ask levels each, so snapshots carry levels. */
async function standingBook(base: string): Promise<void> {
  const mm = await Conn.open(base, { key: key(7) });
  for (const symbol of [SYM, SYM2]) {
    const orders = [
      ...Array.from({ length: 60 }, (_, i) => ({ symbol, side: 'buy', type: 'limit', price: 1000 + i * 10, qty: 5 })),
      ...Array.from({ length: 60 }, (_, i) => ({ symbol, side: 'sell', type: 'limit', price: 6000 + i * 10, qty: 5 })),
    ];
    const r = await mm.call({ op: 'order', order: orders });
    expect(r.results?.every((x) => x.ok === true)).toBe(true);
  }
  await mm.close();
}

/**
 * u0 trades until `stop()`: per round, a sell that a buy partly fills (a trade), a resting bid, then
 * both leftovers canceled: book updates, trades and order updates flow to subscribers throughout.
 */
async function trader(base: string, stop: () => boolean): Promise<number> {
  const t = await Conn.open(base, { key: key(0) });
  let rounds = 0;
  while (!stop()) {
    const symbol = rounds % 2 === 0 ? SYM : SYM2;
    const p = 4000 + (rounds % 40) * 10;
    const r = await t.call({
      op: 'order',
      order: [
        { symbol, side: 'sell', type: 'limit', price: p, qty: 3 },
        { symbol, side: 'buy', type: 'limit', price: p, qty: 2 },
        { symbol, side: 'buy', type: 'limit', price: 3000 - (rounds % 50) * 5, qty: 1 },
      ],
    });
    const ids = (r.results ?? []).map((x) => x.order?.orderId);
    await Promise.all([t.call({ op: 'cancel', symbol, orderId: ids[0] }), t.call({ op: 'cancel', symbol, orderId: ids[2] })]);
    rounds++;
  }
  await t.close();
  return rounds;
}

// ---------------------------------------------------------------------------------------------

describe('WebSocket churn', () => {
  it('thousands of connections that authenticate (good and bad keys), subscribe at many depths and leave in every way: every per-connection structure returns to its baseline', async () => {
    const b = await boot({ bodyLimit: BODY_LIMIT });
    await standingBook(b.server.url);
    const baseline = await sizes(b);
    expect(baseline).toMatchObject({ wsClients: 0, wsConnectionCounts: 0, bookViews: 0, amending: 0, [`${SYM}.feedListeners`]: 1, [`${SYM2}.feedListeners`]: 1 });

    let stopped = false;
    const trading = trader(b.server.url, () => stopped);
    const port = b.server.port;
    const badAddresses = new Set<string>();
    const WAVES = 8;
    const PER_WAVE = 440;
    let opened = 0;
    let peakClients = 0;
    let maxSocketListeners = 0;
    let maxWsListeners = 0;

    for (let w = 0; w < WAVES; w++) {
      const group = 10 + w;
      // Phase 1: connect, authenticate, subscribe (all answered), keeping the connection open.
      const setups = await Promise.all(
        Array.from({ length: PER_WAVE }, async (_, i): Promise<(() => Promise<void>) | undefined> => {
          const kind = i % 11;
          const addr = local(group, i);
          const depth = 1 + ((i * 7 + w * 13) % 97);
          const symbol = i % 3 === 0 ? SYM2 : SYM;
          switch (kind) {
            case 0: {
              // A key in the header; every channel; unsubscribes everything, then a graceful close.
              const c = await Conn.open(b.server.url, { key: key(i), local: addr });
              await c.call({ op: 'subscribe', channel: 'trades', symbol });
              await c.call({ op: 'subscribe', channel: 'book', symbol, depth });
              await c.call({ op: 'subscribe', channel: 'orders' });
              return async () => {
                expect(await c.call({ op: 'unsubscribe', channel: 'book', symbol })).toMatchObject({ ok: true, subscribed: false });
                expect(await c.call({ op: 'unsubscribe', channel: 'trades', symbol })).toMatchObject({ ok: true, subscribed: false });
                expect(await c.call({ op: 'unsubscribe', channel: 'orders' })).toMatchObject({ ok: true, subscribed: false });
                await c.close();
              };
            }
            case 1: {
              // Anonymous, then an auth frame with a good key; subscriptions; destroyed without unsubscribing.
              const c = await Conn.open(b.server.url, { local: addr });
              expect(await c.call({ op: 'auth', key: key(i) })).toMatchObject({ ok: true });
              await c.call({ op: 'subscribe', channel: 'book', symbol, depth });
              await c.call({ op: 'subscribe', channel: 'book', symbol: symbol === SYM ? SYM2 : SYM, depth: depth + 1 });
              await c.call({ op: 'subscribe', channel: 'orders' });
              return () => c.destroy();
            }
            case 2: {
              // Anonymous with bad auth frames (refused), market data, then destroyed in the middle of a frame.
              const c = await Conn.open(b.server.url, { local: addr });
              badAddresses.add(addr);
              for (let k = 0; k < 2; k++) expect((await c.call({ op: 'auth', key: `wrong-key-${w}-${i}-${k}` })).ok).toBe(false);
              await c.call({ op: 'subscribe', channel: 'trades', symbol });
              await c.call({ op: 'subscribe', channel: 'book', symbol, depth });
              return () => c.destroyMidFrame();
            }
            case 3: {
              // ?apiKey=; then five bad auth frames: the server closes it (1008).
              const c = await Conn.open(b.server.url, { query: key(i), local: addr });
              await c.call({ op: 'subscribe', channel: 'orders' });
              await c.call({ op: 'subscribe', channel: 'book', symbol, depth });
              return async () => {
                badAddresses.add(addr);
                for (let k = 0; k < 5; k++) c.send({ op: 'auth', key: `wrong-key-${w}-${i}-${k}` });
                await c.closed;
                expect(c.closeCode).toBe(1008);
              };
            }
            case 4: {
              // Anonymous market data: one book subscription replaced at ten depths, then terminated.
              const c = await Conn.open(b.server.url, { local: addr });
              for (let d = 0; d < 10; d++) await c.call({ op: 'subscribe', channel: 'book', symbol, depth: depth + d * 100 });
              await c.call({ op: 'subscribe', channel: 'trades', symbol });
              return async () => {
                c.ws.terminate();
                await c.closed;
              };
            }
            case 5:
              // Raw handshakes cut short (phase 2 only).
              return async () => {
                await rawUpgrade(port, addr, (['now', 'half', 'frame'] as const)[Math.floor(i / 10) % 3] ?? 'now', Math.floor(i / 30) % 2 === 0 ? key(i) : undefined);
              };
            case 6: {
              // A key; a book subscription; then requests sent and the socket destroyed before their answers.
              const c = await Conn.open(b.server.url, { key: key(i), local: addr });
              await c.call({ op: 'subscribe', channel: 'book', symbol, depth });
              return async () => {
                c.send({ op: 'subscribe', channel: 'book', symbol, depth: depth + 500 });
                c.send({ op: 'subscribe', channel: 'trades', symbol });
                c.send({ op: 'ping' });
                await c.destroy();
              };
            }
            case 7: {
              // A key in the header, then auth frames with another key (the connection moves), a graceful close.
              const c = await Conn.open(b.server.url, { key: key(i), local: addr });
              expect(await c.call({ op: 'auth', key: key(i + 1) })).toMatchObject({ ok: true });
              expect(await c.call({ op: 'auth', key: key(i + 1) })).toMatchObject({ ok: true });
              await c.call({ op: 'subscribe', channel: 'book', symbol, depth: 1 + (depth % 5) });
              return () => c.close();
            }
            case 8: {
              // An unknown key in the upgrade: refused 401 (counted against the address).
              badAddresses.add(addr);
              const err = await Conn.open(b.server.url, { key: `unknown-key-${w}-${i}`, local: addr }).then(
                () => undefined,
                (e: unknown) => e,
              );
              expect(err).toBeInstanceOf(Refused);
              expect((err as Refused).status).toBe(401);
              return undefined;
            }
            case 9: {
              // A key; a book subscription; then a frame the server closes the connection for (or refuses).
              const c = await Conn.open(b.server.url, { key: key(i), local: addr });
              await c.call({ op: 'subscribe', channel: 'book', symbol, depth });
              const how = Math.floor(i / 10) % 5;
              return async () => {
                if (how === 0) c.ws.send('x'.repeat(BODY_LIMIT + 1)); // too large: 1009
                else if (how === 1) c.writeRaw(maskedFrame(0x81, Buffer.from([0xff, 0xfe, 0xfd]))); // not UTF-8: 1007
                else if (how === 2) c.writeRaw(Buffer.from([0x81, 0x02, 0x7b, 0x7d])); // unmasked: 1002
                else if (how === 3) c.writeRaw(maskedFrame(0x83, Buffer.from('{}'))); // a reserved opcode: 1002
                else {
                  c.ws.send(Buffer.from('{"op":"ping"}')); // binary: refused, the connection kept
                  await c.call({ op: 'ping' });
                  await c.close();
                }
                await c.closed;
                if (how === 0) expect(c.closeCode).toBe(1009);
                if (how === 1) expect(c.closeCode).toBe(1007);
                if (how === 2 || how === 3) expect(c.closeCode).toBe(1002);
              };
            }
            default: {
              // Anonymous: subscribes and unsubscribes at many depths, then a graceful close.
              const c = await Conn.open(b.server.url, { local: addr });
              for (let d = 0; d < 5; d++) {
                await c.call({ op: 'subscribe', channel: 'book', symbol, depth: depth + d });
                await c.call({ op: 'unsubscribe', channel: 'book', symbol });
              }
              await c.call({ op: 'subscribe', channel: 'book', symbol, depth });
              return () => c.close();
            }
          }
        }),
      );
      opened += PER_WAVE;

      // The peak of the wave: every connection of phase 1 is open and subscribed.
      const open = b.ws.clients.size;
      peakClients = Math.max(peakClients, open);
      expect(open, 'server-side clients at the peak (the phase-1 connections and the trader)').toBe(setups.filter((s, i) => s !== undefined && i % 11 !== 5).length + 1);
      // The per-key / per-address counts add up to the connections open.
      expect([...b.ws.connections.values()].reduce((a, n) => a + n, 0)).toBe(open);
      // One view per (symbol, depth) subscribed, each counting exactly its subscribers.
      const expected = new Map<string, number>();
      for (const c of b.ws.clients) for (const [s, d] of c.books) expected.set(`${s}:${d}`, (expected.get(`${s}:${d}`) ?? 0) + 1);
      const actual = new Map<string, number>();
      for (const [s, byDepth] of b.views()) for (const [d, v] of byDepth) actual.set(`${s}:${d}`, v.subscribers);
      expect(new Map([...actual].sort()), 'book views and their refcounts').toEqual(new Map([...expected].sort()));
      // Listeners on each server-side socket and WebSocket stay few (no per-frame or per-subscription listeners).
      for (const c of b.ws.clients) {
        const socket = (c.ws as unknown as { _socket: net.Socket })._socket;
        for (const e of socket.eventNames()) maxSocketListeners = Math.max(maxSocketListeners, socket.listenerCount(e));
        for (const e of c.ws.eventNames()) maxWsListeners = Math.max(maxWsListeners, c.ws.listenerCount(e));
      }
      // The feeds' listeners are the WsApi's one per symbol, not one per connection.
      expect([b.feed(SYM).listeners.size, b.feed(SYM2).listeners.size]).toEqual([1, 1]);

      // Phase 2: every connection ends in its own way.
      await Promise.all(setups.map((end) => (end === undefined ? Promise.resolve() : end())));
      // Before the next wave, the server has seen them all go (the next wave's counts start from the trader's).
      await until(async () => b.ws.clients.size === 1 && (await b.connections()) === 1, `the connections of wave ${w} to end on the server`);
    }
    stopped = true;
    const rounds = await trading;
    expect(rounds).toBeGreaterThan(0);
    expect(opened).toBeGreaterThanOrEqual(3000);
    expect(peakClients).toBeGreaterThan(300);
    expect(maxSocketListeners, 'the most listeners of one event on one server-side socket').toBeLessThan(10);
    expect(maxWsListeners, 'the most listeners of one event on one server-side WebSocket').toBeLessThan(10);

    await backToBaseline(b, baseline, 'every structure back to its baseline after the churn');
    // Failed authentications are remembered per address (each address here failed at most 5 times): one bucket each.
    expect(b.failureBuckets().size).toBe(badAddresses.size);
    // The key limiter holds known keys only (no bucket per unknown key tried).
    expect(b.keyBuckets().size).toBeLessThanOrEqual(USERS);
    for (const k of b.keyBuckets().keys()) expect(KEYS.map((x) => x.key)).toContain(k);

    // Behaviour: a fresh subscriber still gets a snapshot and the server still trades.
    const after = await Conn.open(b.server.url, { key: key(3) });
    const snap = await after.call({ op: 'subscribe', channel: 'book', symbol: SYM, depth: 10 });
    expect(snap).toMatchObject({ ok: true, subscribed: true });
    expect(b.ws.bookViews.size).toBe(1);
    await after.close();
    await until(() => b.ws.bookViews.size === 0 && b.ws.connections.size === 0, 'the last subscriber gone: its view dropped');
    await expectNoWarnings();
  }, 90_000);
});

describe('connection limits after churn (behaviour only)', () => {
  it('a key, and an address for anonymous connections, at their limit of 256 can connect again as many times once their connections closed, round after round', async () => {
    const b = await boot();
    const LIMIT = 256;
    const ANON = '127.40.0.1';
    const refusal = (o: { key?: string; local?: string }): Promise<unknown> =>
      Conn.open(b.server.url, o).then(
        async (c) => {
          await c.close();
          return 'accepted';
        },
        (e: unknown) => e,
      );
    for (let round = 0; round < 3; round++) {
      // The limit of the key (from many addresses) and of the address (anonymous).
      const keyed = await pool(LIMIT, 64, (i) => Conn.open(b.server.url, { key: key(1), local: local(41 + round, i) }));
      const anon = await pool(LIMIT, 64, () => Conn.open(b.server.url, { local: ANON }));
      const overKey = await refusal({ key: key(1), local: local(45, round) });
      expect(overKey).toBeInstanceOf(Refused);
      expect((overKey as Refused).status).toBe(429);
      expect((overKey as Refused).body).toContain('TOO_MANY_CONNECTIONS');
      const overAddr = await refusal({ local: ANON });
      expect(overAddr).toBeInstanceOf(Refused);
      expect((overAddr as Refused).status).toBe(429);
      // An anonymous one that authenticates as the full key is refused and stays anonymous.
      const extra = anon[0] as Conn;
      expect(await extra.call({ op: 'auth', key: key(1) })).toMatchObject({ ok: false, error: { code: 'TOO_MANY_CONNECTIONS' } });
      // Some subscribe; then all end: a third gracefully, a third destroyed, a third destroyed mid-frame.
      await Promise.all([...keyed, ...anon].map((c, i) => (i % 4 === 0 ? c.call({ op: 'subscribe', channel: 'book', symbol: SYM, depth: 1 + (i % 50) }) : Promise.resolve(undefined))));
      await Promise.all(
        [...keyed, ...anon].map((c, i) => {
          if (i % 3 === 0) return c.close();
          if (i % 3 === 1) return c.destroy();
          return c.destroyMidFrame();
        }),
      );
      // Public signal only: the connection gauge reaches 0.
      await until(async () => (await b.wsGauge()) === 0, `round ${round}: every connection counted out`);
    }
    // The last round's limits again, exactly.
    const keyed = await pool(LIMIT, 64, (i) => Conn.open(b.server.url, { key: key(1), local: local(48, i) }));
    expect(await refusal({ key: key(1) })).toBeInstanceOf(Refused);
    await Promise.all(keyed.map((c) => c.destroy()));
    await until(() => b.ws.connections.size === 0 && b.ws.bookViews.size === 0, 'nothing counted, no views');
    await expectNoWarnings();
  }, 60_000);
});

describe('HTTP churn', () => {
  it('keep-alive and short connections, aborted requests and unknown keys from many addresses: connections, key and address buckets, and route counters stay bounded (failed-auth buckets capped at 100,000)', async () => {
    const b = await boot();
    const port = b.server.port;
    const baseline = await sizes(b);
    const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 16 });
    closers.push(() => {
      keepAlive.destroy();
      return Promise.resolve();
    });

    // Keep-alive: orders that end (IOC), books at many depths, queries of own and unknown orders, unknown routes.
    const statuses = await pool(2000, 16, async (i) => {
      switch (i % 5) {
        case 0:
          return (await httpRequest(port, { method: 'POST', path: '/v1/orders', key: key(i), json: { symbol: SYM, side: 'buy', type: 'limit', price: 200, qty: 1, tif: 'IOC' }, agent: keepAlive })).status;
        case 1:
          return (await httpRequest(port, { method: 'GET', path: `/v1/book/${SYM}?depth=${1 + (i % 1000)}`, agent: keepAlive })).status;
        case 2:
          return (await httpRequest(port, { method: 'GET', path: `/v1/orders/${SYM}/${i}`, key: key(i), agent: keepAlive })).status;
        case 3:
          return (await httpRequest(port, { method: 'GET', path: `/no/such/route/${i}/${crypto.randomBytes(4).toString('hex')}`, agent: keepAlive })).status;
        default:
          return (await httpRequest(port, { method: 'DELETE', path: `/v1/orders/${SYM}/${i}`, key: key(i), agent: keepAlive })).status;
      }
    });
    expect(statuses.every((s) => s === 200 || s === 403 || s === 404)).toBe(true);

    // Short connections (connection: close), unknown keys each from its own address; a few addresses past their burst.
    const badAddresses = new Set<string>();
    const shortStatuses = await pool(1500, 32, async (i) => {
      const addr = i < 1200 ? local(60 + (i >> 9), i & 511) : '127.63.0.1';
      badAddresses.add(addr);
      return (await httpRequest(port, { method: 'POST', path: '/v1/orders', key: `unknown-${i}-${crypto.randomBytes(6).toString('hex')}`, json: { symbol: SYM, side: 'buy', type: 'limit', price: 100, qty: 1 }, agent: false, local: addr, close: true })).status;
    });
    expect(shortStatuses.filter((s) => s === 401).length).toBeGreaterThanOrEqual(1200);
    expect(shortStatuses.filter((s) => s === 429).length).toBeGreaterThan(0); // 300 from one address: past its burst of 20

    // Raw connections cut short: half a request line, headers without the body, pipelined requests never read.
    await pool(300, 32, (i) =>
      new Promise<void>((resolve) => {
        const s = net.connect({ port, host: '127.0.0.1', localAddress: local(64, i) });
        s.on('error', () => undefined);
        s.on('close', () => {
          resolve();
        });
        s.on('connect', () => {
          const body = JSON.stringify({ symbol: SYM, side: 'buy', type: 'limit', price: 100, qty: 1, tif: 'IOC' });
          const req = `POST /v1/orders HTTP/1.1\r\nHost: x\r\nx-api-key: ${key(i)}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`;
          const what = i % 3;
          const data = what === 0 ? req.slice(0, 20) : what === 1 ? req + body.slice(0, 10) : `${req}${body}${req}${body}GET /v1/instruments HTTP/1.1\r\nHost: x\r\n\r\n`;
          s.write(data, () => s.destroy());
        });
      }),
    );

    keepAlive.destroy();
    // The server's connections are back to none; nothing else grew.
    await backToBaseline(b, baseline, 'every structure back to its baseline after the HTTP churn');
    // One failed-auth bucket per address that sent an unknown key; the key limiter knows only real keys.
    expect(b.failureBuckets().size).toBe(badAddresses.size);
    expect(b.keyBuckets().size).toBeLessThanOrEqual(USERS);
    // Route counters are per route pattern, not per path asked for (400 distinct unknown paths above).
    const httpCounts = (b.ws.deps.metrics as unknown as { httpCounts: Map<string, unknown> }).httpCounts;
    expect(httpCounts.size).toBeLessThan(30);

    // The cap: unknown keys from 100,000 more addresses (as the server's KeyStore sees them).
    const keys = b.ws.deps.keys;
    for (let i = 0; i < 101_000; i++) {
      try {
        keys.authenticateFrom('no-such-key-at-all', `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
      } catch {
        // UNAUTHORIZED, as expected
      }
    }
    expect(b.failureBuckets().size).toBe(100_000);
    // Behaviour: a known key is still served, a fresh address with an unknown key is answered 401 (not 429).
    expect((await httpRequest(port, { method: 'POST', path: '/v1/orders', key: key(2), json: { symbol: SYM, side: 'buy', type: 'limit', price: 100, qty: 1, tif: 'IOC' }, agent: false })).status).toBe(200);
    expect((await httpRequest(port, { method: 'POST', path: '/v1/orders', key: 'unknown-key-zzzz', json: { symbol: SYM, side: 'buy', type: 'limit', price: 100, qty: 1 }, agent: false, local: '127.65.0.1' })).status).toBe(401);
    expect(b.failureBuckets().size).toBe(100_000);
    await backToBaseline(b, baseline, 'every structure back to its baseline at the end');
    await expectNoWarnings();
  }, 60_000);
});

describe('amendments', () => {
  it('amendments of many orders, several at once per order (chains), some of orders canceled meanwhile: every chain is released', async () => {
    const gated = gatedIO();
    const b = await boot({}, { engine: { io: gated.io } });
    const baseline = await sizes(b);
    const c = await Conn.open(b.server.url, { key: key(0) });
    const N = 500;
    const placed = await c.call({ op: 'order', order: Array.from({ length: N }, (_, i) => ({ symbol: SYM, side: 'buy', type: 'limit', price: 100 + i, qty: 10 })) });
    const ids = (placed.results ?? []).map((r) => r.order?.orderId as number);
    expect(ids).toHaveLength(N);

    // Held durable: every amendment is taken and none is finished, so the chains stand.
    gated.gate.holdAll = true;
    const answers: Promise<WsMsg>[] = [];
    for (let i = 0; i < N; i++) {
      const orderId = ids[i] as number;
      answers.push(c.call({ op: 'amend', symbol: SYM, orderId, price: 1000 + i }));
      answers.push(c.call({ op: 'amend', symbol: SYM, orderId, qty: 5 })); // a reduction
      if (i % 5 === 0) answers.push(c.call({ op: 'cancel', symbol: SYM, orderId }));
      answers.push(c.call({ op: 'amend', symbol: SYM, orderId, qty: 20 })); // a size increase: two commands
      answers.push(c.call({ op: 'amend', symbol: SYM, orderId, price: 2000 + i, qty: 7 }));
    }
    const amendmentsSent = N * 4;
    await until(() => b.server.gateway.amendmentsInFlight === amendmentsSent, () => `every amendment taken (${b.server.gateway.amendmentsInFlight})`);
    expect(b.gateway.amending.size).toBe(N);
    gated.gate.holdAll = false;
    gated.release();
    const settled = await Promise.all(answers);
    // Ended orders answer ORDER_NOT_FOUND; the rest are carried out.
    const codes = new Set(settled.map((m) => (m.ok === true ? 'ok' : m.error?.code)));
    expect([...codes].every((x) => x === 'ok' || x === 'ORDER_NOT_FOUND')).toBe(true);
    expect(settled.filter((m) => m.ok === true).length).toBeGreaterThan(N * 3);

    // A second round, one at a time, then all released.
    for (let i = 1; i < N; i += 50) await c.call({ op: 'amend', symbol: SYM, orderId: ids[i], qty: 3 });
    await c.close();
    await backToBaseline(b, baseline, 'amendment chains released');
    expect(b.gateway.amending.size).toBe(0);
    await expectNoWarnings();
  }, 60_000);

  it('amendments and cancels against a full mailbox (BACKPRESSURE; the second command of a size increase waits for room): chains and the engine waiters all released', async () => {
    const b = await boot({}, { engine: { mailboxSize: 32 } });
    const baseline = await sizes(b);
    const c = await Conn.open(b.server.url, { key: key(1) });
    const ids: number[] = [];
    // Placed 20 at a time (the mailbox holds 32).
    for (let k = 0; k < 15; k++) {
      const r = await c.call({ op: 'order', order: Array.from({ length: 20 }, (_, j) => ({ symbol: SYM, side: 'sell', type: 'limit', price: 8000 + k * 20 + j, qty: 10 })) });
      for (const x of r.results ?? []) if (x.ok === true) ids.push(x.order?.orderId as number);
    }
    expect(ids.length).toBe(300);
    const answers: Promise<WsMsg>[] = [];
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < ids.length; i++) {
        const orderId = ids[i] as number;
        answers.push(c.call({ op: 'amend', symbol: SYM, orderId, qty: 9 - round * 2 }));
        answers.push(c.call({ op: 'amend', symbol: SYM, orderId, qty: 12 + round }));
        if (round === 2 && i % 7 === 0) answers.push(c.call({ op: 'cancel', symbol: SYM, orderId }));
      }
    }
    const settled = await Promise.all(answers);
    const codes = new Set(settled.map((m) => (m.ok === true ? 'ok' : m.error?.code)));
    // An amendment or a cancel meeting the full mailbox is refused BACKPRESSURE (nothing of it
    // logged); a size increase whose first command was taken waits for room for its second.
    expect([...codes].every((x) => x === 'ok' || x === 'ORDER_NOT_FOUND' || x === 'BACKPRESSURE')).toBe(true);
    expect(codes.has('ok')).toBe(true);
    expect(codes.has('BACKPRESSURE')).toBe(true);
    await c.close();
    await backToBaseline(b, baseline, 'amendment chains and engine waiters released');
    await expectNoWarnings();
  }, 60_000);
});

describe('client order ids and order history', () => {
  it('client order ids far beyond the window: each user keeps exactly its window, another user pushes none out, an id past the window is a new order', async () => {
    const W = 50;
    const b = await boot({ clientOrderIdWindow: W });
    const users = [0, 1, 2];
    const conns = await Promise.all(users.map((u) => Conn.open(b.server.url, { key: key(u) })));
    const FRAMES = 10;
    for (let f = 0; f < FRAMES; f++) {
      await Promise.all(
        conns.map(async (c, u) => {
          const r = await c.call({
            op: 'order',
            order: Array.from({ length: 100 }, (_, j) => ({ symbol: j % 2 === 0 ? SYM : SYM2, side: 'buy', type: 'limit', price: 100, qty: 1, tif: 'IOC', clientOrderId: `u${u}-${f * 100 + j}` })),
          });
          expect(r.results?.every((x) => x.ok === true)).toBe(true);
        }),
      );
    }
    expect(b.gateway.clientOrders.size).toBe(W * users.length);
    expect(b.gateway.clientOrderKeys.size).toBe(users.length);
    for (const keys of b.gateway.clientOrderKeys.values()) expect(keys.size).toBe(W);

    const c0 = conns[0] as Conn;
    const newest = await c0.call({ op: 'order', order: { symbol: SYM2, side: 'buy', type: 'limit', price: 100, qty: 1, tif: 'IOC', clientOrderId: 'u0-999' } });
    expect(newest).toMatchObject({ ok: true, duplicate: true });
    const oldest = await c0.call({ op: 'order', order: { symbol: SYM, side: 'buy', type: 'limit', price: 100, qty: 1, tif: 'IOC', clientOrderId: 'u0-0' } });
    expect(oldest.ok).toBe(true);
    expect(oldest.duplicate).toBeUndefined();
    const clash = await c0.call({ op: 'order', order: { symbol: SYM2, side: 'buy', type: 'limit', price: 101, qty: 1, tif: 'IOC', clientOrderId: 'u0-999' } });
    expect(clash).toMatchObject({ ok: false, error: { code: 'DUPLICATE_CLIENT_ORDER_ID' } });
    expect(b.gateway.clientOrders.size).toBe(W * users.length);
    for (const c of conns) await c.close();
    await until(() => b.ws.clients.size === 0, 'closed');
    await expectNoWarnings();
  }, 60_000);

  it('thousands of orders that end in every way: the orders kept are the resting ones and at most orderHistory ended ones per symbol; trades at most recentTrades', async () => {
    const HISTORY = 100;
    const TRADES = 50;
    const b = await boot({ orderHistory: HISTORY, recentTrades: TRADES });
    const a = await Conn.open(b.server.url, { key: key(0) });
    const z = await Conn.open(b.server.url, { key: key(1) });
    const ended: { symbol: string; orderId: number }[] = [];
    const ROUNDS = 15;
    for (let r = 0; r < ROUNDS; r++) {
      for (const symbol of [SYM, SYM2]) {
        // 20 resting asks of z's, then a's orders that end: fills, IOC and market leftovers, FOK refusals, post-only refusals, self-trade cancels.
        const asks = await z.call({ op: 'order', order: Array.from({ length: 20 }, (_, j) => ({ symbol, side: 'sell', type: 'limit', price: 5000 + j, qty: 2 })) });
        const takers = await a.call({
          op: 'order',
          order: [
            ...Array.from({ length: 20 }, (_, j) => ({ symbol, side: 'buy', type: 'limit', price: 5000 + j, qty: 2 })), // fill both sides
            ...Array.from({ length: 20 }, () => ({ symbol, side: 'buy', type: 'limit', price: 200, qty: 1, tif: 'IOC' })), // canceled unfilled
            ...Array.from({ length: 20 }, () => ({ symbol, side: 'buy', type: 'limit', price: 9000, qty: 1, tif: 'FOK' })), // rejected
            ...Array.from({ length: 10 }, () => ({ symbol, side: 'sell', type: 'market', qty: 1 })), // no bids: canceled
          ],
        });
        const resting = await a.call({ op: 'order', order: Array.from({ length: 20 }, (_, j) => ({ symbol, side: 'buy', type: 'limit', price: 300 + j, qty: 1 })) });
        const stp = await a.call({ op: 'order', order: Array.from({ length: 5 }, () => ({ symbol, side: 'sell', type: 'limit', price: 300, qty: 1, stp: 'CANCEL_NEWEST' })) });
        const post = await a.call({ op: 'order', order: Array.from({ length: 5 }, () => ({ symbol, side: 'sell', type: 'limit', price: 300, qty: 1, tif: 'POST' })) });
        for (const x of [...(asks.results ?? []), ...(takers.results ?? []), ...(stp.results ?? []), ...(post.results ?? [])]) {
          expect(x.ok).toBe(true);
          ended.push({ symbol, orderId: x.order?.orderId as number });
        }
        // The resting bids are canceled, in one frame each.
        const ids = (resting.results ?? []).map((x) => x.order?.orderId as number);
        const cancels = await Promise.all(ids.map((orderId) => a.call({ op: 'cancel', symbol, orderId })));
        expect(cancels.every((x) => x.ok === true)).toBe(true);
        for (const orderId of ids) ended.push({ symbol, orderId });
      }
    }
    // A few orders left resting (a last update per symbol: the feed forgets what the one before pushed out).
    for (const symbol of [SYM, SYM2]) {
      const r = await a.call({ op: 'order', order: Array.from({ length: 10 }, (_, j) => ({ symbol, side: 'buy', type: 'limit', price: 150 + j, qty: 1 })) });
      expect(r.results?.every((x) => x.ok === true)).toBe(true);
    }
    expect(ended.length).toBeGreaterThan(3000);
    for (const symbol of [SYM, SYM2]) {
      const orders = b.feed(symbol).state.orders;
      const live = [...orders.values()].filter((o) => o.resting).length;
      expect(live).toBe(10);
      expect(orders.size, `${symbol}: orders kept (10 resting, at most ${HISTORY} ended)`).toBeLessThanOrEqual(10 + HISTORY);
      expect(b.feed(symbol).state.trades.length).toBeLessThanOrEqual(TRADES);
    }
    // Behaviour: the first ended order is forgotten (404), the last one is still served.
    const first = ended[0] as { symbol: string; orderId: number };
    const last = ended[ended.length - 1] as { symbol: string; orderId: number };
    expect((await httpRequest(b.server.port, { method: 'GET', path: `/v1/orders/${first.symbol}/${first.orderId}`, key: key(1), agent: false })).status).toBe(404);
    const lastAnswer = await httpRequest(b.server.port, { method: 'GET', path: `/v1/orders/${last.symbol}/${last.orderId}`, key: key(0), agent: false });
    expect(lastAnswer.status).toBe(200);
    await a.close();
    await z.close();
    await expectNoWarnings();
  }, 60_000);
});
