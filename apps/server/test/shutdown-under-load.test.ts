// Review: what a user of a real exchange expects from a graceful shutdown and from a crash, with the
// built server as a child process and several clients trading all the while: HTTP clients on
// keep-alive connections and WebSocket clients (single orders and arrays of orders per frame, all
// with client order ids) that place, cancel and amend continuously.
//
// Orders never cross (buys at 100..599, sells at 5000..5499), so the state of every order, and the
// book, follow from the requests the server carried out: after a graceful stop exactly those it
// answered with success; after a crash those, plus perhaps the unanswered ones.
//
// SIGTERM (and SIGINT, and SIGTERM twice, and with a WebSocket client that never reads): every
// success answer is found after a restart, with the same state, and the book is the one the answers
// imply; every error answer is `{error:{code,message}}` with a documented code (503 SHUTTING_DOWN,
// with Retry-After) and was not carried out; a request cut without an answer was not carried out
// either (a retry with its client order id after the restart places a new order, not a duplicate);
// the process exits 0 and the WebSocket clients get a close frame (1001, going away: the README
// names no close code for a shutdown, 1001 is what ws.ts sends and process.test.ts expects).
//
// SIGKILL: every acknowledged order survives, in its acknowledged state or the one its unanswered
// request would give; a retry of a client order id returns the original outcome (duplicate: true);
// new order ids continue right after the highest logged one (none reused).
//
// Requests that arrive in parts around the signal: an order finished once the shutdown began is 503
// SHUTTING_DOWN; so must be a WebSocket upgrade finished then (every request but health and
// metrics). HTTP/1.1 pipelining: orders taken before the signal, queued on one connection behind
// another, must each be answered before the connection is closed.
import http from 'node:http';
import net from 'node:net';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ALICE, API_KEYS_ENV, BOB, CAROL, checkBuilt, parseResponses, removeTmpDirs, request, rng, serverEnv, ServerProcess, SYM, tmpDir, until, within, WsClient, wsUrl, type WsMsg } from './helpers.js';
import type { OrderView } from '../src/gateway.js';

const DAVE = 'dave-key-0123';

afterEach(async () => {
  await ServerProcess.killAll();
});

afterAll(async () => {
  await ServerProcess.killAll();
  removeTmpDirs();
});

beforeAll(() => {
  checkBuilt();
});

/** The server's environment: the test keys (and dave, for the client that never reads), limits high enough not to refuse the load. */
function envOf(dataDir: string): Record<string, string> {
  return { ...serverEnv(dataDir), GX3_API_KEYS: `${API_KEYS_ENV},dave:${DAVE}`, GX3_RATE_LIMIT: '1000000', GX3_RATE_BURST: '1000000' };
}

// ---------------------------------------------------------------------------------------------
// A deterministic random source


// ---------------------------------------------------------------------------------------------
// HTTP over a keep-alive agent, every outcome kept (an answer, or the socket error)

type HttpOutcome = { status: number; headers: http.IncomingHttpHeaders; text: string; body: Record<string, unknown> } | { netError: string };

function httpCall(agent: http.Agent, base: string, method: string, path: string, key: string, json?: unknown): Promise<HttpOutcome> {
  return new Promise((resolve) => {
    const text = json === undefined ? undefined : JSON.stringify(json);
    const headers: Record<string, string | number> = { 'x-api-key': key };
    if (text !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(text);
    }
    const req = http.request(`${base}${path}`, { method, agent, headers }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (s: string) => (b += s));
      res.on('end', () => {
        let body: Record<string, unknown> = {};
        try {
          body = JSON.parse(b) as Record<string, unknown>;
        } catch {
          // not JSON: kept as text
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text: b, body });
      });
      res.on('error', (err: NodeJS.ErrnoException) => {
        resolve({ netError: `response cut: ${err.code ?? err.message}` });
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      resolve({ netError: err.code ?? err.message });
    });
    req.end(text);
  });
}

/** A raw TCP connection to the server, for requests sent in parts; keeps what it receives. */
class RawConn {
  received = '';
  ended = false;
  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => (this.received += d.toString('latin1')));
    socket.on('close', () => (this.ended = true));
    socket.on('error', () => undefined);
  }

  static async open(url: string): Promise<RawConn> {
    const socket = net.connect(Number(new URL(url).port), '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawConn(socket);
  }

  write(text: string): void {
    this.socket.write(text);
  }

  /** The answer's status, headers (lower-cased names) and body, once it has come whole (or the connection ended). */
  get answer(): { status: number; headers: Record<string, string>; body: string } | undefined {
    const text = this.received.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '');
    const at = text.indexOf('\r\n\r\n');
    if (at < 0) return undefined;
    const [statusLine = '', ...lines] = text.slice(0, at).split('\r\n');
    const headers: Record<string, string> = {};
    for (const l of lines) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const body = text.slice(at + 4);
    const len = Number(headers['content-length'] ?? NaN);
    if (!this.ended && !(body.length >= len)) return undefined;
    return { status: Number(statusLine.split(' ')[1]), headers, body };
  }
}

/** The request line and headers of a POST of `body` as alice (no blank line after them). */
function postHead(body: string, extra = ''): string {
  return `POST /v1/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: ${ALICE}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}`;
}

/** Two round trips on other connections: the server has read what was written before them on any connection. */
async function serverHasRead(url: string): Promise<void> {
  for (let i = 0; i < 2; i++) expect((await request(url, 'GET', '/health/live')).status).toBe(200);
}

// ---------------------------------------------------------------------------------------------
// What the clients asked for and what they were told

type Side = 'buy' | 'sell';

interface OrderSpec {
  symbol: string;
  side: Side;
  type: 'limit';
  price: number;
  qty: number;
  clientOrderId: string;
}

interface OrderState {
  status: 'open' | 'canceled';
  price: number;
  remaining: number;
}

/** A request on a placed order that was not answered with success: an error answer, or none at all. */
interface Unresolved {
  kind: 'cancel' | 'amend';
  price?: number;
  qty?: number;
  outcome: 'error' | 'none';
  detail: string;
}

interface Tracked {
  key: string;
  trader: string;
  spec: OrderSpec;
  orderId: number;
  /** The state the last success answer implies. */
  state: OrderState;
  busy: boolean;
  /** A request on it ended without success: no more requests on it (its outcome stays checkable). */
  unresolved: Unresolved | undefined;
  history: string[];
  /** The events its placement was answered with (a resubmission answers them again). */
  events: unknown;
}

/** A placement not answered with success. */
interface Unplaced {
  key: string;
  trader: string;
  spec: OrderSpec;
  outcome: 'error' | 'none';
  detail: string;
}

