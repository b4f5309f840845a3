// Recovery on open from data directories damaged by hand, as a crash (or the disk) could leave them.
// A seeded flow of commands (limits of every time in force, markets, cancels, amends of the three
// kinds, with trades) runs through an engine that is closed; copies of its data directory are then
// damaged, mostly as crash images (the clean-close markers removed, as a crash leaves none):
//   - the command log and/or the outbox cut at every byte offset of their last records (the file
//     truncated there, or its bytes zeroed from there, as in a preallocated segment);
//   - the outbox's last segment deleted, the outbox longer than the command log, the ev directory gone;
//   - a stale LOCK of a dead process left beside the damage;
//   - a byte of either log corrupted in the middle (every byte of one record), a record header zeroed;
//   - and `recover --data-dir` (apps/bench) on such directories.
// An open either recovers exactly the state a fresh engine reaches from the surviving command
// prefix (the same resting orders and book hash, the command log's records, the same outbox records
// byte for byte: the same event sequence numbers, no gap, no duplicate; and the recovery report
// says what was repaired), or refuses with a typed EngineError whose code the README documents. Each
// directory is opened again: a copy taken right after the first open (a crash then) and, in most
// tests, the directory the first engine closed must find nothing to repair and the same state; a
// refused one must be refused alike, its lock released.
// Exhaustive per byte where determinism.test.ts samples offsets at random.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { binaryCodec, type Command, type Event } from '@gx3/codecs';
import { WalError } from '@gx3/wal';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine, EngineError, type SymbolActor } from '../src/index.js';
import {
  amend,
  bookOrders,
  bookState,
  cancel,
  cmdDirOf,
  evDirOf,
  limit,
  market,
  outboxProblem,
  prng,
  rawRecords,
  readCommandLog,
  readOutbox,
  REPO_ROOT,
  removeTmpDirs,
  SEGMENT,
  tmpDir,
  type StoredMessage,
} from './helpers.js';

afterAll(removeTmpDirs);

const SYM = 'RECOV';
const SEG0 = '00000000000000000000.wal';
/** The error codes the README documents for a failed recovery of a damaged directory. */
const DOCUMENTED_REFUSALS = ['RECOVERY_FAILED'];

// ---------------------------------------------------------------------------------------------
// The flow of commands

/**
 * A seeded flow for one symbol, every command with its own timestamp: resting limits (GTC, POST),
 * crossing limits (GTC, IOC, FOK), markets, cancels and amends (reduce, reprice, both) mostly by
 * the owner, sometimes by another user or of unknown ids. It ends with a crossing limit that
 * sweeps several makers, a reduce of what it left, and its cancel.
 */
function flow(n: number, seed: number, clientIds = false): Command[] {
  const rnd = prng(seed);
  const int = (k: number): number => Math.floor(rnd() * k);
  const out: Command[] = [];
  const owner = new Map<number, number>();
  let id = 0;
  const ts = (): number => 1_000_000 + out.length * 7;
  for (let i = 0; i < n; i++) {
    const r = rnd();
    const side = rnd() < 0.5 ? 'buy' : 'sell';
    const userId = 1 + int(3);
    const o = { reqId: i + 1, ts: ts(), userId, ...(clientIds ? { clientOrderId: `c-${i + 1}-`.padEnd(64, 'x') } : {}) };
    const target = (): { orderId: number; userId: number } => {
      const orderId = 1 + int(id + 3);
      return { orderId, userId: rnd() < 0.85 ? (owner.get(orderId) ?? userId) : userId };
    };
    if (r < 0.42 || id < 6) {
      const off = 1 + int(12);
      owner.set(++id, userId);
      out.push(limit(SYM, id, side, side === 'buy' ? 1000 - off : 1000 + off, 1 + int(30), { ...o, tif: rnd() < 0.85 ? 'GTC' : 'POST' }));
    } else if (r < 0.55) {
      owner.set(++id, userId);
      const tifs = ['GTC', 'IOC', 'FOK'] as const;
      out.push(limit(SYM, id, side, side === 'buy' ? 1000 + int(5) : 1000 - int(5), 1 + int(60), { ...o, tif: tifs[int(3)] ?? 'GTC' }));
    } else if (r < 0.62) {
      owner.set(++id, userId);
      out.push(market(SYM, id, side, 1 + int(50), o));
    } else if (r < 0.8) {
      const t = target();
      out.push(cancel(SYM, t.orderId, { ...o, userId: t.userId }));
    } else {
      const t = target();
      const k = rnd();
      const price = 1000 + (int(2) === 0 ? -1 : 1) * (1 + int(12));
      if (k < 0.4) out.push(amend(SYM, t.orderId, 0, 1 + int(20), { ...o, userId: t.userId }));
      else if (k < 0.7) out.push(amend(SYM, t.orderId, price, 0, { ...o, userId: t.userId }));
      else out.push(amend(SYM, t.orderId, price, 1 + int(30), { ...o, userId: t.userId }));
    }
  }
  // The tail: a buy that sweeps the asks at 1005 and rests what is left, reduced, then canceled.
  const sweeper = ++id;
  out.push(limit(SYM, sweeper, 'buy', 1005, 70, { reqId: n + 1, ts: ts(), userId: 9 }));
  out.push(amend(SYM, sweeper, 0, 3, { reqId: n + 2, ts: ts(), userId: 9 }));
  out.push(cancel(SYM, sweeper, { reqId: n + 3, ts: ts(), userId: 9 }));
  return out;
}

