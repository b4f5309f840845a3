// Shared helpers of the server tests: where things are, temporary data directories, starting a
// server in-process (port 0, silent logger, explicit API keys; its engine opened with small log
// segments, an injectable fsync failure and optional engine options) or as a child process (the
// built bin), an HTTP client over real sockets (the global fetch), a WebSocket client (the ws
// package) that keeps what it receives, and waiting for a condition.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Event } from '@gx3/codecs';
import { NatsJetStreamBus } from '@gx3/outbox-publisher';
import { nodeFileIO, type FileIO } from '@gx3/wal';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import type { ApiKeyConfig, InstrumentConfig, ServerConfig } from '../src/config.js';
import { resolveConfig } from '../src/config.js';
import type { OrderView } from '../src/gateway.js';
import type { PublicTrade } from '../src/market-state.js';
import { startServer, type RunningServer } from '../src/server.js';

// ---------------------------------------------------------------------------------------------
// Places

/** apps/server */
export const SERVER_DIR = fileURLToPath(new URL('..', import.meta.url));
/** The built command-line server, run by the process tests. */
export const BIN_JS = path.join(SERVER_DIR, 'dist/bin/server.js');
const SRC_DIR = path.join(SERVER_DIR, 'src');

/** Fails with a clear message when the built bin is missing; warns when it is older than the sources. */
export function checkBuilt(): void {
  if (!fs.existsSync(BIN_JS)) {
    throw new Error(`${BIN_JS} is missing: the process tests run the built server; run \`pnpm --filter @gx3/server build\` (or \`pnpm -s build\` at the root) first`);
  }
  const dist = path.join(SERVER_DIR, 'dist');
  const stale: string[] = [];
  const walk = (dir: string): void => {
    for (const f of fs.readdirSync(dir, { withFileTypes: true })) {
      const src = path.join(dir, f.name);
      if (f.isDirectory()) walk(src);
      else if (f.name.endsWith('.ts')) {
        const out = path.join(dist, path.relative(SRC_DIR, src)).replace(/\.ts$/, '.js');
        if (!fs.existsSync(out) || fs.statSync(src).mtimeMs > fs.statSync(out).mtimeMs) stale.push(path.relative(SERVER_DIR, src));
      }
    }
  };
  walk(SRC_DIR);
  if (stale.length > 0) console.warn(`[server tests] the process tests run ${BIN_JS}, older than ${stale.join(', ')}: run \`pnpm --filter @gx3/server build\``);
}

// ---------------------------------------------------------------------------------------------
// Temporary directories

const made: string[] = [];

/** A fresh directory under os.tmpdir(), removed by `removeTmpDirs()`. */
export function tmpDir(prefix = 'gx3-server-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
}