class Ledger {
  readonly orders: Tracked[] = [];
  readonly unplaced: Unplaced[] = [];
  /** Answers that break the API's contract (a bad error body, an order view that does not match the request). */
  readonly bad: string[] = [];
  readonly counts = { placed: 0, amended: 0, canceled: 0, arrays: 0, errors: 0 };
  readonly perTrader = new Map<string, number>();
  constructor(readonly tag: string) {}

  ok(trader: string): void {
    this.perTrader.set(trader, (this.perTrader.get(trader) ?? 0) + 1);
  }
}

type Op = { kind: 'place'; specs: OrderSpec[] } | { kind: 'cancel'; o: Tracked } | { kind: 'amend'; o: Tracked; price?: number; qty?: number };

function priceIn(side: Side, r: () => number): number {
  return side === 'buy' ? 100 + Math.floor(r() * 500) : 5000 + Math.floor(r() * 500);
}

/** A client's orders and the next request it makes. */
class Trader {
  private readonly rand: () => number;
  private n = 0;
  readonly mine: Tracked[] = [];
  constructor(
    readonly ledger: Ledger,
    readonly key: string,
    readonly name: string,
    seed: number,
    private readonly arrays: boolean,
  ) {
    this.rand = rng(seed);
  }

  private spec(): OrderSpec {
    const side: Side = this.rand() < 0.5 ? 'buy' : 'sell';
    return { symbol: SYM, side, type: 'limit', price: priceIn(side, this.rand), qty: 1 + Math.floor(this.rand() * 20), clientOrderId: `${this.ledger.tag}-${this.name}-${this.n++}` };
  }

  next(): Op {
    const idle = this.mine.filter((o) => o.state.status === 'open' && !o.busy && o.unresolved === undefined);
    const r = this.rand();
    if (idle.length < 4 || r < 0.45) {
      const many = this.arrays && this.rand() < 0.35;
      return { kind: 'place', specs: Array.from({ length: many ? 2 + Math.floor(this.rand() * 4) : 1 }, () => this.spec()) };
    }
    const o = idle[Math.floor(this.rand() * idle.length)] as Tracked;
    o.busy = true;
    if (r < 0.7) return { kind: 'cancel', o };
    const mode = Math.floor(this.rand() * 3);
    let price: number | undefined;
    let qty: number | undefined;
    if (mode !== 1) {
      do price = priceIn(o.spec.side, this.rand);
      while (price === o.state.price);
    }
    if (mode !== 0) {
      do qty = 1 + Math.floor(this.rand() * 30);
      while (qty === o.state.remaining);
    }
    return { kind: 'amend', o, ...(price === undefined ? {} : { price }), ...(qty === undefined ? {} : { qty }) };
  }

  placed(spec: OrderSpec, order: OrderView | undefined, events: unknown): void {
    if (order === undefined || order.status !== 'open' || order.price !== spec.price || order.remainingQty !== spec.qty || order.clientOrderId !== spec.clientOrderId || order.side !== spec.side) {
      this.ledger.bad.push(`${this.name}: place ${JSON.stringify(spec)} answered with ${JSON.stringify(order)}`);
      return;
    }
    const t: Tracked = { key: this.key, trader: this.name, spec, orderId: order.orderId, state: { status: 'open', price: spec.price, remaining: spec.qty }, busy: false, unresolved: undefined, history: [`placed #${order.orderId}`], events };
    this.mine.push(t);
    this.ledger.orders.push(t);
    this.ledger.counts.placed++;
    this.ledger.ok(this.name);
  }

  notPlaced(spec: OrderSpec, outcome: 'error' | 'none', detail: string): void {
    this.ledger.unplaced.push({ key: this.key, trader: this.name, spec, outcome, detail });
  }

  done(op: Exclude<Op, { kind: 'place' }>, order: OrderView | undefined): void {
    const o = op.o;
    o.busy = false;
    if (op.kind === 'cancel') {
      if (order?.status !== 'canceled' || order.orderId !== o.orderId) this.ledger.bad.push(`${this.name}: cancel of #${o.orderId} answered with ${JSON.stringify(order)}`);
      o.state = { status: 'canceled', price: o.state.price, remaining: 0 };
      o.history.push('canceled');
      this.ledger.counts.canceled++;
    } else {
      const want = { price: op.price ?? o.state.price, remaining: op.qty ?? o.state.remaining };
      if (order?.status !== 'open' || order.price !== want.price || order.remainingQty !== want.remaining) {
        this.ledger.bad.push(`${this.name}: amend of #${o.orderId} ${JSON.stringify({ price: op.price, qty: op.qty })} from ${JSON.stringify(o.state)} answered with ${JSON.stringify(order)}`);
      }
      o.state = { status: 'open', ...want };
      o.history.push(`amended to ${JSON.stringify(want)}`);
      this.ledger.counts.amended++;
    }
    this.ledger.ok(this.name);
  }

  failed(op: Exclude<Op, { kind: 'place' }>, outcome: 'error' | 'none', detail: string): void {
    op.o.busy = false;
    op.o.unresolved = { kind: op.kind, ...(op.kind === 'amend' && op.price !== undefined ? { price: op.price } : {}), ...(op.kind === 'amend' && op.qty !== undefined ? { qty: op.qty } : {}), outcome, detail };
    op.o.history.push(`${op.kind} ${outcome}: ${detail}`);
  }
}

/** Checks an HTTP error answer against the contract for a request refused by a shutting-down server. */
function checkHttpError(ledger: Ledger, what: string, r: Exclude<HttpOutcome, { netError: string }>): string {
  ledger.counts.errors++;
  const e = r.body.error as { code?: unknown; message?: unknown } | undefined;
  const ok =
    r.status === 503 &&
    e !== undefined &&
    e.code === 'SHUTTING_DOWN' &&
    typeof e.message === 'string' &&
    e.message.length > 0 &&
    Object.keys(r.body).length === 1 &&
    r.headers['retry-after'] !== undefined &&
    r.headers.connection === 'close';
  if (!ok) ledger.bad.push(`${what}: HTTP ${r.status} ${r.text} (retry-after ${String(r.headers['retry-after'])}, connection ${String(r.headers.connection)})`);
  return `${r.status} ${String(e?.code)}`;
}

/** Checks a WebSocket error answer (or an array's error result). */
function checkWsError(ledger: Ledger, what: string, m: WsMsg): string {
  ledger.counts.errors++;
  const e = m.error;
  const ok = m.ok === false && e !== undefined && e.code === 'SHUTTING_DOWN' && typeof e.message === 'string' && e.message.length > 0 && typeof e.retryAfter === 'number';
  if (!ok) ledger.bad.push(`${what}: WebSocket ${JSON.stringify(m)}`);
  return String(e?.code);
}

// ---------------------------------------------------------------------------------------------
// The clients

interface Ctx {
  url: string;
  /** Set once the test stops the load (the server exited, or the test failed). */
  stop: boolean;
}

