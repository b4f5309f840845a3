// A review of the engine's core invariant (DESIGN.md, "The core invariant"): the same command log
// always yields the same book and the same event log, byte for byte. Seeded random command streams
// for three symbols at once (a narrow band, a band with quantities up to 2^52 that overflow a level,
// and the widest band a book takes, with prices pages apart) mix limits of every time in force,
// markets, cancels, amends of the three kinds (price 0: reduce; qty 0: reprice; both), every
// self-trade prevention mode, several users (user 0 too), client order ids, commands the codec
// refuses, unknown symbols, duplicate order ids (also past 2^32 and at 2^53 - 1), and orders at and
// past the band's edges. Each stream is run:
//   - once as the reference (small batches and mailbox, group commit, callers that change their
//     command objects right after submitting them), checking that `submit` resolves with exactly
//     the events the outbox holds for the command's seq and that the command log holds exactly the
//     commands accepted;
//   - again with other batching, mailbox, durability, segment size and book sizing: the same
//     answers, the same command log and outbox bytes, the same book;
//   - split by a close and a reopen with other options, the outbox damaged in between;
//   - from copies of the reference's data directory whose outboxes were deleted, cut at a record
//     boundary or in the middle of a record (also at segment edges), reopened with other options:
//     the outbox derived again is byte for byte the reference's, segment by segment, and so is the book;
//   - from copies whose command log was cut at a record boundary or torn (the outbox also damaged,
//     in some): the outbox recovery leaves is a prefix of the reference's, and equals the one
//     derived from the command log alone, as does the book.
// Two focused tests at the end check that the live book applies what the command log holds when
// the caller's object reads differently the second time (an accessor) or holds -0.
// No timing: every wait is for a watermark or a promise of the engine.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { codecByName, type CodecName, type Command, type Event } from '@gx3/codecs';
import { OrderBook, Side } from '@gx3/orderbook';
import type { Durability } from '@gx3/wal';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine, EngineError, type EngineOptions, type SymbolActor, type SymbolConfig } from '../src/index.js';
import { OutboxChecker, prng, removeTmpDirs, tmpDir } from './helpers.js';

afterAll(removeTmpDirs);

// ---------------------------------------------------------------------------------------------
// A deterministic PRNG (mulberry32, helpers.ts) and small helpers over it

type Rng = () => number;

const mulberry32 = (seed: number): Rng => prng(seed);

/** An integer in [0, n). */
const int = (rng: Rng, n: number): number => Math.floor(rng() * n);
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[int(rng, xs.length)] as T;

// ---------------------------------------------------------------------------------------------
// The symbols: a narrow band with small quantities, and a band starting at 1 with quantities up to
// 2^52 (two such orders at one price overflow the level: LEVEL_QTY_OVERFLOW).

const SYM_A: SymbolConfig = { symbol: 'DETA', minPrice: 1000, maxPrice: 1040, maxQty: 60 };
const SYM_B: SymbolConfig = { symbol: 'DET-B.2', minPrice: 1, maxPrice: 48, maxQty: 2 ** 52 };
// The widest band a book takes (2^31 - 1 prices), with prices spread over many pages of its ladder.
const SYM_C: SymbolConfig = { symbol: 'DET_C', minPrice: 1, maxPrice: 2 ** 31 - 1, maxQty: 1000 };
const SYMBOLS = [SYM_A, SYM_B, SYM_C];
/** Price offsets from the middle of SYM_C's band: neighbours, a page (32,768 ticks) apart, far apart, up to the edges. */
const WIDE_OFFSETS = [1, 2, 3, 5, 32_767, 32_768, 32_769, 65_536, 1_000_003, 50_000_000, 2 ** 30 - 3, 2 ** 30 - 2];
/** The smallest segment the logs take (a record of the WAL's default maxRecordSize, 1 MiB, plus its header). */
const MIN_SEGMENT = (1 << 20) + 8;
const T0 = 1_700_000_000_000_000;

const STPS = ['NONE', 'NONE', 'CANCEL_NEWEST', 'CANCEL_OLDEST', 'CANCEL_BOTH', 'DECREMENT_CANCEL'] as const;
const CID_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-';

interface Item {
  cmd: Command;
  /** What trySubmit/submit must answer: a sequence number, or this refusal. */
  expect: 'seq' | 'INVALID_COMMAND' | 'UNKNOWN_SYMBOL';
}

interface SymbolGen {
  config: Required<Pick<SymbolConfig, 'symbol' | 'minPrice' | 'maxPrice' | 'maxQty'>>;
  mid: number;
  nextId: number;
  /** Order ids issued so far, with the user that sent them. */
  issued: { id: number; user: number }[];
}

const maxOf = (g: SymbolGen): number => g.config.maxPrice - g.config.minPrice;

