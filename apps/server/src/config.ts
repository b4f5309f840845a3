// The server's configuration: defaults, then a JSON config file, then environment variables, then
// command-line flags (each later source overrides the earlier ones). Every value is checked here,
// so that a bad setting stops the server at start with a ConfigError naming it.

import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { isReservedName } from '@gx3/engine';
import { streamPrefixProblem, subjectPrefixProblem, withoutCredentials } from '@gx3/outbox-publisher';
import { ConfigError } from './errors.js';

export interface InstrumentConfig {
  readonly symbol: string;
  /** Price band in ticks, inclusive. */
  readonly minPrice: number;
  readonly maxPrice: number;
  /** Largest quantity of one order. */
  readonly maxQty: number;
}

export interface ApiKeyConfig {
  readonly user: string;
  readonly key: string;
}

export interface ServerConfig {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly durability: 'none' | 'batch' | 'interval';
  readonly codec: 'binary' | 'json';
  readonly instruments: readonly InstrumentConfig[];
  /** Undefined: the demo keys (made on first start, kept in the data directory, printed). */
  readonly apiKeys: readonly ApiKeyConfig[] | undefined;
  /** `memory` or a NATS URL (`nats://...`). */
  readonly bus: string;
  /**
   * With a NATS bus: the prefix of each symbol's stream (`<prefix>_<SYMBOL>`) and of its subject
   * (`<prefix>.<SYMBOL>`). Deployments that share a NATS server each need their own.
   */
  readonly natsStreamPrefix: string;
  readonly natsSubjectPrefix: string;
  /** Requests (or orders over WebSocket) per second per API key, and the burst allowed. */
  readonly rateLimit: number;
  readonly rateBurst: number;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Largest request body (and WebSocket frame), in bytes. */
  readonly bodyLimit: number;
  /** Client order ids remembered for de-duplication, per user (each user's last this many). */
  readonly clientOrderIdWindow: number;
  /** Recent trades kept per symbol. */
  readonly recentTrades: number;
  /** Terminal orders (filled, canceled, rejected) kept for queries. */
  readonly orderHistory: number;
  /** Time a client has to send a whole HTTP request (headers and body), in milliseconds. */
  readonly requestTimeoutMs: number;
  /** WebSocket heartbeat: a ping this often; a connection silent since the last one is cut (0: none). */
  readonly wsHeartbeatMs: number;
}

export const DEMO_INSTRUMENTS: readonly InstrumentConfig[] = [
  { symbol: 'BTCUSDT', minPrice: 1, maxPrice: 1_000_000_000, maxQty: 1_000_000_000 },
  { symbol: 'ETHUSDT', minPrice: 1, maxPrice: 1_000_000_000, maxQty: 1_000_000_000 },
];

export const DEFAULTS: ServerConfig = {
  host: '127.0.0.1',
  port: 8080,
  dataDir: path.resolve('data'),
  durability: 'batch',
  codec: 'binary',
  instruments: DEMO_INSTRUMENTS,
  apiKeys: undefined,
  bus: 'memory',
  natsStreamPrefix: 'GX3',
  natsSubjectPrefix: 'gx3.events',
  rateLimit: 5000,
  rateBurst: 10_000,
  logLevel: 'info',
  bodyLimit: 1 << 20,
  clientOrderIdWindow: 100_000,
  recentTrades: 1000,
  orderHistory: 100_000,
  requestTimeoutMs: 30_000,
  wsHeartbeatMs: 30_000,
};

