// The compare benchmark: gx3's order book against other JavaScript order books on one workload
// from the project's generator. Each subject replays the same parsed operations in-process, one after
// the other: a warm-up on a throwaway book, then timed passes on fresh books (built untimed) until a
// minimum time has passed; the median pass gives ops/s. Each subject's outcome (fills, cancels,
// rejects, final book) is computed from its own outputs and state and checked against gx3's.

import { performance } from 'node:perf_hooks';
import { BenchError } from '../errors.js';
import { DEFAULT_MIX, generateText, type GeneratorOptions } from '../generator.js';
import { parseWorkload, type Workload } from '../workload.js';
import { commandsUsed, compareSummaries, type CommandName, type CompareSubject, type CompareSummary, type Mismatch } from './book.js';
import { gx3 } from './gx3.js';
import { nodejsOrderBook } from './nodejs-order-book.js';
import { orderbookMatchEngine } from './orderbook-match-engine.js';

/** gx3 first: the first subject is the reference that the others are checked against. */
export const SUBJECTS: readonly CompareSubject[] = [gx3, orderbookMatchEngine, nodejsOrderBook];

/**
 * Operations after the prefill, by default. Full W1 is 1,000,000; nodejs-order-book slows down as its
 * book grows (about 40,000 ops/s over these 210,000 commands, about 10,000 over full W1, which would
 * take it more than a minute and a half), so the default is a fifth of W1, run by every book alike.
 */
export const DEFAULT_ORDERS = 200_000;

export interface TimingOptions {
  /** Timed passes are repeated on fresh books until their total reaches this (default 1 s); at least one. */
  readonly minSeconds?: number;
  /** At most this many timed passes (default 100). */
  readonly maxPasses?: number;
  /** Operations replayed on a throwaway book before timing (default 20,000, or the whole workload if shorter). */
  readonly warmupOps?: number;
  /** Called with a line of progress after each subject. */
  readonly onProgress?: (line: string) => void;
}

export interface CompareOptions extends TimingOptions {
  /** Operations after the prefill (the generator's `ops`; default DEFAULT_ORDERS). */
  readonly orders?: number;
  readonly seed?: number;
  /** Passive orders written first (default 10,000, as W1). */
  readonly prefill?: number;
  /** Generator weights (default W1: passive limit, cancel, aggressive limit). */
  readonly mix?: readonly number[];
  readonly subjects?: readonly CompareSubject[];
}

export interface SubjectResult {
  name: string;
  /** Operations of one pass (0 when skipped). */
  commands: number;
  /** Why it did not run: the command kinds of the workload that it cannot express. */
  skipped: string | null;
  passes: number;
  /** Median timed pass. */
  seconds: number;
  opsPerSec: number;
  nsPerOp: number;
  /** Reference ops/s divided by this subject's ops/s (1 for the reference). */
  ratio: number | null;
  summary: CompareSummary | null;
  /** Fields on which its summary differs from the reference's. */
  mismatches: Mismatch[];
  /** Whether its summary equals the reference's (null when skipped). */
  agrees: boolean | null;
}

export interface CompareReport {
  node: string;
  workload: { generator: Required<Pick<GeneratorOptions, 'ops' | 'prefill' | 'seed'>> & { mix: number[] }; commands: number; kinds: CommandName[] };
  timing: { minSeconds: number; maxPasses: number; warmupOps: number; gcBetweenPasses: boolean };
  reference: string;
  results: SubjectResult[];
  /** Every subject that ran agrees with the reference. */
  ok: boolean;
}

interface Measured {
  passes: number;
  seconds: number;
  summary: CompareSummary;
}

function measure(subject: CompareSubject, w: Workload, t: Required<Omit<TimingOptions, 'onProgress'>>): Measured {
  subject.create(w).apply(0, Math.min(w.length, t.warmupOps));
  const gc = (globalThis as { gc?: () => void }).gc;
  const times: number[] = [];
  let total = 0;
  let book;
  do {
    book = subject.create(w);
    if (gc) gc();
    const t0 = performance.now();
    book.apply(0, w.length);
    const s = (performance.now() - t0) / 1000;
    times.push(s);
    total += s;
  } while (total < t.minSeconds && times.length < t.maxPasses);
  times.sort((a, b) => a - b);
  return { passes: times.length, seconds: times[times.length >> 1] as number, summary: book.summary() };
}

function timing(o: TimingOptions): Required<Omit<TimingOptions, 'onProgress'>> {
  const minSeconds = o.minSeconds ?? 1;
  const maxPasses = o.maxPasses ?? 100;
  const warmupOps = o.warmupOps ?? 20_000;
  if (!(minSeconds >= 0) || !Number.isSafeInteger(maxPasses) || maxPasses < 1 || !Number.isSafeInteger(warmupOps) || warmupOps < 0) {
    throw new BenchError('BAD_ARGUMENT', 'timing options: minSeconds >= 0, maxPasses >= 1 and warmupOps >= 0 (integers)');
  }
  return { minSeconds, maxPasses, warmupOps };
}

/**
 * Replays `w` through every subject and checks each against the first. A subject that cannot express
 * one of the workload's command kinds is skipped (reported, not run).
 */