/** A seeded stream of `n` commands over the symbols (and a few for unknown ones). */
function generate(seed: number, n: number, cidShare: number): Item[] {
  const rng = mulberry32(seed);
  const gens: SymbolGen[] = SYMBOLS.map((c) => ({
    config: { symbol: c.symbol, minPrice: c.minPrice ?? 1, maxPrice: c.maxPrice ?? 1e9, maxQty: c.maxQty ?? 2 ** 48 },
    mid: Math.floor(((c.minPrice ?? 1) + (c.maxPrice ?? 1e9)) / 2),
    nextId: 1,
    issued: [],
  }));
  const items: Item[] = [];
  let ts = T0;
  for (let i = 0; i < n; i++) {
    const u = rng();
    const g = (u < 0.6 ? gens[0] : u < 0.85 ? gens[1] : gens[2]) as SymbolGen;
    const wide = maxOf(g) > 1e9;
    const { symbol, minPrice, maxPrice, maxQty } = g.config;
    const user = rng() < 0.05 ? 0 : 1 + int(rng, 4);
    // Timestamps: mostly given (not always increasing), sometimes 0 for the engine's clock.
    ts += int(rng, 5);
    const base = {
      symbol,
      seq: rng() < 0.05 ? 1 + int(rng, 1e6) : 0,
      reqId: int(rng, 1e6),
      userId: user,
      ts: rng() < 0.1 ? 0 : rng() < 0.05 ? ts - 1000 : ts,
    };
    const smallQty = (): number => 1 + int(rng, 20);
    const qty = (): number => {
      if (maxQty > 1e9 && rng() < 0.08) return maxQty - int(rng, 3); // huge: a second one at a price overflows its level
      return smallQty();
    };
    const cid = (): { clientOrderId?: string } => {
      if (rng() >= cidShare) return {};
      const len = rng() < 0.1 + cidShare / 2 ? 64 : 1 + int(rng, 12);
      let s = '';
      for (let k = 0; k < len; k++) s += CID_CHARS.charAt(int(rng, CID_CHARS.length));
      return { clientOrderId: s };
    };
    const side = (): 'buy' | 'sell' => (rng() < 0.5 ? 'buy' : 'sell');
    const newId = (): number => {
      // Now and then an exotic id: past 2^31 or 2^32, or at the largest safe integer (these may repeat).
      if (rng() < 0.01) return pick(rng, [2 ** 31 + g.nextId, 2 ** 32 + g.nextId, 2 ** 32 - 1, 2 ** 53 - 1 - int(rng, 4)]);
      // Mostly increasing ids, sometimes a jump far ahead (ids out of the book's window).
      const id = g.nextId;
      g.nextId += rng() < 0.02 ? 1 + int(rng, 5_000_000) : 1;
      return id;
    };
    const target = (): { id: number; user: number } => {
      if (g.issued.length === 0 || rng() < 0.08) return { id: 1 + int(rng, g.nextId + 10), user };
      // Mostly recent orders (more likely to rest).
      const k = rng() < 0.7 ? g.issued.length - 1 - int(rng, Math.min(g.issued.length, 30)) : int(rng, g.issued.length);
      return g.issued[k] as { id: number; user: number };
    };
    const off = (n: number): number => (wide ? pick(rng, WIDE_OFFSETS) : int(rng, n));
    const passivePrice = (s: 'buy' | 'sell'): number => (s === 'buy' ? g.mid - 1 - off(8) : g.mid + 1 + off(8));
    const aggressivePrice = (s: 'buy' | 'sell'): number => (s === 'buy' ? g.mid - 2 + off(10) : g.mid + 2 - off(10));
    const r = rng() * 100;
    let cmd: Command;
    let expectation: Item['expect'] = 'seq';
    if (r < 28) {
      const s = side();
      const id = newId();
      g.issued.push({ id, user });
      cmd = { type: 'limit', ...base, orderId: id, side: s, price: passivePrice(s), qty: qty(), tif: rng() < 0.75 ? 'GTC' : 'POST', stp: pick(rng, STPS), ...cid() };
    } else if (r < 42) {
      const s = side();
      const id = newId();
      g.issued.push({ id, user });
      cmd = { type: 'limit', ...base, orderId: id, side: s, price: aggressivePrice(s), qty: qty(), tif: pick(rng, ['GTC', 'IOC', 'FOK', 'FOK', 'POST'] as const), stp: pick(rng, STPS), ...cid() };
    } else if (r < 48) {
      const id = newId();
      g.issued.push({ id, user });
      cmd = { type: 'market', ...base, orderId: id, side: side(), qty: qty(), stp: pick(rng, STPS), ...cid() };
    } else if (r < 62) {
      const t = target();
      cmd = { type: 'cancel', ...base, orderId: t.id, userId: rng() < 0.85 ? t.user : user };
    } else if (r < 78) {
      const t = target();
      const u = rng() < 0.88 ? t.user : user;
      const k = rng();
      // price 0: reduce-only at the order's price; qty 0: a new price for what is left; both given.
      const price = k < 0.4 ? 0 : k < 0.5 ? pick(rng, [minPrice, maxPrice, maxPrice + 1, minPrice - 1]) : wide ? g.mid + (rng() < 0.5 ? 1 : -1) * off(0) : g.mid - 6 + int(rng, 13);
      const q = price === 0 ? smallQty() : rng() < 0.45 ? 0 : rng() < 0.05 ? qty() : smallQty();
      if (price === 0 && q === 0) throw new Error('unreachable');
      // minPrice - 1 is 0 for SYM_B: then the amend is reduce-only (price 0).
      cmd = { type: 'amend', ...base, orderId: t.id, userId: u, price, qty: q };
    } else if (r < 84) {
      // At the band's edges and just past them; quantities at the largest and just above.
      const s = side();
      const id = newId();
      g.issued.push({ id, user });
      const price = pick(rng, [minPrice, maxPrice, minPrice - 1, maxPrice + 1, minPrice + 1, maxPrice - 1]);
      const q = pick(rng, [maxQty, maxQty + 1, 1, smallQty()]);
      if (price < 1) expectation = 'INVALID_COMMAND';
      if (rng() < 0.3) {
        cmd = { type: 'market', ...base, orderId: id, side: s, qty: q, stp: pick(rng, STPS), ...cid() };
        expectation = 'seq';
      } else cmd = { type: 'limit', ...base, orderId: id, side: s, price, qty: q, tif: pick(rng, ['GTC', 'IOC', 'FOK', 'POST'] as const), stp: pick(rng, STPS), ...cid() };
    } else if (r < 89) {
      // A duplicate order id: of a recent order (often resting), or of an older one (often gone).
      const t = target();
      const s = side();
      cmd =
        rng() < 0.8
          ? { type: 'limit', ...base, orderId: t.id, side: s, price: rng() < 0.5 ? passivePrice(s) : aggressivePrice(s), qty: qty(), tif: pick(rng, ['GTC', 'IOC', 'POST'] as const), stp: pick(rng, STPS), ...cid() }
          : { type: 'market', ...base, orderId: t.id, side: s, qty: qty(), stp: pick(rng, STPS), ...cid() };
    } else if (r < 97) {
      // Commands the codec refuses: nothing is logged, no sequence number is used.
      expectation = 'INVALID_COMMAND';
      const s = side();
      const lim = { type: 'limit' as const, ...base, orderId: g.nextId, side: s, price: passivePrice(s), qty: smallQty(), tif: 'GTC' as const, stp: 'NONE' as const };
      const bad = int(rng, 15);
      switch (bad) {
        case 0:
          cmd = { ...lim, qty: 0 };
          break;
        case 1:
          cmd = { ...lim, price: lim.price + 0.5 };
          break;
        case 2:
          cmd = { ...lim, orderId: 0 };
          break;
        case 3:
          cmd = { type: 'market', ...base, orderId: g.nextId, side: s, qty: -3, stp: 'NONE' };
          break;
        case 4:
          cmd = { type: 'cancel', ...base, orderId: 0 };
          break;
        case 5:
          cmd = { type: 'amend', ...base, orderId: target().id, price: 0, qty: 0 };
          break;
        case 6:
          cmd = { ...lim, tif: 'GTD' as unknown as 'GTC' };
          break;
        case 7:
          cmd = { ...lim, clientOrderId: 'has space' };
          break;
        case 8:
          cmd = { ...lim, clientOrderId: 'x'.repeat(65) };
          break;
        case 9:
          cmd = { ...lim, userId: -1 };
          break;
        case 10:
          cmd = { type: 'amend', ...base, orderId: target().id, price: g.mid, qty: 2 ** 53 };
          break;
        case 11:
          cmd = { ...lim, stp: 'BOGUS' as unknown as 'NONE' };
          break;
        case 12:
          cmd = { ...lim, side: 'up' as unknown as 'buy' };
          break;
        case 13:
          cmd = { ...lim, ts: -5 };
          break;
        default:
          cmd = { ...lim, reqId: 1.5 };
          break;
      }
    } else if (r < 98) {
      expectation = 'UNKNOWN_SYMBOL';
      cmd = { type: 'cancel', ...base, symbol: pick(rng, ['NOPE', 'deta', 'DETB']), orderId: 1 };
    } else {
      // Huge and tiny orders at one price on SYM_B-like bands; on SYM_A, a plain market sweep.
      const s = side();
      const id = newId();
      g.issued.push({ id, user });
      cmd =
        maxQty > 1e9
          ? { type: 'limit', ...base, orderId: id, side: s, price: passivePrice(s), qty: maxQty, tif: 'GTC', stp: 'NONE' }
          : { type: 'market', ...base, orderId: id, side: s, qty: 40 + int(rng, 40), stp: pick(rng, STPS) };
    }
    items.push({ cmd, expect: expectation });
  }
  return items;
}