/** An HTTP client: one request at a time on a keep-alive connection, until a request gets no answer. */
async function httpTrader(ctx: Ctx, t: Trader, agent: http.Agent): Promise<void> {
  while (!ctx.stop) {
    const op = t.next();
    if (op.kind === 'place') {
      const spec = op.specs[0] as OrderSpec;
      const r = await httpCall(agent, ctx.url, 'POST', '/v1/orders', t.key, spec);
      if ('netError' in r) {
        t.notPlaced(spec, 'none', r.netError);
        return;
      }
      if (r.status === 200) t.placed(spec, r.body.order as OrderView | undefined, r.body.events);
      else t.notPlaced(spec, 'error', checkHttpError(t.ledger, `${t.name} POST ${spec.clientOrderId}`, r));
      continue;
    }
    const path = `/v1/orders/${SYM}/${op.o.orderId}`;
    const r =
      op.kind === 'cancel'
        ? await httpCall(agent, ctx.url, 'DELETE', path, t.key)
        : await httpCall(agent, ctx.url, 'PATCH', path, t.key, { ...(op.price === undefined ? {} : { price: op.price }), ...(op.qty === undefined ? {} : { qty: op.qty }) });
    if ('netError' in r) {
      t.failed(op, 'none', r.netError);
      return;
    }
    if (r.status === 200) t.done(op, r.body.order as OrderView | undefined);
    else t.failed(op, 'error', checkHttpError(t.ledger, `${t.name} ${op.kind} #${op.o.orderId}`, r));
  }
}

/** A WebSocket client that keeps `window` requests in flight, sending the next as each answer comes. */
class WsTrader {
  private readonly pending = new Map<string, Op>();
  private seq = 0;
  readonly finished: Promise<{ code: number; reason: string }>;

  constructor(
    private readonly ctx: Ctx,
    readonly t: Trader,
    readonly client: WsClient,
    private readonly window: number,
  ) {
    client.ws.on('message', (data: Buffer) => {
      this.onAnswer(JSON.parse(data.toString('utf8')) as WsMsg);
    });
    this.finished = new Promise((resolve) => {
      client.ws.once('close', (code: number, reason: Buffer) => {
        // Every request still waiting for its answer was cut off without one.
        for (const [id, op] of this.pending) {
          if (op.kind === 'place') for (const s of op.specs) t.notPlaced(s, 'none', `frame ${id} unanswered, connection closed ${code}`);
          else t.failed(op, 'none', `frame ${id} unanswered, connection closed ${code}`);
        }
        this.pending.clear();
        resolve({ code, reason: reason.toString('utf8') });
      });
    });
  }

  start(): void {
    this.fill();
  }

  private fill(): void {
    while (!this.ctx.stop && this.client.ws.readyState === this.client.ws.OPEN && this.pending.size < this.window) {
      const op = this.t.next();
      const id = `${this.t.name}-f${this.seq++}`;
      let frame: Record<string, unknown>;
      if (op.kind === 'place') frame = { op: 'order', id, order: op.specs.length === 1 && this.seq % 2 === 0 ? op.specs[0] : op.specs };
      else if (op.kind === 'cancel') frame = { op: 'cancel', id, symbol: SYM, orderId: op.o.orderId };
      else frame = { op: 'amend', id, symbol: SYM, orderId: op.o.orderId, ...(op.price === undefined ? {} : { price: op.price }), ...(op.qty === undefined ? {} : { qty: op.qty }) };
      this.pending.set(id, op);
      this.client.ws.send(JSON.stringify(frame));
    }
  }

  private onAnswer(m: WsMsg): void {
    if (typeof m.id !== 'string') return;
    const op = this.pending.get(m.id);
    if (op === undefined) return;
    this.pending.delete(m.id);
    const { t } = this;
    if (op.kind === 'place') {
      if (m.results !== undefined) {
        if (m.results.length !== op.specs.length) t.ledger.bad.push(`${t.name}: frame ${m.id} of ${op.specs.length} orders answered with ${m.results.length} results`);
        t.ledger.counts.arrays++;
        op.specs.forEach((s, i) => {
          const r = m.results?.[i];
          if (r?.ok === true) t.placed(s, r.order, r.events);
          else t.notPlaced(s, r === undefined ? 'none' : 'error', r === undefined ? 'no result' : checkWsError(t.ledger, `${t.name} ${m.id}[${i}]`, r));
        });
      } else {
        const s = op.specs[0] as OrderSpec;
        if (op.specs.length !== 1) t.ledger.bad.push(`${t.name}: frame ${m.id} of ${op.specs.length} orders answered without results: ${JSON.stringify(m)}`);
        if (m.ok === true) t.placed(s, m.order, m.events);
        else t.notPlaced(s, 'error', checkWsError(t.ledger, `${t.name} ${m.id}`, m));
      }
    } else if (m.ok === true) {
      t.done(op, m.order);
    } else {
      t.failed(op, 'error', checkWsError(t.ledger, `${t.name} ${m.id} ${op.kind} #${op.o.orderId}`, m));
    }
    this.fill();
  }
}

// ---------------------------------------------------------------------------------------------
// A WebSocket client that sends orders and never reads a byte of its answers

/** dave's orders: buys at 1000..1099, one lot each, a level of their own (never crossed). */
function nonReaderSpec(tag: string, i: number): OrderSpec {
  return { symbol: SYM, side: 'buy', type: 'limit', price: 1000 + (i % 100), qty: 1, clientOrderId: `${tag}-nr-${i}` };
}

// ---------------------------------------------------------------------------------------------
// A market data client: the book from its snapshot and updates

class BookWatcher {
  readonly bids = new Map<number, number>();
  readonly asks = new Map<number, number>();
  seq = -1;
  readonly gaps: string[] = [];
  readonly finished: Promise<{ code: number; reason: string }>;

  constructor(readonly client: WsClient) {
    client.ws.on('message', (data: Buffer) => {
      const m = JSON.parse(data.toString('utf8')) as WsMsg;
      if (m.type === 'book.snapshot') {
        this.bids.clear();
        this.asks.clear();
        for (const [p, q] of m.bids ?? []) this.bids.set(p, q);
        for (const [p, q] of m.asks ?? []) this.asks.set(p, q);
        this.seq = m.seq ?? -1;
      } else if (m.type === 'book.update') {
        if (m.seq !== this.seq + 1) this.gaps.push(`update ${m.seq} after ${this.seq}`);
        this.seq = m.seq ?? -1;
        for (const [side, levels] of [[this.bids, m.bids], [this.asks, m.asks]] as const) {
          for (const [p, q] of levels ?? []) {
            if (q === 0) side.delete(p);
            else side.set(p, q);
          }
        }
      } else if (m.error !== undefined) {
        this.gaps.push(`error ${JSON.stringify(m.error)}`);
      }
    });
    this.finished = new Promise((resolve) => {
      client.ws.once('close', (code: number, reason: Buffer) => {
        resolve({ code, reason: reason.toString('utf8') });
      });
    });
  }

