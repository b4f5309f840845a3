// Shared helpers of the outbox-publisher tests: temporary directories, waiting for a condition,
// writing events (each command's events followed by its CmdEnd marker), reading an outbox back,
// a bus that records what it is asked, a bus whose acknowledgements are held until released, and a
// seeded PRNG.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { codecByName, type Codec, type Event, type TradeEvent } from '@gx3/codecs';
import { WalReader, WalRecord } from '@gx3/wal';
import { expect } from 'vitest';
import { EventOutbox, MemoryBus, OutboxError, Publisher, type AckCallback, type Bus, type BusMessage, type OutboxErrorCode, type PublisherOptions } from '../src/index.js';

// ---------------------------------------------------------------------------------------------
// Outboxes and publishers closed and stopped after each test

/** Small segments: quick to preallocate, and the publisher crosses segment boundaries. */
export const SMALL = { segmentSize: 256 << 10, maxRecordSize: 4096 } as const;

const cleanups: (() => Promise<unknown>)[] = [];

/** Stops the publishers and closes the outboxes made by `openOutbox` and `publisher`, newest first (call it in afterEach). */
export async function runCleanups(): Promise<void> {
  for (const f of cleanups.splice(0).reverse()) await f();
}

/** Runs `f` at `runCleanups()` (after the test). */
export function onCleanup(f: () => Promise<unknown>): void {
  cleanups.push(f);
}

/** Opens an outbox with small segments, closed by `runCleanups()`. */
export function openOutbox(dir: string, options: { durability?: 'none' | 'batch'; codec?: 'binary' | 'json' } = {}): EventOutbox {
  const outbox = EventOutbox.open(dir, { durability: options.durability ?? 'batch', codec: options.codec ?? 'binary', ...SMALL });
  cleanups.push(() => outbox.close().catch(() => undefined));
  return outbox;
}

/** A publisher stopped by `runCleanups()`. */
export function publisher(options: PublisherOptions): Publisher {
  const p = new Publisher(options);
  cleanups.push(() => p.stop());
  return p;
}

// ---------------------------------------------------------------------------------------------
// Temporary directories

const made: string[] = [];

/** A fresh directory under os.tmpdir(), removed by `removeTmpDirs()`. */
export function tmpDir(prefix = 'gx3-outbox-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
}

export function removeTmpDirs(): void {
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// Waiting

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Resolves once `cond()` holds; fails (with `what` and the optional `state()` in the message) when it
 * does not within `timeoutMs`. The deadline is generous: it only turns a hang into a clear failure.
 */
export async function until(cond: () => boolean, timeoutMs = 20_000, what = 'condition', state?: () => unknown): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) {
      const extra = state ? `; state: ${JSON.stringify(state(), (_k, v: unknown) => (v instanceof Error ? `${v.name}: ${v.message}` : v))}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${extra}`);
    }
    await sleep(5);
  }
}

/** Resolves after `turns` turns of the event loop (setImmediate and a short timer each). */
export async function settle(turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    await sleep(1);
  }
}