// ---------------------------------------------------------------------------------------------
// Driving an engine

interface Outcome {
  symbol: string;
  seq?: number;
  refusal?: string;
  /** The events `submit` resolved with (when submitted with `submit`). */
  events?: Event[];
  /** The command as it must be in the command log. */
  logged?: Command;
}

interface DriveOptions {
  rng: Rng;
  /** The share of commands sent with `submit` (the others with `trySubmit`). */
  submitShare: number;
  /** Change the caller's object right after it was accepted (the mailbox must hold its own copy). */
  mutate: boolean;
}

function scramble(cmd: Command): void {
  cmd.orderId += 7;
  cmd.userId += 1;
  cmd.seq = 0;
  cmd.ts = 1;
  switch (cmd.type) {
    case 'limit':
      cmd.price += 3;
      cmd.qty += 5;
      cmd.side = cmd.side === 'buy' ? 'sell' : 'buy';
      cmd.tif = cmd.tif === 'GTC' ? 'IOC' : 'GTC';
      cmd.stp = 'NONE';
      cmd.clientOrderId = 'MUTATED';
      break;
    case 'market':
      cmd.qty += 5;
      cmd.side = cmd.side === 'buy' ? 'sell' : 'buy';
      cmd.clientOrderId = 'MUTATED';
      break;
    case 'amend':
      cmd.price = cmd.price === 0 ? 1 : 0;
      cmd.qty += 1;
      break;
    case 'cancel':
      break;
  }
}

/** Sends `items` to `engine` in order (waiting on `processedSeq` when a mailbox is full); resolves when every `submit` did. */
async function drive(engine: Engine, items: readonly Item[], o: DriveOptions): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  const pending: Promise<void>[] = [];
  for (const item of items) {
    const cmd = structuredClone(item.cmd);
    const given = structuredClone(item.cmd);
    const actor = engine.actor(cmd.symbol);
    const out: Outcome = { symbol: cmd.symbol };
    outcomes.push(out);
    const useSubmit = o.rng() < o.submitShare;
    for (;;) {
      if (useSubmit) {
        const before = actor?.lastSubmittedSeq ?? 0;
        const p = engine.submit(cmd);
        if (actor !== undefined && actor.lastSubmittedSeq === before + 1) {
          const seq = actor.lastSubmittedSeq;
          out.seq = seq;
          pending.push(
            p.then((r) => {
              expect(r.seq).toBe(seq);
              out.events = r.events;
            }),
          );
          break;
        }
        let code: string;
        try {
          await p;
          throw new Error(`submit resolved although the actor's lastSubmittedSeq did not move (${before})`);
        } catch (err) {
          if (!(err instanceof EngineError)) throw err;
          code = err.code;
        }
        if (code === 'MAILBOX_FULL' && actor !== undefined) {
          await actor.waitForProcessed(actor.lastSubmittedSeq);
          continue;
        }
        if (code === 'DURABILITY_BACKLOG' && actor !== undefined) {
          await actor.waitForDurable(actor.durableSeq + 1);
          continue;
        }
        out.refusal = code;
        break;
      }
      const r = engine.trySubmit(cmd);
      if (typeof r === 'number') {
        out.seq = r;
        break;
      }
      if (r.code === 'MAILBOX_FULL' && actor !== undefined) {
        await actor.waitForProcessed(actor.lastSubmittedSeq);
        continue;
      }
      if (r.code === 'DURABILITY_BACKLOG' && actor !== undefined) {
        await actor.waitForDurable(actor.durableSeq + 1);
        continue;
      }
      out.refusal = r.code;
      break;
    }
    if (out.seq !== undefined) {
      // The engine wrote the seq (and the ts it assigned, if 0) on the caller's object.
      expect(cmd.seq).toBe(out.seq);
      if (given.ts !== 0) expect(cmd.ts).toBe(given.ts);
      out.logged = { ...given, seq: out.seq, ts: cmd.ts };
      if (o.mutate) scramble(cmd);
    } else {
      // A refused command is left as it was given.
      expect(cmd).toStrictEqual(given);
    }
    if (item.expect === 'seq') {
      if (out.seq === undefined) expect.fail(`${JSON.stringify(item.cmd)} was refused: ${String(out.refusal)}`);
    } else {
      expect(out.refusal, JSON.stringify(item.cmd)).toBe(item.expect);
    }
  }
  await Promise.all(pending);
  return outcomes;
}

/** A clock for commands with ts 0: deterministic, continuing across the engines of one run. */
function counterClock(): () => number {
  let n = 0;
  return () => T0 + 5_000_000_000 + n++;
}

// ---------------------------------------------------------------------------------------------
// Reading logs byte for byte (independently of @gx3/wal's reader)

interface Segment {
  name: string;
  base: number;
  /** The segment's records (its data), without the zeros that follow. */
  data: Buffer;
  /** Whether everything after the data is zeros. */
  zeroTail: boolean;
}

interface Rec {
  offset: number;
  end: number;
  payload: Buffer;
}

interface LogImage {
  segments: Segment[];
  records: Rec[];
  /** The log's end (the offset after its last record). */
  end: number;
}

const SEGMENT_NAME = /^\d{20}\.wal$/;

function readLogImage(dir: string): LogImage {
  const names = fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => SEGMENT_NAME.test(n)).sort() : [];
  const segments: Segment[] = [];
  const records: Rec[] = [];
  let end = 0;
  for (const name of names) {
    const base = Number(name.slice(0, 20));
    expect(base, `${dir}: segment ${name} does not start where the previous one's data ends`).toBe(end);
    const buf = fs.readFileSync(path.join(dir, name));
    let pos = 0;
    while (pos + 8 <= buf.length) {
      const len = buf.readUInt32LE(pos);
      if (len === 0) break;
      if (pos + 8 + len > buf.length) break;
      const payload = buf.subarray(pos + 8, pos + 8 + len);
      if (zlib.crc32(payload) !== buf.readUInt32LE(pos + 4)) break;
      records.push({ offset: base + pos, end: base + pos + 8 + len, payload: Buffer.from(payload) });
      pos += 8 + len;
    }
    let zeroTail = true;
    for (let i = pos; i < buf.length; i++) {
      if (buf[i] !== 0) {
        zeroTail = false;
        break;
      }
    }
    segments.push({ name, base, data: Buffer.from(buf.subarray(0, pos)), zeroTail });
    end = base + pos;
  }
  return { segments, records, end };
}

