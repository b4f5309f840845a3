// Review: "the stream holds each event exactly once" (DESIGN.md, data flow 4-5), end to end, with the
// server as a child process (the built bin) on the NATS JetStream bus (NATS_URL, default
// nats://127.0.0.1:4222). Orders are placed over HTTP continuously (crossing, so trades happen), the
// server is SIGKILLed at seeded random moments and restarted on the same data directory, a few
// times over, then stopped cleanly; the symbols' streams are then read with the nats.js client
// (through a NatsJetStreamBus connection of the test's own, as nats.test.ts does) and compared
// with the outbox on disk: each of its events exactly once, in order, without gaps, byte for byte,
// and every answered event among them.
//
// The kills come during the start (before the server listens), just after it listens, or once it
// took orders. The second test does the same on streams made beforehand with a 250 ms duplicate
// window, so that every restart publishes again after the window (the order check's settling must
// keep each event once). The third puts a TCP proxy of its own between the server and NATS, and kills
// the server while that connection holds the publishes back (delivered late, after the kill, even
// after the restarted server published), holds the acknowledgements back (also past the bus's 5 s
// acknowledgement timeout), is cut (also for longer than that), or is slow. The shared NATS server
// is never stopped or restarted.
//
// Each test uses symbols (so streams, GX3_<SYMBOL>, subjects gx3.events.<SYMBOL>) of its own, deleted
// afterwards. Without NATS the tests are skipped with a warning, except under CI where that is a
// failure. The seed of the kill moments and orders: GX3_REVIEW_SEED (default below).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { codecByName, type Event } from '@gx3/codecs';
import { NatsJetStreamBus, readCursor, readHistory } from '@gx3/outbox-publisher';
import { WalReader, WalRecord } from '@gx3/wal';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forTaker } from '../src/answer-json.js';
import { ALICE, API_KEYS_ENV, BIN_JS, BOB, CAROL, checkBuilt, natsProblem, removeTmpDirs, request, rng, sleep, tmpDir, until, within } from './helpers.js';

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const IN_CI = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';
const SEED = Number(process.env.GX3_REVIEW_SEED ?? 0x5eed_2025);


const problem = await natsProblem(NATS_URL);
const skip = problem !== undefined;
if (problem !== undefined && !IN_CI) console.warn(`SKIPPED: exactly-once review tests: NATS JetStream at ${NATS_URL} is unavailable: ${problem} (set NATS_URL to a server with JetStream; under CI this is a failure)`);
if (problem !== undefined && IN_CI) {
  it('has a NATS JetStream server (required under CI)', () => {
    expect.fail(`NATS JetStream at ${NATS_URL} is required under CI but unavailable: ${problem}`);
  });
}

// ---------------------------------------------------------------------------------------------
// Seeded randomness


const between = (r: () => number, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));

// ---------------------------------------------------------------------------------------------
// Order flow: workers placing orders over HTTP against whichever server runs now

interface Acked {
  symbol: string;
  orderId: number;
  events: Event[];
}

class OrderFlow {
  /** The server to send to, undefined while none runs. */
  url: string | undefined;
  readonly acked: Acked[] = [];
  sent = 0;
  refused = 0;
  failed = 0;
  private stopped = false;
  private readonly workers: Promise<void>[] = [];

  constructor(
    private readonly symbols: readonly string[],
    private readonly seed: number,
    private readonly concurrency = 6,
  ) {}

