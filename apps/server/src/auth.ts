// API keys, users and rate limits. A key belongs to a user; the engine knows users by a number,
// derived from the user's name (the first 48 bits of its SHA-256, so that it is the same after a
// restart and whatever the order of the keys). Rate limits are token buckets per key.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { makeDirectory, replaceFileSync } from '@gx3/wal';
import { parseApiKeys, type ApiKeyConfig } from './config.js';
import { ApiError, ConfigError } from './errors.js';

export interface User {
  readonly name: string;
  /** The engine's user id. */
  readonly id: number;
}

/** The engine's user id of a user name: stable, in 1..2^48. */
export function userIdOf(name: string): number {
  const h = crypto.createHash('sha256').update(name, 'utf8').digest();
  return h.readUIntBE(0, 6) + 1;
}

/** Failed authentications one address may make: a second each, bursts of 20 (keys cannot be guessed fast). */
const FAILED_AUTH_RATE = 1;
const FAILED_AUTH_BURST = 20;
/** Addresses whose failures are remembered at once (the oldest is forgotten beyond). */
const FAILED_AUTH_ADDRESSES = 100_000;

export class KeyStore {
  private readonly byKey = new Map<string, User>();
  private readonly byId = new Map<number, User>();
  private readonly failures = new RateLimiter(FAILED_AUTH_RATE, FAILED_AUTH_BURST, undefined, 'address (failed authentications)', FAILED_AUTH_ADDRESSES);

  constructor(keys: readonly ApiKeyConfig[]) {
    for (const { user, key } of keys) {
      const id = userIdOf(user);
      const other = this.byId.get(id);
      if (other !== undefined && other.name !== user) throw new ConfigError('INVALID_CONFIG', `users ${other.name} and ${user} map to the same user id; rename one`);
      const u = other ?? { name: user, id };
      this.byId.set(id, u);
      this.byKey.set(key, u);
    }
  }

  /** The key's user, or UNAUTHORIZED. */
  authenticate(key: unknown): User {
    if (typeof key !== 'string' || key === '') throw new ApiError('UNAUTHORIZED', 'missing API key: send it in the x-api-key header');
    const u = this.byKey.get(key);
    if (u === undefined) throw new ApiError('UNAUTHORIZED', 'unknown API key');
    return u;
  }

  /**
   * As `authenticate`, and a key sent that is not known counts against `address`: past its limit
   * the answer is RATE_LIMITED (429, with the wait), not UNAUTHORIZED.
   */
  authenticateFrom(key: unknown, address: string | undefined): User {
    try {
      return this.authenticate(key);
    } catch (err) {
      if (typeof key === 'string' && key !== '') this.failures.take(address ?? '');
      throw err;
    }
  }

  userById(id: number): User | undefined {
    return this.byId.get(id);
  }

  get users(): User[] {
    return [...this.byId.values()];
  }
}

const DEMO_FILE = 'demo-api-keys.json';
const DEMO_USERS = ['alice', 'bob'];

/**
 * The demo keys: made at random on the first start and kept in the data directory (mode 0600), so
 * that they stay the same across restarts. Returns them and whether they were just made.
 */
export function demoKeys(dataDir: string): { keys: ApiKeyConfig[]; file: string; created: boolean } {
  const file = path.join(dataDir, DEMO_FILE);
  if (fs.existsSync(file)) {
    let keys: unknown;
    try {
      keys = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ConfigError('CONFIG_FILE', `cannot read the demo keys in ${file}: ${(err as Error).message}; delete it to make new ones`, { cause: err });
    }
    if (!Array.isArray(keys)) throw new ConfigError('CONFIG_FILE', `${file} does not hold a list of {user, key}; delete it to make new ones`);
    // Checked as configured keys are: a key that could never be sent, or listed twice, is refused.
    try {
      return { keys: parseApiKeys(keys, file), file, created: false };
    } catch (err) {
      throw new ConfigError('CONFIG_FILE', `${(err as Error).message}; delete it to make new ones`, { cause: err });
    }
  }
  const keys = DEMO_USERS.map((user) => ({ user, key: `demo-${user}-${crypto.randomBytes(12).toString('hex')}` }));
  // Synced before it is renamed into place: after a power cut the keys printed at this start are
  // there, not an empty file that stops the next start. A data directory they cannot be written
  // in is a configuration error, as it is with configured keys (the engine's lock).
  try {
    makeDirectory(dataDir);
    replaceFileSync(file, JSON.stringify(keys, null, 2) + '\n', { mode: 0o600 });
  } catch (err) {
    throw new ConfigError('INVALID_CONFIG', `dataDir (GX3_DATA_DIR / --data-dir): cannot write the demo keys in ${file}: ${(err as Error).message}`, { cause: err });
  }
  return { keys, file, created: true };
}

/** Token buckets per key: `rate` tokens a second, up to `burst`. */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
    /** What one bucket belongs to, for the messages. */
    private readonly scope = 'API key',
    /** Buckets kept at once (the oldest made is forgotten beyond: for keys a client chooses, such as addresses). */
    private readonly maxBuckets = Number.POSITIVE_INFINITY,
  ) {}

  /** Takes `n` tokens for `key` (at least 1), or throws RATE_LIMITED with the seconds to wait. */
  take(key: string, n = 1): void {
    const b = this.bucket(key);
    if (!(n >= 1)) n = 1;
    // No wait lets it pass: no retryAfter (a client that honours one would send it again for ever).
    if (n > this.burst) throw new ApiError('RATE_LIMITED', `a request counting ${n} is more than the burst of ${this.burst} allowed per ${this.scope}: it can never pass; split it`);
    if (b.tokens < n) {
      const wait = Math.max(1, Math.ceil((n - b.tokens) / this.rate));
      throw new ApiError('RATE_LIMITED', `rate limit of ${this.rate} requests per second (burst ${this.burst}) exceeded for this ${this.scope}`, wait);
    }
    b.tokens -= n;
  }

  /**
   * Charges `n` more tokens for `key` without refusing (the bucket may go below zero: the next
   * requests wait longer): for the cost of a request found once it was taken (its second engine
   * command, the depth of a book subscription), whatever the burst.
   */
  charge(key: string, n: number): void {
    if (n > 0) this.bucket(key).tokens -= n;
  }

  /** Gives back `n` tokens taken for `key` (up to the burst). */
  refund(key: string, n: number): void {
    const b = this.bucket(key);
    b.tokens = Math.min(this.burst, b.tokens + n);
  }

  private bucket(key: string): { tokens: number; at: number } {
    const t = this.now();
    let b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size >= this.maxBuckets) this.buckets.delete(this.buckets.keys().next().value as string);
      b = { tokens: this.burst, at: t };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.rate);
      b.at = t;
    }
    return b;
  }
}