const logicalBytes = (img: LogImage): Buffer => Buffer.concat(img.segments.map((s) => s.data));

interface RunImage {
  cmd: Map<string, LogImage>;
  ev: Map<string, LogImage>;
  /** Per symbol: every resting order in priority order and the book's counters. */
  book: Map<string, string[]>;
}

function bookLines(book: OrderBook): string[] {
  book.audit();
  const lines: string[] = [];
  for (const side of [Side.Buy, Side.Sell]) {
    book.forEachOrder(side, (id, user, price, qty) => {
      const v = book.getOrder(id);
      lines.push(`${side},${price},${id},${qty},u${user},tif${String(v?.timeInForce)},stp${String(v?.selfTradePrevention)}`);
    });
  }
  lines.push(`best ${String(book.bestBid)}/${String(book.bestAsk)} orders ${book.orderCount} levels ${book.levelsOn(Side.Buy)}/${book.levelsOn(Side.Sell)}`);
  return lines;
}

const sha = (lines: readonly string[]): string => createHash('sha256').update(lines.join('\n')).digest('hex');

function books(engine: Engine): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const s of SYMBOLS) m.set(s.symbol, bookLines((engine.actor(s.symbol) as SymbolActor).book));
  return m;
}

function imageOf(dataDir: string, book: Map<string, string[]>): RunImage {
  const cmd = new Map<string, LogImage>();
  const ev = new Map<string, LogImage>();
  for (const s of SYMBOLS) {
    cmd.set(s.symbol, readLogImage(path.join(dataDir, s.symbol, 'cmd')));
    ev.set(s.symbol, readLogImage(path.join(dataDir, s.symbol, 'ev')));
  }
  return { cmd, ev, book };
}

// ---------------------------------------------------------------------------------------------
// Comparisons that say where two logs or books first differ

function describeRecord(codecName: CodecName, img: LogImage, at: number): string {
  const rec = img.records.find((r) => r.offset <= at && at < r.end);
  if (rec === undefined) return `(no record at ${at}; the log ends at ${img.end})`;
  try {
    return `record at ${rec.offset}: ${JSON.stringify(codecByName(codecName).decode(rec.payload))}`;
  } catch (err) {
    return `record at ${rec.offset}: undecodable (${(err as Error).message})`;
  }
}

/** The logs hold the same bytes (segment boundaries aside); `prefix` compares `actual` to the first `prefix` bytes of `expected`. */
function expectSameLog(codecName: CodecName, label: string, actual: LogImage, expected: LogImage, prefix?: number): void {
  const a = logicalBytes(actual);
  const e0 = logicalBytes(expected);
  const e = prefix === undefined ? e0 : e0.subarray(0, prefix);
  if (a.equals(e)) return;
  let i = 0;
  while (i < a.length && i < e.length && a[i] === e[i]) i++;
  expect.fail(
    `${label}: the logs differ from byte ${i} (lengths ${a.length} and ${e.length})\n  actual:   ${describeRecord(codecName, actual, i)}\n  expected: ${describeRecord(codecName, expected, i)}`,
  );
}

/** Segment by segment: the same files, with the same data (up to `prefix` of the expected log), zeros after it. */
function expectSameSegments(label: string, actual: LogImage, expected: LogImage, prefix = expected.end): void {
  const want = expected.segments
    .filter((s) => s.base < prefix || (s.base === 0 && prefix === 0))
    .map((s) => ({ name: s.name, data: s.data.subarray(0, Math.max(0, prefix - s.base)) }));
  // A log cut at a segment's end may have its next (empty) segment already.
  const got = actual.segments.filter((s) => !(s.data.length === 0 && s.base === prefix && s.base !== 0));
  expect(
    got.map((s) => s.name),
    `${label}: segment files`,
  ).toEqual(want.map((s) => s.name));
  for (let k = 0; k < want.length; k++) {
    const g = got[k] as Segment;
    const w = want[k] as { name: string; data: Buffer };
    expect(g.data.equals(w.data), `${label}: segment ${w.name} (${g.data.length} bytes, ${w.data.length} expected)`).toBe(true);
    expect(g.zeroTail, `${label}: segment ${w.name} holds bytes after its data`).toBe(true);
  }
}

function expectSameBooks(label: string, actual: Map<string, string[]>, expected: Map<string, string[]>): void {
  for (const s of SYMBOLS) {
    const a = actual.get(s.symbol) ?? [];
    const e = expected.get(s.symbol) ?? [];
    if (sha(a) === sha(e)) continue;
    let i = 0;
    while (i < a.length && i < e.length && a[i] === e[i]) i++;
    expect.fail(`${label}: ${s.symbol}'s books differ at resting order ${i}: ${String(a[i])} instead of ${String(e[i])} (${a.length} and ${e.length} lines)`);
  }
}

function expectSameRun(codecName: CodecName, label: string, actual: RunImage, expected: RunImage): void {
  for (const s of SYMBOLS) {
    expectSameLog(codecName, `${label}: ${s.symbol} command log`, actual.cmd.get(s.symbol) as LogImage, expected.cmd.get(s.symbol) as LogImage);
    expectSameLog(codecName, `${label}: ${s.symbol} outbox`, actual.ev.get(s.symbol) as LogImage, expected.ev.get(s.symbol) as LogImage);
  }
  expectSameBooks(label, actual.book, expected.book);
}

/** The answers the commands got: sequence numbers and refusal codes. */
const answers = (outcomes: readonly Outcome[]): string[] => outcomes.map((o) => `${o.symbol}:${o.seq === undefined ? String(o.refusal) : o.seq}`);

// ---------------------------------------------------------------------------------------------
// Checks of one run against its own logs

/**
 * The outbox is well formed (contiguous event sequence numbers, one CmdEnd per command, in order),
 * `submit` resolved with exactly the events of the command's seq, and the command log holds exactly
 * the commands accepted, as they were given (with their seq and ts).
 */