  get book(): Levels {
    return { bids: [...this.bids].sort((a, b) => b[0] - a[0]), asks: [...this.asks].sort((a, b) => a[0] - b[0]) };
  }
}

// ---------------------------------------------------------------------------------------------
// The load, then the signal(s)

interface Run {
  dataDir: string;
  ledger: Ledger;
  exit: { code: number | null; signal: NodeJS.Signals | null };
  stderr: string;
  /** The close frames of the WebSocket clients that read (code, reason). */
  closes: { trader: string; code: number; reason: string }[];
  nonReaderOrders: OrderSpec[];
  /** Requests sent in parts by alice around the signal (with `holdRequests`). */
  held?: { cut: HeldRequest; lateBody: HeldRequest; lateHeaders: HeldRequest };
  /** What an anonymous book subscriber (depth 1,000) held when its connection closed. */
  watched: { book: Levels; seq: number; gaps: string[]; close: { code: number; reason: string } };
}

interface HeldRequest {
  spec: OrderSpec;
  received: string;
  answer: { status: number; headers: Record<string, string>; body: string } | undefined;
}

interface LoadOptions {
  tag: string;
  /** The signals sent, in order; from the second on, each once the server says it is shutting down. */
  signals: NodeJS.Signals[];
  /**
   * alice sends three orders in parts: one whose body never comes whole (the shutdown waits its 2 s
   * grace for it, then cuts it), one whose body is finished once the shutdown began, one whose
   * headers are finished once the shutdown began.
   */
  holdRequests?: boolean;
  /** dave sends this many orders over WebSocket (arrays of 500) and never reads the answers. */
  nonReader?: number;
}

const HTTP_TRADERS: [key: string, name: string][] = [
  [ALICE, 'alice-h1'],
  [ALICE, 'alice-h2'],
  [ALICE, 'alice-h3'],
  [BOB, 'bob-h1'],
  [BOB, 'bob-h2'],
  [CAROL, 'carol-h1'],
];
const WS_TRADERS: [key: string, name: string][] = [
  [BOB, 'bob-w1'],
  [CAROL, 'carol-w1'],
  [CAROL, 'carol-w2'],
];

async function loadThenSignal(o: LoadOptions): Promise<Run> {
  const dataDir = tmpDir('gx3-shutdown-review-');
  const ledger = new Ledger(o.tag);
  const server = await ServerProcess.spawn(envOf(dataDir));
  const ctx: Ctx = { url: server.url, stop: false };
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const sockets: WsClient[] = [];
  const raw: RawConn[] = [];
  const nonReaderOrders: OrderSpec[] = [];
  try {
    // dave first: his orders are all taken (and durable) before the signal, his answers unread.
    if (o.nonReader !== undefined) {
      const dave = await WsClient.connect(wsUrl(server.url), { 'x-api-key': DAVE });
      sockets.push(dave);
      (dave.ws as unknown as { _socket: net.Socket })._socket.pause();
      for (let i = 0; i < o.nonReader; i++) nonReaderOrders.push(nonReaderSpec(o.tag, i));
      for (let i = 0; i < nonReaderOrders.length; i += 500) dave.ws.send(JSON.stringify({ op: 'order', id: `nr-${i}`, order: nonReaderOrders.slice(i, i + 500) }));
      const want = nonReaderOrders.length;
      await until(async () => {
        const b = await request(server.url, 'GET', `/v1/book/${SYM}?depth=1000`);
        const got = (b.body.bids ?? []).filter(([p]) => p >= 1000 && p < 1100).reduce((n, [, q]) => n + q, 0);
        return got === want;
      }, `the ${want} orders of the client that never reads in the book`);
    }

    const watcherClient = await WsClient.connect(wsUrl(server.url));
    sockets.push(watcherClient);
    const watcher = new BookWatcher(watcherClient);
    watcherClient.send({ op: 'subscribe', channel: 'book', symbol: SYM, depth: 1000 });
    await until(() => watcher.seq >= 0, 'the book snapshot');

    const traders: Promise<unknown>[] = [];
    HTTP_TRADERS.forEach(([key, name], i) => traders.push(httpTrader(ctx, new Trader(ledger, key, name, 1000 + i, false), agent)));
    const wsTraders: WsTrader[] = [];
    for (const [i, [key, name]] of WS_TRADERS.entries()) {
      const c = await WsClient.connect(wsUrl(server.url), { 'x-api-key': key });
      sockets.push(c);
      const w = new WsTrader(ctx, new Trader(ledger, key, name, 2000 + i, true), c, 12);
      wsTraders.push(w);
      traders.push(w.finished);
    }
    for (const w of wsTraders) w.start();

    // Load until every client has had answers and every kind of request has been carried out.
    const names = [...HTTP_TRADERS, ...WS_TRADERS].map(([, n]) => n);
    await until(
      () => ledger.counts.placed >= 300 && ledger.counts.amended >= 40 && ledger.counts.canceled >= 40 && ledger.counts.arrays >= 10 && names.every((n) => (ledger.perTrader.get(n) ?? 0) >= 20),
      () => `load (${JSON.stringify(ledger.counts)}, ${JSON.stringify([...ledger.perTrader])}, bad ${JSON.stringify(ledger.bad.slice(0, 3))})`,
      30_000,
    );
    if (ledger.counts.errors > 0) throw new Error(`errors before the signal: ${JSON.stringify(ledger.bad.slice(0, 5))}`);

    const heldSpec = (name: string, price: number): OrderSpec => ({ symbol: SYM, side: 'buy', type: 'limit', price, qty: 1, clientOrderId: `${o.tag}-${name}` });
    const held = o.holdRequests === true ? { cut: heldSpec('held-cut', 101), lateBody: heldSpec('held-late-body', 102), lateHeaders: heldSpec('held-late-headers', 103) } : undefined;
    let conns: { cut: RawConn; lateBody: RawConn; lateHeaders: RawConn } | undefined;
    if (held !== undefined) {
      // Headers and part of the body: `expect: 100-continue` makes the server say when it has the
      // headers (Node answers 100 Continue once it parsed them, before the route reads the body).
      const c = { cut: await RawConn.open(server.url), lateBody: await RawConn.open(server.url), lateHeaders: await RawConn.open(server.url) };
      raw.push(c.cut, c.lateBody, c.lateHeaders);
      for (const k of ['cut', 'lateBody'] as const) {
        c[k].write(`${postHead(JSON.stringify(held[k]), 'expect: 100-continue\r\n')}\r\n`);
        await until(() => c[k].received.includes('100 Continue'), () => `the 100 Continue of the held request (got ${JSON.stringify(c[k].received)})`);
        c[k].write(JSON.stringify(held[k]).slice(0, 20));
      }
      // The request line and some headers only: a request begun (the connection is not idle).
      c.lateHeaders.write(postHead(JSON.stringify(held.lateHeaders)));
      await serverHasRead(server.url);
      conns = c;
    }

    const [first, ...more] = o.signals;
    server.proc.kill(first);
    const extra: string[] = [];
    if (conns !== undefined && held !== undefined) {
      // The server has stopped taking commands once it says so (the line is written as the shutdown begins).
      await until(() => /shutting down/.test(server.stderr), 'the server to say it is shutting down');
      conns.lateBody.write(JSON.stringify(held.lateBody).slice(20));
      conns.lateHeaders.write(`\r\n${JSON.stringify(held.lateHeaders)}`);
    }
    if (more.length > 0) {
      await until(() => /shutting down/.test(server.stderr) || server.proc.exitCode !== null, 'the server to say it is shutting down');
      for (const s of more) {
        // Still shutting down (a held request keeps it so for its 2 s grace): the signal reaches it.
        if (server.proc.exitCode === null && server.proc.signalCode === null) server.proc.kill(s);
        else extra.push(`${s} not sent: the server had exited`);
      }
    }
    const exit = await within(server.exited, 30_000, `the server to exit after ${o.signals.join(', ')}`);
    const closes = await within(Promise.all(wsTraders.map((w) => w.finished)), 20_000, 'the WebSocket clients to be closed');
    const watcherClose = await within(watcher.finished, 20_000, 'the book subscriber to be closed');
    await within(Promise.all(traders), 20_000, 'the clients to stop');
    if (extra.length > 0) ledger.bad.push(...extra);
    return {
      dataDir,
      ledger,
      exit,
      stderr: server.stderr,
      closes: closes.map((c, i) => ({ trader: (WS_TRADERS[i] as [string, string])[1], ...c })),
      nonReaderOrders,
      watched: { book: watcher.book, seq: watcher.seq, gaps: watcher.gaps, close: watcherClose },
      ...(held === undefined || conns === undefined
        ? {}
        : {
            held: {
              cut: { spec: held.cut, received: conns.cut.received, answer: conns.cut.answer },
              lateBody: { spec: held.lateBody, received: conns.lateBody.received, answer: conns.lateBody.answer },
              lateHeaders: { spec: held.lateHeaders, received: conns.lateHeaders.received, answer: conns.lateHeaders.answer },
            },
          }),
    };
  } finally {
    ctx.stop = true;
    agent.destroy();
    for (const r of raw) r.socket.destroy();
    for (const s of sockets) s.ws.terminate();
  }
}