// ---------------------------------------------------------------------------------------------
// The reference: one engine fed the flow, and the state after the command prefixes that matter

interface BookAt {
  orders: string[];
  hash: string;
}

interface Reference {
  dataDir: string;
  segmentSize: number;
  cmds: Command[];
  /** The book after k commands, for the k that tests need. */
  books: Map<number, BookAt>;
  /** The command log's and the outbox's records (decoded with offsets, and raw). */
  cmdLog: StoredMessage<Command>[];
  cmdRaw: Buffer[];
  outbox: StoredMessage<Event>[];
  evRaw: Buffer[];
  /** The number of outbox records up to and including the CmdEnd of command k (index k). */
  evCount: number[];
}

const options = (dataDir: string, segmentSize = SEGMENT): Parameters<typeof Engine.open>[0] => ({ dataDir, symbols: [{ symbol: SYM }], durability: 'none', segmentSize });

const bookAt = (actor: SymbolActor): BookAt => ({ orders: bookOrders(actor.book), hash: bookState(actor.book).hash });

/** Runs `cmds` through a fresh engine in a new directory (with backpressure), closed; `each` sees the book after every command. */
async function run(cmds: readonly Command[], segmentSize: number, each?: (k: number, actor: SymbolActor) => void): Promise<{ dataDir: string; book: BookAt }> {
  const dataDir = tmpDir('gx3-recovery-ref-');
  const engine = await Engine.open(options(dataDir, segmentSize));
  const actor = engine.actor(SYM) as SymbolActor;
  each?.(0, actor);
  for (const c of cmds) {
    if (each) {
      const { seq } = await engine.submit({ ...c });
      each(seq, actor);
      continue;
    }
    for (;;) {
      const r = actor.trySubmit({ ...c });
      if (typeof r === 'number') break;
      await actor.waitForProcessed(actor.lastSubmittedSeq - (actor.queued >> 1));
    }
  }
  await actor.waitForDurable(cmds.length);
  await engine.close();
  return { dataDir, book: bookAt(actor) };
}

/** The reference run of `cmds`; with `everyBook`, the book after every prefix, else after all of them only. */
async function buildReference(cmds: Command[], segmentSize: number, everyBook: boolean): Promise<Reference> {
  const books = new Map<number, BookAt>();
  const { dataDir, book } = await run(cmds, segmentSize, everyBook ? (k, actor) => books.set(k, bookAt(actor)) : undefined);
  books.set(cmds.length, book);
  const outbox = readOutbox(evDirOf(dataDir, SYM), binaryCodec);
  const evCount = [0];
  outbox.forEach((r, i) => {
    if (r.msg.type === 'cmdEnd') evCount.push(i + 1);
  });
  return {
    dataDir,
    segmentSize,
    cmds,
    books,
    cmdLog: readCommandLog(cmdDirOf(dataDir, SYM), binaryCodec),
    cmdRaw: rawRecords(cmdDirOf(dataDir, SYM)),
    outbox,
    evRaw: rawRecords(evDirOf(dataDir, SYM)),
    evCount,
  };
}

/** Adds the book a fresh engine reaches from the first k commands alone. */
async function addPrefixBook(ref: Reference, k: number): Promise<void> {
  if (ref.books.has(k)) return;
  const { book } = await run(ref.cmds.slice(0, k), ref.segmentSize);
  ref.books.set(k, book);
}

/** Copies a data directory (not its lock file); without the clean-close markers unless `keepMarkers` (a crash leaves none). */
function copyDir(from: string, keepMarkers: boolean): string {
  const dir = tmpDir('gx3-recovery-case-');
  fs.cpSync(from, dir, { recursive: true, filter: (src) => path.basename(src) !== 'LOCK' });
  if (!keepMarkers) {
    fs.rmSync(path.join(cmdDirOf(dir, SYM), 'CLEAN'), { force: true });
    fs.rmSync(path.join(evDirOf(dir, SYM), 'CLEAN'), { force: true });
  }
  return dir;
}

const copyOf = (ref: Reference, keepMarkers = false): string => copyDir(ref.dataDir, keepMarkers);

// ---------------------------------------------------------------------------------------------
// Damage

/** Cuts a segment file at `at`: truncated there, or (`zero`) its bytes from there zeroed. */
function cutFile(file: string, at: number, zero: boolean): void {
  if (!zero) {
    fs.truncateSync(file, at);
    return;
  }
  const size = fs.statSync(file).size;
  zeroBytes(file, at, size - at);
}

function zeroBytes(file: string, at: number, n: number): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, Buffer.alloc(n), 0, n, at);
  } finally {
    fs.closeSync(fd);
  }
}

/** Flips bits of one byte of a file. */
function flipByte(file: string, at: number, mask = 0x5a): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, at);
    b[0] = (b[0] as number) ^ mask;
    fs.writeSync(fd, b, 0, 1, at);
  } finally {
    fs.closeSync(fd);
  }
}

