// Shared helpers of the engine tests: where things are, temporary directories, building commands,
// reading the two logs back, the replay summary computed from the outbox and the book, a check of
// the outbox's sequence numbers, a port of the shared workload generator and reference matcher
// (../shared/workloads/gen.mjs and ref.mjs), and a FileIO that injects faults and can simulate a
// power loss (dropping what was written but never fdatasync'ed).
import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BinaryCodec,
  DecodedMessage,
  type AmendCommand,
  type CancelCommand,
  type Codec,
  type Command,
  type Event,
  type LimitCommand,
  type MarketCommand,
  type SelfTradePrevention,
  type Side as CommandSide,
  type TimeInForce,
} from '@gx3/codecs';
import { Side, type OrderBook } from '@gx3/orderbook';
import { nodeFileIO, WalReader, WalRecord, type FileIO } from '@gx3/wal';
import { expect } from 'vitest';
import { EngineError, type Refusal } from '../src/index.js';

// ---------------------------------------------------------------------------------------------
// Places

/** packages/engine */
export const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));
/** The monorepo root. */
export const REPO_ROOT = path.resolve(PACKAGE_DIR, '../..');
/** The shared workloads beside the repository (absent in a user's clone). */
export const WORKLOADS_DIR = path.resolve(REPO_ROOT, '../shared/workloads');
export const GEN_MJS = path.join(WORKLOADS_DIR, 'gen.mjs');
export const REF_MJS = path.join(WORKLOADS_DIR, 'ref.mjs');
export const HAVE_SHARED = fs.existsSync(GEN_MJS) && fs.existsSync(REF_MJS);

/** Says why a test that needs ../shared is skipped (visibly, once per call site). */
export function warnIfNoShared(what: string): void {
  if (!HAVE_SHARED) console.warn(`[engine tests] skipping ${what}: ${WORKLOADS_DIR} (gen.mjs, ref.mjs) does not exist beside the repository`);
}

// ---------------------------------------------------------------------------------------------
// Temporary directories

const made: string[] = [];

/** A fresh directory under os.tmpdir(), removed by `removeTmpDirs()`. */
export function tmpDir(prefix = 'gx3-engine-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
}