/** Setting name → environment variable and flag. */
const SETTINGS = {
  host: { env: 'GX3_HOST', flag: 'host' },
  port: { env: 'GX3_PORT', flag: 'port' },
  dataDir: { env: 'GX3_DATA_DIR', flag: 'data-dir' },
  durability: { env: 'GX3_DURABILITY', flag: 'durability' },
  codec: { env: 'GX3_CODEC', flag: 'codec' },
  instruments: { env: 'GX3_INSTRUMENTS', flag: 'instruments' },
  apiKeys: { env: 'GX3_API_KEYS', flag: 'api-keys' },
  bus: { env: 'GX3_BUS', flag: 'bus' },
  natsStreamPrefix: { env: 'GX3_NATS_STREAM_PREFIX', flag: 'nats-stream-prefix' },
  natsSubjectPrefix: { env: 'GX3_NATS_SUBJECT_PREFIX', flag: 'nats-subject-prefix' },
  rateLimit: { env: 'GX3_RATE_LIMIT', flag: 'rate-limit' },
  rateBurst: { env: 'GX3_RATE_BURST', flag: 'rate-burst' },
  logLevel: { env: 'GX3_LOG_LEVEL', flag: 'log-level' },
  bodyLimit: { env: 'GX3_BODY_LIMIT', flag: 'body-limit' },
  clientOrderIdWindow: { env: 'GX3_CLIENT_ORDER_ID_WINDOW', flag: 'client-order-id-window' },
  recentTrades: { env: 'GX3_RECENT_TRADES', flag: 'recent-trades' },
  orderHistory: { env: 'GX3_ORDER_HISTORY', flag: 'order-history' },
  requestTimeoutMs: { env: 'GX3_REQUEST_TIMEOUT_MS', flag: 'request-timeout-ms' },
  wsHeartbeatMs: { env: 'GX3_WS_HEARTBEAT_MS', flag: 'ws-heartbeat-ms' },
} as const satisfies Record<keyof ServerConfig, { env: string; flag: string }>;

type SettingName = keyof typeof SETTINGS;

export const USAGE = `usage: gx3-server [--config FILE] [--host H] [--port N] [--data-dir DIR]
  [--durability none|batch|interval] [--codec binary|json] [--bus memory|nats://HOST:PORT]
  [--nats-stream-prefix PREFIX] [--nats-subject-prefix PREFIX]
  [--instruments SYMBOL:MINPRICE:MAXPRICE:MAXQTY,...] [--api-keys USER:KEY,...]
  [--rate-limit N] [--rate-burst N] [--log-level LEVEL] [--body-limit BYTES]
  [--client-order-id-window N] [--recent-trades N] [--order-history N] [--request-timeout-ms N]
  [--ws-heartbeat-ms N]
Every setting also has an environment variable (GX3_PORT, GX3_DATA_DIR, GX3_BUS, GX3_API_KEYS, ...;
see the README) and a key in the JSON config file (GX3_CONFIG or --config). Flags override the
environment, which overrides the file.`;

/** Reads the configuration from `argv` (without the node and script), `env` and the config file they name. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ServerConfig & { help: boolean } {
  let parsed;
  try {
    // A flag's value that starts with a dash (`--port -1`) is joined to it (`--port=-1`): node's
    // parseArgs would refuse it as ambiguous, without saying what the setting must be.
    const flags = new Set(['--config', ...Object.values(SETTINGS).map((s) => `--${s.flag}`)]);
    const args: string[] = [];
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i] as string;
      const value = argv[i + 1];
      if (flags.has(a) && value !== undefined && /^-\d/.test(value)) {
        args.push(`${a}=${value}`);
        i++;
      } else {
        args.push(a);
      }
    }
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        config: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        ...Object.fromEntries(Object.values(SETTINGS).map((s) => [s.flag, { type: 'string' as const }])),
      },
    }).values as Record<string, string | boolean | undefined>;
  } catch (err) {
    // A stray value (a key given without its flag, or after a space inside --api-keys) is not
    // echoed: it may be a secret.
    const code = (err as { code?: unknown }).code;
    const message = code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL' ? 'an argument that is not a flag, nor the value of one (not shown: it may hold an API key)' : (err as Error).message;
    throw new ConfigError('INVALID_CONFIG', `${message}\n${USAGE}`);
  }
  const raw: Partial<Record<SettingName, unknown>> = {};
  const file = (parsed.config as string | undefined) ?? env.GX3_CONFIG;
  if (file !== undefined && file !== '') {
    const values = readConfigFile(file);
    for (const name of Object.keys(SETTINGS) as SettingName[]) if (Object.hasOwn(values, name)) raw[name] = values[name];
  }
  for (const [name, s] of Object.entries(SETTINGS) as [SettingName, { env: string; flag: string }][]) {
    const e = env[s.env];
    if (e !== undefined && e !== '') raw[name] = e;
    const f = parsed[s.flag];
    if (typeof f === 'string') raw[name] = f;
  }
  return { ...resolveConfig(raw), help: parsed.help === true };
}

/**
 * Where a text that is not JSON stops being one: the length of its longest prefix that JSON could
 * still complete (JSON.parse of it succeeds or runs out of input), found by bisection.
 */