/** The damage of one log cut at `at` (in its only segment): what survives. */
interface Cut {
  at: number;
  zero: boolean;
  /** Whole records left (zeroing bytes that were zeros already leaves a record whole). */
  whole: number;
  /** Where the whole records end. */
  wholeEnd: number;
  /** Bytes of a record follow them (a torn tail to repair). */
  torn: boolean;
}

function cutLog(file: string, records: readonly { offset: number; end: number }[], at: number, zero: boolean): Cut {
  const bytes = fs.readFileSync(file);
  let whole = 0;
  for (const r of records) {
    if (r.end <= at || (zero && r.offset < at && bytes.subarray(at, r.end).every((b) => b === 0))) whole++;
    else break;
  }
  const wholeEnd = whole === 0 ? 0 : (records[whole - 1] as { end: number }).end;
  cutFile(file, at, zero);
  return { at, zero, whole, wholeEnd, torn: at > wholeEnd };
}

/** The segment files of a log directory, by base offset. */
function segmentsOf(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => /^\d{20}\.wal$/.test(n))
    .sort()
    .map((n) => path.join(dir, n));
}

// ---------------------------------------------------------------------------------------------
// Opening a damaged directory

type Recovery = Omit<SymbolActor['recovery'], 'millis'>;

interface Opened {
  ok: true;
  recovery: Recovery;
  book: BookAt;
  /** The logs' records once the engine closed (undefined when they cannot be read: readError). */
  cmdRaw: Buffer[] | undefined;
  evRaw: Buffer[] | undefined;
  readError: unknown;
  /** A copy of the directory taken right after the open (a crash then), when asked for. */
  snapshot: string | undefined;
}

type Attempt = Opened | { ok: false; error: unknown };

async function attempt(ref: Reference, dataDir: string, snapshot = false): Promise<Attempt> {
  let engine: Engine;
  try {
    engine = await Engine.open(options(dataDir, ref.segmentSize));
  } catch (error) {
    return { ok: false, error };
  }
  const actor = engine.actor(SYM) as SymbolActor;
  const { commands, rederived, outboxBytesCut, tornTails } = actor.recovery;
  const book = bookAt(actor);
  // What the recovery left on disk, as a crash right after the open would leave it.
  const copy = snapshot ? copyDir(dataDir, false) : undefined;
  await engine.close();
  let cmdRaw: Buffer[] | undefined;
  let evRaw: Buffer[] | undefined;
  let readError: unknown;
  try {
    cmdRaw = rawRecords(cmdDirOf(dataDir, SYM));
    evRaw = rawRecords(evDirOf(dataDir, SYM));
  } catch (err) {
    readError = err;
  }
  return { ok: true, recovery: { commands, rederived, outboxBytesCut, tornTails }, book, cmdRaw, evRaw, readError, snapshot: copy };
}

function describeError(err: unknown): string {
  if (err instanceof EngineError) {
    const cause = err.cause as { code?: unknown } | undefined;
    const code = typeof cause?.code === 'string' ? cause.code : undefined;
    return `EngineError ${err.code}${code === undefined ? '' : ` (cause ${code})`}: ${err.message}`;
  }
  return `${err instanceof Error ? `${err.name}: ${err.message}` : String(err)} (not an EngineError)`;
}

function sameRecords(a: readonly Buffer[] | undefined, b: readonly Buffer[]): boolean {
  return a !== undefined && a.length === b.length && a.every((x, i) => x.equals(b[i] as Buffer));
}

/**
 * The problems of a recovery expected to give the state of the first `k` commands: the first open's
 * book and logs (and report, as far as `expected` pins it), then more opens: of a copy taken right
 * after the first open (a crash then) and, with `reopenClosed`, of the directory the first engine
 * closed. Each must find nothing to repair and the same state.
 */
async function recoveryProblems(ref: Reference, dataDir: string, k: number, expected?: Partial<Recovery>, reopenClosed = true): Promise<string[]> {
  const problems: string[] = [];
  const want = ref.books.get(k);
  if (want === undefined) throw new Error(`no reference book after ${k} commands`);
  const first = await attempt(ref, dataDir, true);
  if (!first.ok) return [`the first open failed: ${describeError(first.error)}`];
  const check = (a: Opened, which: string): void => {
    if (a.recovery.commands !== k) problems.push(`${which} open recovered ${a.recovery.commands} commands, ${k} survive`);
    if (a.book.hash !== want.hash || JSON.stringify(a.book.orders) !== JSON.stringify(want.orders)) problems.push(`${which} open: the book differs from that after ${k} commands`);
    if (a.readError !== undefined) {
      problems.push(`${which} open: the logs cannot be read after it: ${describeError(a.readError)}`);
      return;
    }
    if (!sameRecords(a.cmdRaw, ref.cmdRaw.slice(0, k))) problems.push(`${which} open: the command log is not the first ${k} commands (${a.cmdRaw?.length} records)`);
    if (!sameRecords(a.evRaw, ref.evRaw.slice(0, ref.evCount[k]))) {
      const msgs = (a.evRaw ?? []).map((b, i) => ({ offset: i, end: i, msg: binaryCodec.decode(b) as Event }));
      problems.push(`${which} open: the outbox is not that of ${k} commands (${a.evRaw?.length} records, expected ${ref.evCount[k]}; ${outboxProblem(msgs, k) ?? 'well formed'})`);
    }
  };
  check(first, 'the first');
  for (const [key, v] of Object.entries(expected ?? {})) {
    const got = first.recovery[key as keyof Recovery];
    if (got !== v) problems.push(`the first open reports ${key} ${got}, expected ${v}`);
  }
  const reopen: [string, string][] = [['a crash-after-recovery', first.snapshot as string]];
  if (reopenClosed) reopen.push(['the second', dataDir]);
  for (const [which, dir] of reopen) {
    const again = await attempt(ref, dir);
    if (!again.ok) {
      problems.push(`${which} open failed: ${describeError(again.error)}`);
      continue;
    }
    check(again, which);
    const r = again.recovery;
    if (r.rederived !== 0 || r.outboxBytesCut !== 0 || r.tornTails !== 0) problems.push(`${which} open repaired again: ${JSON.stringify(r)}`);
  }
  fs.rmSync(first.snapshot as string, { recursive: true, force: true });
  return problems;
}