function checkRunAgainstLogs(codecName: CodecName, label: string, img: RunImage, outcomes: readonly Outcome[]): void {
  const codec = codecByName(codecName);
  for (const s of SYMBOLS) {
    const mine = outcomes.filter((o) => o.symbol === s.symbol && o.seq !== undefined);
    const commands = (img.cmd.get(s.symbol) as LogImage).records.map((r) => codec.decode(r.payload) as Command);
    expect(commands.length, `${label}: ${s.symbol} commands logged`).toBe(mine.length);
    for (let k = 0; k < mine.length; k++) {
      expect(commands[k], `${label}: ${s.symbol} command ${k + 1} in the command log`).toStrictEqual((mine[k] as Outcome).logged);
    }
    const checker = new OutboxChecker();
    const bySeq = new Map<number, Event[]>();
    const ends = new Map<number, number>();
    for (const r of (img.ev.get(s.symbol) as LogImage).records) {
      const e = codec.decode(r.payload) as Event;
      expect(e.symbol).toBe(s.symbol);
      checker.visit(e.type, e.seq, e.eventSeq, e.type === 'cmdEnd' ? e.events : 0, r.offset);
      if (e.type === 'cmdEnd') {
        ends.set(e.seq, e.events);
        continue;
      }
      let list = bySeq.get(e.seq);
      if (list === undefined) bySeq.set(e.seq, (list = []));
      list.push(e);
    }
    expect(checker.finish(mine.length), `${label}: ${s.symbol} outbox structure`).toBeUndefined();
    let compared = 0;
    for (const o of mine) {
      const seq = o.seq as number;
      const fromOutbox = bySeq.get(seq) ?? [];
      expect(ends.get(seq), `${label}: ${s.symbol} CmdEnd of ${seq}`).toBe(fromOutbox.length);
      // Every command answers with at least one event (accepted, rejected, canceled, amended).
      expect(fromOutbox.length, `${label}: ${s.symbol} events of ${seq}`).toBeGreaterThan(0);
      if (o.events === undefined) continue;
      compared++;
      expect(o.events, `${label}: ${s.symbol} events submit resolved with for seq ${seq} (${JSON.stringify(o.logged)})`).toStrictEqual(fromOutbox);
    }
    expect(compared, `${label}: ${s.symbol}: no submit outcome was compared`).toBeGreaterThan(0);
  }
}

// ---------------------------------------------------------------------------------------------
// Options

interface RunOptions {
  durability: Durability;
  batchMax: number;
  mailboxSize: number;
  segmentSize: number;
  /** Tiny pools and id window: the book grows and moves ids to its hash map all the time. */
  tinyBook: boolean;
  syncIntervalMs?: number;
}

function engineOptions(dataDir: string, codec: CodecName, o: RunOptions, clock: () => number): EngineOptions {
  return {
    dataDir,
    symbols: SYMBOLS,
    codec,
    clock,
    durability: o.durability,
    batchMax: o.batchMax,
    mailboxSize: o.mailboxSize,
    segmentSize: o.segmentSize,
    ...(o.syncIntervalMs === undefined ? {} : { syncIntervalMs: o.syncIntervalMs }),
    ...(o.tinyBook
      ? {
          bookFactory: (c: SymbolConfig) =>
            new OrderBook({ minPrice: c.minPrice ?? 1, maxPrice: c.maxPrice ?? 1e9, maxQty: c.maxQty ?? 2 ** 48, initialOrders: 1, initialLevels: 1, idWindow: 16 }),
        }
      : {}),
  };
}

function randomOptions(rng: Rng, segmentSize: number): RunOptions {
  return {
    durability: pick(rng, ['none', 'batch', 'interval'] as const),
    batchMax: pick(rng, [1, 2, 7, 64, 512, 5000]),
    mailboxSize: pick(rng, [1, 3, 100, 65_536]),
    segmentSize,
    tinyBook: rng() < 0.5,
    syncIntervalMs: 1 + int(rng, 3),
  };
}

async function run(dataDir: string, codec: CodecName, o: RunOptions, items: readonly Item[], drive0: DriveOptions, clock = counterClock()): Promise<{ outcomes: Outcome[]; img: RunImage }> {
  const engine = await Engine.open(engineOptions(dataDir, codec, o, clock));
  let outcomes: Outcome[];
  try {
    outcomes = await drive(engine, items, drive0);
  } finally {
    await engine.close();
  }
  return { outcomes, img: imageOf(dataDir, books(engine)) };
}

/** Opens `dataDir` (recovering it), returns the actors' recovery reports and books, and closes it. */
async function recoverOnly(dataDir: string, codec: CodecName, o: RunOptions): Promise<{ reports: Map<string, SymbolActor['recovery']>; img: RunImage }> {
  const engine = await Engine.open(engineOptions(dataDir, codec, o, () => expect.fail('recovery read the clock')));
  const reports = new Map<string, SymbolActor['recovery']>();
  for (const s of SYMBOLS) reports.set(s.symbol, (engine.actor(s.symbol) as SymbolActor).recovery);
  const book = books(engine);
  await engine.close();
  return { reports, img: imageOf(dataDir, book) };
}

// ---------------------------------------------------------------------------------------------
// Damage to a closed log

type Damage = 'delete-dir' | 'delete-segments' | 'boundary-truncate' | 'boundary-zero' | 'bytes-truncate' | 'bytes-zero' | 'segment-edge-truncate' | 'segment-edge-zero' | 'none';
const DAMAGES: readonly Damage[] = [
  'delete-dir',
  'delete-segments',
  'boundary-truncate',
  'boundary-zero',
  'bytes-truncate',
  'bytes-zero',
  'segment-edge-truncate',
  'segment-edge-zero',
  'none',
];

/** Cuts the closed log in `dir` at `at` (the file truncated, or its bytes from there zeroed); later segments are removed. */
function cutLogAt(dir: string, img: LogImage, at: number, zero: boolean, keepMarker: boolean): void {
  if (!keepMarker) fs.rmSync(path.join(dir, 'CLEAN'), { force: true });
  for (const s of img.segments) {
    const file = path.join(dir, s.name);
    if (s.base >= at && !(s.base === 0 && at === 0 && zero)) {
      fs.rmSync(file);
      continue;
    }
    if (at >= s.base + s.data.length) continue;
    const from = at - s.base;
    if (zero) {
      const fd = fs.openSync(file, 'r+');
      try {
        const n = s.data.length - from;
        fs.writeSync(fd, Buffer.alloc(n), 0, n, from);
      } finally {
        fs.closeSync(fd);
      }
    } else fs.truncateSync(file, from);
  }
}

interface Expected {
  rederived: number;
  outboxBytesCut: number;
  tornTails: number;
}

/** Where a damaged outbox ends: its last whole record's end, and its last CmdEnd's end and seq. */
interface Survivors {
  whole: number;
  lastEnd: number;
  lastSeq: number;
}