function jsonErrorAt(text: string): number {
  const viable = (n: number): boolean => {
    try {
      JSON.parse(text.slice(0, n));
      return true;
    } catch (err) {
      // Out of input: said so, or an error placed at the prefix's very end (an unterminated string, a
      // member name or value expected).
      const message = (err as Error).message;
      if (/end of JSON input|Unterminated string/i.test(message)) return true;
      const at = /at position (\d+)/.exec(message)?.[1];
      return at !== undefined && Number(at) >= n;
    }
  };
  // Cut short (it could still be completed): it fails at its end.
  if (viable(text.length)) return text.length;
  let lo = 0; // viable
  let hi = text.length; // not viable
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (viable(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a byte order mark, as some editors write
  } catch (err) {
    throw new ConfigError('CONFIG_FILE', `cannot read config file ${file}: ${(err as Error).message}`, { cause: err });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // Where, not what: V8's message quotes the text around the error, which may be an API key.
    throw new ConfigError('CONFIG_FILE', `config file ${file} is not valid JSON (at character ${jsonErrorAt(text)})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigError('CONFIG_FILE', `config file ${file} must hold a JSON object`);
  for (const key of Object.keys(value)) {
    if (!Object.hasOwn(SETTINGS, key)) throw new ConfigError('CONFIG_FILE', `config file ${file}: unknown setting ${JSON.stringify(key)} (known: ${Object.keys(SETTINGS).join(', ')})`);
  }
  return value as Record<string, unknown>;
}

/** Checks raw settings (strings from the environment or flags, or JSON values from the file) over the defaults. */
export function resolveConfig(raw: Partial<Record<SettingName, unknown>>): ServerConfig {
  const pick = <K extends SettingName>(name: K, parse: (v: unknown, where: string) => ServerConfig[K]): ServerConfig[K] => {
    const v = raw[name];
    if (v === undefined) return DEFAULTS[name];
    return parse(v, `${name} (${SETTINGS[name].env} / --${SETTINGS[name].flag})`);
  };
  const config: ServerConfig = {
    host: pick('host', str),
    port: pick('port', (v, w) => int(v, w, 0, 65_535)),
    dataDir: pick('dataDir', (v, w) => path.resolve(str(v, w))),
    durability: pick('durability', (v, w) => oneOf(v, w, ['none', 'batch', 'interval'] as const)),
    codec: pick('codec', (v, w) => oneOf(v, w, ['binary', 'json'] as const)),
    instruments: pick('instruments', parseInstruments),
    apiKeys: pick('apiKeys', parseApiKeys),
    bus: pick('bus', parseBus),
    natsStreamPrefix: pick('natsStreamPrefix', (v, w) => checked(v, w, streamPrefixProblem)),
    natsSubjectPrefix: pick('natsSubjectPrefix', (v, w) => checked(v, w, subjectPrefixProblem)),
    rateLimit: pick('rateLimit', (v, w) => int(v, w, 1, 1e9)),
    rateBurst: pick('rateBurst', (v, w) => int(v, w, 1, 1e9)),
    logLevel: pick('logLevel', (v, w) => oneOf(v, w, ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const)),
    bodyLimit: pick('bodyLimit', (v, w) => int(v, w, 1024, 1 << 30)),
    clientOrderIdWindow: pick('clientOrderIdWindow', (v, w) => int(v, w, 1, 1e8)),
    recentTrades: pick('recentTrades', (v, w) => int(v, w, 1, 1e7)),
    orderHistory: pick('orderHistory', (v, w) => int(v, w, 1, 1e8)),
    requestTimeoutMs: pick('requestTimeoutMs', (v, w) => int(v, w, 100, 3_600_000)),
    wsHeartbeatMs: pick('wsHeartbeatMs', (v, w) => heartbeat(v, w)),
  };
  return config;
}

function bad(where: string, what: string): ConfigError {
  return new ConfigError('INVALID_CONFIG', `${where}: ${what}`);
}

function str(v: unknown, where: string): string {
  if (typeof v !== 'string' || v === '') throw bad(where, `must be a non-empty string, got ${JSON.stringify(v)}`);
  return v;
}

/** 0 (no heartbeat) or 100 ms .. 1 hour. */
function heartbeat(v: unknown, where: string): number {
  const n = int(v, where, 0, 3_600_000);
  if (n > 0 && n < 100) throw bad(where, `must be 0 (no heartbeat) or 100..3600000 milliseconds, got ${JSON.stringify(v)}`);
  return n;
}

function checked(v: unknown, where: string, problem: (v: unknown) => string | undefined): string {
  const why = problem(v);
  if (why !== undefined) throw bad(where, why);
  return v as string;
}

function int(v: unknown, where: string, min: number, max: number): number {
  const n = typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v.trim()) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > max) throw bad(where, `must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
  return n;
}

function oneOf<T extends string>(v: unknown, where: string, values: readonly T[]): T {
  if (typeof v !== 'string' || !values.includes(v as T)) throw bad(where, `must be one of ${values.join(', ')}, got ${JSON.stringify(v)}`);
  return v as T;
}

// A letter or digit first: the engine keeps a symbol's logs in <dataDir>/<symbol>, so `.` and `..` are not symbols.
// 1-32 characters of A-Z 0-9 . _ -, the first a letter or digit, with no `.` at the end or beside
// another (a symbol ends its NATS subject, whose tokens the dots separate: `BTC.` or `A..B` would
// make an invalid subject).
const SYMBOL = /^(?=.{1,32}$)[A-Z0-9][A-Z0-9_-]*(?:\.[A-Z0-9_-]+)*$/;

function parseInstruments(v: unknown, where: string): InstrumentConfig[] {
  // From the environment or a flag: SYMBOL:MINPRICE:MAXPRICE:MAXQTY,...; from the file: an array of objects.
  const items: unknown[] =
    typeof v === 'string'
      ? v.split(',').map((part) => {
          const [symbol, minPrice, maxPrice, maxQty, ...rest] = part.trim().split(':');
          if (rest.length > 0 || maxQty === undefined) throw bad(where, `${JSON.stringify(part)} must be SYMBOL:MINPRICE:MAXPRICE:MAXQTY`);
          return { symbol, minPrice, maxPrice, maxQty };
        })
      : Array.isArray(v)
        ? v
        : [];
  if (items.length === 0) throw bad(where, 'must list at least one instrument');
  const seen = new Set<string>();
  return items.map((item, i) => {
    if (typeof item !== 'object' || item === null) throw bad(where, `instrument ${i + 1} must be an object`);
    const o = item as Record<string, unknown>;
    const at = `${where}: instrument ${i + 1}`;
    const symbol = str(o.symbol, `${at} symbol`);
    if (!SYMBOL.test(symbol)) throw bad(at, `symbol ${JSON.stringify(symbol)} must be 1-32 characters of A-Z 0-9 . _ -, the first a letter or digit, with no . at the end or beside another`);
    if (isReservedName(symbol)) throw bad(at, `symbol ${symbol} names the data directory's lock file (LOCK, LOCK.*): choose another symbol`);
    if (seen.has(symbol)) throw bad(at, `symbol ${symbol} is listed twice`);
    seen.add(symbol);
    const minPrice = int(o.minPrice, `${at} minPrice`, 1, Number.MAX_SAFE_INTEGER);
    const maxPrice = int(o.maxPrice, `${at} maxPrice`, minPrice, minPrice + (2 ** 31 - 2)); // not (minPrice + 2^31) - 2: that sum can round
    const maxQty = int(o.maxQty, `${at} maxQty`, 1, Number.MAX_SAFE_INTEGER);
    for (const k of Object.keys(o)) if (!['symbol', 'minPrice', 'maxPrice', 'maxQty'].includes(k)) throw bad(at, `unknown field ${JSON.stringify(k)}`);
    return { symbol, minPrice, maxPrice, maxQty };
  });
}

const USER = /^[A-Za-z0-9._-]{1,64}$/;
const KEY = /^[\x21-\x7e]+$/;

/** Checks a list of API keys (or USER:KEY pairs separated by commas) as configured keys are checked; INVALID_CONFIG naming `where`. */
export function parseApiKeys(v: unknown, where: string): ApiKeyConfig[] {
  const items: unknown[] =
    typeof v === 'string'
      ? v.split(',').map((pair, n) => {
          const i = pair.indexOf(':');
          // The pair is not echoed: it holds a key (or part of one).
          if (i < 0) throw bad(where, `entry ${n + 1} (of the list separated by commas) must be USER:KEY (a key cannot hold a comma in this form)`);
          return { user: pair.slice(0, i).trim(), key: pair.slice(i + 1).trim() };
        })
      : Array.isArray(v)
        ? v
        : [];
  if (items.length === 0) throw bad(where, 'must list at least one USER:KEY pair');
  const keys = new Set<string>();
  // In the form separated by commas, a key holding a comma (and then a colon) splits into pieces
  // that look like pairs: an entry is named by its position only, its user never shown.
  const split = typeof v === 'string';
  return items.map((item, i) => {
    const o = (typeof item === 'object' && item !== null ? item : {}) as Record<string, unknown>;
    for (const k of Object.keys(o)) if (k !== 'user' && k !== 'key') throw bad(where, `key ${i + 1}: unknown field ${JSON.stringify(k)}`);
    const user = split ? (typeof o.user === 'string' && o.user !== '' ? o.user : '') : str(o.user, `${where}: key ${i + 1} user`);
    if (split && user === '') throw bad(where, `entry ${i + 1} has no user before its ':'`);
    if (typeof o.key !== 'string' || o.key === '') throw bad(where, `key ${i + 1} key must be a non-empty string (the value is not shown: it may be a key)`);
    const key = o.key;
    const who = split ? `entry ${i + 1}` : `user ${user}`;
    // HTTP clients and servers trim header values: a key with spaces around it could never be sent.
    if (!KEY.test(key)) throw bad(where, `the key of ${who} must be visible ASCII characters, without spaces`);
    if (!USER.test(user)) throw bad(where, split ? `the user of entry ${i + 1} must be 1-64 characters of A-Z a-z 0-9 . _ - (not shown: with a comma in a key, it may be part of one)` : `user ${JSON.stringify(user)} must be 1-64 characters of A-Z a-z 0-9 . _ -`);
    if (key.length < 8) throw bad(where, `the key of ${who} must be at least 8 characters`);
    if (keys.has(key)) throw bad(where, `a key is listed twice (${who})`);
    keys.add(key);
    return { user, key };
  });
}

function parseBus(v: unknown, where: string): string {
  if (typeof v !== 'string' || v.trim() === '') throw bad(where, 'must be memory or a NATS URL (nats://host:port)');
  const s = v.trim();
  if (s === 'memory') return s;
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    // Not echoed: what does not parse as a URL may hold a password anywhere.
    throw bad(where, 'must be memory or a NATS URL (nats://host:port); the value given is not a URL (not shown: it may hold a password)');
  }
  if ((url.protocol !== 'nats:' && url.protocol !== 'tls:') || url.hostname === '') throw bad(where, `must be memory or a NATS URL (nats://host:port), got ${JSON.stringify(withoutCredentials(s))}`);
  // A NATS server URL has no path, query or fragment: one there is most likely a password or token
  // holding `/`, `?` or `#` (write it percent-encoded), not shown.
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') {
    throw bad(where, 'must be a NATS URL without a path, query or fragment (nats://[user:password@]host:port; write a /, ? or # in a password percent-encoded); not shown: it may hold a password');
  }
  return s;
}

export { withoutCredentials };