export function removeTmpDirs(): void {
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * Small segments: every fresh log preallocates one segment with zeros on open, and the default
 * (64 MiB) would make each test write 128 MiB per symbol. 2 MiB is the smallest that holds a record
 * of the default maxRecordSize (1 MiB) and makes the logs roll now and then.
 */
export const SEGMENT = 2 << 20;

/** The command log and the outbox of a symbol in a data directory. */
export function cmdDirOf(dataDir: string, symbol: string): string {
  return path.join(dataDir, symbol, 'cmd');
}
export function evDirOf(dataDir: string, symbol: string): string {
  return path.join(dataDir, symbol, 'ev');
}

// ---------------------------------------------------------------------------------------------
// Commands

export interface CommandOptions {
  userId?: number;
  reqId?: number;
  /** 0 (the default) lets the engine's clock set it. */
  ts?: number;
}

export interface LimitOptions extends CommandOptions {
  tif?: TimeInForce;
  stp?: SelfTradePrevention;
  clientOrderId?: string;
}

export function limit(symbol: string, orderId: number, side: CommandSide, price: number, qty: number, o: LimitOptions = {}): LimitCommand {
  return {
    type: 'limit',
    symbol,
    seq: 0,
    reqId: o.reqId ?? 0,
    orderId,
    userId: o.userId ?? 1,
    ts: o.ts ?? 0,
    side,
    price,
    qty,
    tif: o.tif ?? 'GTC',
    stp: o.stp ?? 'NONE',
    ...(o.clientOrderId === undefined ? {} : { clientOrderId: o.clientOrderId }),
  };
}

export function market(symbol: string, orderId: number, side: CommandSide, qty: number, o: LimitOptions = {}): MarketCommand {
  const m: MarketCommand = { type: 'market', symbol, seq: 0, reqId: o.reqId ?? 0, orderId, userId: o.userId ?? 1, ts: o.ts ?? 0, side, qty, stp: o.stp ?? 'NONE' };
  if (o.clientOrderId !== undefined) m.clientOrderId = o.clientOrderId;
  return m;
}

export function cancel(symbol: string, orderId: number, o: CommandOptions = {}): CancelCommand {
  return { type: 'cancel', symbol, seq: 0, reqId: o.reqId ?? 0, orderId, userId: o.userId ?? 1, ts: o.ts ?? 0 };
}

/** An amend; price 0 is a reduce-only amend that keeps the order's price. */
export function amend(symbol: string, orderId: number, price: number, qty: number, o: CommandOptions = {}): AmendCommand {
  return { type: 'amend', symbol, seq: 0, reqId: o.reqId ?? 0, orderId, userId: o.userId ?? 1, ts: o.ts ?? 0, price, qty };
}

/**
 * A small deterministic mix of commands for one symbol, every one with an explicit timestamp (so that
 * two runs of it give byte-identical logs): resting orders on both sides, crossing orders, market
 * orders, IOC, cancels (some of unknown ids), so that the outbox holds every common event type.
 */
export function mixedCommands(symbol: string, n: number, seed = 1): Command[] {
  const rnd = prng(seed);
  const out: Command[] = [];
  let id = 0;
  for (let i = 0; i < n; i++) {
    const r = rnd();
    const side: CommandSide = rnd() < 0.5 ? 'buy' : 'sell';
    const o = { reqId: i + 1, ts: 1_000 + i, userId: 1 + Math.floor(rnd() * 3) };
    if (r < 0.5 || id === 0) {
      const off = 1 + Math.floor(rnd() * 10);
      out.push(limit(symbol, ++id, side, side === 'buy' ? 1000 - off : 1000 + off, 1 + Math.floor(rnd() * 20), o));
    } else if (r < 0.65) {
      out.push(limit(symbol, ++id, side, side === 'buy' ? 1000 + 3 : 1000 - 3, 1 + Math.floor(rnd() * 40), { ...o, tif: rnd() < 0.5 ? 'GTC' : 'IOC' }));
    } else if (r < 0.72) {
      out.push(market(symbol, ++id, side, 1 + Math.floor(rnd() * 30), o));
    } else {
      // Some cancels come from another user than the owner: NOT_OWNER rejections are events too.
      out.push(cancel(symbol, 1 + Math.floor(rnd() * (id + 5)), o));
    }
  }
  return out;
}

/** A deep copy of commands (the engine sets `seq`, and `ts` when it is 0, on the objects it is given). */
export function copyCommands(cmds: readonly Command[]): Command[] {
  return cmds.map((c) => ({ ...c }));
}

// ---------------------------------------------------------------------------------------------
// Reading the logs

export interface StoredMessage<T> {
  /** The record's log offset. */
  offset: number;
  /** The offset after the record. */
  end: number;
  msg: T;
}

function readLog<T>(dir: string, codec: Codec): StoredMessage<T>[] {
  const reader = new WalReader(dir);
  const rec = new WalRecord();
  const out: StoredMessage<T>[] = [];
  try {
    for (let r = reader.next(rec); r; r = reader.next(rec)) {
      out.push({ offset: r.offset, end: r.offset + 8 + r.length, msg: codec.decode(r.buf.subarray(r.start, r.end)) as T });
    }
  } finally {
    reader.close();
  }
  return out;
}

/** Every record of an outbox, decoded, with its offsets. */
export function readOutbox(evDir: string, codec: Codec): StoredMessage<Event>[] {
  return readLog<Event>(evDir, codec);
}

/** Every record of a command log, decoded, with its offsets. */
export function readCommandLog(cmdDir: string, codec: Codec): StoredMessage<Command>[] {
  return readLog<Command>(cmdDir, codec);
}

/** Raw record payloads of a log (to compare two logs byte for byte). */
export function rawRecords(dir: string): Buffer[] {
  const reader = new WalReader(dir);
  const rec = new WalRecord();
  const out: Buffer[] = [];
  try {
    for (let r = reader.next(rec); r; r = reader.next(rec)) out.push(r.payload());
  } finally {
    reader.close();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The outbox's sequence numbers

/**
 * Checks the outbox's structure and returns the first problem found, in words, or undefined:
 * events carry eventSeq 1..N without gap or duplicate; every command 1..`commands` has exactly one
 * CmdEnd, in order; a command's events carry its seq and precede its CmdEnd; a CmdEnd carries the
 * last event sequence number so far and its command's event count; nothing follows the last CmdEnd.
 */
export class OutboxChecker {
  events = 0;
  commands = 0;
  private inCommand = 0;
  problem: string | undefined;

  visit(type: string, seq: number, eventSeq: number, count: number, offset: number): void {
    if (this.problem !== undefined) return;
    const cmd = this.commands + 1;
    if (seq !== cmd) {
      this.problem = `offset ${offset}: ${type} of command ${seq}, expected command ${cmd}`;
      return;
    }
    if (type === 'cmdEnd') {
      if (eventSeq !== this.events) this.problem = `offset ${offset}: CmdEnd of command ${seq} says last eventSeq ${eventSeq}, the outbox's is ${this.events}`;
      else if (count !== this.inCommand) this.problem = `offset ${offset}: CmdEnd of command ${seq} counts ${count} events, the outbox holds ${this.inCommand}`;
      this.commands++;
      this.inCommand = 0;
      return;
    }
    if (eventSeq !== this.events + 1) {
      this.problem = `offset ${offset}: ${type} event with eventSeq ${eventSeq} follows eventSeq ${this.events} (${eventSeq <= this.events ? 'duplicate' : 'gap'})`;
      return;
    }
    this.events++;
    this.inCommand++;
  }

  /** The problem, or a trailing command without its CmdEnd, or a wrong command count. */
  finish(expectedCommands?: number): string | undefined {
    if (this.problem !== undefined) return this.problem;
    if (this.inCommand > 0) return `${this.inCommand} events of command ${this.commands + 1} without a CmdEnd at the end of the outbox`;
    if (expectedCommands !== undefined && this.commands !== expectedCommands) return `the outbox ends with command ${this.commands}, the command log with ${expectedCommands}`;
    return undefined;
  }
}

/** checkOutbox over decoded events. */
export function outboxProblem(events: readonly StoredMessage<Event>[], expectedCommands?: number): string | undefined {
  const c = new OutboxChecker();
  for (const { msg: e, offset } of events) c.visit(e.type, e.seq, e.eventSeq, e.type === 'cmdEnd' ? e.events : 0, offset);
  return c.finish(expectedCommands);
}

// ---------------------------------------------------------------------------------------------
// The replay summary (../shared/workloads/README.md), from the outbox's events and the book

export interface Summary {
  ops: number;
  trades: number;
  volume: number;
  cancels: number;
  cancelRejects: number;
  rejects: number;
  amends: number;
  amendRejects: number;
  restingBids: number;
  restingBidQty: number;
  restingAsks: number;
  restingAskQty: number;
  bestBid: number | null;
  bestAsk: number | null;
  tradeHash: string;
  bookHash: string;
}

/** Hashes strings in chunks (one update per string is slow over millions). */
class ChunkedHash {
  private parts: string[] = [];
  constructor(private readonly hash: Hash = createHash('sha256')) {}
  add(s: string): void {
    this.parts.push(s);
    if (this.parts.length >= 4096) this.drain();
  }
  private drain(): void {
    if (this.parts.length > 0) this.hash.update(this.parts.join(''));
    this.parts = [];
  }
  /** The digest so far (the hash goes on). */
  peek(): string {
    this.drain();
    return this.hash.copy().digest('hex');
  }
}

export interface BookState {
  /** Full SHA-256 hex over `side,price,id,qty;` of every resting order, bids best first then asks, in time priority. */
  hash: string;
  bids: number;
  bidQty: number;
  asks: number;
  askQty: number;
}

export function bookState(book: OrderBook): BookState {
  const h = new ChunkedHash();
  const s = { bids: 0, bidQty: 0, asks: 0, askQty: 0 };
  book.forEachOrder(Side.Buy, (id, _user, price, qty) => {
    h.add(`B,${price},${id},${qty};`);
    s.bids++;
    s.bidQty += qty;
  });
  book.forEachOrder(Side.Sell, (id, _user, price, qty) => {
    h.add(`S,${price},${id},${qty};`);
    s.asks++;
    s.askQty += qty;
  });
  return { hash: h.peek(), ...s };
}

/** Every resting order (side, price, id, qty, user), in priority order. */
export function bookOrders(book: OrderBook): string[] {
  const out: string[] = [];
  for (const side of [Side.Buy, Side.Sell]) {
    book.forEachOrder(side, (id, user, price, qty) => out.push(`${side === Side.Buy ? 'B' : 'S'},${price},${id},${qty},u${user}`));
  }
  return out;
}

export interface OutboxSummary {
  summary: Summary;
  /** The structural problem of the outbox (see OutboxChecker), if any. */
  problem: string | undefined;
  commands: number;
  events: number;
}

/**
 * The replay summary with its counters and trade hash computed from the outbox's events (one pass,
 * which also checks the sequence numbers), and the resting orders from the book.
 */
export function summaryFromOutbox(evDir: string, codec: Codec, book: OrderBook, ops: number): OutboxSummary {
  const reader = new WalReader(evDir);
  const rec = new WalRecord();
  const scratch = new DecodedMessage();
  const th = new ChunkedHash();
  const checker = new OutboxChecker();
  const s = { trades: 0, volume: 0, cancels: 0, cancelRejects: 0, rejects: 0, amends: 0, amendRejects: 0 };
  try {
    for (let r = reader.next(rec); r; r = reader.next(rec)) {
      const e: DecodedMessage | Event =
        codec instanceof BinaryCodec ? codec.decodeInto(r.buf, r.start, r.end - r.start, scratch) : (codec.decode(r.buf.subarray(r.start, r.end)) as Event);
      checker.visit(e.type, e.seq, e.eventSeq, e.type === 'cmdEnd' ? e.events : 0, r.offset);
      switch (e.type) {
        case 'trade':
          s.trades++;
          s.volume += e.qty;
          th.add(`${e.makerOrderId},${e.takerOrderId},${e.price},${e.qty};`);
          break;
        case 'canceled':
          if (e.reason === 'USER') s.cancels++;
          break;
        case 'amended':
          if (e.kind === 'REDUCE') s.amends++;
          break;
        case 'rejected':
          if (e.commandType === 'cancel') s.cancelRejects++;
          else if (e.commandType === 'amend') s.amendRejects++;
          else s.rejects++;
          break;
        default:
          break;
      }
    }
  } finally {
    reader.close();
  }
  const b = bookState(book);
  return {
    summary: {
      ops,
      ...s,
      restingBids: b.bids,
      restingBidQty: b.bidQty,
      restingAsks: b.asks,
      restingAskQty: b.askQty,
      bestBid: book.bestBid,
      bestAsk: book.bestAsk,
      tradeHash: th.peek().slice(0, 16),
      bookHash: b.hash.slice(0, 16),
    },
    problem: checker.finish(ops),
    commands: checker.commands,
    events: checker.events,
  };
}

// ---------------------------------------------------------------------------------------------
// Workloads: the CSV of ../shared/workloads/README.md

/** A small deterministic PRNG (mulberry32, as gen.mjs). */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface GenOptions {
  ops: number;
  prefill?: number;
  seed?: number;
  band?: number;
  cross?: number;
  maxqty?: number;
  /** passive, cancel, aggressive, market, IOC, FOK, post-only, amend */
  mix?: readonly number[];
}

/** The lines gen.mjs writes for the same options (a port; the harness test holds it to gen.mjs). */
export function generateWorkload(o: GenOptions): string[] {
  const prefill = o.prefill ?? 10_000;
  const band = o.band ?? 50;
  const cross = o.cross ?? 5;
  const maxqty = o.maxqty ?? 100;
  const mix = o.mix ?? [55, 30, 15, 0, 0, 0, 0, 0];
  const total = mix.reduce((a, b) => a + b, 0);
  let acc = 0;
  const cum = mix.map((v) => (acc += v) / total);
  const c = (i: number): number => cum[i] ?? 1;
  const rnd = prng(o.seed ?? 42);
  const int = (n: number): number => Math.floor(rnd() * n);
  const MID = 100_000;
  let id = 1;
  const out: string[] = [];
  const side = (): string => (rnd() < 0.5 ? 'B' : 'S');
  const qty = (m = maxqty): number => 1 + int(m);
  const passivePx = (sd: string): number => {
    const off = 1 + Math.floor(rnd() * rnd() * band);
    return sd === 'B' ? MID - off : MID + off;
  };
  const aggrPx = (sd: string): number => {
    const off = int(cross);
    return sd === 'B' ? MID + off : MID - off;
  };
  const recent = (): number => {
    const lo = Math.max(1, id - 20_000);
    return lo + int(id - lo);
  };
  for (let i = 0; i < prefill; i++) {
    const sd = side();
    out.push(`L,${id++},${sd},${passivePx(sd)},${qty()}`);
  }
  for (let i = 0; i < o.ops; i++) {
    const r = rnd();
    const sd = side();
    if (r < c(0)) out.push(`L,${id++},${sd},${passivePx(sd)},${qty()}`);
    else if (r < c(1)) out.push(`C,${recent()}`);
    else if (r < c(2)) out.push(`L,${id++},${sd},${aggrPx(sd)},${qty(2 * maxqty)}`);
    else if (r < c(3)) out.push(`M,${id++},${sd},${qty(2 * maxqty)}`);
    else if (r < c(4)) out.push(`L,${id++},${sd},${aggrPx(sd)},${qty(2 * maxqty)},IOC`);
    else if (r < c(5)) out.push(`L,${id++},${sd},${aggrPx(sd)},${qty(3 * maxqty)},FOK`);
    else if (r < c(6)) out.push(`L,${id++},${sd},${rnd() < 0.7 ? passivePx(sd) : aggrPx(sd)},${qty()},POST`);
    else out.push(`A,${recent()},${qty()}`);
  }
  return out;
}

const TIFS: readonly TimeInForce[] = ['GTC', 'IOC', 'FOK', 'POST'];

/**
 * Workload line `i` (0-based) as a command: L -> limit, M -> market, C -> cancel, A,id,q -> amend
 * with price 0 (reduce-only, keeping the price). User 1, reqId i + 1, timestamp 1 (fixed, so that
 * the logs of two runs are identical).
 */
export function commandFromLine(symbol: string, line: string, i: number): Command {
  const f = line.split(',');
  const num = (k: number): number => Number(f[k]);
  const base = { symbol, seq: 0, reqId: i + 1, orderId: num(1), userId: 1, ts: 1 };
  switch (f[0]) {
    case 'L': {
      const tif = (f[5] ?? 'GTC') as TimeInForce;
      if (!TIFS.includes(tif)) throw new Error(`line ${i + 1}: bad time in force: ${line}`);
      return { ...base, type: 'limit', side: f[2] === 'B' ? 'buy' : 'sell', price: num(3), qty: num(4), tif, stp: 'NONE' };
    }
    case 'M':
      return { ...base, type: 'market', side: f[2] === 'B' ? 'buy' : 'sell', qty: num(3), stp: 'NONE' };
    case 'C':
      return { ...base, type: 'cancel' };
    case 'A':
      return { ...base, type: 'amend', price: 0, qty: num(2) };
    default:
      throw new Error(`line ${i + 1}: bad workload line: ${line}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The reference matcher (a port of ref.mjs, deliberately naive), fed one line at a time

interface RefOrder {
  id: number;
  side: 'B' | 'S';
  px: number;
  qty: number;
  dead: boolean;
}
interface RefLevel {
  orders: RefOrder[];
  head: number;
  live: number;
}
interface RefSide {
  levels: Map<number, RefLevel>;
  prices: number[];
  better: (a: number, b: number) => boolean;
}

export class RefModel {
  ops = 0;
  private readonly side: Record<'B' | 'S', RefSide> = {
    B: { levels: new Map(), prices: [], better: (a, b) => a > b },
    S: { levels: new Map(), prices: [], better: (a, b) => a < b },
  };
  private readonly live = new Map<number, RefOrder>();
  private readonly n = { trades: 0, volume: 0, cancels: 0, cancelRejects: 0, rejects: 0, amends: 0, amendRejects: 0 };
  private readonly th = new ChunkedHash();

  private insertPrice(sd: RefSide, px: number): void {
    const a = sd.prices;
    let i = 0;
    while (i < a.length && sd.better(a[i] as number, px)) i++;
    a.splice(i, 0, px);
  }
  private level(sd: RefSide, px: number): RefLevel {
    let l = sd.levels.get(px);
    if (!l) {
      l = { orders: [], head: 0, live: 0 };
      sd.levels.set(px, l);
      this.insertPrice(sd, px);
    }
    return l;
  }
  private dropLevelIfEmpty(sd: RefSide, px: number): void {
    const l = sd.levels.get(px);
    if (l && l.live === 0) {
      sd.levels.delete(px);
      sd.prices.splice(sd.prices.indexOf(px), 1);
    }
  }
  private static crosses(buy: boolean, lim: number | null, px: number): boolean {
    return lim === null || (buy ? px <= lim : px >= lim);
  }
  private available(opp: RefSide, buy: boolean, lim: number, need: number): boolean {
    let sum = 0;
    for (const px of opp.prices) {
      if (!RefModel.crosses(buy, lim, px)) break;
      for (const o of (opp.levels.get(px) as RefLevel).orders) {
        if (!o.dead) {
          sum += o.qty;
          if (sum >= need) return true;
        }
      }
    }
    return false;
  }
  private match(takerId: number, buy: boolean, lim: number | null, qty: number): number {
    const opp = buy ? this.side.S : this.side.B;
    while (qty > 0 && opp.prices.length > 0 && RefModel.crosses(buy, lim, opp.prices[0] as number)) {
      const px = opp.prices[0] as number;
      const l = opp.levels.get(px) as RefLevel;
      for (let i = l.head; i < l.orders.length && qty > 0; i++) {
        const m = l.orders[i] as RefOrder;
        if (m.dead) continue;
        const t = Math.min(qty, m.qty);
        qty -= t;
        m.qty -= t;
        this.n.trades++;
        this.n.volume += t;
        this.th.add(`${m.id},${takerId},${px},${t};`);
        if (m.qty === 0) {
          m.dead = true;
          l.live--;
          this.live.delete(m.id);
        }
      }
      while (l.head < l.orders.length && (l.orders[l.head] as RefOrder).dead) l.head++;
      this.dropLevelIfEmpty(opp, px);
    }
    return qty;
  }

  apply(line: string): void {
    this.ops++;
    const f = line.split(',');
    switch (f[0]) {
      case 'C': {
        const o = this.live.get(Number(f[1]));
        if (!o) {
          this.n.cancelRejects++;
          break;
        }
        const sd = this.side[o.side];
        const l = sd.levels.get(o.px) as RefLevel;
        o.dead = true;
        l.live--;
        this.live.delete(o.id);
        this.dropLevelIfEmpty(sd, o.px);
        this.n.cancels++;
        break;
      }
      case 'A': {
        const o = this.live.get(Number(f[1]));
        const q = Number(f[2]);
        if (!o || !(q > 0 && q < o.qty)) {
          this.n.amendRejects++;
          break;
        }
        o.qty = q;
        this.n.amends++;
        break;
      }
      case 'M':
        this.match(Number(f[1]), f[2] === 'B', null, Number(f[3]));
        break;
      case 'L': {
        const id = Number(f[1]);
        const sd = f[2] === 'B' ? 'B' : 'S';
        const px = Number(f[3]);
        const qty = Number(f[4]);
        const tif = f[5] ?? 'GTC';
        const buy = sd === 'B';
        if (this.live.has(id)) {
          this.n.rejects++;
          break;
        }
        const opp = buy ? this.side.S : this.side.B;
        if (tif === 'POST' && opp.prices.length > 0 && RefModel.crosses(buy, px, opp.prices[0] as number)) {
          this.n.rejects++;
          break;
        }
        if (tif === 'FOK' && !this.available(opp, buy, px, qty)) {
          this.n.rejects++;
          break;
        }
        const left = this.match(id, buy, px, qty);
        if (left > 0 && (tif === 'GTC' || tif === 'POST')) {
          const o: RefOrder = { id, side: sd, px, qty: left, dead: false };
          const l = this.level(this.side[sd], px);
          l.orders.push(o);
          l.live++;
          this.live.set(id, o);
        }
        break;
      }
      default:
        throw new Error(`bad line: ${line}`);
    }
  }

  summary(): Summary {
    const bh = new ChunkedHash();
    const rest = { B: [0, 0], S: [0, 0] };
    for (const s of ['B', 'S'] as const) {
      const r = rest[s] as [number, number];
      for (const px of this.side[s].prices) {
        for (const o of (this.side[s].levels.get(px) as RefLevel).orders) {
          if (o.dead) continue;
          bh.add(`${s},${px},${o.id},${o.qty};`);
          r[0]++;
          r[1] += o.qty;
        }
      }
    }
    return {
      ops: this.ops,
      ...this.n,
      restingBids: rest.B[0] as number,
      restingBidQty: rest.B[1] as number,
      restingAsks: rest.S[0] as number,
      restingAskQty: rest.S[1] as number,
      bestBid: this.side.B.prices[0] ?? null,
      bestAsk: this.side.S.prices[0] ?? null,
      tradeHash: this.th.peek().slice(0, 16),
      bookHash: bh.peek().slice(0, 16),
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Promises and errors

/** Lets the event loop turn `n` times (every pending immediate and the microtasks after it run). */
export async function turns(n = 1): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
}

/** A promise whose state can be read synchronously. */
export class Tracked<T> {
  state: 'pending' | 'resolved' | 'rejected' = 'pending';
  value: T | undefined;
  error: unknown;
  constructor(readonly promise: Promise<T>) {
    promise.then(
      (v) => {
        this.state = 'resolved';
        this.value = v;
      },
      (err: unknown) => {
        this.state = 'rejected';
        this.error = err;
      },
    );
  }
}

/** The EngineError `p` rejects with (fails the test when it resolves or rejects with something else). */
export async function engineRejection(p: Promise<unknown>): Promise<EngineError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof EngineError) return err;
    throw err;
  }
  return expect.fail('expected a rejection with an EngineError, the promise resolved');
}

/** The sequence number trySubmit returned (fails the test with the refusal otherwise). */
export function accepted(r: number | Refusal): number {
  if (typeof r !== 'number') return expect.fail(`trySubmit refused the command: ${r.code}: ${r.message}`);
  return r;
}

/** The refusal trySubmit returned (fails the test when it accepted the command). */
export function refused(r: number | Refusal): Refusal {
  if (typeof r === 'number') return expect.fail(`trySubmit accepted the command as seq ${r}, a refusal was expected`);
  return r;
}

// ---------------------------------------------------------------------------------------------
// A FileIO with faults, and a simulated power loss

function errno(code: string, syscall: string): NodeJS.ErrnoException {
  const messages: Record<string, string> = { ENOSPC: 'no space left on device', EIO: 'i/o error' };
  return Object.assign(new Error(`${code}: ${messages[code] ?? 'error'}, ${syscall}`), { code, syscall, errno: -1 });
}

export interface Faults {
  /** Asked for each write of records (not of zeros), with its 0-based index since arm() and its file: true fails it with ENOSPC. */
  dataWrite?: (index: number, file: string) => boolean;
  /** Asked for each asynchronous fdatasync: true fails it with EIO. */
  sync?: (index: number) => boolean;
  /** Asked for each blocking fdatasync: true fails it with EIO. */
  syncSync?: (index: number) => boolean;
}

/**
 * nodeFileIO with faults injected where `arm()` says. It also tracks, per file, how far its record
 * data was fdatasync'ed, so that `powerLoss(dir)` can zero every byte written after the last
 * completed fdatasync of its file: what a power loss would lose (logs only ever append, and fill
 * with zeros).
 */
export class FaultyIO {
  private faults: Faults = {};
  private counts = { dataWrites: 0, sync: 0, syncSync: 0 };
  /** Faults injected so far. */
  injected = 0;
  private readonly pathOf = new Map<number, string>();
  /** Per file: the end of the highest record write, and how far that is known durable. */
  private readonly written = new Map<string, number>();
  private readonly synced = new Map<string, number>();
  private firstFault: (() => void) | undefined;
  /** Resolves when the first fault is injected. */
  readonly faulted: Promise<void>;

  constructor() {
    this.faulted = new Promise((resolve) => {
      this.firstFault = resolve;
    });
  }

  arm(faults: Faults): void {
    this.faults = faults;
    this.counts = { dataWrites: 0, sync: 0, syncSync: 0 };
  }

  private inject(): void {
    this.injected++;
    this.firstFault?.();
    this.firstFault = undefined;
  }

  private markSynced(file: string | undefined, upTo: number): void {
    if (file !== undefined && upTo > (this.synced.get(file) ?? 0)) this.synced.set(file, upTo);
  }

  readonly io: FileIO = {
    ...nodeFileIO,
    open: (file, flags) => {
      const fd = nodeFileIO.open(file, flags);
      this.pathOf.set(fd, file);
      return fd;
    },
    close: (fd) => {
      this.pathOf.delete(fd);
      nodeFileIO.close(fd);
    },
    rename: (from, to) => {
      nodeFileIO.rename(from, to);
      for (const [fd, p] of this.pathOf) if (p === from) this.pathOf.set(fd, to);
      const w = this.written.get(from);
      const s = this.synced.get(from);
      if (w !== undefined) this.written.set(to, w);
      if (s !== undefined) this.synced.set(to, s);
    },
    write: (fd, buf, offset, length, position) => {
      const isData = length >= 4 && ((buf[offset] ?? 0) | (buf[offset + 1] ?? 0) | (buf[offset + 2] ?? 0) | (buf[offset + 3] ?? 0)) !== 0;
      if (isData) {
        const index = this.counts.dataWrites++;
        if (this.faults.dataWrite?.(index, this.pathOf.get(fd) ?? '') === true) {
          this.inject();
          throw errno('ENOSPC', 'write');
        }
        const n = nodeFileIO.write(fd, buf, offset, length, position);
        const file = this.pathOf.get(fd);
        if (file !== undefined && position + n > (this.written.get(file) ?? 0)) this.written.set(file, position + n);
        return n;
      }
      return nodeFileIO.write(fd, buf, offset, length, position);
    },
    syncSync: (fd) => {
      const index = this.counts.syncSync++;
      const file = this.pathOf.get(fd);
      const upTo = file === undefined ? 0 : (this.written.get(file) ?? 0);
      if (this.faults.syncSync?.(index) === true) {
        this.inject();
        throw errno('EIO', 'fdatasync');
      }
      nodeFileIO.syncSync(fd);
      this.markSynced(file, upTo);
    },
    sync: (fd, done) => {
      const index = this.counts.sync++;
      const file = this.pathOf.get(fd);
      const upTo = file === undefined ? 0 : (this.written.get(file) ?? 0);
      const fail = this.faults.sync?.(index) === true;
      nodeFileIO.sync(fd, (err) => {
        if (fail) {
          this.inject();
          done(errno('EIO', 'fdatasync'));
          return;
        }
        if (!err) this.markSynced(file, upTo);
        done(err);
      });
    },
  };

  /**
   * Simulates a power loss under `dir` (every segment of every log in it, the engine closed): the
   * bytes of each segment after its last completed fdatasync are zeroed. Returns the bytes dropped.
   */
  powerLoss(dir: string): number {
    let dropped = 0;
    const visit = (d: string): void => {
      for (const ent of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, ent.name);
        if (ent.isDirectory()) {
          visit(p);
          continue;
        }
        if (!/^\d{20}\.wal$/.test(ent.name)) continue;
        const from = this.synced.get(p) ?? 0;
        const to = this.written.get(p) ?? 0;
        if (to <= from) continue;
        const fd = fs.openSync(p, 'r+');
        try {
          fs.writeSync(fd, Buffer.alloc(to - from), 0, to - from, from);
        } finally {
          fs.closeSync(fd);
        }
        dropped += to - from;
      }
    };
    visit(dir);
    return dropped;
  }
}