/** Damages the outbox in `evDir` of the log image `ev` (the reference's); returns what recovery must report. */
function damageOutbox(rng: Rng, evDir: string, ev: LogImage, commands: number, damage: Damage): Expected & Survivors {
  const keepMarker = rng() < 0.5;
  let at: number;
  switch (damage) {
    case 'none': {
      const last = [...ev.records].reverse().find((r) => cmdEndSeq(r.payload) !== undefined);
      return { rederived: 0, outboxBytesCut: 0, tornTails: 0, whole: ev.end, lastEnd: last?.end ?? 0, lastSeq: commands };
    }
    case 'delete-dir':
      fs.rmSync(evDir, { recursive: true });
      return { rederived: commands, outboxBytesCut: 0, tornTails: 0, whole: 0, lastEnd: 0, lastSeq: 0 };
    case 'delete-segments':
      for (const n of fs.readdirSync(evDir)) if (SEGMENT_NAME.test(n) || n === 'CLEAN') fs.rmSync(path.join(evDir, n));
      return { rederived: commands, outboxBytesCut: 0, tornTails: 0, whole: 0, lastEnd: 0, lastSeq: 0 };
    case 'segment-edge-truncate':
    case 'segment-edge-zero': {
      // At, just before or just after where a segment starts (the log's start when it has one segment).
      const bases = ev.segments.filter((x) => x.base > 0).map((x) => x.base);
      const points = bases.length === 0 ? [0, 1, 8, 9] : bases.flatMap((b) => [b, b - 1, b - 8, b - 30, b + 1, b + 9]);
      at = Math.max(0, Math.min(ev.end, pick(rng, points)));
      break;
    }
    case 'boundary-truncate':
    case 'boundary-zero':
      at = ev.records.length === 0 ? 0 : (ev.records[int(rng, ev.records.length)] as Rec).offset;
      break;
    case 'bytes-truncate':
    case 'bytes-zero':
      // Mostly a few bytes (a torn last record), sometimes a lot.
      at = Math.max(0, ev.end - (rng() < 0.6 ? 1 + int(rng, 300) : 1 + int(rng, ev.end)));
      break;
  }
  cutLogAt(evDir, ev, at, damage.endsWith('zero'), keepMarker);
  // What recovery finds: the last whole record at or before `at` (a torn tail after it), and the
  // last CmdEnd at or before that (the events after it are cut and derived again).
  let whole = 0;
  let lastEnd = 0;
  let lastSeq = 0;
  for (const r of ev.records) {
    if (r.end > at) break;
    whole = r.end;
    const cmdEnd = cmdEndSeq(r.payload);
    if (cmdEnd !== undefined) {
      lastEnd = r.end;
      lastSeq = cmdEnd;
    }
  }
  return { rederived: commands - lastSeq, outboxBytesCut: whole - lastEnd, tornTails: at > whole ? 1 : 0, whole, lastEnd, lastSeq };
}

/** The seq of a CmdEnd record (either codec), or undefined for another record. */
function cmdEndSeq(payload: Buffer): number | undefined {
  const codec = payload[0] === 0x7b ? codecByName('json') : codecByName('binary');
  const e = codec.decode(payload) as Event;
  return e.type === 'cmdEnd' ? e.seq : undefined;
}

// ---------------------------------------------------------------------------------------------
// The seeds

interface SeedCase {
  seed: number;
  codec: CodecName;
  n: number;
  /** The share of orders with a client order id (long ones make the command log roll to a second segment). */
  cids: number;
}

const CASES: SeedCase[] = [
  { seed: 1, codec: 'binary', n: 24_000, cids: 0.8 },
  { seed: 20_250_611, codec: 'binary', n: 3000, cids: 0.3 },
  { seed: 977, codec: 'json', n: 2500, cids: 0.3 },
];