  start(): void {
    for (let i = 0; i < this.concurrency; i++) this.workers.push(this.work(rng(this.seed * 31 + i)));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.workers);
  }

  private async work(r: () => number): Promise<void> {
    const keys = [ALICE, BOB, CAROL];
    while (!this.stopped) {
      const url = this.url;
      if (url === undefined) {
        await sleep(5);
        continue;
      }
      const symbol = this.symbols[between(r, 0, this.symbols.length - 1)] as string;
      const side = r() < 0.5 ? 'buy' : 'sell';
      const kind = r();
      // Limit orders around 1000 on both sides (so they cross), some IOC, a few market orders.
      const order =
        kind < 0.1
          ? { symbol, side, type: 'market', qty: between(r, 1, 4) }
          : { symbol, side, type: 'limit', price: between(r, 995, 1005), qty: between(r, 1, 5), tif: kind < 0.25 ? 'IOC' : 'GTC' };
      this.sent++;
      try {
        const res = await request(url, 'POST', '/v1/orders', { key: keys[between(r, 0, 2)] as string, json: order });
        if (res.status === 200 && res.body.order !== undefined && res.body.events !== undefined) {
          this.acked.push({ symbol, orderId: res.body.order.orderId, events: res.body.events });
        } else {
          this.refused++;
          await sleep(2);
        }
      } catch {
        // cut off by a kill
        this.failed++;
        await sleep(2);
      }
    }
  }

  ackedOn(symbol: string): number {
    let n = 0;
    for (const a of this.acked) if (a.symbol === symbol) n++;
    return n;
  }
}

// ---------------------------------------------------------------------------------------------
// A TCP proxy between the server and NATS that can hold either direction back, delay it, or cut it

class Channel {
  hold = false;
  delayMs = 0;
  private readonly queue: { at: number; chunk: Buffer }[] = [];
  private ended = false;
  private timer: NodeJS.Timeout | undefined;
  /** Bytes forwarded so far. */
  forwarded = 0;

  constructor(
    from: net.Socket,
    private readonly to: net.Socket,
  ) {
    from.on('data', (chunk: Buffer) => {
      this.queue.push({ at: Date.now() + this.delayMs, chunk });
      this.pump();
    });
    from.on('end', () => {
      this.ended = true;
      this.pump();
    });
    from.on('close', () => {
      this.ended = true;
      this.pump();
    });
  }

  get heldBytes(): number {
    let n = 0;
    for (const q of this.queue) n += q.chunk.length;
    return n;
  }

  pump(): void {
    if (this.to.destroyed) {
      this.queue.length = 0;
      return;
    }
    while (!this.hold && this.queue.length > 0) {
      const head = this.queue[0] as { at: number; chunk: Buffer };
      const wait = head.at - Date.now();
      if (wait > 0) {
        if (this.timer === undefined) {
          this.timer = setTimeout(() => {
            this.timer = undefined;
            this.pump();
          }, wait);
        }
        return;
      }
      this.queue.shift();
      this.forwarded += head.chunk.length;
      this.to.write(head.chunk);
    }
    // What the sender wrote before it went away still reaches the other end, then its end.
    if (!this.hold && this.queue.length === 0 && this.ended && !this.to.writableEnded) this.to.end();
  }

  drop(): void {
    this.queue.length = 0;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  up: Channel;
  down: Channel;
  closed: boolean;
}

class TcpProxy {
  private readonly server: net.Server;
  readonly pairs = new Set<Pair>();
  /** What new connections get. */
  defaults = { holdUp: false, holdDown: false, delayMs: 0 };
  refuse = false;
  port = 0;

  private constructor(private readonly target: { host: string; port: number }) {
    this.server = net.createServer((client) => {
      this.accept(client);
    });
  }