/** The problems of an open expected to be refused with a documented code, twice alike; and the first error. */
async function refusalProblems(ref: Reference, dataDir: string): Promise<{ problems: string[]; error: unknown }> {
  const first = await attempt(ref, dataDir);
  if (first.ok) return { problems: [`the open succeeded (recovered ${JSON.stringify(first.recovery)})`], error: undefined };
  const problems: string[] = [];
  const err = first.error;
  if (!(err instanceof EngineError) || !DOCUMENTED_REFUSALS.includes(err.code)) problems.push(`the first open failed with ${describeError(err)}`);
  if (fs.existsSync(path.join(dataDir, 'LOCK'))) problems.push('the failed open left its LOCK');
  const second = await attempt(ref, dataDir);
  if (second.ok) problems.push(`the second open succeeded (${JSON.stringify(second.recovery)}) after the first was refused: ${describeError(err)}`);
  else if (!(second.error instanceof EngineError) || !(err instanceof EngineError) || second.error.code !== err.code) {
    problems.push(`the second open failed otherwise: ${describeError(second.error)}, the first: ${describeError(err)}`);
  }
  return { problems, error: err };
}

/** Whether an error is RECOVERY_FAILED caused by the WAL's CORRUPT (as the README's failure table says of a corrupt log). */
function corruptCause(err: unknown): boolean {
  return err instanceof EngineError && err.code === 'RECOVERY_FAILED' && err.cause instanceof WalError && err.cause.code === 'CORRUPT';
}

// ---------------------------------------------------------------------------------------------

const N = 150;
const TOTAL = N + 3;
let ref: Reference;

beforeAll(async () => {
  ref = await buildReference(flow(N, 0x5eed), SEGMENT, true);
}, 20_000);

/** The outbox's end after the CmdEnd of command k. */
const evEndOf = (k: number, r = ref): number => (k === 0 ? 0 : (r.outbox[(r.evCount[k] as number) - 1] as StoredMessage<Event>).end);
/** CmdEnds among the first `n` outbox records. */
const cmdEndsIn = (n: number, r = ref): number => r.outbox.slice(0, n).filter((x) => x.msg.type === 'cmdEnd').length;
/** The offsets from `from` to `to` (inclusive), each with the way it is cut: truncated, or zeroed from there (a preallocated segment). */
function offsets(from: number, to: number): { at: number; zero: boolean }[] {
  const out: { at: number; zero: boolean }[] = [];
  for (let at = from; at <= to; at++) out.push({ at, zero: at % 2 === 1 });
  return out;
}

describe('the reference flow', () => {
  it('has trades, amends, cancels and rejections, and its prefix is what a fresh engine reaches from the shorter flow', async () => {
    const types = new Set(ref.outbox.map((r) => r.msg.type));
    for (const t of ['accepted', 'rejected', 'added', 'trade', 'canceled', 'amended', 'cmdEnd']) expect(types, t).toContain(t);
    // The last command but two sweeps several makers and rests; the last two reduce and cancel it.
    expect(ref.outbox.filter((r) => r.msg.seq === N + 1 && r.msg.type === 'trade').length).toBeGreaterThanOrEqual(2);
    expect(ref.outbox.filter((r) => r.msg.seq > N + 1).map((r) => r.msg.type)).toEqual(['amended', 'cmdEnd', 'canceled', 'cmdEnd']);
    expect(outboxProblem(ref.outbox, TOTAL)).toBeUndefined();
    // A fresh engine fed only the first N + 1 commands: the reference's book and outbox prefix.
    const k = N + 1;
    const { dataDir, book } = await run(ref.cmds.slice(0, k), SEGMENT);
    expect(book).toEqual(ref.books.get(k));
    expect(sameRecords(rawRecords(evDirOf(dataDir, SYM)), ref.evRaw.slice(0, ref.evCount[k]))).toBe(true);
  });
});