describe.each(CASES)('determinism review: seed $seed, $codec codec, $n commands over three symbols', ({ seed, codec, n, cids }) => {
  const items = generate(seed, n, cids);
  const segmentSize = MIN_SEGMENT + (seed % 977) * 8;
  const refOptions: RunOptions = { durability: 'batch', batchMax: 1 + (seed % 13), mailboxSize: 5 + (seed % 50), segmentSize, tinyBook: false };
  let refDir = '';
  let ref: { outcomes: Outcome[]; img: RunImage };
  // Each seed's directories go when its tests are done (each holds preallocated segments).
  afterAll(removeTmpDirs);

  beforeAll(async () => {
    refDir = tmpDir('gx3-determinism-ref-');
    ref = await run(refDir, codec, refOptions, items, { rng: mulberry32(seed ^ 0x5eed), submitShare: 0.6, mutate: true });
  });

  it('submit resolves with exactly the events the outbox holds for its seq, and the command log holds exactly the accepted commands', () => {
    checkRunAgainstLogs(codec, 'reference', ref.img, ref.outcomes);
    // The stream did what it is for: every kind of outcome is in the outbox.
    const kinds = new Set<string>();
    const c = codecByName(codec);
    for (const s of SYMBOLS) {
      for (const r of (ref.img.ev.get(s.symbol) as LogImage).records) {
        const e = c.decode(r.payload) as Event;
        kinds.add(e.type === 'rejected' ? `rejected:${e.reason}` : e.type === 'canceled' ? `canceled:${e.reason}` : e.type === 'amended' ? `amended:${e.kind}` : e.type);
      }
    }
    for (const k of ['trade', 'added', 'accepted', 'canceled:SELF_TRADE', 'canceled:UNFILLED', 'canceled:USER', 'amended:REDUCE', 'amended:REPLACE', 'amended:SELF_TRADE_DECREMENT']) {
      expect(kinds, `the stream produced no ${k}`).toContain(k);
    }
    for (const k of ['DUPLICATE_ORDER_ID', 'PRICE_OUT_OF_BAND', 'QTY_ABOVE_MAX', 'FOK_NOT_FILLABLE', 'POST_ONLY_WOULD_CROSS', 'UNKNOWN_ORDER', 'AMEND_NOT_REDUCING', 'NOT_OWNER']) {
      expect(kinds, `the stream produced no rejected:${k}`).toContain(`rejected:${k}`);
    }
    if (seed === 1) {
      expect(kinds).toContain('rejected:LEVEL_QTY_OVERFLOW');
      // Long enough to roll both logs of the busier symbol to a second segment.
      const ev = ref.img.ev.get(SYM_A.symbol) as LogImage;
      const cmd = ref.img.cmd.get(SYM_A.symbol) as LogImage;
      expect(ev.segments.length, `outbox of ${ev.end} bytes`).toBeGreaterThan(1);
      expect(cmd.segments.length, `command log of ${cmd.end} bytes`).toBeGreaterThan(1);
    }
  });

  it('a second run with other batchMax, mailboxSize, durability, segment size and book pools gives the same answers, logs and books', async () => {
    const dir = tmpDir('gx3-determinism-again-');
    // Every command enqueued before the first batch runs (trySubmit never waits with this mailbox):
    // one batch per symbol, whose outbox fills its buffer and rolls in the middle of the batch.
    const other: RunOptions = { durability: 'none', batchMax: 1_000_000, mailboxSize: 65_536, segmentSize: 2 << 20, tinyBook: true };
    const again = await run(dir, codec, other, items, { rng: mulberry32(seed + 1), submitShare: 0.2, mutate: false });
    expect(answers(again.outcomes)).toEqual(answers(ref.outcomes));
    checkRunAgainstLogs(codec, 'second run', again.img, again.outcomes);
    expectSameRun(codec, 'second run', again.img, ref.img);
  });

  it('a run split by a close and a reopen with other options, its outbox damaged in between, gives the same answers, logs and books', async () => {
    const rng = mulberry32(seed * 31 + 7);
    const dir = tmpDir('gx3-determinism-split-');
    const clock = counterClock();
    const k = Math.floor(n * (0.3 + 0.4 * rng()));
    const first = await run(dir, codec, { durability: 'interval', syncIntervalMs: 1, batchMax: 64, mailboxSize: 4, segmentSize, tinyBook: true }, items.slice(0, k), { rng, submitShare: 0.5, mutate: true }, clock);
    checkRunAgainstLogs(codec, 'first part', first.img, first.outcomes);
    // Each symbol's outbox damaged in its own way before the reopen.
    const expected = new Map<string, Expected>();
    for (const s of SYMBOLS) {
      const damage = pick(rng, DAMAGES);
      const commands = first.outcomes.filter((o) => o.symbol === s.symbol && o.seq !== undefined).length;
      expected.set(s.symbol, damageOutbox(rng, path.join(dir, s.symbol, 'ev'), first.img.ev.get(s.symbol) as LogImage, commands, damage));
    }
    // Reopened with another segment size too: the logs' bytes (segment boundaries aside) must not change.
    const engine = await Engine.open(engineOptions(dir, codec, { durability: 'batch', batchMax: 3, mailboxSize: 1000, segmentSize: segmentSize + 4096, tinyBook: false }, clock));
    let rest: Outcome[];
    try {
      for (const s of SYMBOLS) {
        const rep = (engine.actor(s.symbol) as SymbolActor).recovery;
        const e = expected.get(s.symbol) as Expected;
        expect({ rederived: rep.rederived, outboxBytesCut: rep.outboxBytesCut, tornTails: rep.tornTails }, `${s.symbol} recovery after ${JSON.stringify(e)}`).toEqual({
          rederived: e.rederived,
          outboxBytesCut: e.outboxBytesCut,
          tornTails: e.tornTails,
        });
      }
      expectSameBooks('reopened after the first part', books(engine), first.img.book);
      rest = await drive(engine, items.slice(k), { rng, submitShare: 0.5, mutate: false });
    } finally {
      await engine.close();
    }
    const img = imageOf(dir, books(engine));
    const outcomes = [...first.outcomes, ...rest];
    expect(answers(outcomes)).toEqual(answers(ref.outcomes));
    checkRunAgainstLogs(codec, 'split run', img, outcomes);
    expectSameRun(codec, 'split run', img, ref.img);
  });

  it('an outbox deleted, cut at a record boundary or cut in the middle of a record is derived again byte for byte, segment by segment, with the same book', async () => {
    const rng = mulberry32(seed * 17 + 3);
    const commandsOf = (sym: string): number => ref.outcomes.filter((o) => o.symbol === sym && o.seq !== undefined).length;
    const trials: Damage[][] = [
      ['delete-dir', 'bytes-zero', 'boundary-truncate'],
      ['boundary-truncate', 'delete-segments', 'bytes-zero'],
      ['bytes-truncate', 'boundary-zero', 'delete-dir'],
      ['boundary-zero', 'bytes-truncate', 'none'],
      ['segment-edge-truncate', 'segment-edge-zero', 'bytes-truncate'],
      ['segment-edge-zero', 'none', 'segment-edge-truncate'],
      SYMBOLS.map(() => pick(rng, DAMAGES)),
    ];
    for (const [t, damages] of trials.entries()) {
      const dir = tmpDir('gx3-determinism-outbox-');
      fs.cpSync(refDir, dir, { recursive: true });
      const expected = new Map<string, Expected>();
      SYMBOLS.forEach((s, i) => {
        const damage = damages[i] as Damage;
        expected.set(s.symbol, damageOutbox(rng, path.join(dir, s.symbol, 'ev'), ref.img.ev.get(s.symbol) as LogImage, commandsOf(s.symbol), damage));
      });
      const o = randomOptions(rng, segmentSize);
      const label = `trial ${t} (${damages.join(', ')}; ${JSON.stringify(o)})`;
      const rec = await recoverOnly(dir, codec, o);
      for (const s of SYMBOLS) {
        const rep = rec.reports.get(s.symbol) as SymbolActor['recovery'];
        const e = expected.get(s.symbol) as Expected;
        expect({ commands: rep.commands, rederived: rep.rederived, outboxBytesCut: rep.outboxBytesCut, tornTails: rep.tornTails }, `${label}: ${s.symbol} recovery`).toEqual({
          commands: commandsOf(s.symbol),
          rederived: e.rederived,
          outboxBytesCut: e.outboxBytesCut,
          tornTails: e.tornTails,
        });
        expectSameSegments(`${label}: ${s.symbol} outbox`, rec.img.ev.get(s.symbol) as LogImage, ref.img.ev.get(s.symbol) as LogImage);
        expectSameSegments(`${label}: ${s.symbol} command log`, rec.img.cmd.get(s.symbol) as LogImage, ref.img.cmd.get(s.symbol) as LogImage);
      }
      expectSameBooks(label, rec.img.book, ref.img.book);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a command log cut at a record boundary cuts the outbox back to a prefix of the reference, the same as one derived from nothing', async () => {
    const rng = mulberry32(seed * 13 + 5);
    for (let t = 0; t < 3; t++) {
      const cutDir = tmpDir('gx3-determinism-cmdcut-');
      fs.cpSync(refDir, cutDir, { recursive: true });
      const keep = new Map<string, number>();
      const tornCmd = new Map<string, number>();
      // From the third trial on, the outbox is damaged as well (torn, cut, or gone).
      const evDamage = new Map<string, Survivors>();
      for (const s of SYMBOLS) {
        const cmdImg = ref.img.cmd.get(s.symbol) as LogImage;
        const k = t === 0 && s === SYM_B ? 0 : int(rng, cmdImg.records.length + 1);
        keep.set(s.symbol, k);
        const next = cmdImg.records[k];
        // At the record boundary, or inside the next record (a torn tail: that command is lost too).
        const torn = next !== undefined && rng() < 0.5 ? 1 + int(rng, next.end - next.offset - 1) : 0;
        tornCmd.set(s.symbol, torn > 0 ? 1 : 0);
        const at = (next === undefined ? cmdImg.end : next.offset) + torn;
        cutLogAt(path.join(cutDir, s.symbol, 'cmd'), cmdImg, at, rng() < 0.5, rng() < 0.5);
        if (t >= 2) {
          const ev = ref.img.ev.get(s.symbol) as LogImage;
          evDamage.set(s.symbol, damageOutbox(rng, path.join(cutDir, s.symbol, 'ev'), ev, cmdImg.records.length, pick(rng, DAMAGES)));
        }
      }
      // The same command log, without an outbox: everything derived again.
      const freshDir = tmpDir('gx3-determinism-cmdcut-fresh-');
      fs.cpSync(cutDir, freshDir, { recursive: true });
      for (const s of SYMBOLS) fs.rmSync(path.join(freshDir, s.symbol, 'ev'), { recursive: true, force: true });

      const cut = await recoverOnly(cutDir, codec, randomOptions(rng, segmentSize));
      const fresh = await recoverOnly(freshDir, codec, randomOptions(rng, segmentSize));
      for (const s of SYMBOLS) {
        const k = keep.get(s.symbol) as number;
        const ev = ref.img.ev.get(s.symbol) as LogImage;
        // The end of command k's CmdEnd in the reference's outbox.
        let prefix = 0;
        for (const r of ev.records) {
          const seq = cmdEndSeq(r.payload);
          if (seq !== undefined && seq <= k) prefix = r.end;
        }
        const label = `trial ${t}: ${s.symbol} cut to ${k} commands`;
        const cr = cut.reports.get(s.symbol) as SymbolActor['recovery'];
        // What survived of the outbox: all of it, or what the damage left (then the commands past
        // its last CmdEnd are derived again, and the part of a command after it is cut).
        const left = evDamage.get(s.symbol) ?? { whole: ev.end, lastEnd: ev.end, lastSeq: ev.records.length === 0 ? 0 : Number.MAX_SAFE_INTEGER };
        expect({ commands: cr.commands, rederived: cr.rederived, outboxBytesCut: cr.outboxBytesCut, tornTails: cr.tornTails }, `${label} (${JSON.stringify(left)})`).toEqual({
          commands: k,
          rederived: k - Math.min(k, left.lastSeq),
          outboxBytesCut: left.whole - Math.min(left.lastEnd, prefix),
          tornTails: (tornCmd.get(s.symbol) as number) + ((evDamage.get(s.symbol) as Expected | undefined)?.tornTails ?? 0),
        });
        const fr = fresh.reports.get(s.symbol) as SymbolActor['recovery'];
        expect({ commands: fr.commands, rederived: fr.rederived, outboxBytesCut: fr.outboxBytesCut }, `${label} (fresh)`).toEqual({ commands: k, rederived: k, outboxBytesCut: 0 });
        expectSameLog(codec, `${label}: outbox cut back`, cut.img.ev.get(s.symbol) as LogImage, ev, prefix);
        expectSameLog(codec, `${label}: outbox derived from nothing`, fresh.img.ev.get(s.symbol) as LogImage, ev, prefix);
        expectSameSegments(`${label}: outbox cut back, segments`, cut.img.ev.get(s.symbol) as LogImage, ev, prefix);
        expectSameLog(codec, `${label}: command log`, cut.img.cmd.get(s.symbol) as LogImage, ref.img.cmd.get(s.symbol) as LogImage, (ref.img.cmd.get(s.symbol) as LogImage).records[k]?.offset);
      }
      expectSameBooks(`trial ${t}: cut vs derived from nothing`, cut.img.book, fresh.img.book);
      fs.rmSync(cutDir, { recursive: true, force: true });
      fs.rmSync(freshDir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The mailbox's copy of a command must be the command as it was logged (engine README, data flow 1:
// "the book still applies exactly what the log holds (what a replay applies)"). The copy is taken by
// reading the caller's object a second time, after it was encoded into the command log: a value that
// reads differently the second time is applied although the log holds another.

describe('determinism review: the live book applies exactly what the command log holds', () => {
  const SYM = SYM_A.symbol;
  const options = (dataDir: string): EngineOptions => ({ dataDir, symbols: [SYM_A], durability: 'none', segmentSize: MIN_SEGMENT });
  const order = (orderId: number, userId: number, side: 'buy' | 'sell', qty: number): Command => ({
    type: 'limit',
    symbol: SYM,
    seq: 0,
    reqId: orderId,
    orderId,
    userId,
    ts: T0 + orderId,
    side,
    price: 1020,
    qty,
    tif: 'GTC',
    stp: 'NONE',
  });

  /** Runs `cmds` with `submit`; returns the events each resolved with, the live book, and the data directory (closed). */
  async function live(cmds: readonly Command[]): Promise<{ dir: string; events: Event[][]; book: string[] }> {
    const dir = tmpDir('gx3-determinism-copy-');
    const engine = await Engine.open(options(dir));
    const events: Event[][] = [];
    for (const c of cmds) events.push((await engine.submit(c)).events);
    const book = bookLines((engine.actor(SYM) as SymbolActor).book);
    await engine.close();
    return { dir, events, book };
  }

  /** A copy of `dir` whose outbox is gone, recovered: the book and outbox derived from the command log alone. */
  async function derived(dir: string): Promise<{ book: string[]; ev: LogImage }> {
    const copy = tmpDir('gx3-determinism-copy-derived-');
    fs.cpSync(dir, copy, { recursive: true });
    fs.rmSync(path.join(copy, SYM, 'ev'), { recursive: true });
    const engine = await Engine.open(options(copy));
    const book = bookLines((engine.actor(SYM) as SymbolActor).book);
    await engine.close();
    return { book, ev: readLogImage(path.join(copy, SYM, 'ev')) };
  }

  it('a command whose quantity reads differently after it was logged (an accessor) leaves the same book and outbox as a replay of the log', async () => {
    const rng = mulberry32(4242);
    const cmds: Command[] = [];
    for (let i = 1; i <= 20; i++) cmds.push(order(i, 1 + int(rng, 3), rng() < 0.5 ? 'buy' : 'sell', 1 + int(rng, 9)));
    // The 5th command's qty reads 3 the first time (what the command log gets), 8 after.
    const c = cmds[4] as Command & { qty: number };
    let reads = 0;
    Object.defineProperty(c, 'qty', {
      enumerable: true,
      get: () => (++reads === 1 ? 3 : 8),
    });
    const run1 = await live(cmds);
    const logged = readLogImage(path.join(run1.dir, SYM, 'cmd')).records.map((r) => codecByName('binary').decode(r.payload) as Command & { qty: number });
    expect(logged[4]?.qty).toBe(3);
    const again = await derived(run1.dir);
    expectSameBooks('live book vs the book replayed from its command log', new Map([[SYM, run1.book]]), new Map([[SYM, again.book]]));
    expectSameLog('binary', 'live outbox vs the outbox derived from its command log', readLogImage(path.join(run1.dir, SYM, 'ev')), again.ev);
  });

  it('a user id given as -0 (as JSON.parse reads "-0") is applied as logged: submit resolves with the events the outbox holds', async () => {
    const maker = JSON.parse(JSON.stringify(order(1, 1, 'sell', 5)).replace('"userId":1', '"userId":-0')) as Command;
    expect(Object.is(maker.userId, -0)).toBe(true);
    const run1 = await live([maker, order(2, 2, 'buy', 2), order(3, 2, 'buy', 1)]);
    const outbox = readLogImage(path.join(run1.dir, SYM, 'ev')).records.map((r) => codecByName('binary').decode(r.payload) as Event);
    for (let seq = 1; seq <= 3; seq++) {
      expect(run1.events[seq - 1], `events of seq ${seq}`).toStrictEqual(outbox.filter((e) => e.seq === seq && e.type !== 'cmdEnd'));
    }
  });
});