// ---------------------------------------------------------------------------------------------
// After the restart

const USER_OF = new Map([
  [ALICE, 'alice'],
  [BOB, 'bob'],
  [CAROL, 'carol'],
  [DAVE, 'dave'],
]);

type Levels = { bids: [number, number][]; asks: [number, number][] };

/** The aggregated book of the open orders given (bids best first, asks best first). */
function bookOf(orders: { side: string; price: number; remaining: number; status: string }[]): Levels {
  const bids = new Map<number, number>();
  const asks = new Map<number, number>();
  for (const o of orders) {
    if (o.status !== 'open' && o.status !== 'partially_filled') continue;
    const m = o.side === 'buy' ? bids : asks;
    m.set(o.price, (m.get(o.price) ?? 0) + o.remaining);
  }
  return { bids: [...bids].sort((a, b) => b[0] - a[0]), asks: [...asks].sort((a, b) => a[0] - b[0]) };
}

async function serverBook(url: string): Promise<Levels> {
  const r = await request(url, 'GET', `/v1/book/${SYM}?depth=1000`);
  if (r.status !== 200 || r.body.bids === undefined || r.body.asks === undefined) throw new Error(`book: ${r.status} ${r.text}`);
  return { bids: r.body.bids, asks: r.body.asks };
}

/** GET of every order, 16 at a time: its status and view (or the error text). */
async function getAll(url: string, orders: { key: string; orderId: number }[]): Promise<{ status: number; view: OrderView | undefined; text: string }[]> {
  const out = new Array<{ status: number; view: OrderView | undefined; text: string }>(orders.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < orders.length) {
      const i = next++;
      const o = orders[i] as { key: string; orderId: number };
      const r = await request(url, 'GET', `/v1/orders/${SYM}/${o.orderId}`, { key: o.key });
      out[i] = { status: r.status, view: r.body.order, text: r.text };
    }
  };
  await Promise.all(Array.from({ length: 16 }, () => worker()));
  return out;
}

/** Sends `specs` again as one user, over WebSocket in arrays of 500: the result of each, in order. */
async function resubmit(url: string, key: string, specs: OrderSpec[]): Promise<WsMsg[]> {
  if (specs.length === 0) return [];
  const c = await WsClient.connect(wsUrl(url), { 'x-api-key': key });
  try {
    const out: WsMsg[] = [];
    for (let i = 0; i < specs.length; i += 500) {
      const m = await c.call({ op: 'order', order: specs.slice(i, i + 500) });
      if (m.results === undefined) throw new Error(`resubmission: ${JSON.stringify(m)}`);
      out.push(...m.results);
    }
    return out;
  } finally {
    await c.close();
  }
}

function byKey<T extends { key: string }>(items: T[]): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const it of items) {
    const l = m.get(it.key) ?? [];
    l.push(it);
    m.set(it.key, l);
  }
  return m;
}

function stateOfView(v: OrderView | undefined): string {
  return v === undefined ? 'none' : JSON.stringify({ status: v.status, price: v.price, remaining: v.remainingQty });
}

function sameState(v: OrderView | undefined, s: OrderState, spec: OrderSpec, key: string): boolean {
  if (v === undefined) return false;
  if (v.side !== spec.side || v.clientOrderId !== spec.clientOrderId || v.user !== USER_OF.get(key) || v.filledQty !== 0) return false;
  if (s.status === 'canceled') return v.status === 'canceled' && v.remainingQty === 0;
  return v.status === 'open' && v.price === s.price && v.remainingQty === s.remaining && v.qty === s.remaining;
}

/** The state an order has if its unanswered request was carried out. */
function applied(o: Tracked): OrderState | undefined {
  const u = o.unresolved;
  if (u === undefined) return undefined;
  if (u.kind === 'cancel') return { status: 'canceled', price: o.state.price, remaining: 0 };
  return { status: 'open', price: u.price ?? o.state.price, remaining: u.qty ?? o.state.remaining };
}

function range(from: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => from + i);
}

