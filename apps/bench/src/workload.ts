// The replay workload: the CSV of docs/workload-format.md parsed into struct-of-arrays operations,
// so that the timed replay reads typed arrays and never touches strings.
//
//   L,<id>,<B|S>,<price>,<qty>[,<GTC|IOC|FOK|POST>]   limit order
//   M,<id>,<B|S>,<qty>                                market order
//   C,<id>                                           cancel
//   A,<id>,<newQty>                                  reduce a resting order to newQty remaining

import { BenchError, CsvParseError } from './errors.js';

export const OpKind = { Limit: 0, Market: 1, Cancel: 2, Amend: 3 } as const;
export type OpKind = (typeof OpKind)[keyof typeof OpKind];

export interface Workload {
  readonly length: number;
  readonly kind: Uint8Array;
  readonly id: Float64Array;
  /** 0 buy, 1 sell. */
  readonly side: Uint8Array;
  readonly price: Float64Array;
  /** Quantity; for an amend, the new remaining quantity. */
  readonly qty: Float64Array;
  /** Time in force code (0 GTC, 1 IOC, 2 FOK, 3 POST). */
  readonly tif: Uint8Array;
}

function tif(field: string): number | undefined {
  switch (field) {
    case 'GTC':
      return 0;
    case 'IOC':
      return 1;
    case 'FOK':
      return 2;
    case 'POST':
      return 3;
    default:
      return undefined;
  }
}
const DIGITS = /^[0-9]+$/;

function int(field: string | undefined, name: string, line: number): number {
  if (field === undefined || field === '') throw new CsvParseError(line, `missing ${name}`);
  if (!DIGITS.test(field)) throw new CsvParseError(line, `${name} is not a non-negative integer: ${JSON.stringify(field)}`);
  const v = Number(field);
  if (!Number.isSafeInteger(v)) throw new CsvParseError(line, `${name} is beyond the safe integer range: ${field}`);
  return v;
}

function positive(field: string | undefined, name: string, line: number): number {
  const v = int(field, name, line);
  if (v === 0) throw new CsvParseError(line, `${name} must be positive`);
  return v;
}

function side(field: string | undefined, line: number): number {
  if (field === 'B') return 0;
  if (field === 'S') return 1;
  throw new CsvParseError(line, `side must be B or S, got ${JSON.stringify(field ?? '')}`);
}

function arity(f: string[], n: number, what: string, line: number): void {
  if (f.length !== n) throw new CsvParseError(line, `${what} takes ${n - 1} fields, got ${f.length - 1}`);
}

/**
 * Parses a workload. Blank lines are skipped (they still count for line numbers); anything else that
 * is not a valid operation throws `CsvParseError` naming the line. Amend quantities may be 0 (the
 * book rejects them, as the reference does).
 */
export function parseWorkload(text: string): Workload {
  const lines = text.split('\n');
  let n = 0;
  for (const l of lines) if (l.trim() !== '') n++;
  const w = {
    length: n,
    kind: new Uint8Array(n),
    id: new Float64Array(n),
    side: new Uint8Array(n),
    price: new Float64Array(n),
    qty: new Float64Array(n),
    tif: new Uint8Array(n),
  };
  let i = 0;
  for (let ln = 0; ln < lines.length; ln++) {
    const raw = lines[ln] as string;
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (text.trim() === '') continue;
    const line = ln + 1;
    const f = text.split(',');
    switch (f[0]) {
      case 'L': {
        if (f.length !== 5 && f.length !== 6) throw new CsvParseError(line, `L takes 4 or 5 fields, got ${f.length - 1}`);
        w.kind[i] = OpKind.Limit;
        w.id[i] = positive(f[1], 'id', line);
        w.side[i] = side(f[2], line);
        w.price[i] = positive(f[3], 'price', line);
        w.qty[i] = positive(f[4], 'qty', line);
        if (f.length === 6) {
          const t = tif(f[5] as string);
          if (t === undefined) throw new CsvParseError(line, `time in force must be GTC, IOC, FOK or POST, got ${JSON.stringify(f[5])}`);
          w.tif[i] = t;
        }
        break;
      }
      case 'M':
        arity(f, 4, 'M', line);
        w.kind[i] = OpKind.Market;
        w.id[i] = positive(f[1], 'id', line);
        w.side[i] = side(f[2], line);
        w.qty[i] = positive(f[3], 'qty', line);
        break;
      case 'C':
        arity(f, 2, 'C', line);
        w.kind[i] = OpKind.Cancel;
        w.id[i] = positive(f[1], 'id', line);
        break;
      case 'A':
        arity(f, 3, 'A', line);
        w.kind[i] = OpKind.Amend;
        w.id[i] = positive(f[1], 'id', line);
        w.qty[i] = int(f[2], 'newQty', line);
        break;
      default:
        throw new CsvParseError(line, `unknown operation ${JSON.stringify(f[0])} (expected L, M, C or A)`);
    }
    i++;
  }
  return w;
}

/** The widest price band of one book, in ticks. */
export const MAX_BAND = 2 ** 31 - 1;

/**
 * The price band that covers every limit price of the workload, and its number of limit orders
 * (1 .. 1 for a workload without any). BenchError BAD_ARGUMENT when one book cannot cover it.
 */
export function workloadBand(w: Workload): { minPrice: number; maxPrice: number; orders: number } {
  let orders = 0;
  let lo = Number.POSITIVE_INFINITY;
  let hi = 0;
  for (let i = 0; i < w.length; i++) {
    if (w.kind[i] !== OpKind.Limit) continue;
    orders++;
    const p = w.price[i] as number;
    if (p < lo) lo = p;
    if (p > hi) hi = p;
  }
  if (orders === 0) {
    lo = 1;
    hi = 1;
  }
  if (hi - lo >= MAX_BAND) {
    throw new BenchError('BAD_ARGUMENT', `the workload's prices span ${hi - lo + 1} ticks (${lo} to ${hi}); one book covers at most ${MAX_BAND}`);
  }
  return { minPrice: lo, maxPrice: hi, orders };
}
