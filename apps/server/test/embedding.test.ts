// A review of gx3 as a library embedded in someone else's Node program, following only the READMEs
// and the exported types: startServer with a resolved config and its RunningServer (close, bus,
// engine), several servers in one process, start failures (what they throw and what they leave
// behind: the data directory's lock, timers, handles), and the engine and the outbox publisher used
// directly as their READMEs show. Some checks run in child processes, which must exit by themselves.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Command, Event, LimitCommand } from '@gx3/codecs';
import { Engine, EngineError } from '@gx3/engine';
import { EventOutbox, MemoryBus, NatsJetStreamBus, OutboxError, Publisher, readCursor, type Bus, type BusMessage } from '@gx3/outbox-publisher';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, resolveConfig, startServer, type OrderView, type RunningServer, type ServerConfig, type StartOptions } from '../src/index.js';
import { checkBuilt, flipByte, request, removeTmpDirs, SEGMENT, SERVER_DIR, silentLogger, tmpDir, until, within } from './helpers.js';

afterAll(() => {
  removeTmpDirs();
});

const ALICE = 'alice-embed-key-1';
const BOB = 'bob-embed-key-22';
const KEYS = `alice:${ALICE},bob:${BOB}`;
const SYM = 'EMB';
const SYM2 = 'EMB2';
const LIMITS = { minPrice: 1, maxPrice: 100_000, maxQty: 1_000_000 };

/** What an embedder passes: a config resolved from plain settings (port 0), small log segments, a silent logger. */
function config(dataDir: string, settings: Record<string, unknown> = {}): ServerConfig {
  return resolveConfig({ host: '127.0.0.1', port: 0, dataDir, apiKeys: KEYS, instruments: `${SYM}:1:100000:1000000`, logLevel: 'silent', ...settings });
}
const OPTIONS: StartOptions = { logger: silentLogger, engine: { segmentSize: SEGMENT } };

function must<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`${what} is missing`);
  return v;
}

/** The engine's own lock on `dir` is free: another engine opens it at once (and is closed again). */
async function lockIsFree(dir: string, symbols: readonly string[] = [SYM]): Promise<boolean> {
  try {
    const e = await Engine.open({ dataDir: dir, symbols: symbols.map((symbol) => ({ symbol, ...LIMITS })), segmentSize: SEGMENT });
    await e.close();
    return true;
  } catch (err) {
    if (err instanceof EngineError && err.code === 'LOCKED') return false;
    throw err;
  }
}

function post(s: RunningServer, key: string, order: Record<string, unknown>): ReturnType<typeof request> {
  return request(s.url, 'POST', '/v1/orders', { key, json: { symbol: SYM, type: 'limit', ...order } });
}

// ---------------------------------------------------------------------------------------------
// Child processes: a script importing the built packages, which must end by itself (no process.exit).

const SERVER_DIST = pathToFileURL(path.join(SERVER_DIR, 'dist/index.js')).href;
const SERVER_PKG = path.join(SERVER_DIR, 'package.json');

interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `source` (an ES module) in a fresh node; fails if it has not ended by itself within 30 s. */
async function runChild(source: string, opts: { uid?: number; gid?: number; dir?: string } = {}): Promise<ChildResult> {
  const dir = opts.dir ?? tmpDir('gx3-embed-child-');
  fs.chmodSync(dir, 0o755);
  const file = path.join(dir, 'child.mjs');
  fs.writeFileSync(file, source, { mode: 0o644 });
  const child = spawn(process.execPath, [file], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.uid === undefined ? {} : { uid: opts.uid }),
    ...(opts.gid === undefined ? {} : { gid: opts.gid }),
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const ended = new Promise<ChildResult>((resolve) => {
    child.on('close', (code, signal) => {
      resolve({ code, signal, stdout, stderr });
    });
  });
  try {
    return await within(ended, 30_000, `the child process (${file}) ending by itself`);
  } catch (err) {
    child.kill('SIGKILL');
    await ended;
    throw new Error(`${(err as Error).message}\nstdout: ${stdout}\nstderr: ${stderr}`, { cause: err });
  }
}

/** The last line of a child's stdout, parsed as JSON. */
function report(r: ChildResult): unknown {
  const lines = r.stdout.trim().split('\n');
  try {
    return JSON.parse(lines[lines.length - 1] ?? '');
  } catch (err) {
    throw new Error(`the child printed no report (exit ${r.code}, signal ${r.signal})\nstdout: ${r.stdout}\nstderr: ${r.stderr}`, { cause: err });
  }
}

/** RunningServer.bus as the MemoryBus it is with `bus: memory`. */
function memoryBus(bus: Bus): MemoryBus {
  if (!(bus instanceof MemoryBus)) throw new Error(`the bus is ${bus.constructor.name}, not the MemoryBus`);
  return bus;
}

