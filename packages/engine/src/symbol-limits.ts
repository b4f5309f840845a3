// A symbol's limits (price band and largest quantity) are part of its history: the command log is
// replayed under the limits its commands were applied with, and other limits would give other
// outcomes (an order accepted then, refused now, and every order it traded with left resting).
// They are kept in `<symbol dir>/LIMITS` when the symbol is first opened, and an open with other
// limits is refused (INVALID_CONFIG) before anything is replayed.

import fs from 'node:fs';
import path from 'node:path';
import { replaceFileSync } from '@gx3/wal';
import { EngineError } from './errors.js';

export const LIMITS_FILE = 'LIMITS';

export interface SymbolLimits {
  readonly minPrice: number;
  readonly maxPrice: number;
  readonly maxQty: number;
}

/** The limits kept in `dir`, or undefined if none are (a symbol opened before limits were kept, or a new one). */
export function readLimits(dir: string): SymbolLimits | undefined {
  const file = path.join(dir, LIMITS_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new EngineError('RECOVERY_FAILED', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    v = undefined;
  }
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  const { minPrice, maxPrice, maxQty } = o;
  if (![minPrice, maxPrice, maxQty].every((n) => Number.isSafeInteger(n) && (n as number) >= 1)) {
    throw new EngineError('RECOVERY_FAILED', `${file} does not hold a symbol's limits ({"minPrice","maxPrice","maxQty"}): ${JSON.stringify(text.slice(0, 80))}`);
  }
  return { minPrice: minPrice as number, maxPrice: maxPrice as number, maxQty: maxQty as number };
}

/** INVALID_CONFIG if `dir` keeps limits other than `limits`. */
export function checkLimits(symbol: string, dir: string, limits: SymbolLimits): void {
  const kept = readLimits(dir);
  if (kept === undefined) return;
  if (kept.minPrice !== limits.minPrice || kept.maxPrice !== limits.maxPrice || kept.maxQty !== limits.maxQty) {
    throw new EngineError(
      'INVALID_CONFIG',
      `${symbol} was opened with prices ${kept.minPrice}..${kept.maxPrice} and quantities up to ${kept.maxQty}, not ${limits.minPrice}..${limits.maxPrice} and ${limits.maxQty}: ` +
        'its command log must be replayed under the limits its commands were applied with (a new symbol, or a new data directory, takes new limits)',
    );
  }
}

/** Keeps `limits` in `dir` (atomically, synced) if it keeps none yet. */
export function keepLimits(dir: string, limits: SymbolLimits): void {
  if (readLimits(dir) !== undefined) return;
  const file = path.join(dir, LIMITS_FILE);
  try {
    replaceFileSync(file, `${JSON.stringify(limits)}\n`);
  } catch (err) {
    throw new EngineError('RECOVERY_FAILED', `cannot write ${file}: ${(err as Error).message}`, { cause: err });
  }
}