/** The checks after a graceful stop: exactly what was answered with success was carried out. */
async function checkGraceful(run: Run): Promise<void> {
  const { ledger } = run;
  expect(run.exit, run.stderr).toEqual({ code: 0, signal: null });
  expect(run.stderr.match(/shutting down/g) ?? [], 'one shutdown, whatever the signals').toHaveLength(1);
  expect(run.stderr).not.toMatch(/error during shutdown/);
  expect(ledger.bad, 'answers that break the contract').toEqual([]);
  // The clients that read were told the server is going away, with a close frame.
  expect(run.closes.map((c) => `${c.trader}: ${c.code}`)).toEqual(run.closes.map((c) => `${c.trader}: 1001`));
  expect(run.watched.close.code, 'the book subscriber\'s close code').toBe(1001);
  expect(run.watched.gaps, 'the book subscriber saw every update in sequence').toEqual([]);
  if (run.held !== undefined) {
    // Never whole: cut without an answer. Finished once the shutdown began: 503 SHUTTING_DOWN.
    expect(run.held.cut.received, 'the request never sent whole').not.toMatch(/HTTP\/1\.1 200/);
    for (const h of [run.held.lateBody, run.held.lateHeaders]) {
      const a = h.answer;
      expect({ status: a?.status, retryAfter: a?.headers['retry-after'] !== undefined, connection: a?.headers.connection, body: a === undefined ? undefined : (JSON.parse(a.body) as unknown) }, h.received).toEqual({
        status: 503,
        retryAfter: true,
        connection: 'close',
        body: { error: { code: 'SHUTTING_DOWN', message: expect.any(String) as string } },
      });
    }
  }

  const second = await ServerProcess.spawn(envOf(run.dataDir));
  try {
    // The book first (the resubmissions below add to it): the one the success answers imply.
    const book = await serverBook(second.url);
    const views = await getAll(second.url, ledger.orders);
    const wrong: string[] = [];
    ledger.orders.forEach((o, i) => {
      const v = views[i];
      if (v?.status !== 200 || !sameState(v.view, o.state, o.spec, o.key)) {
        wrong.push(`${o.trader} #${o.orderId} (${o.spec.clientOrderId}): after the restart ${v?.status} ${stateOfView(v?.view)}, answered ${JSON.stringify(o.state)}; ${o.history.join(', ')}`);
      }
    });
    expect(wrong, 'orders whose state after the restart is not the one their answers gave').toEqual([]);
    const implied = bookOf([...ledger.orders.map((o) => ({ side: o.spec.side, ...o.state })), ...run.nonReaderOrders.map((s) => ({ side: s.side, price: s.price, remaining: s.qty, status: 'open' }))]);
    expect(book, 'the book after the restart is the one the success answers imply').toEqual(implied);
    // The book subscriber had every update of the commands carried out before its close frame.
    expect(run.watched.book, 'the book the subscriber held at the close is the one after the restart').toEqual(book);
    const seqAfter = (await request(second.url, 'GET', `/v1/book/${SYM}`)).body.seq ?? -1;
    expect(seqAfter, 'the book sequence after the restart is not below one served before').toBeGreaterThanOrEqual(run.watched.seq);

    // Resubmissions of the acknowledged orders (and of the unread client's, all taken): the original, not a second order.
    const dupWrong: string[] = [];
    let maxId = Math.max(0, ...ledger.orders.map((o) => o.orderId));
    for (const [key, list] of byKey(ledger.orders)) {
      const res = await resubmit(second.url, key, list.map((o) => o.spec));
      res.forEach((r, i) => {
        const o = list[i] as Tracked;
        if (r.ok !== true || r.duplicate !== true || r.order?.orderId !== o.orderId || !isDeepStrictEqual(r.events, o.events)) dupWrong.push(`${o.trader} ${o.spec.clientOrderId} (#${o.orderId}): ${JSON.stringify(r).slice(0, 300)}`);
      });
    }
    const unread = await resubmit(second.url, DAVE, run.nonReaderOrders);
    unread.forEach((r, i) => {
      if (r.ok !== true || r.duplicate !== true || r.order === undefined) dupWrong.push(`dave ${run.nonReaderOrders[i]?.clientOrderId}: ${JSON.stringify(r).slice(0, 300)}`);
      else maxId = Math.max(maxId, r.order.orderId);
    });
    expect(dupWrong, 'resubmissions of taken orders that were not answered as the original').toEqual([]);

    // What was refused or cut off was not carried out: its resubmission places the order now, once,
    // with the next ids (no id was used by an order not answered).
    const notTaken: Unplaced[] = [
      ...ledger.unplaced,
      ...(run.held === undefined ? [] : [run.held.cut, run.held.lateBody, run.held.lateHeaders].map((h) => ({ key: ALICE, trader: 'held', spec: h.spec, outcome: 'none' as const, detail: h.received.slice(0, 60) }))),
    ];
    const newIds: number[] = [];
    const applied: string[] = [];
    for (const [key, list] of byKey(notTaken)) {
      const res = await resubmit(second.url, key, list.map((u) => u.spec));
      res.forEach((r, i) => {
        const u = list[i] as Unplaced;
        if (r.ok === true && r.duplicate !== true && r.order !== undefined) newIds.push(r.order.orderId);
        else applied.push(`${u.trader} ${u.spec.clientOrderId} (${u.outcome}: ${u.detail}): resubmitted after the restart: ${JSON.stringify(r).slice(0, 300)}`);
      });
    }
    expect(applied, 'orders answered with an error, or cut off without an answer, that were carried out').toEqual([]);
    expect(newIds.sort((a, b) => a - b), 'the ids of the orders placed after the restart continue right after the last one taken').toEqual(range(maxId + 1, newIds.length));
  } finally {
    const exit = await within(second.kill('SIGTERM'), 20_000, 'the restarted server to exit');
    expect(exit.code).toBe(0);
  }
}