describe('a crash image cut at every byte of the last records', () => {
  it('the command log cut inside its last three records (the outbox ahead of it): the state of the surviving prefix, opened twice', async () => {
    const failures: string[] = [];
    const cases = offsets((ref.cmdLog[TOTAL - 3] as StoredMessage<Command>).offset, ref.cmdLog.at(-1)?.end ?? 0);
    for (const { at, zero } of cases) {
      const dir = copyOf(ref);
      const cut = cutLog(path.join(cmdDirOf(dir, SYM), SEG0), ref.cmdLog, at, zero);
      const k = cut.whole;
      const problems = await recoveryProblems(ref, dir, k, { commands: k, rederived: 0, outboxBytesCut: evEndOf(TOTAL) - evEndOf(k), tornTails: cut.torn ? 1 : 0 }, false);
      if (problems.length > 0) failures.push(`command log ${zero ? 'zeroed' : 'truncated'} at ${at}: ${problems.join('; ')}`);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(cases.length).toBeGreaterThan(150);
    expect(failures.slice(0, 10), `${failures.length} of ${cases.length} cases`).toEqual([]);
  });

  it('the outbox cut inside its last six records (of three commands): their events derived again, byte for byte, opened twice', async () => {
    const failures: string[] = [];
    const cases = offsets((ref.outbox.at(-6) as StoredMessage<Event>).offset, evEndOf(TOTAL));
    for (const { at, zero } of cases) {
      const dir = copyOf(ref);
      const cut = cutLog(path.join(evDirOf(dir, SYM), SEG0), ref.outbox, at, zero);
      const ends = cmdEndsIn(cut.whole);
      const problems = await recoveryProblems(ref, dir, TOTAL, { commands: TOTAL, rederived: TOTAL - ends, outboxBytesCut: cut.wholeEnd - evEndOf(ends), tornTails: cut.torn ? 1 : 0 }, false);
      if (problems.length > 0) failures.push(`outbox ${zero ? 'zeroed' : 'truncated'} at ${at}: ${problems.join('; ')}`);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(cases.length).toBeGreaterThan(250);
    expect(failures.slice(0, 10), `${failures.length} of ${cases.length} cases`).toEqual([]);
  });

  it('both logs cut (seeded pairs of offsets; the outbox behind, level with or ahead of the command log): the state of the surviving command prefix, opened twice', async () => {
    const rnd = prng(77);
    const cmdFrom = (ref.cmdLog[TOTAL - 4] as StoredMessage<Command>).offset;
    const cmdTo = ref.cmdLog.at(-1)?.end ?? 0;
    const evFrom = evEndOf(TOTAL - 5);
    const evTo = evEndOf(TOTAL);
    const failures: string[] = [];
    const seen = { behind: 0, level: 0, ahead: 0 };
    const CASES = 80;
    for (let i = 0; i < CASES; i++) {
      const cmdAt = cmdFrom + Math.floor(rnd() * (cmdTo - cmdFrom + 1));
      const evAt = evFrom + Math.floor(rnd() * (evTo - evFrom + 1));
      const dir = copyOf(ref);
      const c = cutLog(path.join(cmdDirOf(dir, SYM), SEG0), ref.cmdLog, cmdAt, rnd() < 0.5);
      const e = cutLog(path.join(evDirOf(dir, SYM), SEG0), ref.outbox, evAt, rnd() < 0.5);
      const k = c.whole;
      const ends = cmdEndsIn(e.whole);
      seen[ends < k ? 'behind' : ends === k ? 'level' : 'ahead']++;
      const problems = await recoveryProblems(ref, dir, k, {
        commands: k,
        rederived: Math.max(0, k - ends),
        outboxBytesCut: e.wholeEnd - evEndOf(Math.min(k, ends)),
        tornTails: (c.torn ? 1 : 0) + (e.torn ? 1 : 0),
      });
      if (problems.length > 0) failures.push(`command log ${c.zero ? 'zeroed' : 'truncated'} at ${cmdAt}, outbox ${e.zero ? 'zeroed' : 'truncated'} at ${evAt}: ${problems.join('; ')}`);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(seen.behind).toBeGreaterThan(10);
    expect(seen.ahead).toBeGreaterThan(10);
    expect(failures.slice(0, 10), `${failures.length} of ${CASES} cases`).toEqual([]);
  });
});

describe('segments of a longer flow (both logs roll)', () => {
  /** The smallest segment the logs take (a record of the WAL's default maxRecordSize, 1 MiB, plus its header). */
  const SMALL_SEGMENT = (1 << 20) + 8;
  let big: Reference;
  /** Commands in the command log's first segment. */
  let k1 = 0;

  beforeAll(async () => {
    big = await buildReference(flow(11_000, 99, true), SMALL_SEGMENT, false);
    const segs = segmentsOf(cmdDirOf(big.dataDir, SYM));
    const secondBase = Number(path.basename(segs[1] ?? '0').slice(0, 20));
    k1 = big.cmdLog.filter((r) => r.end <= secondBase).length;
    await addPrefixBook(big, k1);
  }, 30_000);

  it('the reference has two command-log segments and three outbox segments', () => {
    expect(segmentsOf(cmdDirOf(big.dataDir, SYM))).toHaveLength(2);
    expect(segmentsOf(evDirOf(big.dataDir, SYM))).toHaveLength(3);
    expect(k1).toBeGreaterThan(1000);
    expect(k1).toBeLessThan(big.cmds.length);
  });

  /** The outbox's records wholly below `end` (in its earlier segments): what is left when its later data is gone. */
  const outboxLeft = (end: number): { whole: number; wholeEnd: number } => {
    const whole = big.outbox.filter((r) => r.end <= end).length;
    return { whole, wholeEnd: whole === 0 ? 0 : (big.outbox[whole - 1] as StoredMessage<Event>).end };
  };
  const baseOf = (file: string): number => Number(path.basename(file).slice(0, 20));

  for (const clean of [false, true]) {
    const image = clean ? 'a cleanly closed directory' : 'a crash image';
    it(`${image}: the outbox's last segment deleted, or emptied, or torn inside its first records: the events derived again, opened twice`, async () => {
      const failures: string[] = [];
      const total = big.cmds.length;
      const lastSeg = segmentsOf(evDirOf(big.dataDir, SYM)).at(-1) as string;
      const base = baseOf(lastSeg);
      const firstRecords = big.outbox.filter((r) => r.offset >= base).slice(0, 3);
      const rnd = prng(clean ? 11 : 12);
      const damages: [string, (file: string) => number][] = [
        [
          'deleted',
          (file) => {
            fs.rmSync(file);
            return base;
          },
        ],
        [
          'emptied',
          (file) => {
            fs.truncateSync(file, 0);
            return base;
          },
        ],
      ];
      for (let i = 0; i < 6; i++) {
        const at = Math.floor(rnd() * ((firstRecords.at(-1)?.end ?? base) - base));
        const zero = i % 2 === 1;
        damages.push([
          `${zero ? 'zeroed' : 'truncated'} at ${at}`,
          (file) => {
            cutFile(file, at, zero);
            return base + at;
          },
        ]);
      }
      for (const [what, damage] of damages) {
        const dir = copyOf(big, clean);
        const file = segmentsOf(evDirOf(dir, SYM)).at(-1) as string;
        const at = damage(file);
        const left = outboxLeft(at);
        const ends = cmdEndsIn(left.whole, big);
        const problems = await recoveryProblems(big, dir, total, { commands: total, rederived: total - ends, outboxBytesCut: left.wholeEnd - evEndOf(ends, big) });
        if (problems.length > 0) failures.push(`the outbox's last segment ${what}: ${problems.join('; ')}`);
        fs.rmSync(dir, { recursive: true, force: true });
      }
      expect(failures).toEqual([]);
    });

    it(`${image}: the command log's last segment deleted, emptied or torn inside its first record (the outbox ahead by several segments' worth): the state of its first segment, opened twice`, async () => {
      const failures: string[] = [];
      const second = segmentsOf(cmdDirOf(big.dataDir, SYM))[1] as string;
      const firstLen = (big.cmdLog[k1] as StoredMessage<Command>).end - baseOf(second);
      const damage = (what: string, file: string): void => {
        if (what === 'deleted') fs.rmSync(file);
        else if (what === 'emptied') fs.truncateSync(file, 0);
        else if (what === 'truncated inside its first record') fs.truncateSync(file, firstLen - 3);
        else cutFile(file, 5, true);
      };
      for (const what of ['deleted', 'emptied', 'truncated inside its first record', 'zeroed inside its first record']) {
        const dir = copyOf(big, clean);
        damage(what, segmentsOf(cmdDirOf(dir, SYM)).at(-1) as string);
        const problems = await recoveryProblems(big, dir, k1, { commands: k1, rederived: 0, outboxBytesCut: evEndOf(big.cmds.length, big) - evEndOf(k1, big) });
        if (problems.length > 0) failures.push(`the command log's last segment ${what}: ${problems.join('; ')}`);
        fs.rmSync(dir, { recursive: true, force: true });
      }
      expect(failures).toEqual([]);
    });
  }

  it('the whole ev directory removed: every event derived again with the same sequence numbers, opened twice', async () => {
    const dir = copyOf(big);
    fs.rmSync(evDirOf(dir, SYM), { recursive: true });
    const total = big.cmds.length;
    expect(await recoveryProblems(big, dir, total, { commands: total, rederived: total, outboxBytesCut: 0, tornTails: 0 })).toEqual([]);
  });

  // The engine README's invariants after recovery: "event sequence numbers are contiguous from 1 per
  // symbol; every command has exactly one CmdEnd, in order", and its failure table: "a corrupt log |
  // RECOVERY_FAILED with the log's CORRUPT error as cause"; the WAL README: "a bad record followed by
  // a valid one (or a gap between segments) | WalError CORRUPT ... from open, the reader, verify and
  // repair". With a segment of the outbox missing (its first, or one in the middle), the open
  // recovers "cleanly" (rederived 0, nothing cut) and leaves an outbox that cannot be read from its
  // start: its events of the first thousands of commands are gone, never derived again, and a
  // publisher (cursor at 0) fails with CORRUPT on every attempt. The command log missing its first
  // segment is refused (RECOVERY_FAILED) by the replay; the outbox is not read there.
  it('an outbox missing a segment (its first, or one in the middle) is refused: RECOVERY_FAILED (cause CORRUPT), never opened with an outbox that cannot be read from event 1', async () => {
    // The command log's same damage, for comparison: refused.
    const cmdDir = copyOf(big);
    fs.rmSync(segmentsOf(cmdDirOf(cmdDir, SYM))[0] as string);
    const c = await attempt(big, cmdDir);
    expect(c.ok ? 'opened' : describeError(c.error)).toMatch(/RECOVERY_FAILED \(cause CORRUPT\)/);

    const failures: string[] = [];
    for (const which of [0, 1]) {
      const dir = copyOf(big);
      fs.rmSync(segmentsOf(evDirOf(dir, SYM))[which] as string);
      const first = await attempt(big, dir);
      if (first.ok) {
        // Acceptable: the whole outbox again (derived from the command log). Not acceptable: an outbox with a hole.
        if (first.readError !== undefined || !sameRecords(first.evRaw, big.evRaw)) {
          failures.push(
            `outbox segment ${which} deleted: the open succeeded (${JSON.stringify(first.recovery)}) and the outbox it left ${first.readError === undefined ? 'differs from the reference' : `cannot be read: ${describeError(first.readError)}`}`,
          );
        }
      } else if (!corruptCause(first.error)) {
        failures.push(`outbox segment ${which} deleted: refused otherwise than RECOVERY_FAILED (CORRUPT): ${describeError(first.error)}`);
      }
    }
    expect(failures).toEqual([]);
  });
});

describe('a byte corrupted in the middle of a log', () => {
  /** Every byte of the record at `index` of a log, flipped one at a time in copies: each open refused with RECOVERY_FAILED (cause CORRUPT), twice alike. */
  async function flipEveryByte(log: 'cmd' | 'ev', index: number, clean: boolean): Promise<{ cases: number; failures: string[] }> {
    const records: readonly { offset: number; end: number }[] = log === 'cmd' ? ref.cmdLog : ref.outbox;
    const rec = records[index] as { offset: number; end: number };
    const failures: string[] = [];
    for (let at = rec.offset; at < rec.end; at++) {
      const dir = copyOf(ref, clean);
      flipByte(path.join(log === 'cmd' ? cmdDirOf(dir, SYM) : evDirOf(dir, SYM), SEG0), at);
      const { problems, error } = await refusalProblems(ref, dir);
      if (error !== undefined && !corruptCause(error)) problems.push(`not caused by CORRUPT: ${describeError(error)}`);
      if (problems.length > 0) failures.push(`${log} byte ${at - rec.offset} of record ${index} flipped: ${problems.join('; ')}`);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    return { cases: rec.end - rec.offset, failures };
  }

  it('of the command log (a crash image, and a cleanly closed one): every byte of a middle record, refused with RECOVERY_FAILED caused by CORRUPT, twice alike, the lock released', async () => {
    for (const clean of [false, true]) {
      const { cases, failures } = await flipEveryByte('cmd', 70, clean);
      expect(cases).toBeGreaterThan(40);
      expect(failures.slice(0, 10), `${clean ? 'cleanly closed' : 'crash image'}: ${failures.length} of ${cases}`).toEqual([]);
    }
  });

  it('of the outbox (a crash image: its last segment is checked on open): every byte of a middle record, refused with RECOVERY_FAILED caused by CORRUPT, twice alike', async () => {
    const { cases, failures } = await flipEveryByte('ev', Math.floor(ref.outbox.length / 2), false);
    expect(cases).toBeGreaterThan(40);
    expect(failures.slice(0, 10), `${failures.length} of ${cases}`).toEqual([]);
  });

  it('a record header of the command log zeroed in the middle of a crash image: refused with RECOVERY_FAILED caused by CORRUPT, twice alike', async () => {
    const dir = copyOf(ref);
    zeroBytes(path.join(cmdDirOf(dir, SYM), SEG0), (ref.cmdLog[TOTAL >> 1] as StoredMessage<Command>).offset, 8);
    const { problems, error } = await refusalProblems(ref, dir);
    expect(problems).toEqual([]);
    expect(describeError(error)).toMatch(/RECOVERY_FAILED \(cause CORRUPT\)/);
  });

  // DESIGN.md, Logs: "a bad record followed by good ones is corruption and an error that names the
  // file and offset: it is never skipped silently." The engine README, Recovery: after a clean close
  // "the next open takes the end of each log from its clean-close marker instead of scanning the
  // last segment ... The replay checks the CRC of every command record it reads either way", and its
  // failure table: "a corrupt log | RECOVERY_FAILED with the log's CORRUPT error as cause (whether
  // the open's check of the last segment finds it or the replay does)". The same damaged bytes as in
  // the test above, in a cleanly closed directory: the marker still matches (the last record is
  // whole), so nothing scans the segment, and the replay's reader takes the zero header for the end
  // of the data. The open succeeds with the commands before it only; the outbox events of every
  // acknowledged command after it are cut as "ahead of the command log"; a new command gets the seq
  // of the first lost one, is acknowledged, is appended after the old records, and is lost again at
  // the next open (the replay stops at the same place), and so on at every restart.
  it('a record header of the command log zeroed in the middle of a cleanly closed directory is refused (RECOVERY_FAILED, cause CORRUPT), never skipped: the commands after it and their events are kept', async () => {
    const dir = copyOf(ref, true);
    const hole = TOTAL >> 1;
    zeroBytes(path.join(cmdDirOf(dir, SYM), SEG0), (ref.cmdLog[hole] as StoredMessage<Command>).offset, 8);
    const first = await attempt(ref, dir, true);
    if (first.ok) {
      // A crash right after that open (the marker is gone then): the next open scans and refuses.
      const after = await attempt(ref, first.snapshot as string);
      expect.fail(
        `the open succeeded: it replayed ${first.recovery.commands} of the ${TOTAL} commands (the replay stopped at the zeroed header of command ${hole + 1}) ` +
          `and cut ${first.recovery.outboxBytesCut} outbox bytes (the events of the acknowledged commands ${hole + 1}..${TOTAL}); ` +
          `an open of a copy taken right after it: ${after.ok ? `recovered ${after.recovery.commands} commands` : describeError(after.error)}`,
      );
    }
    expect(corruptCause(first.error), describeError(first.error)).toBe(true);
  });
});

describe('a stale LOCK of a dead process beside a damaged directory', () => {
  function deadPidLock(dataDir: string): void {
    const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const pid = Number(r.stdout);
    expect(Number.isSafeInteger(pid) && pid > 0).toBe(true);
    fs.writeFileSync(path.join(dataDir, 'LOCK'), `${JSON.stringify({ pid, host: os.hostname(), since: '2026-01-01T00:00:00.000Z' })}\n`);
  }

  it('torn tails in both logs: taken over, recovered to the surviving prefix, released, opened twice', async () => {
    const dir = copyOf(ref);
    deadPidLock(dir);
    const c = cutLog(path.join(cmdDirOf(dir, SYM), SEG0), ref.cmdLog, (ref.cmdLog[TOTAL - 2] as StoredMessage<Command>).offset + 11, false);
    cutLog(path.join(evDirOf(dir, SYM), SEG0), ref.outbox, evEndOf(TOTAL - 4) + 5, true);
    expect(await recoveryProblems(ref, dir, c.whole, { commands: c.whole, tornTails: 2 })).toEqual([]);
    expect(fs.existsSync(path.join(dir, 'LOCK'))).toBe(false);
  });

  it('a corrupt command log: refused with RECOVERY_FAILED, the lock released (no LOCK left), refused again alike', async () => {
    const dir = copyOf(ref);
    deadPidLock(dir);
    flipByte(path.join(cmdDirOf(dir, SYM), SEG0), (ref.cmdLog[40] as StoredMessage<Command>).offset + 12);
    const { problems, error } = await refusalProblems(ref, dir);
    expect(problems).toEqual([]);
    expect(corruptCause(error)).toBe(true);
  });
});

describe('pnpm -s recover --data-dir DIR (apps/bench) on damaged directories', () => {
  const RECOVER = path.join(REPO_ROOT, 'apps/bench/dist/bin/recover.js');

  /** A copy of the reference as a replay data directory (its gx3-replay.json), damaged by `damage`, given to the command. */
  function recover(damage: (dir: string) => void): { status: number | null; stdout: string; stderr: string } {
    const dir = copyOf(ref);
    fs.writeFileSync(
      path.join(dir, 'gx3-replay.json'),
      JSON.stringify({ symbol: { symbol: SYM, minPrice: 1, maxPrice: 1_000_000_000, maxQty: 2 ** 48 }, codec: 'binary', durability: 'none' }),
    );
    damage(dir);
    const r = spawnSync(process.execPath, [RECOVER, '--data-dir', dir], { encoding: 'utf8', timeout: 20_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  it.skipIf(!fs.existsSync(RECOVER))('prints the recovered prefix for torn tails, and one typed error line for a corrupt log', () => {
    const torn = recover((dir) => {
      cutFile(path.join(cmdDirOf(dir, SYM), SEG0), (ref.cmdLog[TOTAL - 1] as StoredMessage<Command>).offset + 9, false);
      cutFile(path.join(evDirOf(dir, SYM), SEG0), evEndOf(TOTAL - 3) + 20, true);
    });
    expect(torn.stderr).toBe('');
    expect(torn.status).toBe(0);
    const out = JSON.parse(torn.stdout) as { commands: number; ops: number; recovery: Recovery };
    expect(out.commands).toBe(TOTAL - 1);
    // The outbox lost the CmdEnd of command TOTAL - 2: that command's and the next one's events are derived again.
    expect(out.recovery).toMatchObject({ commands: TOTAL - 1, rederived: 2, tornTails: 2 });

    const corrupt = recover((dir) => {
      flipByte(path.join(cmdDirOf(dir, SYM), SEG0), (ref.cmdLog[40] as StoredMessage<Command>).offset + 12);
    });
    expect(corrupt.stdout).toBe('');
    expect(corrupt.status).toBe(2);
    // One line naming the file and the offset of the bad record.
    expect(corrupt.stderr).toMatch(/^error \[RECOVERY_FAILED\]: .*cmd\/0{20}\.wal: bad record at byte \d+/);
    expect(corrupt.stderr.trim().split('\n')).toHaveLength(1);
  });
});