  static async start(targetUrl: string): Promise<TcpProxy> {
    const u = new URL(targetUrl);
    const proxy = new TcpProxy({ host: u.hostname, port: Number(u.port === '' ? 4222 : u.port) });
    await new Promise<void>((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(0, '127.0.0.1', () => {
        resolve();
      });
    });
    proxy.port = (proxy.server.address() as net.AddressInfo).port;
    return proxy;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  private accept(client: net.Socket): void {
    if (this.refuse) {
      client.destroy();
      return;
    }
    const upstream = net.connect({ host: this.target.host, port: this.target.port });
    const pair: Pair = { client, upstream, up: new Channel(client, upstream), down: new Channel(upstream, client), closed: false };
    pair.up.hold = this.defaults.holdUp;
    pair.down.hold = this.defaults.holdDown;
    pair.up.delayMs = pair.down.delayMs = this.defaults.delayMs;
    this.pairs.add(pair);
    const done = (): void => {
      if (client.destroyed && upstream.destroyed) {
        pair.closed = true;
        this.pairs.delete(pair);
      }
    };
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    client.on('close', done);
    upstream.on('close', done);
    // NATS closed its side: the client's side goes too (and the reverse is the channel's end()).
    upstream.on('close', () => {
      client.destroy();
    });
  }

  /** Holds back what goes to NATS (`up`) and/or what comes from it (`down`), on every connection and new ones. */
  hold(up: boolean, down: boolean): void {
    this.defaults = { ...this.defaults, holdUp: up, holdDown: down };
    for (const p of this.pairs) {
      p.up.hold = up;
      p.down.hold = down;
    }
  }

  setDelay(ms: number): void {
    this.defaults = { ...this.defaults, delayMs: ms };
    for (const p of this.pairs) p.up.delayMs = p.down.delayMs = ms;
  }

  /** Lets everything held through, in order, on every connection. */
  release(): void {
    this.defaults = { holdUp: false, holdDown: false, delayMs: 0 };
    for (const p of this.pairs) {
      p.up.hold = p.down.hold = false;
      p.up.delayMs = p.down.delayMs = 0;
      p.up.pump();
      p.down.pump();
    }
  }

  /** Bytes held back towards NATS, and from it. */
  held(): { up: number; down: number } {
    let up = 0;
    let down = 0;
    for (const p of this.pairs) {
      up += p.up.heldBytes;
      down += p.down.heldBytes;
    }
    return { up, down };
  }

  /** Cuts every connection at once (what is held is lost) and refuses new ones until `refuse` is cleared. */
  cut(): void {
    this.refuse = true;
    for (const p of this.pairs) {
      p.up.drop();
      p.down.drop();
      p.client.destroy();
      p.upstream.destroy();
    }
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => {
      this.server.close(() => {
        resolve();
      });
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Reading the outbox and the stream

interface Recorded {
  event: Event;
  bytes: Buffer;
}

/** Every event of the symbol's outbox on disk (CmdEnd markers left out), with its encoded bytes. */
function readOutbox(dataDir: string, symbol: string): Recorded[] {
  const codec = codecByName('binary');
  const reader = new WalReader(path.join(dataDir, symbol, 'ev'), {});
  const rec = new WalRecord();
  const out: Recorded[] = [];
  try {
    for (let r = reader.next(rec); r; r = reader.next(rec)) {
      const bytes = Buffer.from(r.buf.subarray(r.start, r.end));
      const e = codec.decode(bytes) as Event;
      if (e.type !== 'cmdEnd') out.push({ event: e, bytes });
    }
  } finally {
    reader.close();
  }
  return out;
}

interface Stored {
  seq: number;
  subject: string;
  msgId: string | undefined;
  history: string | undefined;
  bytes: Buffer;
  event: Event;
}

/** Every message of `stream`, in stream order (an ordered consumer). */
async function readStream(reader: NatsJetStreamBus, stream: string): Promise<Stored[]> {
  const info = await reader.jsm.streams.info(stream);
  if (info.state.messages === 0) return [];
  const codec = codecByName('binary');
  const consumer = await reader.jsm.jetstream().consumers.get(stream);
  const messages = await consumer.consume({ max_messages: 512 });
  const out: Stored[] = [];
  try {
    for await (const m of messages) {
      const bytes = Buffer.from(m.data);
      out.push({ seq: m.seq, subject: m.subject, msgId: m.headers?.get('Nats-Msg-Id'), history: m.headers?.get('Gx3-History'), bytes, event: codec.decode(bytes) as Event });
      if (m.seq >= info.state.last_seq) break;
    }
  } finally {
    messages.stop();
  }
  return out;
}

async function streamCount(reader: NatsJetStreamBus, stream: string): Promise<number> {
  return (await reader.jsm.streams.info(stream).catch(() => undefined))?.state.messages ?? 0;
}

/** An event as its command's answer shows it (a trade against another user's order without the maker's details). */
const asAnswered = (e: Event): unknown => (e.type === 'trade' ? forTaker(e) : e);

/** The first differences between two event lists, by event sequence number (for failure messages). */
function firstDifferences(stored: Stored[], outbox: Recorded[]): string {
  const lines: string[] = [];
  const seqs = stored.map((s) => s.event.eventSeq);
  const seen = new Map<number, number>();
  for (const s of seqs) seen.set(s, (seen.get(s) ?? 0) + 1);
  const dups = [...seen].filter(([, n]) => n > 1).map(([s, n]) => `${s}x${n}`);
  if (dups.length > 0) lines.push(`event seqs stored more than once: ${dups.slice(0, 20).join(', ')}${dups.length > 20 ? ` ... (${dups.length})` : ''}`);
  const outSeqs = new Set(outbox.map((o) => o.event.eventSeq));
  const missing = [...outSeqs].filter((s) => !seen.has(s));
  if (missing.length > 0) lines.push(`outbox events missing from the stream: ${missing.slice(0, 20).join(', ')}${missing.length > 20 ? ` ... (${missing.length})` : ''}`);
  for (let i = 1; i < seqs.length; i++) {
    if ((seqs[i] as number) !== (seqs[i - 1] as number) + 1) {
      lines.push(`stream order breaks at stream seq ${stored[i]?.seq}: event ${seqs[i - 1]} then ${seqs[i]}`);
      if (lines.length > 30) break;
    }
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// The server

function env(dataDir: string, symbols: readonly string[], bus: string): Record<string, string> {
  return {
    GX3_DATA_DIR: dataDir,
    GX3_HOST: '127.0.0.1',
    GX3_PORT: '0',
    GX3_API_KEYS: API_KEYS_ENV,
    GX3_INSTRUMENTS: symbols.map((s) => `${s}:1:100000:1000`).join(','),
    GX3_LOG_LEVEL: 'warn',
    GX3_BUS: bus,
    GX3_RATE_LIMIT: '1000000',
    GX3_RATE_BURST: '1000000',
  };
}

/**
 * The built server as a child process of this file (killable at any moment, also before it
 * listens: ServerProcess.spawn returns only once it listens). Every one still running is SIGKILLed
 * by `killAll` (afterAll, and each test's finally).
 */
class Child {
  private static readonly running = new Set<Child>();
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly proc: ChildProcess;

  constructor(envVars: Record<string, string>) {
    this.proc = spawn(process.execPath, [BIN_JS], { env: { ...process.env, ...envVars }, stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc.stderr?.setEncoding('utf8');
    this.proc.stderr?.on('data', (d: string) => (this.stderr = (this.stderr + d).slice(-50_000)));
    Child.running.add(this);
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code, signal) => {
        Child.running.delete(this);
        resolve({ code, signal });
      });
    });
  }

  static async killAll(): Promise<void> {
    for (const c of [...Child.running]) await c.kill('SIGKILL');
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** The URL it listens on, once its `listening on` line is out (undefined before). */
  get url(): string | undefined {
    return /listening on (http:\/\/\S+)/.exec(this.stderr)?.[1];
  }

  async listening(): Promise<string> {
    await until(() => {
      if (!this.alive) throw new Error(`the server exited at start:\n${this.stderr}`);
      return this.url !== undefined;
    }, () => `the server's "listening on" line (stderr so far: ${this.stderr})`, 30_000);
    return this.url as string;
  }

  kill(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.alive) this.proc.kill(signal);
    return this.exited;
  }
}

interface PublisherHealth {
  lastEventSeq: number;
  lagBytes: number;
  consecutiveFailures: number;
  lastError?: { code: string; message: string };
}

async function publisherHealth(url: string): Promise<Record<string, PublisherHealth | undefined>> {
  const r = await request(url, 'GET', '/health');
  const symbols = (r.body as { symbols?: Record<string, { publisher?: PublisherHealth }> }).symbols ?? {};
  return Object.fromEntries(Object.entries(symbols).map(([s, v]) => [s, v.publisher]));
}

// ---------------------------------------------------------------------------------------------

afterAll(async () => {
  await Child.killAll();
  removeTmpDirs();
});

describe.skipIf(skip)(`exactly once in JetStream across SIGKILLs of the server process (${NATS_URL}, seed ${SEED})`, () => {
  const TAG = `${Date.now().toString(36).toUpperCase()}${process.pid.toString(36).toUpperCase()}`;
  let reader: NatsJetStreamBus;
  const streams = new Set<string>();

  beforeAll(async () => {
    checkBuilt();
    reader = await NatsJetStreamBus.connect({ servers: NATS_URL });
  });

  afterAll(async () => {
    await Child.killAll();
    if ((reader as NatsJetStreamBus | undefined) === undefined) return;
    for (const s of streams) await reader.jsm.streams.delete(s).catch(() => undefined);
    await reader.close();
  });

  /**
   * After the final clean stop: each symbol's stream holds the outbox's events exactly once, in
   * order, without gaps, byte for byte, of the outbox's history; and every answered event is in it.
   */
  async function checkExactlyOnce(dataDir: string, symbols: readonly string[], flow: OrderFlow, context: string): Promise<void> {
    for (const symbol of symbols) {
      const stream = `GX3_${symbol}`;
      const outbox = readOutbox(dataDir, symbol);
      const stored = await readStream(reader, stream);
      const history = readHistory(path.join(dataDir, symbol, 'ev'));
      const where = `${context}; ${symbol}: outbox ${outbox.length} events (last ${outbox.at(-1)?.event.eventSeq}), stream ${stored.length} messages`;
      // The outbox itself numbers its events 1..n.
      expect(outbox.map((o) => o.event.eventSeq), `the outbox's event seqs (${where})`).toEqual(outbox.map((_, i) => i + 1));
      expect(outbox.length, `trades happened and events were made (${where})`).toBeGreaterThan(50);
      expect(outbox.some((o) => o.event.type === 'trade'), `trades happened (${where})`).toBe(true);
      const diff = firstDifferences(stored, outbox);
      // Exactly once, in order, no gaps: the stream's events are 1..n, at stream seqs 1..n.
      expect(stored.map((s) => s.event.eventSeq), `the stream's event seqs (${where})\n${diff}`).toEqual(outbox.map((o) => o.event.eventSeq));
      expect(stored.map((s) => s.seq), `the stream seqs (${where})`).toEqual(stored.map((_, i) => i + 1));
      expect(stored.map((s) => s.msgId), `message ids (${where})`).toEqual(outbox.map((o) => `${symbol}:${o.event.eventSeq}`));
      expect(new Set(stored.map((s) => s.subject)), `subjects (${where})`).toEqual(new Set([`gx3.events.${symbol}`]));
      expect(new Set(stored.map((s) => s.history)), `the Gx3-History headers (${where})`).toEqual(new Set([history]));
      // The bodies are the outbox's events, byte for byte.
      expect(stored.map((s) => s.event), `the stream's events against the outbox's (${where})`).toEqual(outbox.map((o) => o.event));
      const unequal = stored.filter((s, i) => !s.bytes.equals((outbox[i] as Recorded).bytes)).map((s) => s.event.eventSeq);
      expect(unequal, `messages whose bytes differ from the outbox record (${where})`).toEqual([]);

      // Every acknowledged order's events (its accepted event first) are in the stream, as answered.
      const bySeq = new Map(stored.map((s) => [s.event.eventSeq, s.event]));
      let checked = 0;
      for (const a of flow.acked) {
        if (a.symbol !== symbol) continue;
        const own = a.events.find((e) => (e.type === 'accepted' || e.type === 'rejected') && e.orderId === a.orderId);
        expect(own, `order ${symbol}/${a.orderId}'s answer carries its accepted or rejected event`).toBeDefined();
        for (const e of a.events) {
          const s = bySeq.get(e.eventSeq);
          expect(s === undefined ? undefined : asAnswered(s), `order ${symbol}/${a.orderId}: event ${e.eventSeq} (${e.type}) of its answer in the stream (${where})`).toEqual(e);
        }
        checked++;
      }
      expect(checked, `acknowledged orders on ${symbol}`).toBeGreaterThan(20);
    }
  }

  /**
   * The final run: start on the data directory again, take some more orders, wait until the
   * publishers report nothing left to publish and the streams hold that much, then SIGTERM.
   */
  async function finalRun(dataDir: string, symbols: readonly string[], bus: string, flow: OrderFlow, log: string[]): Promise<void> {
    const server = new Child(env(dataDir, symbols, bus));
    const url = await server.listening();
    try {
      const before = flow.acked.length;
      flow.url = url;
      await until(() => flow.acked.length >= before + 30, 'orders taken by the final run', 30_000);
      flow.url = undefined;
      await flow.stop();
      await until(
        async () => {
          const h = await publisherHealth(url);
          for (const s of symbols) {
            const p = h[s];
            if (p === undefined || p.lagBytes !== 0 || p.consecutiveFailures !== 0) return false;
            if ((await streamCount(reader, `GX3_${s}`)) < p.lastEventSeq) return false;
          }
          return true;
        },
        'the publishers to catch up (no lag, no failures, the streams holding what they acknowledged)',
        45_000,
      ).catch(async (err: unknown) => {
        throw new Error(`${(err as Error).message}\nhealth: ${JSON.stringify(await publisherHealth(url).catch(() => 'unavailable'))}\nlog:\n${log.join('\n')}\nstderr:\n${server.stderr.slice(-4000)}`);
      });
    } finally {
      const exit = await within(server.kill('SIGTERM'), 30_000, 'the final server to exit on SIGTERM');
      log.push(`final run: exit ${JSON.stringify(exit)}; stderr tail: ${server.stderr.slice(-2000)}`);
      expect(exit, `the final server's exit (stderr: ${server.stderr.slice(-2000)})`).toEqual({ code: 0, signal: null });
    }
  }

  /** The last event seq a symbol's stream holds (0 when none). */
  async function streamLastEventSeq(symbol: string): Promise<number> {
    const last = await reader.jsm.streams.getMessage(`GX3_${symbol}`, { last_by_subj: `gx3.events.${symbol}` }).catch(() => null);
    const id = last?.header.get('Nats-Msg-Id');
    return id === undefined ? 0 : Number(/:(\d+)$/.exec(id)?.[1] ?? -1);
  }

  /**
   * `cycles` runs of the server on `dataDir`, each SIGKILLed at a seeded random moment while the
   * orders flow: during its start (before it listens: recovery, publishers starting), just after it
   * listens (publishing the backlog from its cursor), or once it took some orders on every symbol.
   */
  async function sigkillCycles(dataDir: string, symbols: readonly string[], flow: OrderFlow, r: () => number, cycles: number, log: string[]): Promise<void> {
    let listened = 0;
    for (let cycle = 0; cycle < cycles; cycle++) {
      // Every other cycle after orders; the others during the start or just after it.
      const moment = cycle % 2 === 0 ? 'orders' : cycle % 4 === 1 ? 'starting' : 'listening';
      const server = new Child(env(dataDir, symbols, NATS_URL));
      let detail: string;
      if (moment === 'starting') {
        const wait = between(r, 20, 350);
        await sleep(wait);
        detail = `${wait} ms after spawn (${server.url === undefined ? 'not listening yet' : 'already listening'})`;
      } else {
        flow.url = await server.listening();
        listened++;
        if (moment === 'listening') {
          const wait = between(r, 0, 40);
          await sleep(wait);
          detail = `${wait} ms after it listened`;
        } else {
          const before = symbols.map((s) => flow.ackedOn(s));
          await until(() => symbols.every((s, i) => flow.ackedOn(s) >= (before[i] as number) + 15), `orders taken in cycle ${cycle}`, 30_000);
          const wait = between(r, 0, 700);
          await sleep(wait);
          detail = `${wait} ms after 15 orders a symbol`;
        }
      }
      const exit = await server.kill('SIGKILL');
      flow.url = undefined;
      // Diagnostics: how far each cursor was behind the stream (what the next run publishes again).
      const state = await Promise.all(
        symbols.map(async (s) => {
          let cursor: number | string;
          try {
            cursor = readCursor(path.join(dataDir, s, 'ev'))?.lastEventSeq ?? 0;
          } catch (err) {
            cursor = (err as Error).message;
          }
          return `${s}: cursor ${cursor}, stream ${await streamLastEventSeq(s)}`;
        }),
      );
      log.push(`cycle ${cycle}: killed ${detail} (exit ${JSON.stringify(exit)}); acked ${flow.acked.length} so far; ${state.join('; ')}`);
      expect(exit.signal, `cycle ${cycle}'s server was killed, not exited by itself (stderr: ${server.stderr.slice(-2000)})`).toBe('SIGKILL');
    }
    expect(listened, 'runs that listened before their kill').toBeGreaterThanOrEqual(5);
  }

  it('SIGKILL at seeded random moments while orders flow (8 kills, 2 symbols): every outbox event is in the stream exactly once, in order, without gaps, byte for byte; every acknowledged order\'s events are there', async () => {
    const symbols = [`XO${TAG}A`, `XO${TAG}B`];
    for (const s of symbols) streams.add(`GX3_${s}`);
    const dataDir = tmpDir('gx3-exactly-once-');
    const flow = new OrderFlow(symbols, SEED);
    const log: string[] = [];
    flow.start();
    try {
      await sigkillCycles(dataDir, symbols, flow, rng(SEED), 8, log);
      await finalRun(dataDir, symbols, NATS_URL, flow, log);
    } finally {
      await flow.stop();
      await Child.killAll();
    }
    expect(flow.acked.length).toBeGreaterThan(100);
    await checkExactlyOnce(dataDir, symbols, flow, `seed ${SEED}\n${log.join('\n')}`);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }, 110_000);

  it('the same with streams whose duplicate window is short (250 ms, made by the operator beforehand): a restart republishes after the window, and the order check must still keep each event once', async () => {
    const symbols = [`XW${TAG}A`, `XW${TAG}B`];
    for (const s of symbols) {
      streams.add(`GX3_${s}`);
      // The bus checks an existing stream's subject only: it publishes into this one as it is.
      await reader.jsm.streams.add({ name: `GX3_${s}`, subjects: [`gx3.events.${s}`], duplicate_window: 250 * 1_000_000, storage: 'file' });
    }
    const dataDir = tmpDir('gx3-exactly-once-window-');
    const flow = new OrderFlow(symbols, SEED + 2);
    const log: string[] = [];
    flow.start();
    try {
      await sigkillCycles(dataDir, symbols, flow, rng(SEED ^ 0x51ed270b), 8, log);
      await finalRun(dataDir, symbols, NATS_URL, flow, log);
    } finally {
      await flow.stop();
      await Child.killAll();
    }
    expect(flow.acked.length).toBeGreaterThan(100);
    await checkExactlyOnce(dataDir, symbols, flow, `seed ${SEED}, duplicate window 250 ms\n${log.join('\n')}`);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }, 110_000);

  it('SIGKILL while the NATS connection holds publishes back (delivered late), holds acknowledgements back (also past the 5 s acknowledgement timeout), is cut (also for longer than it), or is slow (through a TCP proxy), on a stream of the bus\'s making and one with a 250 ms duplicate window: still exactly once, in order, nothing lost', async () => {
    // A: the stream the bus makes (2 minute duplicate window); B: an operator's, with a short one.
    const symbols = [`XP${TAG}A`, `XP${TAG}B`];
    for (const s of symbols) streams.add(`GX3_${s}`);
    await reader.jsm.streams.add({ name: `GX3_${symbols[1] as string}`, subjects: [`gx3.events.${symbols[1] as string}`], duplicate_window: 250 * 1_000_000, storage: 'file' });
    const dataDir = tmpDir('gx3-exactly-once-proxy-');
    const r = rng(SEED ^ 0x9e3779b9);
    const flow = new OrderFlow(symbols, SEED + 1);
    const proxy = await TcpProxy.start(NATS_URL);
    const log: string[] = [];
    const modes = ['hold-up-late', 'hold-down', 'cut', 'hold-both', 'slow', 'long-cut', 'hold-up-late', 'long-hold-down', 'hold-up'] as const;
    const total = async (): Promise<number> => (await Promise.all(symbols.map((s) => streamCount(reader, `GX3_${s}`)))).reduce((a, b) => a + b, 0);
    flow.start();
    try {
      for (let cycle = 0; cycle < modes.length; cycle++) {
        const mode = modes[cycle] as (typeof modes)[number];
        proxy.refuse = false;
        proxy.defaults = { holdUp: false, holdDown: false, delayMs: 0 };
        const server = new Child(env(dataDir, symbols, proxy.url));
        const url = await server.listening();
        const before = flow.acked.length;
        flow.url = url;
        await until(() => flow.acked.length >= before + 15, `orders taken in cycle ${cycle}`, 30_000);
        // Held connections of the previous run are released now, after this run has published
        // (its own publishes went first; the old ones arrive late).
        if (proxy.held().up > 0) {
          const sTo = await total();
          await until(async () => (await total()) > sTo, `the restarted server to publish in cycle ${cycle}`, 30_000);
          log.push(`cycle ${cycle}: releasing ${proxy.held().up} bytes of the killed server's publishes after the new server's`);
          proxy.release();
        }
        let detail = '';
        switch (mode) {
          case 'hold-up':
          case 'hold-up-late':
          case 'hold-down':
          case 'hold-both': {
            const up = mode !== 'hold-down';
            const down = mode !== 'hold-up' && mode !== 'hold-up-late';
            if (mode === 'hold-both') {
              // The acknowledgements first (JetStream stores what the publisher cannot know of), then the publishes too.
              proxy.hold(false, true);
              await until(() => proxy.held().down > 0, `acknowledgements held back in cycle ${cycle}`, 30_000);
              await sleep(between(r, 0, 300));
            }
            proxy.hold(up, down);
            // Publishes (or their acknowledgements) pile up in the proxy while orders are taken.
            await until(() => (up ? proxy.held().up : proxy.held().down) > 0, `data held back in cycle ${cycle} (${mode})`, 30_000);
            await sleep(between(r, 50, 600));
            detail = `held ${JSON.stringify(proxy.held())}`;
            break;
          }
          case 'cut': {
            await sleep(between(r, 0, 300));
            proxy.cut();
            await sleep(between(r, 100, 800));
            proxy.refuse = false;
            await sleep(between(r, 0, 400));
            detail = 'cut, then reconnecting';
            break;
          }
          case 'long-cut': {
            // Longer than the bus's acknowledgement timeout (5 s): what was in flight times out, the
            // publisher rewinds and publishes again into the client's reconnect buffer.
            proxy.cut();
            const cutMs = between(r, 5500, 6500);
            await sleep(cutMs);
            proxy.refuse = false;
            const sTo = await total();
            await until(async () => (await total()) > sTo, `publishing again after the long cut in cycle ${cycle}`, 30_000);
            await sleep(between(r, 0, 500));
            detail = `cut for ${cutMs} ms, then reconnected and publishing`;
            break;
          }
          case 'long-hold-down': {
            // The acknowledgements held past the timeout: the publisher rewinds and publishes again
            // what JetStream already stored; then the stale acknowledgements arrive, then the kill.
            proxy.hold(false, true);
            await until(() => proxy.held().down > 0, `acknowledgements held back in cycle ${cycle}`, 30_000);
            const holdMs = between(r, 5500, 6500);
            await sleep(holdMs);
            detail = `acknowledgements held for ${holdMs} ms (${JSON.stringify(proxy.held())}), then released`;
            proxy.release();
            await sleep(between(r, 0, 400));
            break;
          }
          case 'slow': {
            proxy.setDelay(between(r, 20, 80));
            await sleep(between(r, 200, 900));
            detail = `slow (${proxy.defaults.delayMs} ms a chunk)`;
            break;
          }
        }
        const health = await publisherHealth(url).catch(() => undefined);
        const exit = await server.kill('SIGKILL');
        flow.url = undefined;
        expect(exit.signal).toBe('SIGKILL');
        log.push(`cycle ${cycle} (${mode}): killed, ${detail}; acked ${flow.acked.length} so far; publisher just before: ${JSON.stringify(health)}`);
        // 'hold-up-late' keeps the killed server's publishes for after the next server published;
        // the others let what was held go (to a connection whose client is gone) before the restart.
        if (mode !== 'hold-up-late') proxy.release();
      }
      proxy.release();
      proxy.refuse = false;
      await finalRun(dataDir, symbols, proxy.url, flow, log);
      // Nothing the proxy held is still on its way to NATS.
      proxy.release();
      await until(() => [...proxy.pairs].every((p) => p.up.heldBytes === 0), 'the proxy to have forwarded everything', 10_000);
    } finally {
      await flow.stop();
      await Child.killAll();
      await proxy.close();
    }
    await checkExactlyOnce(dataDir, symbols, flow, `seed ${SEED}\n${log.join('\n')}`);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }, 110_000);
});