/** The checks after a crash: every acknowledged request is there; an unanswered one may be too. */
async function checkCrash(run: Run): Promise<void> {
  const { ledger } = run;
  expect(run.exit.signal).toBe('SIGKILL');
  expect(ledger.bad, 'answers that break the contract').toEqual([]);
  const second = await ServerProcess.spawn(envOf(run.dataDir));
  try {
    const book = await serverBook(second.url);
    const views = await getAll(second.url, ledger.orders);
    const wrong: string[] = [];
    let maxAcked = 0;
    ledger.orders.forEach((o, i) => {
      maxAcked = Math.max(maxAcked, o.orderId);
      const v = views[i];
      const alt = applied(o);
      const ok = v?.status === 200 && (sameState(v.view, o.state, o.spec, o.key) || (alt !== undefined && o.unresolved?.outcome === 'none' && sameState(v.view, alt, o.spec, o.key)));
      if (!ok) wrong.push(`${o.trader} #${o.orderId}: after the restart ${v?.status} ${stateOfView(v?.view)}, answered ${JSON.stringify(o.state)}${alt === undefined ? '' : ` (or ${JSON.stringify(alt)})`}; ${o.history.join(', ')}`);
    });
    expect(wrong, 'acknowledged orders not found after the crash in the acknowledged state (or the one the unanswered request gives)').toEqual([]);

    // Resubmissions after the crash: an acknowledged order is answered as the original.
    const dupWrong: string[] = [];
    for (const [key, list] of byKey(ledger.orders)) {
      const res = await resubmit(second.url, key, list.map((o) => o.spec));
      res.forEach((r, i) => {
        const o = list[i] as Tracked;
        const v = views[ledger.orders.indexOf(o)]?.view;
        if (r.ok !== true || r.duplicate !== true || r.order?.orderId !== o.orderId || stateOfView(r.order) !== stateOfView(v) || !isDeepStrictEqual(r.events, o.events)) {
          dupWrong.push(`${o.trader} ${o.spec.clientOrderId} (#${o.orderId}, ${stateOfView(v)}): ${JSON.stringify(r).slice(0, 300)}`);
        }
      });
    }
    expect(dupWrong, 'resubmissions of acknowledged orders not answered as the original').toEqual([]);

    // The unanswered ones: taken (the original outcome) or not (placed now, once).
    const takenUnanswered: { key: string; spec: OrderSpec; orderId: number }[] = [];
    const newIds: number[] = [];
    const odd: string[] = [];
    for (const [key, list] of byKey(ledger.unplaced)) {
      const res = await resubmit(second.url, key, list.map((u) => u.spec));
      res.forEach((r, i) => {
        const u = list[i] as Unplaced;
        if (r.ok !== true || r.order === undefined) odd.push(`${u.spec.clientOrderId}: ${JSON.stringify(r).slice(0, 300)}`);
        else if (r.duplicate === true) takenUnanswered.push({ key, spec: u.spec, orderId: r.order.orderId });
        else newIds.push(r.order.orderId);
      });
    }
    expect(odd, 'resubmissions refused').toEqual([]);
    const takenViews = await getAll(second.url, takenUnanswered);
    takenUnanswered.forEach((t, i) => {
      const v = takenViews[i];
      if (v?.status !== 200 || !sameState(v.view, { status: 'open', price: t.spec.price, remaining: t.spec.qty }, t.spec, t.key)) odd.push(`taken, unanswered ${t.spec.clientOrderId} #${t.orderId}: ${v?.status} ${v?.text}`);
    });
    expect(odd, 'orders taken without an answer, not as they were asked for').toEqual([]);
    // The book after the restart is the one of the orders the engine took (and nothing else).
    const implied = bookOf([
      ...views.map((v, i) => ({ side: ledger.orders[i]?.spec.side ?? '', price: v.view?.price ?? 0, remaining: v.view?.remainingQty ?? 0, status: v.view?.status ?? '' })),
      ...takenUnanswered.map((t) => ({ side: t.spec.side, price: t.spec.price, remaining: t.spec.qty, status: 'open' })),
    ]);
    expect(book, 'the book after the crash is the one of the orders taken').toEqual(implied);
    const seqAfter = (await request(second.url, 'GET', `/v1/book/${SYM}`)).body.seq ?? -1;
    expect(seqAfter, 'the book sequence after the crash is not below one served before').toBeGreaterThanOrEqual(run.watched.seq);
    // Ids continue right after the highest logged one: above every id any client was told, none reused.
    const maxLogged = Math.max(maxAcked, ...takenUnanswered.map((t) => t.orderId));
    const first = await request(second.url, 'POST', '/v1/orders', { key: ALICE, json: { symbol: SYM, side: 'buy', type: 'limit', price: 100, qty: 1, clientOrderId: `${ledger.tag}-after` } });
    expect(first.status, first.text).toBe(200);
    newIds.push(first.body.order?.orderId ?? 0);
    expect(Math.min(...newIds), 'new ids are above every acknowledged one').toBeGreaterThan(maxAcked);
    expect(newIds.sort((a, b) => a - b), 'the ids after the crash continue right after the highest logged one').toEqual(range(maxLogged + 1, newIds.length));
  } finally {
    const exit = await within(second.kill('SIGTERM'), 20_000, 'the restarted server to exit');
    expect(exit.code).toBe(0);
  }
}

// ---------------------------------------------------------------------------------------------

describe('graceful shutdown under load (the built server, HTTP and WebSocket clients trading all the while)', () => {
  it('SIGTERM: every success answer is there after a restart, the book is the one they imply, every error is 503 SHUTTING_DOWN and was not carried out, nothing cut off was carried out, exit 0, WebSocket clients closed with 1001', async () => {
    await checkGraceful(await loadThenSignal({ tag: 'term', signals: ['SIGTERM'] }));
  }, 45_000);

  it('SIGINT: the same graceful shutdown', async () => {
    await checkGraceful(await loadThenSignal({ tag: 'int', signals: ['SIGINT'] }));
  }, 45_000);

  it('SIGTERM, then SIGTERM again and SIGINT while it shuts down (a request held open keeps it shutting down): one shutdown, the same outcome, exit 0; HTTP requests finished after the shutdown began are 503 SHUTTING_DOWN and not carried out', async () => {
    await checkGraceful(await loadThenSignal({ tag: 'twice', signals: ['SIGTERM', 'SIGTERM', 'SIGINT'], holdRequests: true }));
  }, 45_000);

  it('SIGTERM while a WebSocket client never reads its answers: exit 0, its orders (all taken) are there after the restart, the other clients as with a plain SIGTERM', async () => {
    await checkGraceful(await loadThenSignal({ tag: 'unread', signals: ['SIGTERM'], nonReader: 10_000 }));
  }, 45_000);
});

describe('a crash under load', () => {
  it('SIGKILL: every acknowledged order and request survives, a resubmission returns the original outcome (not a second order), ids continue after the highest logged one', async () => {
    await checkCrash(await loadThenSignal({ tag: 'kill', signals: ['SIGKILL'] }));
  }, 45_000);
});

