// A deterministic order-flow generator for one symbol around a mid price of 100,000 ticks. The same
// options always produce the same lines; its defaults are the W1 workload (limits and cancels) and
// `--seed 7 --mix 40,25,10,5,5,5,5,5` is W2 (every operation).

import { BenchError } from './errors.js';

export interface GeneratorOptions {
  /** Operations after the prefill (default 1,000,000). */
  readonly ops?: number;
  /** Passive limit orders written first (default 10,000). */
  readonly prefill?: number;
  readonly seed?: number;
  /** Passive prices lie within this many ticks of the mid (default 50). */
  readonly band?: number;
  /** Aggressive prices cross the mid by up to this many ticks (default 5). */
  readonly cross?: number;
  /** Largest passive quantity (default 100). */
  readonly maxQty?: number;
  /** Weights of passive limit, cancel, aggressive limit, market, IOC, FOK, post-only, amend. */
  readonly mix?: readonly number[];
}

export const DEFAULT_MIX = [55, 30, 15, 0, 0, 0, 0, 0] as const;
const MID = 100_000;

/** mulberry32: a small, fast, well-distributed 32-bit PRNG. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function check(name: string, v: number, min: number): number {
  if (!Number.isSafeInteger(v) || v < min) throw new BenchError('BAD_ARGUMENT', `--${name} must be an integer >= ${min}, got ${v}`);
  return v;
}

/** Calls `emit` with each line of the workload, in order. */
export function generate(options: GeneratorOptions, emit: (line: string) => void): void {
  for (const line of generateLines(options)) emit(line);
}

/** The lines of the workload, in order, one at a time (the options are checked at the first). */
export function* generateLines(options: GeneratorOptions): Generator<string, void, undefined> {
  const ops = check('ops', options.ops ?? 1_000_000, 0);
  const prefill = check('prefill', options.prefill ?? 10_000, 0);
  const band = check('band', options.band ?? 50, 1);
  const cross = check('cross', options.cross ?? 5, 1);
  const maxQty = check('maxqty', options.maxQty ?? 100, 1);
  // Prices are MID ± an offset below band (passive) or cross (aggressive), and must stay at least 1;
  // aggressive and FOK orders ask for up to 2 and 3 times maxqty, which must stay safe integers.
  if (band >= MID) throw new BenchError('BAD_ARGUMENT', `--band must be below ${MID} (prices are ${MID} ± band), got ${band}`);
  if (cross > MID) throw new BenchError('BAD_ARGUMENT', `--cross must be at most ${MID} (prices are ${MID} ± cross), got ${cross}`);
  if (3 * maxQty > Number.MAX_SAFE_INTEGER) throw new BenchError('BAD_ARGUMENT', `--maxqty must be at most ${Math.floor(Number.MAX_SAFE_INTEGER / 3)} (FOK orders ask for up to 3 times it), got ${maxQty}`);
  const seed = options.seed ?? 42;
  if (!Number.isInteger(seed)) throw new BenchError('BAD_ARGUMENT', `--seed must be an integer, got ${seed}`);
  const mix = options.mix ?? DEFAULT_MIX;
  if (mix.length !== 8 || mix.some((v) => !(v >= 0) || !Number.isFinite(v))) {
    throw new BenchError('BAD_ARGUMENT', '--mix takes 8 non-negative weights: passive,cancel,aggr,market,ioc,fok,post,amend');
  }
  const total = mix.reduce((a, b) => a + b, 0);
  if (total <= 0) throw new BenchError('BAD_ARGUMENT', '--mix weights must not all be zero');
  const cum: number[] = [];
  let acc = 0;
  for (const v of mix) cum.push((acc += v) / total);
  const c = (k: number): number => cum[k] as number;

  const rnd = rng(seed);
  const int = (n: number): number => Math.floor(rnd() * n);
  let id = 1;
  const side = (): string => (rnd() < 0.5 ? 'B' : 'S');
  const qty = (m: number): number => 1 + int(m);
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
    yield `L,${id++},${sd},${passivePx(sd)},${qty(maxQty)}`;
  }
  for (let i = 0; i < ops; i++) {
    const r = rnd();
    const sd = side();
    if (r < c(0)) yield `L,${id++},${sd},${passivePx(sd)},${qty(maxQty)}`;
    else if (r < c(1)) yield `C,${recent()}`;
    else if (r < c(2)) yield `L,${id++},${sd},${aggrPx(sd)},${qty(2 * maxQty)}`;
    else if (r < c(3)) yield `M,${id++},${sd},${qty(2 * maxQty)}`;
    else if (r < c(4)) yield `L,${id++},${sd},${aggrPx(sd)},${qty(2 * maxQty)},IOC`;
    else if (r < c(5)) yield `L,${id++},${sd},${aggrPx(sd)},${qty(3 * maxQty)},FOK`;
    else if (r < c(6)) yield `L,${id++},${sd},${rnd() < 0.7 ? passivePx(sd) : aggrPx(sd)},${qty(maxQty)},POST`;
    else yield `A,${recent()},${qty(maxQty)}`;
  }
}

/** The whole workload as one string (lines joined by newlines, with a final newline). */
export function generateText(options: GeneratorOptions): string {
  const lines: string[] = [];
  generate(options, (l) => lines.push(l));
  return lines.length === 0 ? '' : lines.join('\n') + '\n';
}