export function removeTmpDirs(): void {
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// Servers

/**
 * The servers these tests start in-process get engine settings through `StartOptions.engine`:
 * small log segments and an injectable file layer.
 *
 * Small segments: every fresh log preallocates (writes and syncs) one segment of zeros on open, and
 * with the default of 64 MiB each server start would write 128 MiB per symbol; the tests give the
 * engine 2 MiB segments (the smallest that holds a record of the default maxRecordSize, 1 MiB). The
 * child processes (the built bin) keep the default.
 */
export const SEGMENT = 2 << 20;

/**
 * Faults to inject into the logs of the servers started in-process (through the engine's `io`
 * option, the real file layer otherwise): with `failSyncs`, every fdatasync fails with EIO.
 */
export const faults = { failSyncs: false };
const eio = (): NodeJS.ErrnoException => Object.assign(new Error('EIO: i/o error, fdatasync (injected by the test)'), { code: 'EIO' });
const testIO: FileIO = {
  ...nodeFileIO,
  syncSync: (fd) => {
    if (faults.failSyncs) throw eio();
    nodeFileIO.syncSync(fd);
  },
  sync: (fd, done) => {
    if (faults.failSyncs) {
      setImmediate(() => {
        done(eio());
      });
      return;
    }
    nodeFileIO.sync(fd, done);
  },
};

/** Engine options for the next servers started in-process (e.g. a small mailbox); reset them after use. */
export const engineOverrides: { mailboxSize?: number } = {};


export const ALICE = 'alice-key-123';
export const BOB = 'bob-key-4567';
export const CAROL = 'carol-key-890';
export const API_KEYS: readonly ApiKeyConfig[] = [
  { user: 'alice', key: ALICE },
  { user: 'bob', key: BOB },
  { user: 'carol', key: CAROL },
];
export const API_KEYS_ENV = API_KEYS.map((k) => `${k.user}:${k.key}`).join(',');

/** The instrument of most tests: a band of 100..10,000 ticks, at most 1,000 lots an order. */
export const SYM = 'TEST';
export const TEST_INSTRUMENT: InstrumentConfig = { symbol: SYM, minPrice: 100, maxPrice: 10_000, maxQty: 1000 };

export const silentLogger = pino({ level: 'silent' });

export type RawSettings = Partial<Record<keyof ServerConfig, unknown>>;

export interface TestServer extends RunningServer {
  readonly dataDir: string;
  readonly config: ServerConfig;
}

/** Starts a server in this process on 127.0.0.1, port 0, with the test keys and instrument (overridable) and a silent logger. */
export async function start(settings: RawSettings = {}, dataDir: string = tmpDir()): Promise<TestServer> {
  const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir, apiKeys: API_KEYS, instruments: [TEST_INSTRUMENT], ...settings });
  const server = await startServer(config, { logger: silentLogger, engine: { segmentSize: SEGMENT, io: testIO, ...engineOverrides } });
  return { ...server, dataDir, config };
}

// ---------------------------------------------------------------------------------------------
// HTTP over real sockets

/** The bodies the API answers with (each field present in some of them). */
export interface Body {
  order?: OrderView;
  events?: Event[];
  duplicate?: boolean;
  error?: { code: string; message: string };
  symbol?: string;
  seq?: number;
  bids?: [number, number][];
  asks?: [number, number][];
  trades?: PublicTrade[];
  instruments?: InstrumentConfig[];
  status?: string;
  live?: boolean;
  ready?: boolean;
  symbols?: Record<string, { halted: boolean; processedSeq: number; durableSeq: number; queued: number }>;
}

export interface Res {
  status: number;
  headers: Headers;
  text: string;
  /** The body parsed as JSON (an empty object if it is not JSON). */
  body: Body;
}

export interface RequestOptions {
  /** The x-api-key header. */
  key?: string;
  /** A JSON value to send (as application/json). */
  json?: unknown;
  /** A raw body (sent as is, with `contentType` if given). */
  raw?: string | Uint8Array;
  contentType?: string;
}

