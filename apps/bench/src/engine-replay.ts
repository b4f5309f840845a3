// The replay through the whole engine: each workload line becomes a command submitted to the
// engine (with backpressure: a full mailbox waits for the actor), the run ends when the last
// command is durable, and the summary is computed from the events in the outbox (not from the
// book's callbacks), plus the final book. `recover` reopens such a data directory.

import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { BinaryCodec, DecodedMessage, codecByName, type CodecName, type Command, type Event } from '@gx3/codecs';
import { Engine, type SymbolActor, type SymbolConfig } from '@gx3/engine';
import type { OrderBook } from '@gx3/orderbook';
import { makeDirectory, WalReader, WalRecord, type Durability } from '@gx3/wal';
import { BenchError } from './errors.js';
import { ChunkedHasher, summarizeBook, type ReplaySummary } from './summary.js';
import { OpKind, workloadBand, type Workload } from './workload.js';

export const REPLAY_SYMBOL = 'REPLAY';
const CONFIG_FILE = 'gx3-replay.json';
const USER = 1;
const SIDES = ['buy', 'sell'] as const;
const TIFS = ['GTC', 'IOC', 'FOK', 'POST'] as const;

export interface EngineReplayOptions {
  readonly dataDir: string;
  readonly durability?: Durability;
  readonly codec?: CodecName;
}

export interface EnginePerf {
  commandsPerSec: number;
  /** Submit-to-durable latency of each command, in microseconds. */
  p50Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
  /** Times the mailbox was full and the submitter waited. */
  backpressureWaits: number;
}

interface ReplayConfig {
  symbol: SymbolConfig;
  codec: CodecName;
  durability: Durability;
}

/** The symbol configuration that covers every price and quantity of the workload. */
function symbolFor(w: Workload): SymbolConfig {
  const { minPrice, maxPrice, orders } = workloadBand(w);
  return { symbol: REPLAY_SYMBOL, minPrice, maxPrice, maxQty: Number.MAX_SAFE_INTEGER, initialOrders: Math.max(1024, Math.min(1 << 24, orders)) };
}

/**
 * Operation `i` of the workload as an engine command, made when it is submitted (as a gateway makes
 * one per request; short-lived objects cost the collector far less than a million built up front).
 */
export function commandAt(w: Workload, i: number): Command {
  const orderId = w.id[i] as number;
  const reqId = i + 1;
  switch (w.kind[i]) {
    case OpKind.Limit:
      return {
        type: 'limit',
        symbol: REPLAY_SYMBOL,
        seq: 0,
        reqId,
        orderId,
        userId: USER,
        ts: 1,
        side: SIDES[w.side[i] as number] ?? 'buy',
        price: w.price[i] as number,
        qty: w.qty[i] as number,
        tif: TIFS[w.tif[i] as number] ?? 'GTC',
        stp: 'NONE',
      };
    case OpKind.Market:
      return { type: 'market', symbol: REPLAY_SYMBOL, seq: 0, reqId, orderId, userId: USER, ts: 1, side: SIDES[w.side[i] as number] ?? 'buy', qty: w.qty[i] as number, stp: 'NONE' };
    case OpKind.Cancel:
      return { type: 'cancel', symbol: REPLAY_SYMBOL, seq: 0, reqId, orderId, userId: USER, ts: 1 };
    default: {
      // A reduce-only amend: price 0 keeps the order's price. `A,<id>,0` (an amend to nothing,
      // which the reference rejects) cannot be written as one (qty 0 means "keep" with a price): it
      // goes as a reduction to more than any order holds, which the book rejects as an amend too.
      const qty = w.qty[i] as number;
      return { type: 'amend', symbol: REPLAY_SYMBOL, seq: 0, reqId, orderId, userId: USER, ts: 1, price: 0, qty: qty === 0 ? Number.MAX_SAFE_INTEGER : qty };
    }
  }
}

function prepareDir(dir: string): void {
  if (dir === '') throw new BenchError('BAD_ARGUMENT', '--data-dir must name a directory, got an empty string');
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(dir, { throwIfNoEntry: false });
    if (stat !== undefined && !stat.isDirectory()) throw new BenchError('BAD_ARGUMENT', `--data-dir ${dir} is not a directory`);
    if (stat !== undefined && fs.readdirSync(dir).length > 0) {
      throw new BenchError('BAD_ARGUMENT', `--data-dir ${dir} is not empty: the engine replay starts from an empty data directory (use recover to reopen one)`);
    }
    makeDirectory(dir);
  } catch (err) {
    if (err instanceof BenchError) throw err;
    throw new BenchError('IO', `cannot use --data-dir ${dir}: ${(err as Error).message}`, { cause: err });
  }
}

const CODECS: readonly string[] = ['binary', 'json'];
const DURABILITIES: readonly string[] = ['none', 'batch', 'interval'];

/** The replay configuration a data directory's CONFIG_FILE holds, checked (undefined if it does not hold one). */
function replayConfig(v: unknown): ReplayConfig | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const c = v as Record<string, unknown>;
  const s = c.symbol as Record<string, unknown> | null | undefined;
  if (typeof s !== 'object' || s === null || typeof s.symbol !== 'string') return undefined;
  if (![s.minPrice, s.maxPrice, s.maxQty].every((n) => Number.isSafeInteger(n) && (n as number) >= 1)) return undefined;
  if (typeof c.codec !== 'string' || !CODECS.includes(c.codec) || typeof c.durability !== 'string' || !DURABILITIES.includes(c.durability)) return undefined;
  return v as ReplayConfig;
}