/** `p`, or a failure naming `what` if it does not settle within `timeoutMs`. */
export async function within<T>(p: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`${what} did not settle within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// Random

/** A small deterministic PRNG (mulberry32) returning numbers in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A unique upper-case tag for stream names, subjects and symbols of one test. */
export function uniqueTag(): string {
  return `T${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 6).toString(36)}`.toUpperCase();
}

export function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i <= to; i++) out.push(i);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Events

export const TS = 1_700_000_000_000_000;

/** A trade event of command `seq` with event sequence number `eventSeq`. */
export function trade(symbol: string, seq: number, eventSeq: number): TradeEvent {
  return {
    type: 'trade',
    symbol,
    seq,
    eventSeq,
    ts: TS + seq,
    makerOrderId: 2 * eventSeq,
    takerOrderId: 2 * eventSeq + 1,
    makerUserId: 7,
    takerUserId: 8,
    takerSide: eventSeq % 2 === 0 ? 'buy' : 'sell',
    price: 100 + (eventSeq % 13),
    qty: 1 + (eventSeq % 5),
    makerRemaining: eventSeq % 3,
  };
}

/**
 * Writes commands to an outbox as the engine does: each command's events (trades with consecutive
 * event sequence numbers per symbol), then its CmdEnd marker. Tracks the per-symbol command and
 * event sequence numbers and the outbox offset after each command.
 */
export class EventWriter {
  private readonly seqs = new Map<string, { seq: number; eventSeq: number }>();
  /** The outbox offset after each command's CmdEnd, in order, with what it covers. */
  readonly boundaries: { offset: number; symbol: string; seq: number; eventSeq: number }[] = [];

  constructor(readonly outbox: EventOutbox) {}

  /** Appends one command of `events` events of `symbol` and its CmdEnd (without syncing). */
  command(symbol: string, events: number): void {
    const s = this.seqs.get(symbol) ?? { seq: 0, eventSeq: 0 };
    s.seq++;
    for (let i = 0; i < events; i++) this.outbox.append(trade(symbol, s.seq, ++s.eventSeq));
    this.outbox.appendCmdEnd(symbol, s.seq, s.eventSeq, events, TS + s.seq);
    this.seqs.set(symbol, s);
    this.boundaries.push({ offset: this.outbox.nextOffset, symbol, seq: s.seq, eventSeq: s.eventSeq });
  }

  /** Appends `count` commands of `symbol`, with `eventsPer(i)` events each (default 2). */
  commands(symbol: string, count: number, eventsPer: (i: number) => number = () => 2): void {
    for (let i = 0; i < count; i++) this.command(symbol, eventsPer(i));
  }

  /** The last event sequence number written for `symbol` (0: none). */
  lastEventSeq(symbol: string): number {
    return this.seqs.get(symbol)?.eventSeq ?? 0;
  }

  /** Events written in all (CmdEnd markers excluded). */
  get events(): number {
    let n = 0;
    for (const s of this.seqs.values()) n += s.eventSeq;
    return n;
  }

  get symbols(): string[] {
    return [...this.seqs.keys()];
  }
}

export interface OutboxRecord {
  offset: number;
  next: number;
  event: Event;
}

/** Every record of the outbox log in `dir`, decoded. */
export function readOutbox(dir: string, codec: Codec = codecByName('binary')): OutboxRecord[] {
  const r = new WalReader(dir, {});
  const rec = new WalRecord();
  const out: OutboxRecord[] = [];
  try {
    for (let x = r.next(rec); x !== null; x = r.next(rec)) {
      out.push({ offset: x.offset, next: x.offset + 8 + x.length, event: codec.decode(x.buf.subarray(x.start, x.end)) as Event });
    }
  } finally {
    r.close();
  }
  return out;
}

/** The event sequence numbers a retaining MemoryBus holds for `symbol`, in order. */
export function heldSeqs(bus: MemoryBus, symbol: string): number[] {
  return bus.messages(symbol).map((m) => m.eventSeq);
}

function isMap(x: ReadonlyMap<string, number> | Record<string, number>): x is ReadonlyMap<string, number> {
  return x instanceof Map;
}

/**
 * Asserts that a retaining MemoryBus holds, for each symbol, exactly the events 1..last in order,
 * each with its id, previous id and a payload that decodes to the event.
 */
export function expectHeld(bus: MemoryBus, lastBySymbol: ReadonlyMap<string, number> | Record<string, number>, codec: Codec = codecByName('binary')): void {
  const entries: [string, number][] = isMap(lastBySymbol) ? [...lastBySymbol.entries()] : Object.entries(lastBySymbol);
  for (const [symbol, last] of entries) {
    expect(heldSeqs(bus, symbol), `events of ${symbol}`).toEqual(range(1, last));
    for (const m of bus.messages(symbol)) {
      expect(m.event.type).not.toBe('cmdEnd');
      expect(m.symbol).toBe(symbol);
      expect(m.id).toBe(`${symbol}:${m.eventSeq}`);
      expect(m.previousId).toBe(m.eventSeq > 1 ? `${symbol}:${m.eventSeq - 1}` : undefined);
      expect(codec.decode(m.payload)).toEqual(trade(symbol, m.event.seq, m.eventSeq));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Errors

export function expectOutboxError(err: unknown, code: OutboxErrorCode): OutboxError {
  expect(err).toBeInstanceOf(OutboxError);
  const e = err as OutboxError;
  expect(e.code, e.message).toBe(code);
  return e;
}

/** The error `f` throws (fails the test when it throws nothing). */
export function thrownBy(f: () => unknown): unknown {
  try {
    f();
  } catch (err) {
    return err;
  }
  return expect.fail('expected an error, nothing was thrown');
}

/** The error `p` rejects with (fails the test when it resolves). */
export async function rejectionOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  return expect.fail('expected a rejection, the promise resolved');
}

// ---------------------------------------------------------------------------------------------
// Buses for tests

/** A MemoryBus that records every message it is asked to publish (calls), retaining what it stores. */
export class RecordingBus implements Bus {
  readonly name = 'recording';
  readonly inner = new MemoryBus({ retain: true });
  /** Snapshots of the messages in the order they were published. */
  readonly calls: BusMessage[] = [];

  publish(msg: BusMessage, done: AckCallback): void {
    this.calls.push(snapshot(msg));
    this.inner.publish(msg, done);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** A copy of a message that stays valid after `publish` returns (the payload may view a reused buffer). */
export function snapshot(msg: BusMessage): BusMessage {
  return {
    symbol: msg.symbol,
    eventSeq: msg.eventSeq,
    id: msg.id,
    previousId: msg.previousId,
    payload: Uint8Array.prototype.slice.call(msg.payload),
    event: msg.event,
  };
}

/**
 * Publishes to a MemoryBus with the strict order check of bus.ts even for a symbol it holds nothing
 * of: only a first event (no previous id) may start a symbol. (A MemoryBus accepts any first message
 * of a symbol, for its restarts; a bus that injects faults in front of it must not let a failed
 * first event be skipped.)
 */
export function strictPublish(bus: MemoryBus, msg: BusMessage, done: AckCallback): void {
  if (bus.lastEventSeq(msg.symbol) === 0 && msg.previousId !== undefined) {
    done(new OutboxError('OUT_OF_ORDER', `message ${msg.id} follows ${msg.previousId}, but the bus holds nothing of ${msg.symbol}`));
    return;
  }
  bus.publish(msg, done);
}

/**
 * A bus that stores each message in an inner retaining MemoryBus at once but holds its
 * acknowledgement until released (or acknowledges on the next turn while `auto` is set).
 * `calls` are snapshots of the messages in the order they were published.
 */
export class GatedBus implements Bus {
  readonly name = 'gated';
  readonly inner = new MemoryBus({ retain: true });
  readonly calls: BusMessage[] = [];
  /** Held acknowledgements by call index (0-based), in call order. */
  readonly held = new Map<number, () => void>();
  auto = false;

  publish(msg: BusMessage, done: AckCallback): void {
    const index = this.calls.length;
    const copy = snapshot(msg);
    this.calls.push(copy);
    this.inner.publish(copy, (err, ack) => {
      const deliver = (): void => {
        done(err, ack);
      };
      if (this.auto) setImmediate(deliver);
      else this.held.set(index, deliver);
    });
  }

  /** Delivers up to `n` held acknowledgements, oldest first (all by default); returns how many. */
  release(n = Infinity): number {
    let k = 0;
    for (const [i, deliver] of this.held) {
      if (k >= n) break;
      this.held.delete(i);
      deliver();
      k++;
    }
    return k;
  }

  /** Delivers the acknowledgement of call `index` (0-based). */
  releaseCall(index: number): void {
    const deliver = this.held.get(index);
    if (!deliver) throw new Error(`no acknowledgement held for call ${index}`);
    this.held.delete(index);
    deliver();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * Publishes the outbox in `dir` to `bus` until everything is acknowledged or `ms` have passed, then
 * stops the publisher; says which, with the errors it reported.
 */
export async function publishUntilAcknowledged(dir: string, outbox: EventOutbox, bus: Bus, ms: number): Promise<{ errors: Error[]; acknowledged: boolean }> {
  const errors: Error[] = [];
  const p = publisher({ dir, bus, outbox, ackTimeoutMs: 1000, commitIntervalMs: 5, backoff: { initialMs: 5, maxMs: 50 }, onError: (e) => errors.push(e) });
  p.start();
  let acknowledged = true;
  try {
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, ms, 'acknowledged');
  } catch {
    acknowledged = false;
  } finally {
    await p.stop();
  }
  return { errors, acknowledged };
}