export async function request(base: string, method: string, urlPath: string, o: RequestOptions = {}): Promise<Res> {
  const headers: Record<string, string> = {};
  if (o.key !== undefined) headers['x-api-key'] = o.key;
  let body: string | Uint8Array | undefined;
  if (o.json !== undefined) {
    body = JSON.stringify(o.json);
    headers['content-type'] = 'application/json';
  } else if (o.raw !== undefined) {
    body = o.raw;
  }
  if (o.contentType !== undefined) headers['content-type'] = o.contentType;
  const res = await fetch(base + urlPath, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await res.text();
  let parsed: Body = {};
  try {
    parsed = JSON.parse(text) as Body;
  } catch {
    // not JSON (the metrics)
  }
  return { status: res.status, headers: res.headers, text, body: parsed };
}

export interface OrderRequest {
  symbol?: string;
  side: 'buy' | 'sell';
  type?: 'limit' | 'market';
  price?: number;
  qty: number;
  tif?: 'GTC' | 'IOC' | 'FOK' | 'POST';
  stp?: 'NONE' | 'CANCEL_NEWEST' | 'CANCEL_OLDEST' | 'CANCEL_BOTH' | 'DECREMENT_CANCEL';
  clientOrderId?: string;
}

/** A client of one server as one user. */
export class Client {
  constructor(
    readonly base: string,
    readonly key: string,
  ) {}

  post(order: OrderRequest): Promise<Res> {
    return request(this.base, 'POST', '/v1/orders', { key: this.key, json: { symbol: SYM, type: 'limit', ...order } });
  }

  /** Places an order that must be accepted (200); returns its view and events. */
  async place(order: OrderRequest): Promise<{ order: OrderView; events: Event[] }> {
    const r = await this.post(order);
    if (r.status !== 200 || r.body.order === undefined || r.body.events === undefined) throw new Error(`place ${JSON.stringify(order)}: ${r.status} ${r.text}`);
    return { order: r.body.order, events: r.body.events };
  }

  get(orderId: number, symbol = SYM): Promise<Res> {
    return request(this.base, 'GET', `/v1/orders/${symbol}/${orderId}`, { key: this.key });
  }

  /** The view of an order that must exist. */
  async order(orderId: number, symbol = SYM): Promise<OrderView> {
    const r = await this.get(orderId, symbol);
    if (r.status !== 200 || r.body.order === undefined) throw new Error(`get ${symbol}/${orderId}: ${r.status} ${r.text}`);
    return r.body.order;
  }

  cancel(orderId: number, symbol = SYM): Promise<Res> {
    return request(this.base, 'DELETE', `/v1/orders/${symbol}/${orderId}`, { key: this.key });
  }

  amend(orderId: number, change: { qty?: number; price?: number }, symbol = SYM): Promise<Res> {
    return request(this.base, 'PATCH', `/v1/orders/${symbol}/${orderId}`, { key: this.key, json: change });
  }
}

export async function book(base: string, depth?: number, symbol = SYM): Promise<{ seq: number; bids: [number, number][]; asks: [number, number][] }> {
  const r = await request(base, 'GET', `/v1/book/${symbol}${depth === undefined ? '' : `?depth=${depth}`}`);
  if (r.status !== 200 || r.body.seq === undefined || r.body.bids === undefined || r.body.asks === undefined) throw new Error(`book: ${r.status} ${r.text}`);
  return { seq: r.body.seq, bids: r.body.bids, asks: r.body.asks };
}

export async function trades(base: string, limit?: number, symbol = SYM): Promise<PublicTrade[]> {
  const r = await request(base, 'GET', `/v1/trades/${symbol}${limit === undefined ? '' : `?limit=${limit}`}`);
  if (r.status !== 200 || r.body.trades === undefined) throw new Error(`trades: ${r.status} ${r.text}`);
  return r.body.trades;
}

// ---------------------------------------------------------------------------------------------
// WebSocket

/** The frames the WebSocket API sends (each field present in some of them). */
export interface WsMsg {
  id?: string | number;
  ok?: boolean;
  pong?: boolean;
  user?: string;
  order?: OrderView;
  events?: Event[];
  duplicate?: boolean;
  results?: WsMsg[];
  error?: { code: string; message: string; retryAfter?: number };
  type?: string;
  channel?: string;
  subscribed?: boolean;
  symbol?: string;
  seq?: number;
  bids?: [number, number][];
  asks?: [number, number][];
  trades?: { id: number; price: number; qty: number; takerSide: string; ts: number }[];
  orders?: OrderView[];
}

export function wsUrl(base: string, query = ''): string {
  return `${base.replace(/^http/, 'ws')}/v1/ws${query}`;
}

/** A WebSocket client that keeps every frame it receives, in order, for the test to take. */
export class WsClient {
  /** Every frame received, in order (never consumed: `next` only moves a cursor past matches). */
  readonly received: WsMsg[] = [];
  private readonly taken = new Set<number>();
  private closed: { code: number; reason: string } | undefined;
  private nextId = 1;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.received.push(isBinary ? { type: 'binary!' } : (JSON.parse(data.toString('utf8')) as WsMsg));
    });
    ws.on('close', (code: number, reason: Buffer) => {
      this.closed = { code, reason: reason.toString('utf8') };
    });
  }

  /** Connects; rejects with the HTTP status and body if the upgrade is refused. */
  static connect(url: string, headers: Record<string, string> = {}): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers });
      const client = new WsClient(ws);
      ws.once('open', () => {
        resolve(client);
      });
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (s: string) => (body += s));
        res.on('end', () => {
          reject(new UpgradeRefused(res.statusCode ?? 0, body));
        });
      });
      ws.once('error', reject);
    });
  }

  get closeInfo(): { code: number; reason: string } | undefined {
    return this.closed;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' || Buffer.isBuffer(frame) ? frame : JSON.stringify(frame));
  }

  /** Sends `frame` with a fresh request id and resolves with the answer carrying that id. */
  async call(frame: Record<string, unknown>): Promise<WsMsg> {
    const id = `r${this.nextId++}`;
    this.send({ ...frame, id });
    return this.next((m) => m.id === id, `the answer to ${JSON.stringify(frame)}`);
  }

  /** The first frame not taken yet that matches, taking it (waits for it). */
  async next(match: (m: WsMsg) => boolean, what = 'a frame'): Promise<WsMsg> {
    let found: WsMsg | undefined;
    await until(
      () => {
        for (let i = 0; i < this.received.length; i++) {
          const m = this.received[i] as WsMsg;
          if (!this.taken.has(i) && match(m)) {
            this.taken.add(i);
            found = m;
            return true;
          }
        }
        return false;
      },
      () => `${what} (the last frames received: ${JSON.stringify(this.received.slice(-5))})`,
    );
    return found as WsMsg;
  }

  /** Every frame received so far that matches. */
  all(match: (m: WsMsg) => boolean): WsMsg[] {
    return this.received.filter(match);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.ws.readyState === WebSocket.CLOSED) {
        resolve();
        return;
      }
      this.ws.once('close', () => {
        resolve();
      });
      this.ws.close();
    });
  }
}