export function compareOn(w: Workload, subjects: readonly CompareSubject[], options: TimingOptions = {}): { results: SubjectResult[]; ok: boolean } {
  const t = timing(options);
  const ref = subjects[0];
  if (ref === undefined) throw new BenchError('BAD_ARGUMENT', 'no order books to compare');
  const kinds = commandsUsed(w);
  const results: SubjectResult[] = [];
  let refSummary: CompareSummary | null = null;
  let refOps = 0;
  for (const s of subjects) {
    const missing = [...kinds].filter((k) => !s.supports.has(k)).sort();
    if (missing.length > 0) {
      if (s === ref) throw new BenchError('BAD_ARGUMENT', `the reference ${s.name} cannot express ${missing.join(', ')}`);
      results.push({ name: s.name, commands: 0, skipped: `cannot express ${missing.join(', ')}`, passes: 0, seconds: 0, opsPerSec: 0, nsPerOp: 0, ratio: null, summary: null, mismatches: [], agrees: null });
      options.onProgress?.(`${s.name}: skipped, cannot express ${missing.join(', ')}`);
      continue;
    }
    const m = measure(s, w, t);
    const opsPerSec = w.length === 0 || m.seconds === 0 ? 0 : w.length / m.seconds;
    refSummary ??= m.summary;
    if (s === ref) refOps = opsPerSec;
    const mismatches = compareSummaries(refSummary, m.summary);
    results.push({
      name: s.name,
      commands: w.length,
      skipped: null,
      passes: m.passes,
      seconds: m.seconds,
      opsPerSec: Math.round(opsPerSec),
      nsPerOp: w.length === 0 ? 0 : Math.round((m.seconds * 1e10) / w.length) / 10,
      ratio: opsPerSec > 0 ? refOps / opsPerSec : null,
      summary: m.summary,
      mismatches,
      agrees: mismatches.length === 0,
    });
    options.onProgress?.(
      `${s.name}: ${m.passes} timed pass${m.passes === 1 ? '' : 'es'} of ${w.length} operations, median ${(m.seconds * 1000).toFixed(1)} ms, ${mismatches.length === 0 ? 'agrees' : `DISAGREES on ${mismatches.map((x) => x.field).join(', ')}`}`,
    );
  }
  return { results, ok: results.every((r) => r.agrees !== false) };
}

/** Generates the workload (W1 by default, DEFAULT_ORDERS operations after the prefill) and compares. */
export function runCompare(options: CompareOptions = {}): CompareReport {
  const generator = {
    ops: options.orders ?? DEFAULT_ORDERS,
    prefill: options.prefill ?? 10_000,
    seed: options.seed ?? 42,
    mix: [...(options.mix ?? DEFAULT_MIX)],
  };
  const w = parseWorkload(generateText(generator));
  const subjects = options.subjects ?? SUBJECTS;
  const { results, ok } = compareOn(w, subjects, options);
  return {
    node: process.version,
    workload: { generator, commands: w.length, kinds: [...commandsUsed(w)].sort() },
    timing: { ...timing(options), gcBetweenPasses: typeof (globalThis as { gc?: unknown }).gc === 'function' },
    reference: subjects[0]?.name ?? '',
    results,
    ok,
  };
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');

/** The report as Markdown: the throughput table, the checked outcome per book, and any disagreement. */
export function formatReport(r: CompareReport): string {
  const g = r.workload.generator;
  const w1 = g.mix.join(',') === DEFAULT_MIX.join(',');
  const lines = [
    `compare benchmark, node ${r.node}: the same ${int(r.workload.commands)} commands for every book, from the project's generator with ${w1 ? 'the W1 mix' : 'mix'} ${g.mix.join(',')} (seed ${g.seed}, ${int(g.prefill)} prefill orders + ${int(g.ops)} operations; command kinds ${r.workload.kinds.join(', ')})`,
    `each book: warm-up on ${int(Math.min(r.timing.warmupOps, r.workload.commands))} operations, then timed passes on fresh books (built untimed${r.timing.gcBetweenPasses ? ', a full GC before each' : '; run node with --expose-gc to collect before each'}) until ${r.timing.minSeconds} s (at most ${r.timing.maxPasses} passes); median pass. Outcome checked against ${r.reference}.`,
    '',
    `| name | commands | ops/s | ns/op | ratio vs ${r.reference} | agrees |`,
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const x of r.results) {
    if (x.skipped !== null) {
      lines.push(`| ${x.name} | - | - | - | - | skipped: ${x.skipped} |`);
      continue;
    }
    const ratio = x.ratio === null ? '-' : `${x.ratio >= 100 ? x.ratio.toFixed(0) : x.ratio.toFixed(2)}x`;
    const agrees = x.name === r.reference ? 'yes (reference)' : x.agrees === true ? 'yes' : 'no';
    lines.push(`| ${x.name} | ${int(x.commands)} | ${int(x.opsPerSec)} | ${x.nsPerOp.toFixed(1)} | ${ratio} | ${agrees} |`);
  }
  lines.push('', '| name | trades | volume | cancels | cancel rejects | rejects | resting bids / asks | resting qty bids / asks | best bid / ask | tradeHash | bookHash |');
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const x of r.results) {
    const s = x.summary;
    if (s === null) continue;
    lines.push(
      `| ${x.name} | ${int(s.trades)} | ${int(s.volume)} | ${int(s.cancels)} | ${int(s.cancelRejects)} | ${int(s.rejects)} | ${int(s.restingBids)} / ${int(s.restingAsks)} | ${int(s.restingBidQty)} / ${int(s.restingAskQty)} | ${s.bestBid ?? '-'} / ${s.bestAsk ?? '-'} | ${s.tradeHash} | ${s.bookHash} |`,
    );
  }
  for (const x of r.results) {
    if (x.agrees !== false) continue;
    lines.push('', `${x.name} DISAGREES with ${r.reference}:`);
    for (const m of x.mismatches) lines.push(`- ${m.field}: ${r.reference} ${String(m.expected)}, ${x.name} ${String(m.actual)}`);
  }
  return lines.join('\n') + '\n';
}