/** Replays `w` through a new engine in `dataDir`; returns the summary from the outbox and the figures. */
export async function replayEngine(w: Workload, options: EngineReplayOptions): Promise<{ summary: ReplaySummary; perf: EnginePerf }> {
  prepareDir(options.dataDir);
  const config: ReplayConfig = { symbol: symbolFor(w), codec: options.codec ?? 'binary', durability: options.durability ?? 'batch' };
  fs.writeFileSync(path.join(options.dataDir, CONFIG_FILE), JSON.stringify(config, null, 2) + '\n');
  const engine = await Engine.open({ dataDir: options.dataDir, symbols: [config.symbol], durability: config.durability, codec: config.codec });
  const actor = engine.actor(REPLAY_SYMBOL) as SymbolActor;
  const n = w.length;
  const submittedAt = new Float64Array(n + 1);
  const latency = new Float64Array(n);
  let measured = 0;
  let lastDurable = actor.durableSeq;
  actor.onDurable((seq) => {
    const now = performance.now();
    for (let s = lastDurable + 1; s <= seq; s++) latency[measured++] = (now - (submittedAt[s] as number)) * 1000;
    lastDurable = seq;
  });
  let waits = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const cmd = commandAt(w, i);
    for (;;) {
      const r = actor.trySubmit(cmd);
      if (typeof r === 'number') {
        submittedAt[r] = performance.now();
        break;
      }
      if (r.code !== 'MAILBOX_FULL' && r.code !== 'DURABILITY_BACKLOG') throw new BenchError('IO', `command ${i + 1} refused: ${r.code}: ${r.message}`);
      waits++;
      // Backpressure: let the actor work through half of what is queued, or, with too many commands
      // not durable yet, wait for the next sync.
      const queued = actor.queued;
      await (r.code === 'MAILBOX_FULL' && queued > 0 ? actor.waitForProcessed(actor.lastSubmittedSeq - (queued >> 1)) : actor.waitForDurable(actor.durableSeq + 1));
    }
  }
  await actor.waitForDurable(actor.lastSubmittedSeq);
  const seconds = (performance.now() - t0) / 1000;
  if (actor.halted) throw actor.halted;
  await engine.close();
  const lat = latency.subarray(0, measured).sort();
  const q = (f: number): number => (lat.length === 0 ? 0 : Math.round(lat[Math.min(lat.length - 1, Math.floor(f * lat.length))] as number));
  const summary = summaryFromOutbox(path.join(options.dataDir, REPLAY_SYMBOL, 'ev'), config.codec, actor.book, w.length);
  return {
    summary,
    perf: {
      commandsPerSec: Math.round(n / seconds),
      p50Us: q(0.5),
      p99Us: q(0.99),
      p999Us: q(0.999),
      maxUs: q(1),
      backpressureWaits: waits,
    },
  };
}

/** Reopens a data directory written by the engine replay: recovery, then the summary of the recovered state. */
export async function recoverEngine(dataDir: string): Promise<{ summary: ReplaySummary; commands: number; recovery: SymbolActor['recovery'] }> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(path.join(dataDir, CONFIG_FILE), 'utf8'));
  } catch (err) {
    throw new BenchError('IO', `${dataDir} is not an engine replay data directory (cannot read ${CONFIG_FILE}: ${(err as Error).message})`, { cause: err });
  }
  const config = replayConfig(parsed);
  if (config === undefined) {
    throw new BenchError('IO', `${dataDir} is not an engine replay data directory: ${CONFIG_FILE} does not hold {symbol: {symbol, minPrice, maxPrice, maxQty}, codec, durability}`);
  }
  const engine = await Engine.open({ dataDir, symbols: [config.symbol], durability: config.durability, codec: config.codec });
  const actor = engine.actor(config.symbol.symbol) as SymbolActor;
  const commands = actor.recovery.commands;
  await engine.close();
  const summary = summaryFromOutbox(path.join(dataDir, config.symbol.symbol, 'ev'), config.codec, actor.book, commands);
  return { summary, commands, recovery: actor.recovery };
}

/** The replay summary with its counters and trade hash computed from the outbox's events. */
export function summaryFromOutbox(evDir: string, codecName: CodecName, book: OrderBook, ops: number): ReplaySummary {
  const codec = codecByName(codecName);
  const reader = new WalReader(evDir);
  const rec = new WalRecord();
  const scratch = new DecodedMessage();
  const th = createHash('sha256');
  const chunk = new ChunkedHasher(th);
  const s = { trades: 0, volume: 0, cancels: 0, cancelRejects: 0, rejects: 0, amends: 0, amendRejects: 0 };
  try {
    for (let r = reader.next(rec); r; r = reader.next(rec)) {
      const e: DecodedMessage | Event =
        codec instanceof BinaryCodec ? codec.decodeInto(r.buf, r.start, r.end - r.start, scratch) : (codec.decode(r.buf.subarray(r.start, r.end)) as Event);
      switch (e.type) {
        case 'trade':
          s.trades++;
          s.volume += e.qty;
          chunk.add(`${e.makerOrderId},${e.takerOrderId},${e.price},${e.qty};`);
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
  chunk.end();
  const b = summarizeBook(book);
  return {
    ops,
    ...s,
    restingBids: b.restingBids,
    restingBidQty: b.restingBidQty,
    restingAsks: b.restingAsks,
    restingAskQty: b.restingAskQty,
    bestBid: b.bestBid,
    bestAsk: b.bestAsk,
    tradeHash: th.digest('hex').slice(0, 16),
    bookHash: b.bookHash,
  };
}