export class UpgradeRefused extends Error {
  override readonly name = 'UpgradeRefused';
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`upgrade refused with ${status}: ${body}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Waiting and processes

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Resolves once `cond()` holds; fails naming `what` when it does not within `timeoutMs`. The
 * deadline is generous: it only turns a hang into a clear failure, it measures nothing.
 */
export async function until(cond: () => boolean | Promise<boolean>, what: string | (() => string), timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(5);
  }
}

/** `promise`, or a failure naming `what` if it has not settled within `ms` (a hang guard, not a measurement). */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`${what} did not complete within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([promise, guard]);
  } finally {
    clearTimeout(timer);
  }
}

/** The built server running as a child process. */
/** The environment of a server process on `dataDir` (port 0, the test keys and instrument, the memory bus). */
export function serverEnv(dataDir: string): Record<string, string> {
  return {
    GX3_DATA_DIR: dataDir,
    GX3_HOST: '127.0.0.1',
    GX3_PORT: '0',
    GX3_API_KEYS: API_KEYS_ENV,
    GX3_INSTRUMENTS: `${SYM}:100:10000:1000`,
    GX3_LOG_LEVEL: 'warn',
    GX3_BUS: 'memory',
  };
}

export class ServerProcess {
  private static readonly running = new Set<ServerProcess>();

  /** Kills (SIGKILL) every child these tests started that is still running (after a failed test). */
  static async killAll(): Promise<void> {
    for (const p of [...ServerProcess.running]) await p.kill('SIGKILL');
  }

  stderr = '';
  stdout = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private constructor(readonly proc: ChildProcess) {
    proc.stdout?.setEncoding('utf8');
    proc.stderr?.setEncoding('utf8');
    proc.stdout?.on('data', (s: string) => (this.stdout += s));
    proc.stderr?.on('data', (s: string) => (this.stderr += s));
    ServerProcess.running.add(this);
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        ServerProcess.running.delete(this);
        resolve({ code, signal });
      });
    });
  }

  /** Spawns `node dist/bin/server.js` with `env` (over this process's) and waits for its `listening on` line. */
  static async spawn(env: Record<string, string>): Promise<ServerProcess & { url: string }> {
    const proc = spawn(process.execPath, [BIN_JS], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const p = new ServerProcess(proc);
    let exited = false;
    void p.exited.then(() => (exited = true));
    let url: string | undefined;
    await until(() => {
      if (exited) throw new Error(`the server exited at start:\n${p.stderr}`);
      url = /listening on (http:\/\/\S+)/.exec(p.stderr)?.[1];
      return url !== undefined;
    }, () => `the server's "listening on" line (stderr so far: ${p.stderr})`);
    return Object.assign(p, { url: url as string });
  }

  kill(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    return this.exited;
  }
}