/** One HTTP/1.1 keep-alive connection over a raw socket: requests written as given, answers parsed in order. */
class RawConnection {
  private buf = Buffer.alloc(0);
  private readonly waiters: (() => void)[] = [];
  private closed = false;
  readonly ended: Promise<void>;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    this.ended = new Promise((resolve) => {
      socket.on('close', () => {
        this.closed = true;
        this.wake();
        resolve();
      });
    });
    socket.on('error', () => {
      // a reset shows as a missing answer
    });
  }

  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        resolve(new RawConnection(socket));
      });
      socket.once('error', reject);
    });
  }

  send(text: string): void {
    this.socket.write(text);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** The `nth` answer on this connection (1-based), once it is whole. */
  async response(nth: number): Promise<{ status: number; headers: Record<string, string>; body: string }> {
    for (;;) {
      let at = 0;
      for (let i = 1; ; i++) {
        const head = this.buf.indexOf('\r\n\r\n', at);
        if (head < 0) break;
        const lines = this.buf.subarray(at, head).toString('latin1').split('\r\n');
        const headers: Record<string, string> = {};
        for (const l of lines.slice(1)) {
          const c = l.indexOf(':');
          headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
        }
        const length = Number(headers['content-length'] ?? 0);
        if (this.buf.length < head + 4 + length) break;
        const body = this.buf.subarray(head + 4, head + 4 + length).toString('utf8');
        if (i === nth) return { status: Number((lines[0] ?? '').split(' ')[1]), headers, body };
        at = head + 4 + length;
      }
      if (this.closed) throw new Error(`the connection closed before answer ${nth}: ${this.buf.toString('latin1').slice(0, 500)}`);
      await within(new Promise<void>((resolve) => this.waiters.push(resolve)), 20_000, `answer ${nth}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------

describe('the names the READMEs document', () => {
  it('every name a README imports from a gx3 package, and startServer/resolveConfig/loadConfig, are runtime exports with those names', async () => {
    const root = path.join(SERVER_DIR, '../..');
    const readmes = ['README.md', 'apps/server/README.md', ...['codecs', 'engine', 'outbox-publisher', 'orderbook', 'wal'].map((p) => `packages/${p}/README.md`)];
    const modules: Record<string, Record<string, unknown>> = {
      '@gx3/codecs': await import('@gx3/codecs'),
      '@gx3/engine': await import('@gx3/engine'),
      '@gx3/outbox-publisher': await import('@gx3/outbox-publisher'),
      '@gx3/orderbook': await import('@gx3/orderbook'),
      '@gx3/wal': await import('@gx3/wal'),
      '@gx3/server': await import('../src/index.js'),
    };
    const missing: string[] = [];
    let checked = 0;
    for (const readme of readmes) {
      const text = fs.readFileSync(path.join(root, readme), 'utf8');
      for (const m of text.matchAll(/import \{([^}]*)\} from '(@gx3\/[\w-]+)'/g)) {
        const mod = modules[m[2] ?? ''];
        for (const raw of (m[1] ?? '').split(',')) {
          const name = raw.trim();
          if (name === '' || name.startsWith('type ')) continue;
          checked++;
          if (mod === undefined || !(name in mod)) missing.push(`${readme}: ${name} from ${m[2] ?? '?'}`);
        }
      }
    }
    expect(checked).toBeGreaterThan(10);
    expect(missing).toEqual([]);
    const server = must(modules['@gx3/server'], 'the server');
    for (const name of ['startServer', 'resolveConfig', 'loadConfig', 'ConfigError', 'ApiError']) expect(typeof server[name], name).toBe('function');
    const outbox = must(modules['@gx3/outbox-publisher'], 'the outbox publisher');
    for (const name of ['MemoryBus', 'NatsJetStreamBus', 'Publisher', 'EventOutbox', 'OutboxError', 'readCursor', 'writeCursor', 'readHistory', 'renewHistory']) {
      expect(typeof outbox[name], name).toBe('function');
    }
    const engine = must(modules['@gx3/engine'], 'the engine');
    for (const name of ['Engine', 'EngineError', 'SymbolActor']) expect(typeof engine[name], name).toBe('function');
    expect(typeof Engine.open).toBe('function');
  });
});

describe('startServer and its RunningServer', () => {
  it('serves on the port it reports, and close() twice is one shutdown: the second call waits for the first', async () => {
    const dir = tmpDir();
    const s = await startServer(config(dir), OPTIONS);
    expect(s.url).toBe(`http://127.0.0.1:${s.port}`);
    expect(s.demo).toBe(false);
    expect(s.apiKeys.map((k) => k.user)).toEqual(['alice', 'bob']);
    expect((await post(s, ALICE, { side: 'buy', price: 10, qty: 1 })).status).toBe(200);
    const first = s.close();
    const second = s.close();
    // Awaiting only the second call: the shutdown is complete when it resolves.
    await second;
    expect(await lockIsFree(dir)).toBe(true);
    await first;
    await s.close(); // a third call after the fact resolves too
    await expect(fetch(`${s.url}/health/live`)).rejects.toThrow();
  });

  it('close() while orders are in flight on open keep-alive connections: every order taken is answered 200 (the others 503 SHUTTING_DOWN) and is there after a restart in the same process, whose fresh bus takes the next events', async () => {
    const dir = tmpDir();
    const s = await startServer(config(dir), OPTIONS);
    const actor = must(s.engine.actor(SYM), 'the actor');
    const n = 40;
    // Each connection is open and served once (a health check) before the orders are sent.
    const conns = await Promise.all(Array.from({ length: n }, () => RawConnection.open(s.port)));
    for (const c of conns) c.send('GET /health/live HTTP/1.1\r\nhost: x\r\n\r\n');
    await Promise.all(conns.map((c) => c.response(1)));
    conns.forEach((c, i) => {
      const body = JSON.stringify({ symbol: SYM, side: 'buy', type: 'limit', price: 100 + i, qty: 1 + i });
      c.send(`POST /v1/orders HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-api-key: ${i % 2 === 0 ? ALICE : BOB}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    });
    await until(() => actor.lastSubmittedSeq >= 1, 'a first order taken');
    await s.close();
    // Each connection gets its answer and is then closed by the server.
    const answers = await Promise.all(conns.map((c) => c.response(2)));
    await Promise.all(conns.map((c) => c.ended));
    const taken = actor.lastSubmittedSeq;
    for (const a of answers) {
      if (a.status !== 200) expect({ status: a.status, code: (JSON.parse(a.body) as { error?: { code?: string } }).error?.code }).toEqual({ status: 503, code: 'SHUTTING_DOWN' });
    }
    // Every order taken was answered 200 once durable; none was taken and left unanswered.
    expect(answers.filter((a) => a.status === 200).length).toBe(taken);
    expect(taken).toBeGreaterThan(0);
    const answered = answers.filter((a) => a.status === 200).map((a) => ({ body: JSON.parse(a.body) as { order?: OrderView } }));

    const again = await startServer(config(dir), OPTIONS);
    try {
      const bus = again.bus;
      expect(bus).toBeInstanceOf(MemoryBus);
      for (const a of answered) {
        const order = must(a.body.order, 'an answered order');
        expect(order.status).toBe('open');
        const key = order.user === 'alice' ? ALICE : BOB;
        const r = await request(again.url, 'GET', `/v1/orders/${SYM}/${order.orderId}`, { key });
        expect(r.status).toBe(200);
        expect(r.body.order).toMatchObject({ orderId: order.orderId, status: 'open', price: order.price, remainingQty: order.remainingQty });
      }
      // Order ids go on after the highest logged, and the fresh MemoryBus takes the next events.
      const seen: number[] = [];
      memoryBus(bus).subscribe(SYM, (e) => {
        seen.push(e.eventSeq);
      });
      const lastEventSeq = must(again.engine.actor(SYM), 'the actor').lastEventSeq;
      const r = await post(again, ALICE, { side: 'buy', price: 7, qty: 1 });
      expect(r.status).toBe(200);
      expect(must(r.body.order, 'the order').orderId).toBeGreaterThan(Math.max(...answered.map((a) => must(a.body.order, 'order').orderId)));
      await until(() => seen.length >= 2, 'the new order events on the fresh bus');
      expect(seen[0]).toBe(lastEventSeq + 1);
    } finally {
      await again.close();
    }
  });

  it('two servers in one process, on their own data directories and ports, are independent (books, buses, metrics, shutdown)', async () => {
    const [a, b] = await Promise.all([startServer(config(tmpDir()), OPTIONS), startServer(config(tmpDir()), OPTIONS)]);
    try {
      expect(a.port).not.toBe(b.port);
      expect(a.bus).not.toBe(b.bus);
      expect((await post(a, ALICE, { side: 'sell', price: 500, qty: 3 })).status).toBe(200);
      const bookA = await request(a.url, 'GET', `/v1/book/${SYM}`);
      const bookB = await request(b.url, 'GET', `/v1/book/${SYM}`);
      expect(bookA.body.asks).toEqual([[500, 3]]);
      expect(bookB.body.asks).toEqual([]);
      const ma = await request(a.url, 'GET', '/metrics');
      const mb = await request(b.url, 'GET', '/metrics');
      expect(ma.status).toBe(200);
      expect(mb.status).toBe(200);
      expect(ma.text).toContain('gx3_');
      // One server closed, the other still serves.
      await a.close();
      expect((await post(b, BOB, { side: 'buy', price: 400, qty: 1 })).status).toBe(200);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('the same data directory twice: EngineError LOCKED naming <dataDir>/LOCK and this process; the running server is untouched and the directory is free once it closed', async () => {
    const dir = tmpDir();
    const s = await startServer(config(dir), OPTIONS);
    try {
      const err = await startServer(config(dir), OPTIONS).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(EngineError);
      expect((err as EngineError).code).toBe('LOCKED');
      expect((err as EngineError).message).toContain(path.join(fs.realpathSync(dir), 'LOCK'));
      expect((err as EngineError).message).toContain(String(process.pid));
      expect((await post(s, ALICE, { side: 'buy', price: 10, qty: 1 })).status).toBe(200);
      expect((await request(s.url, 'GET', '/health')).status).toBe(200);
    } finally {
      await s.close();
    }
    const again = await startServer(config(dir), OPTIONS);
    await again.close();
  });

  it('a port in use is ConfigError INVALID_CONFIG naming host and port, and leaves the data directory unlocked', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    const dir = tmpDir();
    try {
      const err = await startServer(config(dir, { port }), OPTIONS).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).code).toBe('INVALID_CONFIG');
      expect((err as ConfigError).message).toMatch(/GX3_HOST.*GX3_PORT/);
      expect(fs.existsSync(path.join(dir, 'LOCK'))).toBe(false);
      expect(await lockIsFree(dir)).toBe(true);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it('other limits than the data directory was written with: ConfigError INVALID_CONFIG naming instruments; the directory stays free', async () => {
    const dir = tmpDir();
    await (await startServer(config(dir), OPTIONS)).close();
    const err = await startServer(config(dir, { instruments: `${SYM}:1:100000:999` }), OPTIONS).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('INVALID_CONFIG');
    expect((err as ConfigError).message).toMatch(/^instruments \(GX3_INSTRUMENTS/);
    expect(await lockIsFree(dir)).toBe(true);
  });

  it('a start that fails after the engine opened (an outbox record the gateway reads is damaged) leaves the data directory unlocked', async () => {
    const dir = tmpDir();
    const s = await startServer(config(dir), OPTIONS);
    for (let i = 0; i < 20; i++) expect((await post(s, ALICE, { side: 'buy', price: 10 + i, qty: 1 })).status).toBe(200);
    await s.close();
    // One byte of the first event's record (the outbox's tail, which the engine's recovery reads, is intact).
    const ev = path.join(dir, SYM, 'ev');
    const segment = path.join(ev, must(fs.readdirSync(ev).filter((f) => f.endsWith('.wal')).sort()[0], 'a segment'));
    flipByte(segment, 40);

    let started: RunningServer | undefined;
    let failure: unknown;
    try {
      started = await startServer(config(dir), OPTIONS);
    } catch (err) {
      failure = err;
    }
    if (started !== undefined) await started.close();
    // Started (with the symbol's feed failed) or refused: either way nothing may keep the directory.
    expect({ failure: (failure as Error | undefined)?.message, lockFile: fs.existsSync(path.join(dir, 'LOCK')) }).toEqual({ failure: expect.anything() as unknown, lockFile: false });
    expect(await lockIsFree(dir)).toBe(true);
  });
});

describe('RunningServer.bus and RunningServer.engine', () => {
  it('the MemoryBus delivers every event of every symbol once, in order (eventSeq 1, 2, ...), as the answers and the engine have them', async () => {
    const dir = tmpDir();
    const s = await startServer(config(dir, { instruments: `${SYM}:1:100000:1000000,${SYM2}:1:100000:1000000` }), OPTIONS);
    try {
      expect(s.bus).toBeInstanceOf(MemoryBus);
      const bus = memoryBus(s.bus);
      const all: { symbol: string; eventSeq: number; seq: number; type: string }[] = [];
      const own: number[] = [];
      bus.subscribe('*', (e) => all.push({ symbol: e.symbol, eventSeq: e.eventSeq, seq: e.seq, type: e.type }));
      bus.subscribe(SYM2, (e) => own.push(e.eventSeq));
      const answers: Event[] = [];
      for (let i = 0; i < 15; i++) {
        for (const symbol of [SYM, SYM2]) {
          const maker = await post(s, ALICE, { symbol, side: 'sell', price: 100 + (i % 3), qty: 2 });
          const taker = await post(s, BOB, { symbol, side: 'buy', price: 102, qty: 1 + (i % 2) });
          expect([maker.status, taker.status]).toEqual([200, 200]);
          answers.push(...must(maker.body.events, 'events'), ...must(taker.body.events, 'events'));
        }
      }
      const e1 = must(s.engine.actor(SYM), 'actor');
      const e2 = must(s.engine.actor(SYM2), 'actor');
      await until(() => bus.lastEventSeq(SYM) === e1.lastEventSeq && bus.lastEventSeq(SYM2) === e2.lastEventSeq, 'the bus catching up');
      for (const [symbol, actor] of [
        [SYM, e1],
        [SYM2, e2],
      ] as const) {
        const mine = all.filter((e) => e.symbol === symbol);
        expect(mine.map((e) => e.eventSeq)).toEqual(Array.from({ length: actor.lastEventSeq }, (_, i) => i + 1));
        for (let i = 1; i < mine.length; i++) expect(must(mine[i], 'event').seq).toBeGreaterThanOrEqual(must(mine[i - 1], 'event').seq);
        // Each answer's events are the bus's events of that command.
        for (const a of answers.filter((e) => e.symbol === symbol)) {
          expect(mine.find((e) => e.eventSeq === a.eventSeq)).toMatchObject({ seq: a.seq, type: a.type });
        }
      }
      expect(own).toEqual(all.filter((e) => e.symbol === SYM2).map((e) => e.eventSeq));
      // The engine's watermarks, as /health shows them.
      interface SymbolHealth {
        halted: boolean;
        durableSeq: number;
        processedSeq: number;
        queued: number;
        publisher: { lastEventSeq: number; lagBytes: number; consecutiveFailures: number };
      }
      const health = async (): Promise<Record<string, SymbolHealth>> => {
        const h = await request(s.url, 'GET', '/health');
        expect(h.status).toBe(200);
        return (h.body as unknown as { symbols: Record<string, SymbolHealth> }).symbols;
      };
      await until(async () => (await health())[SYM]?.publisher.lagBytes === 0, 'the publisher caught up, as /health shows it');
      expect((await health())[SYM]).toEqual({
        halted: false,
        durableSeq: e1.durableSeq,
        processedSeq: e1.processedSeq,
        queued: 0,
        publisher: { lastEventSeq: e1.lastEventSeq, lagBytes: 0, consecutiveFailures: 0 },
      });
      expect(s.engine.symbols.sort()).toEqual([SYM, SYM2]);
    } finally {
      await s.close();
    }
  });
});

describe('Engine used directly, as the engine README shows', () => {
  it('open with a MemoryBus, submit and trySubmit, typed refusals, close: every event published in order; CLOSED afterwards; a reopen recovers', async () => {
    const dir = tmpDir();
    const bus = new MemoryBus();
    const got: number[] = [];
    bus.subscribe(SYM, (e) => got.push(e.eventSeq));
    const engine = await Engine.open({ dataDir: dir, symbols: [{ symbol: SYM, ...LIMITS }], durability: 'batch', codec: 'binary', bus, segmentSize: SEGMENT });
    const limit = (orderId: number, side: 'buy' | 'sell', price: number, qty: number): LimitCommand => ({
      type: 'limit',
      symbol: SYM,
      seq: 0,
      reqId: orderId,
      orderId,
      userId: side === 'buy' ? 7 : 8,
      ts: 0,
      side,
      price,
      qty,
      tif: 'GTC',
      stp: 'NONE',
    });
    const first = limit(1, 'buy', 100, 5);
    const { seq, events } = await engine.submit(first);
    expect(seq).toBe(1);
    expect(first.seq).toBe(1); // written on the caller's object
    expect(first.ts).toBeGreaterThan(0);
    expect(events.map((e) => e.type)).toEqual(['accepted', 'added']);
    const r = engine.trySubmit(limit(2, 'sell', 100, 2));
    expect(r).toBe(2);
    const actor = must(engine.actor(SYM), 'actor');
    await actor.waitForDurable(2);
    expect(actor.durableSeq).toBe(2);

    const unknown = engine.trySubmit({ ...limit(3, 'buy', 1, 1), symbol: 'NOPE' });
    expect(unknown).toMatchObject({ ok: false, code: 'UNKNOWN_SYMBOL' });
    await expect(engine.submit({ ...limit(3, 'buy', 1, 1), symbol: 'NOPE' })).rejects.toMatchObject({ name: 'EngineError', code: 'UNKNOWN_SYMBOL' });
    const invalid = engine.trySubmit({ ...limit(3, 'buy', 1, 1), qty: 1.5 });
    expect(invalid).toMatchObject({ ok: false, code: 'INVALID_COMMAND' });
    expect(actor.lastSubmittedSeq).toBe(2);

    const never = actor.waitForDurable(1000).then(
      () => 'resolved',
      (e: unknown) => e,
    );
    const closing = engine.close();
    expect(engine.trySubmit(limit(3, 'buy', 1, 1))).toMatchObject({ ok: false, code: 'CLOSED' });
    const closedErr = await engine.submit(limit(3, 'buy', 1, 1)).catch((e: unknown) => e);
    expect(closedErr).toBeInstanceOf(EngineError);
    expect((closedErr as EngineError).code).toBe('CLOSED');
    await engine.close(); // the second call waits for the first
    expect(fs.existsSync(path.join(dir, 'LOCK'))).toBe(false);
    await closing;
    expect(await never).toMatchObject({ name: 'EngineError', code: 'CLOSED' });
    // close() let the publisher catch up: the bus holds every event, in order.
    expect(got).toEqual(Array.from({ length: actor.lastEventSeq }, (_, i) => i + 1));
    expect(bus.lastEventSeq(SYM)).toBe(actor.lastEventSeq);

    // A reopen, with a fresh bus: the commands are replayed, the next events go on from there.
    const bus2 = new MemoryBus({ retain: true });
    const reopened = await Engine.open({ dataDir: dir, symbols: [{ symbol: SYM, ...LIMITS }], bus: bus2, segmentSize: SEGMENT });
    try {
      const a2 = must(reopened.actor(SYM), 'actor');
      expect(a2.recovery).toMatchObject({ commands: 2, rederived: 0, outboxBytesCut: 0 });
      expect(a2.lastEventSeq).toBe(actor.lastEventSeq);
      const out = await reopened.submit(limit(3, 'sell', 100, 3));
      expect(out.seq).toBe(3);
      expect(out.events[0]?.eventSeq).toBe(actor.lastEventSeq + 1);
    } finally {
      await reopened.close();
    }
    expect(bus2.messages(SYM).map((m) => m.eventSeq)[0]).toBe(actor.lastEventSeq + 1);
  });

  it('a full mailbox refuses with MAILBOX_FULL (nothing queued beyond mailboxSize), and takes the command after waitForProcessed', async () => {
    const dir = tmpDir();
    const engine = await Engine.open({ dataDir: dir, symbols: [{ symbol: SYM, ...LIMITS }], mailboxSize: 2, segmentSize: SEGMENT });
    try {
      const cmd = (orderId: number): Command => ({ type: 'limit', symbol: SYM, seq: 0, reqId: 0, orderId, userId: 1, ts: 0, side: 'buy', price: 10, qty: 1, tif: 'GTC', stp: 'NONE' });
      const results = [1, 2, 3].map((id) => engine.trySubmit(cmd(id)));
      expect(results.slice(0, 2)).toEqual([1, 2]);
      expect(results[2]).toMatchObject({ ok: false, code: 'MAILBOX_FULL' });
      await must(engine.actor(SYM), 'actor').waitForProcessed(2);
      expect(engine.trySubmit(cmd(3))).toBe(3);
    } finally {
      await engine.close();
    }
  });

  it('a second open of a data directory in use is EngineError LOCKED naming the holder; a failed open (bad options) leaves the directory free', async () => {
    const dir = tmpDir();
    const engine = await Engine.open({ dataDir: dir, symbols: [{ symbol: SYM, ...LIMITS }], segmentSize: SEGMENT });
    try {
      const err = await Engine.open({ dataDir: dir, symbols: [{ symbol: SYM, ...LIMITS }], segmentSize: SEGMENT }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EngineError);
      expect((err as EngineError).code).toBe('LOCKED');
      expect((err as EngineError).message).toContain(`pid ${process.pid}`);
    } finally {
      await engine.close();
    }
    const bad = await Engine.open({ dataDir: dir, symbols: [{ symbol: SYM, ...LIMITS, maxQty: 5 }], segmentSize: SEGMENT }).catch((e: unknown) => e);
    expect(bad).toMatchObject({ name: 'EngineError', code: 'INVALID_CONFIG' });
    const codec = await Engine.open({ dataDir: dir, symbols: [{ symbol: SYM, ...LIMITS }], codec: 'nope' as 'json', segmentSize: SEGMENT }).catch((e: unknown) => e);
    expect(codec).toMatchObject({ name: 'EngineError', code: 'INVALID_CONFIG' });
    expect(await lockIsFree(dir)).toBe(true);
  });
});

describe('the outbox publisher used directly, as its README shows', () => {
  it('EventOutbox, MemoryBus and Publisher: events delivered in order, CmdEnd never published, stop() twice, the cursor file, CURSOR_CORRUPT, INVALID_OPTIONS', async () => {
    const dir = path.join(tmpDir(), SYM, 'ev');
    const outbox = EventOutbox.open(dir, { durability: 'batch' });
    const bus = new MemoryBus();
    const received: Event[] = [];
    bus.subscribe(SYM, (event) => received.push({ ...event }));
    const publisher = new Publisher({ dir, bus, outbox });
    publisher.start();
    let eventSeq = 0;
    for (let seq = 1; seq <= 5; seq++) {
      eventSeq++;
      outbox.append({ type: 'accepted', symbol: SYM, seq, eventSeq, ts: seq, orderType: 'limit', orderId: seq, userId: 1, side: 'buy', price: 10 + seq, qty: 1, tif: 'GTC', stp: 'NONE' });
      eventSeq++;
      outbox.append({ type: 'added', symbol: SYM, seq, eventSeq, ts: seq, orderId: seq, userId: 1, side: 'buy', price: 10 + seq, qty: 1 });
      outbox.appendCmdEnd(SYM, seq, eventSeq, 2, seq);
    }
    await outbox.sync();
    await until(() => publisher.stats().lastEventSeq === 10, 'the publisher catching up');
    expect(received.map((e) => [e.eventSeq, e.type])).toEqual(Array.from({ length: 10 }, (_, i) => [i + 1, i % 2 === 0 ? 'accepted' : 'added']));
    const stats = publisher.stats();
    for (const k of ['published', 'acknowledged', 'duplicates', 'failures', 'consecutiveFailures', 'inFlight', 'committedOffset', 'acknowledgedOffset', 'readOffset', 'outboxEnd', 'lagBytes', 'lastEventSeq', 'lastError']) {
      expect(Object.hasOwn(stats, k), k).toBe(true);
    }
    expect(stats).toMatchObject({ published: 10, acknowledged: 10, failures: 0, lagBytes: 0 });
    const a = publisher.stop();
    const b = publisher.stop();
    await b;
    await a;
    const cursor = fs.readFileSync(path.join(dir, 'publisher.cursor'));
    expect(cursor.length).toBe(56);
    expect(cursor.subarray(0, 4).toString('latin1')).toBe('C3XG');
    expect(readCursor(dir)).toMatchObject({ offset: outbox.durableOffset, lastEventSeq: 10 });
    await outbox.close();

    fs.writeFileSync(path.join(dir, 'publisher.cursor'), Buffer.alloc(56, 7));
    const broken = new Publisher({ dir, bus: new MemoryBus() });
    let err: unknown;
    try {
      broken.start();
    } catch (e) {
      err = e;
    }
    await broken.stop();
    expect(err).toBeInstanceOf(OutboxError);
    expect((err as OutboxError).code).toBe('CURSOR_CORRUPT');

    const invalid = await NatsJetStreamBus.connect({ servers: 'nats://127.0.0.1:1', streamPrefix: 'bad prefix!' }).catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(OutboxError);
    expect((invalid as OutboxError).code).toBe('INVALID_OPTIONS');
  });

  it('a MemoryBus message read after publish returned throws OutboxError MESSAGE_RELEASED (the bus contract)', async () => {
    const dir = path.join(tmpDir(), SYM, 'ev');
    const outbox = EventOutbox.open(dir, { durability: 'batch' });
    const bus = new MemoryBus();
    let kept: BusMessage | undefined;
    bus.subscribe(SYM, (_event, msg) => {
      kept ??= msg;
    });
    const publisher = new Publisher({ dir, bus, outbox });
    publisher.start();
    outbox.append({ type: 'added', symbol: SYM, seq: 1, eventSeq: 1, ts: 1, orderId: 1, userId: 1, side: 'buy', price: 10, qty: 1 });
    outbox.appendCmdEnd(SYM, 1, 1, 1, 1);
    await outbox.sync();
    await until(() => kept !== undefined, 'a message');
    await publisher.stop();
    await outbox.close();
    const msg = must(kept, 'the message');
    expect(() => msg.payload).toThrow(expect.objectContaining({ name: 'OutboxError', code: 'MESSAGE_RELEASED' }) as Error);
  });
});

describe('configuration errors, as the server README documents them', () => {
  it('resolveConfig and loadConfig throw ConfigError: INVALID_CONFIG naming the setting, CONFIG_FILE for the file', () => {
    const invalid = (f: () => unknown): ConfigError => {
      try {
        f();
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return err as ConfigError;
      }
      throw new Error('no error');
    };
    expect(invalid(() => resolveConfig({ port: 'eighty' }))).toMatchObject({ code: 'INVALID_CONFIG', message: expect.stringMatching(/^port \(GX3_PORT \/ --port\): /) as unknown });
    expect(invalid(() => resolveConfig({ instruments: 'LOCK:1:10:10' }))).toMatchObject({ code: 'INVALID_CONFIG', message: expect.stringMatching(/^instruments \(GX3_INSTRUMENTS/) as unknown });
    expect(invalid(() => resolveConfig({ apiKeys: 'alice:short' }))).toMatchObject({ code: 'INVALID_CONFIG' });
    const dir = tmpDir();
    expect(invalid(() => loadConfig(['--config', path.join(dir, 'missing.json')], {}))).toMatchObject({ code: 'CONFIG_FILE' });
    const proto = path.join(dir, 'proto.json');
    fs.writeFileSync(proto, '{"__proto__": {"port": 1}}');
    expect(invalid(() => loadConfig(['--config', proto], {}))).toMatchObject({ code: 'CONFIG_FILE' });
    expect(invalid(() => loadConfig(['--nope'], {}))).toMatchObject({ code: 'INVALID_CONFIG' });
    // Later sources win: file, then environment, then flags.
    const file = path.join(dir, 'c.json');
    fs.writeFileSync(file, JSON.stringify({ port: 1, recentTrades: 5, bodyLimit: 4096 }));
    const c = loadConfig(['--config', file, '--port', '3'], { GX3_PORT: '2', GX3_RECENT_TRADES: '6' });
    expect([c.port, c.recentTrades, c.bodyLimit]).toEqual([3, 6, 4096]);
  });
});

describe('what an embedding process is left with (child processes)', () => {
  it('a process that starts a server, serves HTTP and WebSocket clients and closes it exits by itself, leaving no lock', async () => {
    checkBuilt();
    const dir = tmpDir();
    const r = await runChild(`
      import { createRequire } from 'node:module';
      import fs from 'node:fs';
      const { startServer, resolveConfig } = await import(${JSON.stringify(SERVER_DIST)});
      const WebSocket = createRequire(${JSON.stringify(SERVER_PKG)})('ws');
      const s = await startServer(resolveConfig({ port: 0, dataDir: ${JSON.stringify(dir)}, apiKeys: ${JSON.stringify(KEYS)}, instruments: '${SYM}:1:100000:1000000', logLevel: 'silent' }), { engine: { segmentSize: ${SEGMENT} } });
      const res = await fetch(s.url + '/v1/orders', { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': ${JSON.stringify(ALICE)} }, body: JSON.stringify({ symbol: '${SYM}', side: 'buy', type: 'limit', price: 10, qty: 1 }) });
      const status = res.status;
      await res.text();
      const ws = new WebSocket(s.url.replace('http', 'ws') + '/v1/ws?apiKey=${BOB}');
      const snapshot = await new Promise((resolve, reject) => {
        ws.on('open', () => ws.send(JSON.stringify({ op: 'subscribe', channel: 'book', symbol: '${SYM}' })));
        ws.on('message', (d) => { const m = JSON.parse(String(d)); if (m.type === 'book.snapshot') resolve(m); });
        ws.on('error', reject);
      });
      const closedWs = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
      await s.close();
      const wsCode = await closedWs;
      console.log(JSON.stringify({ status, bids: snapshot.bids, wsCode, lock: fs.existsSync(${JSON.stringify(path.join(dir, 'LOCK'))}) }));
    `);
    expect(report(r)).toEqual({ status: 200, bids: [[10, 1]], wsCode: 1001, lock: false });
    expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
  });

  it('failed starts (port in use, data directory LOCKED, other limits) leave no timer, handle or lock behind, and the process exits by itself', async () => {
    checkBuilt();
    const dir = tmpDir();
    const r = await runChild(`
      import fs from 'node:fs';
      import net from 'node:net';
      import path from 'node:path';
      // Every interval made and not cleared, with where it was made.
      const live = new Map();
      const setI = globalThis.setInterval, clearI = globalThis.clearInterval;
      globalThis.setInterval = (...a) => { const t = setI(...a); live.set(t, new Error().stack.split('\\n').slice(2, 4).map((l) => l.trim()).join(' < ')); return t; };
      globalThis.clearInterval = (t) => { live.delete(t); return clearI(t); };
      const { startServer, resolveConfig } = await import(${JSON.stringify(SERVER_DIST)});
      const options = { engine: { segmentSize: ${SEGMENT} } };
      const config = (dataDir, more = {}) => resolveConfig({ port: 0, dataDir, apiKeys: ${JSON.stringify(KEYS)}, instruments: '${SYM}:1:100000:1000000', logLevel: 'silent', ...more });
      const results = {};
      const attempt = async (name, dataDir, more) => {
        const before = new Set(live.keys());
        try {
          const s = await startServer(config(dataDir, more), options);
          await s.close();
          results[name] = { started: true };
        } catch (err) {
          results[name] = { error: err.name, code: err.code, intervalsLeft: [...live].filter(([t]) => !before.has(t)).map(([, at]) => at), lock: fs.existsSync(path.join(dataDir, 'LOCK')) };
        }
      };
      const blocker = net.createServer();
      await new Promise((r) => blocker.listen(0, '127.0.0.1', r));
      await attempt('portInUse', path.join(${JSON.stringify(dir)}, 'a'), { port: blocker.address().port });
      blocker.close();
      const held = await startServer(config(path.join(${JSON.stringify(dir)}, 'b')), options);
      await attempt('locked', path.join(${JSON.stringify(dir)}, 'b'));
      await held.close();
      await attempt('otherLimits', path.join(${JSON.stringify(dir)}, 'b'), { instruments: '${SYM}:1:100000:5' });
      console.log(JSON.stringify({ results, intervalsLeft: [...live.values()] }));
    `);
    const out = report(r) as { results: Record<string, { error?: string; code?: string; intervalsLeft?: string[]; lock?: boolean }>; intervalsLeft: string[] };
    expect(out.results).toEqual({
      portInUse: { error: 'ConfigError', code: 'INVALID_CONFIG', intervalsLeft: [], lock: false },
      locked: { error: 'EngineError', code: 'LOCKED', intervalsLeft: [], lock: true }, // the running server's lock
      otherLimits: { error: 'ConfigError', code: 'INVALID_CONFIG', intervalsLeft: [], lock: false },
    });
    expect(out.intervalsLeft).toEqual([]);
    expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
  });

  /** A data directory the server's process cannot write: as root, the child runs as nobody; else the directory is made read-only. */
  async function unwritableStart(settings: Record<string, unknown>): Promise<{ name: string; code: string; message: string; dir: string }> {
    checkBuilt();
    const dir = tmpDir('gx3-embed-ro-');
    fs.chmodSync(dir, 0o755);
    const dataDir = path.join(dir, 'data');
    fs.mkdirSync(dataDir, { mode: 0o755 });
    const root = process.getuid?.() === 0;
    if (!root) fs.chmodSync(dataDir, 0o555);
    try {
      const r = await runChild(
        `
        const { startServer, resolveConfig } = await import(${JSON.stringify(SERVER_DIST)});
        try {
          const s = await startServer(resolveConfig({ port: 0, dataDir: ${JSON.stringify(dataDir)}, instruments: '${SYM}:1:100000:1000000', logLevel: 'silent', ...${JSON.stringify(settings)} }), { engine: { segmentSize: ${SEGMENT} } });
          await s.close();
          console.log(JSON.stringify({ name: 'started', code: '', message: '' }));
        } catch (err) {
          console.log(JSON.stringify({ name: err.constructor.name, code: err.code, message: err.message }));
        }
      `,
        root ? { uid: 65534, gid: 65534, dir } : { dir },
      );
      expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
      return { ...(report(r) as { name: string; code: string; message: string }), dir: dataDir };
    } finally {
      fs.chmodSync(dataDir, 0o755);
    }
  }

  it('an unwritable data directory (configured keys) is ConfigError INVALID_CONFIG about the data directory, not the instruments', async () => {
    const r = await unwritableStart({ apiKeys: KEYS });
    expect(r.name).toBe('ConfigError');
    expect(r.code).toBe('INVALID_CONFIG');
    expect(r.message).toContain(r.dir);
    expect(r.message).not.toMatch(/instruments|GX3_INSTRUMENTS/);
  });

  it('an unwritable data directory (the demo keys) is a ConfigError too, as with configured keys (exit 2 from the bin)', async () => {
    const r = await unwritableStart({});
    expect({ name: r.name, code: r.code }).toEqual({ name: 'ConfigError', code: 'INVALID_CONFIG' });
    expect(r.message).toContain(r.dir);
  });
});