describe('requests that arrive while the server shuts down', () => {
  it('SIGTERM: a WebSocket upgrade request finished after the WebSocket clients were told 1001 is refused as every other request is (503 SHUTTING_DOWN in the API error format, with Retry-After), and the process exits 0', async () => {
    const dataDir = tmpDir('gx3-shutdown-review-');
    const server = await ServerProcess.spawn(envOf(dataDir));
    const reader = await WsClient.connect(wsUrl(server.url), { 'x-api-key': BOB });
    const upgrade = await RawConn.open(server.url);
    const post = await RawConn.open(server.url);
    const spec: OrderSpec = { symbol: SYM, side: 'buy', type: 'limit', price: 100, qty: 1, clientOrderId: 'late-post' };
    try {
      // The first lines of each request: requests begun, so the shutdown keeps their connections
      // (for its grace period) instead of closing them as idle.
      upgrade.write('GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n');
      post.write(postHead(JSON.stringify(spec)));
      await serverHasRead(server.url);
      server.proc.kill('SIGTERM');
      await until(() => reader.closeInfo !== undefined, 'the WebSocket client to be closed');
      expect(reader.closeInfo?.code).toBe(1001);
      expect([upgrade.ended, post.ended], 'the connections with a request begun were kept').toEqual([false, false]);
      // The rest of each request, now that the WebSocket API is closed.
      upgrade.write(`Sec-WebSocket-Key: ${Buffer.from('0123456789abcdef').toString('base64')}\r\nx-api-key: ${ALICE}\r\n\r\n`);
      post.write(`\r\n${JSON.stringify(spec)}`);
      await until(() => upgrade.answer !== undefined && post.answer !== undefined, () => `answers to both requests (got ${JSON.stringify([upgrade.received, post.received])})`);
      const exit = await within(server.exited, 20_000, 'the server to exit');
      expect(exit).toEqual({ code: 0, signal: null });
      const shape = (a: RawConn['answer']): unknown => {
        let body: unknown = a?.body;
        try {
          body = JSON.parse(a?.body ?? '');
        } catch {
          // not JSON: compared as text
        }
        return { status: a?.status, retryAfter: a?.headers['retry-after'] !== undefined, contentType: a?.headers['content-type']?.split(';')[0], body };
      };
      const refused = { status: 503, retryAfter: true, contentType: 'application/json', body: { error: { code: 'SHUTTING_DOWN', message: expect.any(String) as string } } };
      // The order finished at the same moment: refused in the API's format (as the README says).
      expect(shape(post.answer), post.received).toEqual(refused);
      // The upgrade: the same, not the ws library's bare `503 Service Unavailable` in text/html.
      expect(shape(upgrade.answer), upgrade.received).toEqual(refused);
    } finally {
      upgrade.socket.destroy();
      post.socket.destroy();
      reader.ws.terminate();
    }
  }, 30_000);
});


describe('pipelined HTTP requests', () => {
  it('SIGTERM while HTTP/1.1 clients have pipelined orders taken and not answered yet (behind a backlog): every one is answered before its connection is closed; WebSocket orders in flight too', async () => {
    const dataDir = tmpDir('gx3-shutdown-review-');
    const server = await ServerProcess.spawn(envOf(dataDir));
    const health = async (): Promise<{ processedSeq: number; durableSeq: number; queued: number }> => {
      const r = await request(server.url, 'GET', '/health');
      const s = r.body.symbols?.[SYM];
      if (s === undefined) throw new Error(`health: ${r.status} ${r.text}`);
      return s;
    };
    // A backlog: dave's 30,000 orders over WebSocket (he reads his answers), all taken before the
    // pipelined orders, which then wait behind them to be made durable (and answered).
    const FLOOD = 30;
    const dave = await WsClient.connect(wsUrl(server.url), { 'x-api-key': DAVE });
    const conns: { c: RawConn; sent: OrderSpec[] }[] = [];
    try {
      const flood = Array.from({ length: FLOOD }, (_, f) => Array.from({ length: 1000 }, (_, j) => nonReaderSpec('flood', f * 1000 + j)));
      flood.forEach((orders, f) => {
        dave.send({ op: 'order', id: `flood-${f}`, order: orders });
      });
      await until(async () => {
        const h = await health();
        return h.processedSeq + h.queued >= FLOOD * 1000;
      }, 'the backlog taken');
      // Three orders in one write on each of four keep-alive connections: HTTP/1.1 pipelining.
      let n = 0;
      for (let k = 0; k < 4; k++) {
        const c = await RawConn.open(server.url);
        const sent = Array.from({ length: 3 }, (): OrderSpec => ({ symbol: SYM, side: 'sell', type: 'limit', price: 5000 + n, qty: 1, clientOrderId: `pipe-${n++}` }));
        conns.push({ c, sent });
      }
      for (const { c, sent } of conns) c.write(sent.map((s) => `${postHead(JSON.stringify(s))}\r\n${JSON.stringify(s)}`).join(''));
      const total = FLOOD * 1000 + n;
      await until(async () => {
        const h = await health();
        return h.processedSeq + h.queued >= total;
      }, 'the pipelined orders taken');
      if (conns.some(({ c }) => c.received.length > 0)) throw new Error('the backlog was made durable before the signal: the test could not hold the pipelined orders unanswered');
      server.proc.kill('SIGTERM');
      const exit = await within(server.exited, 20_000, 'the server to exit');
      expect(exit).toEqual({ code: 0, signal: null });
      await until(() => conns.every(({ c }) => c.ended) && dave.closeInfo !== undefined, 'the connections to be closed');

      // Every order was taken before the signal (the engine had them): each must have been answered 200.
      const answers = conns.flatMap(({ c, sent }) => {
        const rs = parseResponses(c.received);
        return sent.map((s, i) => `${s.clientOrderId}: ${rs[i] === undefined ? 'no answer, connection closed' : `${rs[i]?.status}${rs[i]?.headers.connection === 'close' ? ' (connection: close)' : ''}`}`);
      });
      // dave's frames, all taken: each answered before the close frame.
      const daveAnswers = flood.map((_, f) => {
        const m = dave.received.find((x) => x.id === `flood-${f}`);
        return `flood-${f}: ${m === undefined ? 'no answer' : (m.results ?? []).every((r) => r.ok === true) ? 'ok' : 'not ok'}`;
      });
      expect(dave.closeInfo?.code).toBe(1001);
      expect(daveAnswers).toEqual(flood.map((_, f) => `flood-${f}: ok`));

      const second = await ServerProcess.spawn(envOf(dataDir));
      try {
        const sent = conns.flatMap((x) => x.sent);
        const res = await resubmit(second.url, ALICE, sent);
        // All carried out (the resubmission finds each one)...
        expect(res.map((r, i) => `${sent[i]?.clientOrderId}: ${r.duplicate === true ? 'carried out' : 'not carried out'}`)).toEqual(sent.map((s) => `${s.clientOrderId}: carried out`));
        // ...so none may have been left without its answer.
        // Each answered 200; the last answer of each connection closes it (an earlier one that said
        // `connection: close` would end the connection before the answers pipelined behind it).
        expect(answers, 'pipelined orders carried out whose connection was closed without their answer').toEqual(
          answers.map((a, i) => a.replace(/: .*/, i % 3 === 2 ? ': 200 (connection: close)' : ': 200')),
        );
      } finally {
        expect((await within(second.kill('SIGTERM'), 20_000, 'the restarted server to exit')).code).toBe(0);
      }
    } finally {
      for (const { c } of conns) c.socket.destroy();
      dave.ws.terminate();
    }
  }, 40_000);
});