/**
 * A file layer whose asynchronous fsyncs can be held back until released, those of the command log
 * alone (paths under `/cmd/`: `holdCmd`) or all of them (`holdAll`): a command then stays processed
 * but not durable for as long as the test wants.
 */
/**
 * The real file layer with some operations replaced by `make`, which is given the path each open
 * descriptor was opened with (to act on one log's files only: `/cmd/`, `/ev/`).
 */
export function pathAwareIO(make: (pathOf: (fd: number) => string) => Partial<FileIO>): FileIO {
  const paths = new Map<number, string>();
  return {
    ...nodeFileIO,
    open: (p, flags) => {
      const fd = nodeFileIO.open(p, flags);
      paths.set(fd, p);
      return fd;
    },
    ...make((fd) => paths.get(fd) ?? ''),
  };
}

/**
 * A file layer whose fdatasyncs wait while `gate.holdAll`, or, while `gate.holdCmd`, those of the
 * command logs (of `symbol`'s alone, if given), until `release()`.
 */
export function gatedIO(symbol?: string): { io: FileIO; gate: { holdCmd: boolean; holdAll: boolean }; release: () => void; held: () => number } {
  const queue: (() => void)[] = [];
  const gate = { holdCmd: false, holdAll: false };
  const cmdDir = symbol === undefined ? '/cmd/' : `/${symbol}/cmd/`;
  const io = pathAwareIO((pathOf) => ({
    sync: (fd, done) => {
      const isCmd = pathOf(fd).includes(cmdDir);
      if (gate.holdAll || (gate.holdCmd && isCmd)) {
        queue.push(() => {
          nodeFileIO.sync(fd, done);
        });
        return;
      }
      nodeFileIO.sync(fd, done);
    },
  }));
  return {
    io,
    gate,
    release: () => {
      for (const f of queue.splice(0)) f();
    },
    held: () => queue.length,
  };
}

/** The value of `name{labels}` in a Prometheus text exposition (label order ignored), or undefined. */
export function metricSample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const got: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) got[l[1] as string] = l[2] as string;
    const keys = Object.keys(labels);
    if (keys.length === Object.keys(got).length && keys.every((k) => got[k] === labels[k])) return Number(m[3]);
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Seeded randomness and NATS

/** A deterministic PRNG (mulberry32) of floats in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Why a JetStream-enabled NATS server cannot be used at `url`, or undefined when it can. */
export async function natsProblem(url: string): Promise<string | undefined> {
  let bus: NatsJetStreamBus | undefined;
  try {
    bus = await NatsJetStreamBus.connect({ servers: url, connectTimeoutMs: 2000 });
    await bus.jsm.getAccountInfo();
    return undefined;
  } catch (err) {
    return `${url}: ${(err as Error).message}`;
  } finally {
    await bus?.close().catch(() => undefined);
  }
}

/** The whole HTTP/1.1 responses in `text` (status, lower-cased headers, body), in order; a 100 Continue skipped. */
export function parseResponses(text: string): { status: number; headers: Record<string, string>; body: string }[] {
  const out: { status: number; headers: Record<string, string>; body: string }[] = [];
  let at = 0;
  for (;;) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end < 0) return out;
    const [statusLine = '', ...lines] = text.slice(at, end).split('\r\n');
    const headers: Record<string, string> = {};
    for (const l of lines) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const status = Number(statusLine.split(' ')[1]);
    if (status === 100) {
      at = end + 4;
      continue;
    }
    const len = Number(headers['content-length'] ?? 0);
    if (text.length < end + 4 + len) return out;
    out.push({ status, headers, body: text.slice(end + 4, end + 4 + len) });
    at = end + 4 + len;
  }
}

/** Flips the byte at `at` of `file` (a damaged record). */
export function flipByte(file: string, at: number): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, at);
    b[0] = (b[0] ?? 0) ^ 0xff;
    fs.writeSync(fd, b, 0, 1, at);
  } finally {
    fs.closeSync(fd);
  }
}
