// The identity of an outbox's history: a random id made once, when the outbox is first opened, and
// kept in its directory (`HISTORY`). Event ids (`<symbol>:<eventSeq>`) are unique only within one
// history: an outbox started afresh (a wiped data directory) numbers its events from 1 again. A bus
// that keeps events across such restarts (JetStream) stores the history id with each event and
// refuses another history's events (HISTORY_MISMATCH) instead of taking them for duplicates of the
// old ones and dropping them.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { replaceFileSync } from '@gx3/wal';
import { OutboxError } from './errors.js';

export const HISTORY_FILE = 'HISTORY';
const FORMAT = /^[0-9a-f]{32}$/;

/** The history id kept in `dir`, or undefined if there is none (an outbox made before history ids). */
export function readHistory(dir: string): string | undefined {
  return readHistories(dir)?.current;
}

/**
 * The history ids kept in `dir`: the current one and, after a renewal, the one before it (a second
 * line), or undefined if there is none. The previous id lets a cursor written for it (a crash in the
 * middle of a renewal) still be known as this outbox's own.
 */
export function readHistories(dir: string): { current: string; previous?: string } | undefined {
  const file = path.join(dir, HISTORY_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new OutboxError('HISTORY_IO', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  const lines = text.trim().split('\n');
  const [current, previous] = lines;
  if (lines.length > 2 || current === undefined || !FORMAT.test(current) || (previous !== undefined && !FORMAT.test(previous))) {
    throw new OutboxError('HISTORY_CORRUPT', `${file} does not hold a history id (32 hex digits, and at most the previous one on a second line): ${JSON.stringify(text.slice(0, 80))}`);
  }
  return previous === undefined ? { current } : { current, previous };
}

/** The history id of the outbox in `dir`, made (atomically, synced) if it has none yet. */
export function ensureHistory(dir: string): string {
  const known = readHistory(dir);
  if (known !== undefined) return known;
  return renewHistory(dir);
}

/**
 * Gives the outbox in `dir` a new history id (atomically, synced) and returns it: for an outbox that
 * lost events a bus may hold (their ids will be used again by other events).
 */
export function renewHistory(dir: string): string {
  const id = crypto.randomBytes(16).toString('hex');
  const file = path.join(dir, HISTORY_FILE);
  const before = readHistory(dir);
  try {
    replaceFileSync(file, before === undefined ? `${id}\n` : `${id}\n${before}\n`);
  } catch (err) {
    throw new OutboxError('HISTORY_IO', `cannot write ${file}: ${(err as Error).message}`, { cause: err });
  }
  return id;
}
