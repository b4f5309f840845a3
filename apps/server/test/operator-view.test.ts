// A review of what an operator sees: /health (and /health/ready, /health/live) and /metrics, read
// over real HTTP, in every state the server can be in: serving; a symbol halted by an injected I/O
// error on its command log (a write), on its outbox (an fsync) or by a full disk when its outbox
// rolls to a new segment (ENOSPC); a publisher whose bus refuses; a feed that could not read its
// outbox; shutting down; starting. In each: the HTTP status the README promises (200 when ready,
// 503 with Retry-After otherwise; live 200 while the process serves), the per-symbol fields, and the
// Prometheus metrics (names, labels, types, and values that match what the test did: commands by
// kind and outcome, HTTP requests by route and status, WebSocket connections, watermarks, halted
// and feed gauges, the publisher's last event, lag and failures).
//
// Every scrape is checked as Prometheus text format (HELP and TYPE once per family before its
// samples, samples of the family's names only, label values escaped, no duplicate series,
// histogram buckets cumulative with +Inf equal to _count) and against the previous scrape of the
// same server: a counter never goes down, nor disappears. The symbols carry `.` and `-`.
//
// No timing assertions: the tests wait for conditions only.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Event } from '@gx3/codecs';
import { MemoryBus, OutboxError, type BusMessage } from '@gx3/outbox-publisher';
import { nodeFileIO, type FileIO } from '@gx3/wal';
import { WebSocket } from 'ws';
import { resolveConfig, type InstrumentConfig } from '../src/config.js';
import { startServer, type RunningServer } from '../src/server.js';
import { ALICE, API_KEYS, BOB, CAROL, pathAwareIO, removeTmpDirs, request, SEGMENT, silentLogger, tmpDir, until, WsClient, wsUrl, type Res, type WsMsg } from './helpers.js';

afterAll(removeTmpDirs);

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
});

/** Two symbols whose names carry `.` and `-` (allowed by the config, and label values as they are). */
const A = 'BTC.USD-1';
const B = 'ETH-USD.2';
const INSTRUMENTS: InstrumentConfig[] = [
  { symbol: A, minPrice: 100, maxPrice: 10_000, maxQty: 1000 },
  { symbol: B, minPrice: 100, maxPrice: 10_000, maxQty: 1000 },
];

// ---------------------------------------------------------------------------------------------
// Faults in the file layer, per symbol and per log

interface Faults {
  /** Symbols whose command log (cmd) or outbox (ev) writes fail with EIO. */
  writes: { cmd: Set<string>; ev: Set<string> };
  /** Symbols whose command log (cmd) or outbox (ev) fsyncs fail with EIO. */
  syncs: { cmd: Set<string>; ev: Set<string> };
  /** Symbols whose disk is full for new files of the command log (cmd) or outbox (ev): a spare segment cannot be preallocated, a new segment cannot be created (ENOSPC). */
  noSpace: { cmd: Set<string>; ev: Set<string> };
  /** Symbols whose outbox reads (by the gateway's feed) fail with EIO. */
  evRead: Set<string>;
  /** While set, every asynchronous fsync is held back until `releaseSyncs()`. */
  holdSyncs: boolean;
}

function errno(code: string, what: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${what} (injected by the test)`), { code });
}

function faultyIO(): { io: FileIO; faults: Faults; releaseSyncs: () => void } {
  const faults: Faults = { writes: { cmd: new Set(), ev: new Set() }, syncs: { cmd: new Set(), ev: new Set() }, noSpace: { cmd: new Set(), ev: new Set() }, evRead: new Set(), holdSyncs: false };
  const held: (() => void)[] = [];
  const inLog = (set: Set<string>, p: string, log: 'cmd' | 'ev'): boolean => {
    for (const s of set) if (p.includes(`${path.sep}${s}${path.sep}${log}${path.sep}`)) return true;
    return false;
  };
  const failsSync = (p: string): boolean => inLog(faults.syncs.cmd, p, 'cmd') || inLog(faults.syncs.ev, p, 'ev');
  const io = pathAwareIO((pathOf) => ({
    preallocate: (p, size, done) => {
      if (inLog(faults.noSpace.cmd, p, 'cmd') || inLog(faults.noSpace.ev, p, 'ev')) {
        setImmediate(() => {
          done(errno('ENOSPC', `no space left on device, write '${p}'`));
        });
        return;
      }
      nodeFileIO.preallocate(p, size, done);
    },
    write: (fd, buf, offset, length, position) => {
      const p = pathOf(fd);
      if (inLog(faults.writes.cmd, p, 'cmd') || inLog(faults.writes.ev, p, 'ev')) throw errno('EIO', 'i/o error, write');
      return nodeFileIO.write(fd, buf, offset, length, position);
    },
    read: (fd, buf, offset, length, position) => {
      if (inLog(faults.evRead, pathOf(fd), 'ev')) throw errno('EIO', 'i/o error, read');
      return nodeFileIO.read(fd, buf, offset, length, position);
    },
    syncSync: (fd) => {
      if (failsSync(pathOf(fd))) throw errno('EIO', 'i/o error, fdatasync');
      nodeFileIO.syncSync(fd);
    },
    sync: (fd, done) => {
      const run = (): void => {
        if (failsSync(pathOf(fd))) {
          setImmediate(() => {
            done(errno('EIO', 'i/o error, fdatasync'));
          });
          return;
        }
        nodeFileIO.sync(fd, done);
      };
      if (faults.holdSyncs) held.push(run);
      else run();
    },
  }));
  // pathAwareIO records the path of each descriptor in its own `open`: a new segment file (created
  // exclusively) on a full disk fails before it.
  const withNoSpace: FileIO = {
    ...io,
    open: (p, flags) => {
      if (flags === 'wx+' && (inLog(faults.noSpace.cmd, p, 'cmd') || inLog(faults.noSpace.ev, p, 'ev'))) throw errno('ENOSPC', `no space left on device, open '${p}'`);
      return io.open(p, flags);
    },
  };
  return {
    io: withNoSpace,
    faults,
    releaseSyncs: () => {
      faults.holdSyncs = false;
      for (const f of held.splice(0)) f();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The Prometheus text format, checked strictly

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Family {
  name: string;
  help: string;
  type: string;
}

interface Exposition {
  text: string;
  families: Map<string, Family>;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A sample value as Go's ParseFloat reads it (what the format specifies: NaN and Inf in any case, as prom-client writes `Nan`). */
function parseValue(raw: string, line: string): number {
  if (/^\+?inf(inity)?$/i.test(raw)) return Infinity;
  if (/^-inf(inity)?$/i.test(raw)) return -Infinity;
  if (/^nan$/i.test(raw)) return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw)) throw new Error(`not a sample value: ${JSON.stringify(raw)} in ${JSON.stringify(line)}`);
  return Number(raw);
}

/** Parses the label set `{a="x",b="y"}` (with the format's escapes: \\ \" \n), strictly. */
function parseLabels(s: string, line: string): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {};
  let i = 1;
  for (;;) {
    if (s[i] === '}') return { labels, rest: s.slice(i + 1) };
    const m = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(s.slice(i));
    if (m === null) throw new Error(`bad label in ${JSON.stringify(line)}`);
    const name = m[1] as string;
    if (!LABEL.test(name) || name.startsWith('__')) throw new Error(`bad label name ${name} in ${JSON.stringify(line)}`);
    if (Object.hasOwn(labels, name)) throw new Error(`label ${name} twice in ${JSON.stringify(line)}`);
    i += m[0].length;
    let v = '';
    for (;;) {
      const c = s[i];
      if (c === undefined) throw new Error(`unterminated label value in ${JSON.stringify(line)}`);
      if (c === '"') break;
      if (c === '\\') {
        const n = s[i + 1];
        if (n === '\\') v += '\\';
        else if (n === '"') v += '"';
        else if (n === 'n') v += '\n';
        else throw new Error(`bad escape \\${n ?? ''} in ${JSON.stringify(line)}`);
        i += 2;
        continue;
      }
      v += c;
      i++;
    }
    labels[name] = v;
    i++;
    if (s[i] === ',') i++;
    else if (s[i] !== '}') throw new Error(`expected , or } in ${JSON.stringify(line)}`);
  }
}

/** The names a family's samples may have. */
function sampleNamesOf(f: Family): string[] {
  if (f.type === 'histogram') return [`${f.name}_bucket`, `${f.name}_sum`, `${f.name}_count`];
  if (f.type === 'summary') return [f.name, `${f.name}_sum`, `${f.name}_count`];
  return [f.name];
}

function seriesKey(name: string, labels: Record<string, string>): string {
  return `${name}{${Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(',')}}`;
}

/** Parses a Prometheus text exposition (format 0.0.4), failing on anything not valid in it. */
function parseExposition(text: string): Exposition {
  const families = new Map<string, Family>();
  const samples: Sample[] = [];
  const seen = new Set<string>();
  let current: Family | undefined;
  let pendingHelp: { name: string; help: string } | undefined;
  const lines = text.split('\n');
  if (lines[lines.length - 1] !== '') throw new Error('the exposition does not end with a newline');
  for (const line of lines) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const help = /^# HELP (\S+) (.*)$/.exec(line);
      const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
      if (help !== null) {
        const name = help[1] as string;
        if (!NAME.test(name)) throw new Error(`bad metric name in ${JSON.stringify(line)}`);
        if (families.has(name) || pendingHelp !== undefined) throw new Error(`HELP of ${name} twice, or without its TYPE`);
        // HELP text escapes: only \\ and \n.
        if (/\\[^\\n]/.test((help[2] as string).replace(/\\\\/g, ''))) throw new Error(`bad escape in ${JSON.stringify(line)}`);
        pendingHelp = { name, help: help[2] as string };
        continue;
      }
      if (type !== null) {
        const name = type[1] as string;
        if (families.has(name)) throw new Error(`TYPE of ${name} twice`);
        if (pendingHelp === undefined || pendingHelp.name !== name) throw new Error(`TYPE of ${name} without its HELP just before`);
        current = { name, help: pendingHelp.help, type: type[2] as string };
        families.set(name, current);
        pendingHelp = undefined;
        continue;
      }
      throw new Error(`a comment that is neither HELP nor TYPE: ${JSON.stringify(line)}`);
    }
    if (pendingHelp !== undefined) throw new Error(`HELP of ${pendingHelp.name} without a TYPE`);
    const nm = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (nm === null) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const name = nm[0];
    let rest = line.slice(name.length);
    let labels: Record<string, string> = {};
    if (rest.startsWith('{')) ({ labels, rest } = parseLabels(rest, line));
    const vm = /^ (\S+)( -?\d+)?$/.exec(rest);
    if (vm === null) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const value = parseValue(vm[1] as string, line);
    if (current === undefined || !sampleNamesOf(current).includes(name)) throw new Error(`sample ${name} outside its family (current: ${current?.name ?? 'none'})`);
    if (current.type === 'histogram' && name.endsWith('_bucket') && labels.le === undefined) throw new Error(`bucket without le: ${line}`);
    if ((current.type === 'counter' || name.endsWith('_count') || name.endsWith('_bucket')) && !(value >= 0)) throw new Error(`a negative count: ${line}`);
    const key = seriesKey(name, labels);
    if (seen.has(key)) throw new Error(`duplicate series ${key}`);
    seen.add(key);
    samples.push({ name, labels, value });
  }
  // Histograms: buckets cumulative per label set, +Inf equal to _count.
  for (const f of families.values()) {
    if (f.type !== 'histogram') continue;
    const groups = new Map<string, Sample[]>();
    for (const s of samples.filter((x) => x.name === `${f.name}_bucket`)) {
      const { le: _le, ...rest } = s.labels;
      const k = seriesKey('', rest);
      groups.set(k, [...(groups.get(k) ?? []), s]);
    }
    for (const [k, buckets] of groups) {
      const sorted = [...buckets].sort((a, b) => parseValue(a.labels.le as string, '') - parseValue(b.labels.le as string, ''));
      for (let i = 1; i < sorted.length; i++) if ((sorted[i] as Sample).value < (sorted[i - 1] as Sample).value) throw new Error(`${f.name} buckets ${k} are not cumulative`);
      const inf = sorted.find((s) => s.labels.le === '+Inf');
      if (inf === undefined) throw new Error(`${f.name} ${k} has no +Inf bucket`);
      const count = samples.find((s) => s.name === `${f.name}_count` && seriesKey('', s.labels) === k);
      if (count?.value !== inf.value) throw new Error(`${f.name} ${k}: _count ${count?.value} is not the +Inf bucket ${inf.value}`);
    }
  }
  return { text, families, samples };
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

/**
 * Scrapes one server's /metrics over HTTP, checks each exposition, and checks that no counter
 * (nor a histogram's buckets, sum and count) went down or disappeared since the previous scrape.
 */
class Scraper {
  private last: Exposition | undefined;
  count = 0;
  constructor(private readonly url: string) {}

  async scrape(): Promise<Exposition> {
    const r = await request(this.url, 'GET', '/metrics');
    expect(r.status, r.text).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const e = parseExposition(r.text);
    this.check(e);
    this.count++;
    return e;
  }

  /** Checks `e` against the previous scrape (counters never go down) and keeps it as the last. */
  check(e: Exposition): void {
    const prev = this.last;
    if (prev !== undefined) {
      for (const f of prev.families.values()) {
        if (f.type !== 'counter' && f.type !== 'histogram') continue;
        const now = e.families.get(f.name);
        expect(now?.type, `family ${f.name} is still a ${f.type}`).toBe(f.type);
        for (const s of prev.samples) {
          if (!sampleNamesOf(f).includes(s.name)) continue;
          const after = e.samples.find((x) => x.name === s.name && sameLabels(x.labels, s.labels));
          expect(after, `${seriesKey(s.name, s.labels)} disappeared`).toBeDefined();
          expect(after?.value, `${seriesKey(s.name, s.labels)} went down`).toBeGreaterThanOrEqual(s.value);
        }
      }
    }
    this.last = e;
  }
}

/** The one sample `name{labels}` (label order aside), or undefined. */
function value(e: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  const found = e.samples.filter((s) => s.name === name && sameLabels(s.labels, labels));
  expect(found.length).toBeLessThanOrEqual(1);
  return found[0]?.value;
}

/** A counter's value, 0 when the series does not exist yet. */
function count(e: Exposition, name: string, labels: Record<string, string> = {}): number {
  return value(e, name, labels) ?? 0;
}

function typeOf(e: Exposition, family: string): string | undefined {
  return e.families.get(family)?.type;
}

function http(e: Exposition, method: string, route: string, status: number): number {
  return count(e, 'gx3_http_requests_total', { method, route, status: String(status) });
}

function commands(e: Exposition, kind: string, outcome: string): number {
  return count(e, 'gx3_commands_total', { kind, outcome });
}

// ---------------------------------------------------------------------------------------------
// Servers, health

interface Booted {
  server: RunningServer;
  dataDir: string;
  scraper: Scraper;
  bus: MemoryBus;
  /** The last event sequence number the bus delivered, per symbol. */
  delivered: Map<string, number>;
}

async function boot(
  o: { io?: FileIO; segmentSize?: number; mailboxSize?: number; settings?: Record<string, unknown>; dataDir?: string; port?: number } = {},
): Promise<Booted> {
  const dataDir = o.dataDir ?? tmpDir('gx3-operator-view-');
  const config = resolveConfig({
    host: '127.0.0.1',
    port: o.port ?? 0,
    dataDir,
    apiKeys: API_KEYS,
    instruments: INSTRUMENTS,
    rateLimit: 1_000_000,
    rateBurst: 1_000_000,
    ...o.settings,
  });
  const server = await startServer(config, {
    logger: silentLogger,
    engine: { segmentSize: o.segmentSize ?? SEGMENT, ...(o.io === undefined ? {} : { io: o.io }), ...(o.mailboxSize === undefined ? {} : { mailboxSize: o.mailboxSize }) },
  });
  closers.push(() => server.close());
  const bus = server.bus;
  if (!(bus instanceof MemoryBus)) throw new Error('the server was to use the memory bus');
  const delivered = new Map<string, number>();
  bus.subscribe('*', (event: Event) => {
    delivered.set(event.symbol, Math.max(delivered.get(event.symbol) ?? 0, event.eventSeq));
  });
  return { server, dataDir, scraper: new Scraper(server.url), bus, delivered };
}

interface PublisherHealth {
  lastEventSeq: number;
  lagBytes: number;
  consecutiveFailures: number;
  lastError?: { code: string; message: string };
}

interface SymbolHealth {
  halted: boolean;
  haltedBy?: string;
  feedError?: string;
  processedSeq: number;
  durableSeq: number;
  queued: number;
  publisher?: PublisherHealth;
}

interface Health {
  status: number;
  retryAfter: string | null;
  body: { status: string; live: boolean; ready: boolean; symbols: Record<string, SymbolHealth> };
}

async function health(url: string): Promise<Health> {
  const r = await request(url, 'GET', '/health');
  return { status: r.status, retryAfter: r.headers.get('retry-after'), body: r.body as unknown as Health['body'] };
}

function sym(h: Health, s: string): SymbolHealth {
  const v = h.body.symbols[s];
  if (v === undefined) throw new Error(`/health has no ${s}: ${JSON.stringify(h.body)}`);
  return v;
}

/** The per-symbol fields of /health: exactly these keys (haltedBy, feedError and lastError only when they apply). */
function expectSymbolShape(s: SymbolHealth, o: { halted: boolean; feed: boolean; publisherFailing: boolean }): void {
  const keys = ['halted', 'processedSeq', 'durableSeq', 'queued', 'publisher', ...(o.halted ? ['haltedBy'] : []), ...(o.feed ? ['feedError'] : [])];
  expect(Object.keys(s).sort()).toEqual(keys.sort());
  expect(s.halted).toBe(o.halted);
  for (const k of ['processedSeq', 'durableSeq', 'queued'] as const) expect(Number.isSafeInteger(s[k]) && s[k] >= 0, `${k}: ${s[k]}`).toBe(true);
  expect(s.durableSeq).toBeLessThanOrEqual(s.processedSeq);
  const p = s.publisher as PublisherHealth;
  expect(Object.keys(p).sort()).toEqual(['consecutiveFailures', 'lagBytes', 'lastEventSeq', ...(o.publisherFailing ? ['lastError'] : [])].sort());
  if (o.publisherFailing) expect(p.consecutiveFailures).toBeGreaterThan(0);
  else expect(p.consecutiveFailures).toBe(0);
}

/** /health and /metrics agree on each symbol's watermarks, depth, halted state and publisher. */
function expectAgree(h: Health, e: Exposition, failedFeeds: readonly string[] = []): void {
  for (const s of [A, B]) {
    const v = sym(h, s);
    expect(value(e, 'gx3_engine_processed_seq', { symbol: s }), `processed ${s}`).toBe(v.processedSeq);
    expect(value(e, 'gx3_engine_durable_seq', { symbol: s }), `durable ${s}`).toBe(v.durableSeq);
    expect(value(e, 'gx3_engine_mailbox_depth', { symbol: s })).toBe(v.queued);
    expect(value(e, 'gx3_engine_halted', { symbol: s })).toBe(v.halted ? 1 : 0);
    expect(value(e, 'gx3_feed_failed', { symbol: s })).toBe(failedFeeds.includes(s) ? 1 : 0);
    expect(v.feedError !== undefined).toBe(failedFeeds.includes(s));
    expect(value(e, 'gx3_publisher_last_event_seq', { symbol: s })).toBe(v.publisher?.lastEventSeq);
    expect(value(e, 'gx3_publisher_lag_bytes', { symbol: s })).toBe(v.publisher?.lagBytes);
    expect(value(e, 'gx3_publisher_consecutive_failures', { symbol: s })).toBe(v.publisher?.consecutiveFailures);
  }
}

/** The metric families the README lists for /metrics, with their types. */
const FAMILIES: Record<string, string> = {
  gx3_http_requests_total: 'counter',
  gx3_commands_total: 'counter',
  gx3_command_durable_seconds: 'histogram',
  gx3_ws_connections: 'gauge',
  gx3_ws_messages_total: 'counter',
  gx3_rate_limited_total: 'counter',
  gx3_engine_processed_seq: 'gauge',
  gx3_engine_durable_seq: 'gauge',
  gx3_engine_mailbox_depth: 'gauge',
  gx3_engine_halted: 'gauge',
  gx3_feed_failed: 'gauge',
  gx3_book_orders: 'gauge',
  gx3_publisher_last_event_seq: 'gauge',
  gx3_publisher_lag_bytes: 'gauge',
  gx3_publisher_consecutive_failures: 'gauge',
};

/** The largest event sequence number among answers' events. */
function maxEventSeq(events: readonly Event[] | undefined, prior = 0): number {
  let m = prior;
  for (const e of events ?? []) m = Math.max(m, e.eventSeq);
  return m;
}

/** Waits until the symbol's publisher has caught up (no lag, no failure) and /health says so. */
async function caughtUp(url: string, s: string): Promise<Health> {
  let h: Health | undefined;
  await until(async () => {
    h = await health(url);
    const p = sym(h, s).publisher;
    return p !== undefined && p.lagBytes === 0 && p.consecutiveFailures === 0;
  }, () => `the publisher of ${s} caught up (/health: ${JSON.stringify(h?.body.symbols[s])})`);
  return h as Health;
}

/** An order body on a symbol. */
function order(symbol: string, side: 'buy' | 'sell', price: number, qty: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { symbol, side, type: 'limit', price, qty, ...extra };
}

async function post(url: string, key: string, body: Record<string, unknown>): Promise<Res> {
  return request(url, 'POST', '/v1/orders', { key, json: body });
}

// ---------------------------------------------------------------------------------------------

describe('serving', () => {
  it('serving: /health is 200 and ready with every symbol\'s fields; /metrics has the README\'s families and counts what was done over HTTP and WebSocket (orders ok, rejected, refused; requests by route and status; connections)', async () => {
    const { server, scraper, delivered } = await boot({ mailboxSize: 64, settings: { wsHeartbeatMs: 1000 } });
    const url = server.url;

    // Idle: ready, nothing done.
    const h0 = await health(url);
    expect(h0.status).toBe(200);
    expect(h0.retryAfter).toBeNull();
    expect(h0.body).toMatchObject({ status: 'ok', live: true, ready: true });
    expect(Object.keys(h0.body.symbols).sort()).toEqual([A, B].sort());
    for (const s of [A, B]) {
      expectSymbolShape(sym(h0, s), { halted: false, feed: false, publisherFailing: false });
      expect(sym(h0, s)).toMatchObject({ processedSeq: 0, durableSeq: 0, queued: 0, publisher: { lastEventSeq: 0, lagBytes: 0, consecutiveFailures: 0 } });
    }
    const ready0 = await request(url, 'GET', '/health/ready');
    expect(ready0.status).toBe(200);
    expect(ready0.body).toEqual({ ready: true, status: 'ok' });
    expect((await request(url, 'GET', '/health/live')).status).toBe(200);

    const m0 = await scraper.scrape();
    for (const [f, t] of Object.entries(FAMILIES)) expect(typeOf(m0, f), f).toBe(t);
    // Per-symbol gauges carry the symbol's name as it is (no mangling of `.` or `-`).
    for (const f of Object.keys(FAMILIES).filter((n) => n.startsWith('gx3_engine_') || n.startsWith('gx3_publisher_') || n === 'gx3_feed_failed' || n === 'gx3_book_orders')) {
      expect(m0.samples.filter((s) => s.name === f).map((s) => s.labels)).toEqual(expect.arrayContaining([{ symbol: A }, { symbol: B }]));
      expect(m0.samples.filter((s) => s.name === f)).toHaveLength(2);
    }
    expect(value(m0, 'gx3_ws_connections')).toBe(0);
    expectAgree(h0, m0);

    // Over HTTP: orders that rest, one that trades, one the book refuses (post-only crossing), one
    // that cannot fill (FOK), a cancel, an amendment, an amendment the engine refuses, and
    // requests that never reach the engine (validation, no key, unknown route, unknown symbol).
    let seqA = 0;
    let lastEvA = 0;
    let limitOk = 0;
    let limitRejected = 0;
    const resting: number[] = [];
    for (const price of [500, 510, 520]) {
      const r = await post(url, ALICE, order(A, 'buy', price, 5));
      expect(r.status).toBe(200);
      resting.push(r.body.order?.orderId as number);
      lastEvA = maxEventSeq(r.body.events, lastEvA);
      seqA++;
      limitOk++;
    }
    const trade = await post(url, BOB, order(A, 'sell', 520, 2));
    expect(trade.status).toBe(200);
    expect(trade.body.events?.some((e) => e.type === 'trade')).toBe(true);
    lastEvA = maxEventSeq(trade.body.events, lastEvA);
    seqA++;
    limitOk++;
    // A resubmission of a client order id: the original outcome, no command.
    const withId = await post(url, ALICE, order(A, 'buy', 300, 1, { clientOrderId: 'op-view-1' }));
    expect(withId.status).toBe(200);
    resting.push(withId.body.order?.orderId as number);
    lastEvA = maxEventSeq(withId.body.events, lastEvA);
    seqA++;
    limitOk++;
    const again = await post(url, ALICE, order(A, 'buy', 300, 1, { clientOrderId: 'op-view-1' }));
    expect(again.status).toBe(200);
    expect(again.body.duplicate).toBe(true);
    const postOnly = await post(url, BOB, order(A, 'sell', 500, 1, { tif: 'POST' }));
    expect(postOnly.status).toBe(200);
    expect(postOnly.body.order?.status).toBe('rejected');
    lastEvA = maxEventSeq(postOnly.body.events, lastEvA);
    seqA++;
    limitRejected++;
    const fok = await post(url, BOB, order(A, 'sell', 500, 999, { tif: 'FOK' }));
    expect(fok.status).toBe(200);
    expect(fok.body.order?.status).toBe('rejected');
    lastEvA = maxEventSeq(fok.body.events, lastEvA);
    seqA++;
    limitRejected++;
    const canceled = await request(url, 'DELETE', `/v1/orders/${A}/${resting[0]}`, { key: ALICE });
    expect(canceled.status).toBe(200);
    lastEvA = maxEventSeq(canceled.body.events, lastEvA);
    seqA++;
    const amended = await request(url, 'PATCH', `/v1/orders/${A}/${resting[1]}`, { key: ALICE, json: { price: 505 } });
    expect(amended.status).toBe(200);
    lastEvA = maxEventSeq(amended.body.events, lastEvA);
    seqA++;
    const noChange = await request(url, 'PATCH', `/v1/orders/${A}/${resting[1]}`, { key: ALICE, json: { price: 505 } });
    expect(noChange.status).toBe(409);
    expect(noChange.body.error?.code).toBe('REJECTED');
    seqA++;
    expect((await post(url, ALICE, { symbol: A, side: 'buy', type: 'limit', price: 500 })).status).toBe(400);
    expect((await request(url, 'POST', '/v1/orders', { json: order(A, 'buy', 500, 1) })).status).toBe(401);
    expect((await request(url, 'GET', '/no/such/route')).status).toBe(404);
    expect((await post(url, ALICE, order('NOPE', 'buy', 500, 1))).status).toBe(404);
    expect((await request(url, 'GET', `/v1/book/${A}`)).status).toBe(200);
    // Someone else's order: 403, not a command.
    expect((await request(url, 'DELETE', `/v1/orders/${A}/${resting[2]}`, { key: BOB })).status).toBe(403);

    // Over WebSocket: 1,000 orders in one frame on B against a mailbox of 64: some are taken, the
    // rest refused BACKPRESSURE (never logged).
    const ws = await WsClient.connect(wsUrl(url), { 'x-api-key': CAROL });
    const anon = await WsClient.connect(wsUrl(url));
    // A connection that never answers pings: the heartbeat cuts it.
    const silent = new WebSocket(wsUrl(url), { autoPong: false });
    await new Promise<void>((resolve, reject) => {
      silent.once('open', () => {
        resolve();
      });
      silent.once('error', reject);
    });
    const silentClosed = new Promise<void>((resolve) => {
      silent.once('close', () => {
        resolve();
      });
    });
    const batch = Array.from({ length: 1000 }, (_, i) => order(B, 'sell', 1000 + (i % 50), 1));
    const answer = await ws.call({ op: 'order', order: batch });
    const results = answer.results as WsMsg[];
    expect(results).toHaveLength(1000);
    const okB = results.filter((r) => r.ok === true).length;
    const refusedB = results.filter((r) => r.error?.code === 'BACKPRESSURE').length;
    expect(okB + refusedB).toBe(1000);
    expect(refusedB).toBeGreaterThan(0);
    const lastEvB = results.reduce((m, r) => maxEventSeq(r.events, m), 0);
    expect((await ws.call({ op: 'ping' })).pong).toBe(true);
    expect((await anon.call({ op: 'subscribe', channel: 'trades', symbol: B })).ok).toBe(true);
    await silentClosed;

    // Quiet: every command durable, the publishers caught up.
    await caughtUp(url, A);
    const h1 = await caughtUp(url, B);
    expect(h1.status).toBe(200);
    expect(h1.body).toMatchObject({ status: 'ok', live: true, ready: true });
    expectSymbolShape(sym(h1, A), { halted: false, feed: false, publisherFailing: false });
    expectSymbolShape(sym(h1, B), { halted: false, feed: false, publisherFailing: false });
    // The amendment the engine refused (409) made one event, its rejection, not in its answer.
    lastEvA++;
    expect(sym(h1, A)).toMatchObject({ processedSeq: seqA, durableSeq: seqA, queued: 0, publisher: { lastEventSeq: lastEvA, lagBytes: 0 } });
    expect(sym(h1, B)).toMatchObject({ processedSeq: okB, durableSeq: okB, queued: 0, publisher: { lastEventSeq: lastEvB, lagBytes: 0 } });
    // What the publisher says the bus acknowledged is what the bus delivered.
    expect(delivered.get(A)).toBe(lastEvA);
    expect(delivered.get(B)).toBe(lastEvB);

    const m1 = await scraper.scrape();
    expectAgree(h1, m1);
    expect(commands(m1, 'limit', 'ok')).toBe(limitOk + okB);
    expect(commands(m1, 'limit', 'rejected')).toBe(limitRejected);
    expect(commands(m1, 'limit', 'refused')).toBe(refusedB);
    expect(commands(m1, 'cancel', 'ok')).toBe(1);
    expect(commands(m1, 'amend', 'ok')).toBe(1);
    expect(commands(m1, 'amend', 'rejected')).toBe(1);
    expect(commands(m1, 'market', 'ok')).toBe(0);
    // Every command that was not refused is timed, and only those.
    expect(value(m1, 'gx3_command_durable_seconds_count', { kind: 'limit' })).toBe(limitOk + okB + limitRejected);
    expect(value(m1, 'gx3_command_durable_seconds_count', { kind: 'cancel' })).toBe(1);
    expect(value(m1, 'gx3_command_durable_seconds_count', { kind: 'amend' })).toBe(2);
    expect(value(m1, 'gx3_book_orders', { symbol: A })).toBe(3);
    expect(value(m1, 'gx3_book_orders', { symbol: B })).toBe(okB);
    // HTTP requests by method, route (the route's pattern) and status, since the first scrape.
    expect(http(m1, 'POST', '/v1/orders', 200) - http(m0, 'POST', '/v1/orders', 200)).toBe(8);
    expect(http(m1, 'POST', '/v1/orders', 400) - http(m0, 'POST', '/v1/orders', 400)).toBe(1);
    expect(http(m1, 'POST', '/v1/orders', 401) - http(m0, 'POST', '/v1/orders', 401)).toBe(1);
    expect(http(m1, 'POST', '/v1/orders', 404) - http(m0, 'POST', '/v1/orders', 404)).toBe(1);
    expect(http(m1, 'DELETE', '/v1/orders/:symbol/:orderId', 200) - http(m0, 'DELETE', '/v1/orders/:symbol/:orderId', 200)).toBe(1);
    expect(http(m1, 'DELETE', '/v1/orders/:symbol/:orderId', 403) - http(m0, 'DELETE', '/v1/orders/:symbol/:orderId', 403)).toBe(1);
    expect(http(m1, 'PATCH', '/v1/orders/:symbol/:orderId', 200)).toBe(1);
    expect(http(m1, 'PATCH', '/v1/orders/:symbol/:orderId', 409)).toBe(1);
    expect(http(m1, 'GET', '/v1/book/:symbol', 200)).toBe(1);
    expect(http(m1, 'GET', 'unmatched', 404)).toBe(1);
    expect(http(m0, 'GET', '/health', 200)).toBe(1);
    expect(http(m0, 'GET', '/health/ready', 200)).toBe(1);
    expect(http(m0, 'GET', '/health/live', 200)).toBe(1);
    expect(http(m1, 'GET', '/metrics', 200)).toBe(1); // the first scrape (this one is counted once answered)
    // WebSocket: two connections open (the silent one was cut); frames in: the batch, the ping, the subscription.
    expect(value(m1, 'gx3_ws_connections')).toBe(2);
    expect(count(m1, 'gx3_ws_messages_total', { direction: 'in' })).toBe(3);
    // Frames out: the batch's answer, the pong, the subscription's acknowledgement (no trade on B).
    expect(count(m1, 'gx3_ws_messages_total', { direction: 'out' })).toBe(3);
    expect(count(m1, 'gx3_rate_limited_total')).toBe(0);

    await ws.close();
    await until(async () => value(await scraper.scrape(), 'gx3_ws_connections') === 1, 'one WebSocket connection left');
    await anon.close();
    await until(async () => value(await scraper.scrape(), 'gx3_ws_connections') === 0, 'no WebSocket connection left');
    const m2 = await scraper.scrape();
    expect(http(m2, 'GET', '/metrics', 200)).toBe(scraper.count - 1);
  });

  it('the exposition stays valid Prometheus text and no counter goes down, across scrapes taken one after another and at once, while orders are taken', async () => {
    const { server, scraper } = await boot();
    const url = server.url;
    const ws = await WsClient.connect(wsUrl(url), { 'x-api-key': ALICE });
    closers.push(() => ws.close());
    let n = 0;
    for (let round = 0; round < 6; round++) {
      const frame = ws.call({ op: 'order', order: Array.from({ length: 200 }, (_, i) => order(round % 2 === 0 ? A : B, i % 2 === 0 ? 'buy' : 'sell', 1000 + (i % 7), 1)) });
      // Scrapes at once (each is checked; the counters they hand to prom-client are counted once).
      const [x, y] = await Promise.all([request(url, 'GET', '/metrics'), request(url, 'GET', '/metrics')]);
      for (const r of [x, y]) {
        expect(r.status).toBe(200);
        parseExposition(r.text);
      }
      const answered = await frame;
      n += (answered.results as WsMsg[]).filter((r) => r.ok === true).length;
      await post(url, BOB, order(A, 'buy', 200, 1));
      n++;
      await scraper.scrape();
    }
    const e = await scraper.scrape();
    expect(commands(e, 'limit', 'ok') + commands(e, 'limit', 'rejected')).toBe(n);
    // Every family has its HELP and TYPE; the process metrics are there too.
    expect([...e.families.keys()].some((f) => f.startsWith('gx3_process_'))).toBe(true);
    for (const f of e.families.values()) expect(f.help.length).toBeGreaterThan(0);
  });
});

// ---------------------------------------------------------------------------------------------

/** What a halted symbol must look like through /health, /health/ready, /health/live and /metrics. */
async function expectHalted(b: Booted, halted: string, error: RegExp): Promise<{ h: Health; e: Exposition }> {
  const url = b.server.url;
  const other = halted === A ? B : A;
  const h = await health(url);
  expect(h.status).toBe(503);
  expect(h.retryAfter).toBe('5');
  expect(h.body).toMatchObject({ status: 'halted', live: true, ready: false });
  expectSymbolShape(sym(h, halted), { halted: true, feed: false, publisherFailing: false });
  expect(sym(h, halted).haltedBy).toMatch(error);
  expect(sym(h, halted).queued).toBe(0);
  expectSymbolShape(sym(h, other), { halted: false, feed: false, publisherFailing: false });
  const ready = await request(url, 'GET', '/health/ready');
  expect(ready.status).toBe(503);
  expect(ready.headers.get('retry-after')).toBe('5');
  expect(ready.body).toEqual({ ready: false, status: 'halted' });
  const live = await request(url, 'GET', '/health/live');
  expect(live.status).toBe(200);
  const e = await b.scraper.scrape();
  expect(value(e, 'gx3_engine_halted', { symbol: halted })).toBe(1);
  expect(value(e, 'gx3_engine_halted', { symbol: other })).toBe(0);
  expectAgree(h, e);
  return { h, e };
}

describe('a symbol halted by an I/O error', () => {
  it.each([
    { log: 'cmd', op: 'write' },
    { log: 'cmd', op: 'fsync' },
    { log: 'ev', op: 'write' },
    { log: 'ev', op: 'fsync' },
  ] as const)(
    'an EIO on the $log log\'s $op: /health 503 (live 200) with the symbol halted by the error, the other symbol serving; halted gauge, refused commands, watermarks and publisher as they happened',
    async ({ log, op }) => {
      const { io, faults } = faultyIO();
      const b = await boot({ io });
      const url = b.server.url;
      let lastEv = 0;
      const placed: number[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await post(url, ALICE, order(A, 'buy', 300 + i, 1));
        expect(r.status).toBe(200);
        placed.push(r.body.order?.orderId as number);
        lastEv = maxEventSeq(r.body.events, lastEv);
      }
      await caughtUp(url, A);
      const before = await b.scraper.scrape();

      faults[op === 'write' ? 'writes' : 'syncs'][log].add(A);
      const failed = await post(url, ALICE, order(A, 'buy', 400, 1));
      expect(failed.status).toBe(503);
      expect(failed.body.error?.code).toBe('HALTED');
      expect(failed.headers.get('retry-after')).toBe('30');
      faults.writes[log].clear();
      faults.syncs[log].clear();
      // Halted until a restart, even with the disk healthy again.
      const after = await post(url, ALICE, order(A, 'buy', 401, 1));
      expect(after.body.error?.code).toBe('HALTED');
      const cancel = await request(url, 'DELETE', `/v1/orders/${A}/${placed[0]}`, { key: ALICE });
      expect(cancel.status).toBe(503);
      expect(cancel.body.error?.code).toBe('HALTED');
      // The other symbol goes on.
      const okB = await post(url, BOB, order(B, 'sell', 900, 1));
      expect(okB.status).toBe(200);
      const lastEvB = maxEventSeq(okB.body.events);

      await caughtUp(url, A);
      await caughtUp(url, B);
      const { h, e } = await expectHalted(b, A, op === 'write' ? /EIO: i\/o error, write/ : /EIO: i\/o error, fdatasync/);
      // Nothing after the failure became durable; the bus got the events of the acknowledged commands only.
      expect(sym(h, A).durableSeq).toBe(3);
      expect(sym(h, A).publisher?.lastEventSeq).toBe(lastEv);
      expect(b.delivered.get(A)).toBe(lastEv);
      expect(sym(h, B)).toMatchObject({ processedSeq: 1, durableSeq: 1, publisher: { lastEventSeq: lastEvB, lagBytes: 0 } });
      expect(commands(e, 'limit', 'refused') - commands(before, 'limit', 'refused')).toBe(2);
      expect(commands(e, 'cancel', 'refused') - commands(before, 'cancel', 'refused')).toBe(1);
      expect(commands(e, 'limit', 'ok') - commands(before, 'limit', 'ok')).toBe(1);
      expect(e.samples.filter((x) => x.name === 'gx3_command_durable_seconds_count').reduce((n, x) => n + x.value, 0)).toBe(4); // refusals are not timed
      expect(http(e, 'POST', '/v1/orders', 503) - http(before, 'POST', '/v1/orders', 503)).toBe(2);
      expect(http(e, 'DELETE', '/v1/orders/:symbol/:orderId', 503)).toBe(1);
      expect(http(e, 'GET', '/health', 503)).toBeGreaterThanOrEqual(1);
      expect(http(e, 'GET', '/health/ready', 503)).toBe(1);
    },
  );

  it.each(['ev', 'cmd'] as const)('ENOSPC when the %s log rolls to a new segment: /health 503 with the symbol halted by ENOSPC; every order answered ok is durable and counted ok, every one answered HALTED counted refused', async (log) => {
    const { io, faults } = faultyIO();
    // The smallest segment that holds a record of the largest size; JSON logs fill it sooner.
    const b = await boot({ io, segmentSize: (1 << 20) + 64, settings: { codec: 'json' } });
    const url = b.server.url;
    // From now on the disk is full for new files of this log of A: its spare segment cannot be
    // made, and the roll cannot create the next segment.
    faults.noSpace[log].add(A);
    const before = await b.scraper.scrape();
    const ws = await WsClient.connect(wsUrl(url), { 'x-api-key': ALICE });
    closers.push(() => ws.close());
    let ok = 0;
    let halted = 0;
    let lastEv = 0;
    let frames = 0;
    while (halted === 0) {
      if (++frames > 40) throw new Error(`the ${log} log of ${A} never rolled (${ok} orders taken)`);
      // IOC orders that do not trade: each is accepted then canceled (two events), with a long client order id.
      const batch = Array.from({ length: 1000 }, (_, i) => order(A, 'buy', 100 + (i % 100), 1, { tif: 'IOC', clientOrderId: `roll-${frames}-${i}-${'x'.repeat(40)}` }));
      const answer = await ws.call({ op: 'order', order: batch });
      for (const r of answer.results as WsMsg[]) {
        if (r.ok === true) {
          ok++;
          lastEv = maxEventSeq(r.events, lastEv);
        } else {
          expect(r.error?.code).toBe('HALTED');
          halted++;
        }
      }
    }
    // The log never got a second segment.
    expect(fs.readdirSync(path.join(b.dataDir, A, log)).filter((f) => /^\d+/.test(f))).toHaveLength(1);
    await caughtUp(url, A);
    const { h, e } = await expectHalted(b, A, /ENOSPC/);
    expect(sym(h, A).durableSeq).toBe(ok);
    expect(sym(h, A).publisher?.lastEventSeq).toBe(lastEv);
    expect(b.delivered.get(A)).toBe(lastEv);
    expect(commands(e, 'limit', 'ok') - commands(before, 'limit', 'ok')).toBe(ok);
    expect(commands(e, 'limit', 'refused') - commands(before, 'limit', 'refused')).toBe(halted);
    expect(value(e, 'gx3_book_orders', { symbol: A })).toBe(0);
    // B is untouched.
    expect((await post(url, BOB, order(B, 'sell', 900, 1))).status).toBe(200);
  });
});

// ---------------------------------------------------------------------------------------------

describe('a publisher whose bus refuses', () => {
  it('a bus that refuses one symbol\'s events: /health stays 200 and ready; the publisher\'s lastError, consecutiveFailures, lag and last event in /health and /metrics say so; once the bus takes them again, lag and failures return to 0', async () => {
    const b = await boot();
    const url = b.server.url;
    const first = await post(url, ALICE, order(A, 'buy', 500, 1));
    let lastEv = maxEventSeq(first.body.events);
    await caughtUp(url, A);
    const acked = lastEv;

    // The bus refuses A's events from now on.
    const refuse = { on: true };
    const real = b.bus.publishNow.bind(b.bus);
    b.bus.publishNow = (msg: BusMessage) => {
      if (refuse.on && msg.symbol === A) throw new OutboxError('BUS_ERROR', 'the bus refuses (injected by the test)');
      return real(msg);
    };
    for (let i = 0; i < 3; i++) {
      const r = await post(url, ALICE, order(A, 'buy', 501 + i, 1));
      expect(r.status).toBe(200); // the engine keeps taking orders: events wait in the outbox
      lastEv = maxEventSeq(r.body.events, lastEv);
    }
    const rB = await post(url, BOB, order(B, 'sell', 900, 1));
    expect(rB.status).toBe(200);
    let h: Health | undefined;
    await until(async () => {
      h = await health(url);
      return (sym(h, A).publisher?.consecutiveFailures ?? 0) >= 2;
    }, () => `the publisher of ${A} failing (${JSON.stringify(h?.body)})`);
    const failing = await health(url);
    expect(failing.status).toBe(200);
    expect(failing.retryAfter).toBeNull();
    expect(failing.body).toMatchObject({ status: 'ok', live: true, ready: true });
    expect((await request(url, 'GET', '/health/ready')).status).toBe(200);
    expectSymbolShape(sym(failing, A), { halted: false, feed: false, publisherFailing: true });
    const pA = sym(failing, A).publisher as PublisherHealth;
    expect(pA.lastError).toEqual({ code: 'BUS_ERROR', message: 'the bus refuses (injected by the test)' });
    expect(pA.lagBytes).toBeGreaterThan(0);
    expect(pA.lastEventSeq).toBe(acked);
    expect(b.delivered.get(A)).toBe(acked);
    expect(sym(failing, A)).toMatchObject({ processedSeq: 4, durableSeq: 4 });
    await caughtUp(url, B);
    const e = await b.scraper.scrape();
    expect(value(e, 'gx3_publisher_consecutive_failures', { symbol: A })).toBeGreaterThanOrEqual(pA.consecutiveFailures);
    expect(value(e, 'gx3_publisher_lag_bytes', { symbol: A })).toBe(pA.lagBytes);
    expect(value(e, 'gx3_publisher_last_event_seq', { symbol: A })).toBe(acked);
    expect(value(e, 'gx3_publisher_consecutive_failures', { symbol: B })).toBe(0);
    expect(value(e, 'gx3_engine_halted', { symbol: A })).toBe(0);
    expect(commands(e, 'limit', 'ok')).toBe(5);

    // The bus takes events again.
    refuse.on = false;
    const healed = await caughtUp(url, A);
    expect(healed.status).toBe(200);
    expectSymbolShape(sym(healed, A), { halted: false, feed: false, publisherFailing: false });
    expect(sym(healed, A).publisher?.lastEventSeq).toBe(lastEv);
    expect(b.delivered.get(A)).toBe(lastEv);
    expectAgree(healed, await b.scraper.scrape());
  });
});

// ---------------------------------------------------------------------------------------------

describe('a feed that failed', () => {
  it('a feed that cannot read its outbox: /health 503 with feedError (the symbol not halted), gx3_feed_failed 1 and gx3_engine_halted 0; orders refused and counted refused, cancels taken and counted ok', async () => {
    const { io, faults } = faultyIO();
    const b = await boot({ io });
    const url = b.server.url;
    const resting = await post(url, ALICE, order(A, 'buy', 500, 3));
    expect(resting.status).toBe(200);
    const before = await b.scraper.scrape();
    faults.evRead.add(A);
    // Taken and durable; the feed fails reading its events.
    expect((await post(url, ALICE, order(A, 'buy', 490, 1))).status).toBe(200);
    await until(() => b.server.gateway.feeds.get(A)?.error !== undefined, 'the feed failed');
    const refused = await post(url, ALICE, order(A, 'buy', 480, 1));
    expect(refused.status).toBe(503);
    expect(refused.body.error?.code).toBe('HALTED');
    const canceled = await request(url, 'DELETE', `/v1/orders/${A}/${resting.body.order?.orderId}`, { key: ALICE });
    expect(canceled.status).toBe(200);

    const h = await health(url);
    expect(h.status).toBe(503);
    expect(h.retryAfter).toBe('5');
    expect(h.body).toMatchObject({ status: 'halted', live: true, ready: false });
    expectSymbolShape(sym(h, A), { halted: false, feed: true, publisherFailing: false });
    expect(sym(h, A).feedError).toMatch(/EIO/);
    expectSymbolShape(sym(h, B), { halted: false, feed: false, publisherFailing: false });
    const ready = await request(url, 'GET', '/health/ready');
    expect(ready.status).toBe(503);
    expect(ready.body).toEqual({ ready: false, status: 'halted' });
    expect((await request(url, 'GET', '/health/live')).status).toBe(200);
    await caughtUp(url, A);
    const h2 = await health(url);
    const e = await b.scraper.scrape();
    expectAgree(h2, e, [A]);
    expect(commands(e, 'limit', 'refused') - commands(before, 'limit', 'refused')).toBe(1);
    expect(commands(e, 'limit', 'ok') - commands(before, 'limit', 'ok')).toBe(1);
    expect(commands(e, 'cancel', 'ok') - commands(before, 'cancel', 'ok')).toBe(1);
    // The engine itself still publishes (the publisher reads the outbox on its own).
    expect(sym(h2, A)).toMatchObject({ processedSeq: 3, durableSeq: 3 });
    expect(b.delivered.get(A)).toBe(sym(h2, A).publisher?.lastEventSeq);
  });
});

// ---------------------------------------------------------------------------------------------

/** One keep-alive HTTP/1.1 connection over a raw socket, to send requests at chosen moments and read the answers in order. */
class RawConn {
  private data = '';
  closed = false;
  private constructor(readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (this.data += d));
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => undefined);
  }

  static open(url: string): Promise<RawConn> {
    const u = new URL(url);
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: u.hostname, port: Number(u.port) }, () => {
        resolve(new RawConn(s));
      });
      s.once('error', reject);
    });
  }

  send(method: string, target: string, o: { key?: string; json?: unknown } = {}): void {
    const body = o.json === undefined ? '' : JSON.stringify(o.json);
    const head = [`${method} ${target} HTTP/1.1`, 'Host: test', ...(o.key === undefined ? [] : [`x-api-key: ${o.key}`]), ...(body === '' ? [] : ['content-type: application/json', `content-length: ${Buffer.byteLength(body)}`])];
    this.socket.write(`${head.join('\r\n')}\r\n\r\n${body}`);
  }

  /** Drops what was received so far (answers() then starts after it). */
  forget(): void {
    this.data = '';
  }

  /** The complete answers received so far. */
  answers(): { status: number; headers: Record<string, string>; body: string }[] {
    const out: { status: number; headers: Record<string, string>; body: string }[] = [];
    let at = 0;
    for (;;) {
      const end = this.data.indexOf('\r\n\r\n', at);
      if (end < 0) return out;
      const [statusLine = '', ...lines] = this.data.slice(at, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const len = Number(headers['content-length'] ?? 0);
      if (this.data.length < end + 4 + len) return out;
      out.push({ status: Number(statusLine.split(' ')[1]), headers, body: this.data.slice(end + 4, end + 4 + len) });
      at = end + 4 + len;
    }
  }
}

describe('shutting down and starting', () => {
  it('shutting down: health checks that reach the server during the shutdown say 503 not ready (live 200), /metrics answers with the watermarks as they are, commands are refused SHUTTING_DOWN, the order in flight is answered, and no new connection is told ready', async () => {
    const { io, faults, releaseSyncs } = faultyIO();
    const b = await boot({ io });
    // A failed check releases the held syncs before the server is closed (else its close waits for ever).
    closers.push(() => {
      releaseSyncs();
      return Promise.resolve();
    });
    const url = b.server.url;
    expect((await post(url, ALICE, order(A, 'buy', 500, 1))).status).toBe(200);
    await caughtUp(url, A);
    await b.scraper.scrape();

    // An order in flight on a keep-alive connection, held before it is durable.
    const inFlight = await RawConn.open(url);
    faults.holdSyncs = true;
    inFlight.send('POST', '/v1/orders', { key: ALICE, json: order(A, 'buy', 501, 1) });
    await until(async () => sym(await health(url), A).processedSeq === 2, 'the held order processed');
    expect(sym(await health(url), A).durableSeq).toBe(1);

    // Probes whose requests have begun (their headers not all sent): connections a shutdown keeps
    // (not idle), as a load balancer's or an orchestrator's probe under way would be.
    const probes = ['/health', '/health/ready', '/health/live', '/metrics', 'POST'];
    const conns = await Promise.all(probes.map(() => RawConn.open(url)));
    for (const c of [inFlight, ...conns]) {
      closers.push(() => {
        c.socket.destroy();
        return Promise.resolve();
      });
    }
    // Each probe connection served one request already (the server has accepted it and reads it).
    for (const c of conns) c.send('GET', '/health/live');
    await until(() => conns.every((c) => c.answers().length === 1), 'the first answers on the probe connections');
    for (const c of conns) c.forget();
    probes.forEach((p, i) => {
      const c = conns[i] as RawConn;
      if (p === 'POST') c.socket.write(`POST /v1/orders HTTP/1.1\r\nHost: test\r\nx-api-key: ${BOB}\r\ncontent-type: application/json\r\n`);
      else c.socket.write(`GET ${p} HTTP/1.1\r\nHost: test\r\n`);
    });
    // The server has read those first bytes before the shutdown starts: on loopback they are in
    // its sockets before a later request on another connection, which it has answered.
    expect((await request(url, 'GET', '/health/live')).status).toBe(200);
    const closing = b.server.close();
    // A new connection during the shutdown: refused (the listening socket is closed), or told not ready.
    const fresh = await request(url, 'GET', '/health/ready').then(
      (r) => r.status,
      () => 'refused' as const,
    );
    expect(fresh === 'refused' || fresh === 503, `a fresh probe during the shutdown: ${fresh}`).toBe(true);
    // The probes are finished now, while the shutdown waits for the order in flight.
    const body = JSON.stringify(order(B, 'sell', 900, 1));
    probes.forEach((p, i) => {
      const c = conns[i] as RawConn;
      if (p === 'POST') c.socket.write(`content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      else c.socket.write('\r\n');
    });
    await until(() => conns.every((c) => c.answers().length === 1 || c.closed), () => `the probes answered (${JSON.stringify(conns.map((c) => c.answers()))})`);
    const [h, ready, live, metrics, refused] = conns.map((c) => c.answers()[0]) as { status: number; headers: Record<string, string>; body: string }[] as [
      { status: number; headers: Record<string, string>; body: string },
      { status: number; headers: Record<string, string>; body: string },
      { status: number; headers: Record<string, string>; body: string },
      { status: number; headers: Record<string, string>; body: string },
      { status: number; headers: Record<string, string>; body: string },
    ];
    expect(h?.status).toBe(503);
    expect(h.headers['retry-after']).toBe('5');
    const hb = JSON.parse(h.body) as Health['body'];
    expect(hb).toMatchObject({ status: 'not_ready', live: true, ready: false });
    expectSymbolShape(hb.symbols[A] as SymbolHealth, { halted: false, feed: false, publisherFailing: false });
    expectSymbolShape(hb.symbols[B] as SymbolHealth, { halted: false, feed: false, publisherFailing: false });
    expect(hb.symbols[A]).toMatchObject({ processedSeq: 2, durableSeq: 1 });
    expect(ready?.status).toBe(503);
    expect(ready.headers['retry-after']).toBe('5');
    expect(JSON.parse(ready.body)).toEqual({ ready: false, status: 'not_ready' });
    expect(live?.status).toBe(200);
    expect(JSON.parse(live.body)).toEqual({ live: true });
    expect(metrics?.status).toBe(200);
    const e = parseExposition(metrics.body);
    b.scraper.check(e);
    expect(value(e, 'gx3_engine_processed_seq', { symbol: A })).toBe(2);
    expect(value(e, 'gx3_engine_durable_seq', { symbol: A })).toBe(1);
    expect(value(e, 'gx3_engine_halted', { symbol: A })).toBe(0);
    expect(refused?.status).toBe(503);
    expect(JSON.parse(refused.body)).toMatchObject({ error: { code: 'SHUTTING_DOWN' } });
    expect(refused.headers['retry-after']).toBe('5');
    // The shutdown finishes once the order in flight is durable; it is answered.
    releaseSyncs();
    await closing;
    await until(() => inFlight.answers().length === 1, 'the answer to the order in flight');
    expect(inFlight.answers()[0]?.status).toBe(200);
    expect(inFlight.answers()[0]?.headers.connection).toBe('close');
  });

  it('starting: the server answers nothing before it listens, and its first answer is 200 and ready', async () => {
    // A free port, then a server started on it while health checks are sent all along.
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => {
          resolve(p);
        });
      });
    });
    const base = `http://127.0.0.1:${port}`;
    const seen: { status: number | 'refused'; ready?: boolean | undefined; started: boolean }[] = [];
    let started = false;
    let stop = false;
    const probing = (async () => {
      while (!stop) {
        try {
          const r = await request(base, 'GET', '/health');
          seen.push({ status: r.status, ready: r.body.ready, started });
        } catch {
          seen.push({ status: 'refused', started });
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    const b = await boot({ port });
    started = true;
    await until(() => seen.some((s) => s.status !== 'refused'), 'an answer');
    stop = true;
    await probing;
    // Whatever answered before start() returned, and the first answer at all, tells the truth.
    const answered = seen.filter((s) => s.status !== 'refused');
    for (const s of answered) expect(s.status === 200 ? s.ready : !s.ready).toBe(true);
    expect(answered[0]).toMatchObject({ status: 200, ready: true });
    const e = await b.scraper.scrape();
    expect(value(e, 'gx3_engine_processed_seq', { symbol: A })).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------

describe('HTTP answers counted', () => {
  it('answers Node\'s HTTP parser gives before any route (400 for a malformed request, 431 for headers too large, 408 for a request not received in time) are counted in gx3_http_requests_total, as the answers fastify gives before routing are', async () => {
    const { server, scraper } = await boot({ settings: { requestTimeoutMs: 200 } });
    const url = server.url;
    const u = new URL(url);
    const rawAnswer = (data: string): Promise<string> =>
      new Promise((resolve) => {
        const s = net.connect({ host: u.hostname, port: Number(u.port) }, () => s.write(data));
        let out = '';
        s.setEncoding('utf8');
        s.on('data', (d: string) => (out += d));
        s.on('close', () => {
          resolve(out);
        });
        s.on('error', () => undefined);
      });
    const before = await scraper.scrape();
    // Before routing, refused by fastify (a malformed percent-encoding): counted as "unmatched".
    expect((await request(url, 'GET', '/v1/book/%E0%A4%A')).status).toBe(400);
    // Before routing, refused by Node's parser.
    expect(await rawAnswer('NOT-HTTP\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
    expect(await rawAnswer(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)).toMatch(/^HTTP\/1\.1 431 /);
    expect(await rawAnswer('GET /health HTTP/1.1\r\nHost: x\r\n')).toMatch(/^HTTP\/1\.1 408 /);
    const e = await scraper.scrape();
    const byStatus = (x: Exposition, status: string): number =>
      x.samples.filter((s) => s.name === 'gx3_http_requests_total' && s.labels.status === status).reduce((n, s) => n + s.value, 0);
    expect(byStatus(e, '400') - byStatus(before, '400'), 'the 400 answers sent').toBe(2);
    expect(byStatus(e, '431') - byStatus(before, '431'), 'the 431 answer sent').toBe(1);
    expect(byStatus(e, '408') - byStatus(before, '408'), 'the 408 answer sent').toBe(1);
  });

  it('requests refused 429 RATE_LIMITED are counted in gx3_rate_limited_total, those of a key\'s limit and those of the limit on unknown keys from one address alike', async () => {
    const { server, scraper } = await boot({ settings: { rateLimit: 1, rateBurst: 2 } });
    const url = server.url;
    const before = await scraper.scrape();
    // A key's own limit: a burst of 2, then 429.
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await post(url, ALICE, order(A, 'buy', 500, 1))).status);
    expect(statuses.filter((st) => st === 429).length).toBeGreaterThanOrEqual(1);
    const keyLimited = statuses.filter((st) => st === 429).length;
    const m1 = await scraper.scrape();
    expect(count(m1, 'gx3_rate_limited_total') - count(before, 'gx3_rate_limited_total')).toBe(keyLimited);
    expect(http(m1, 'POST', '/v1/orders', 429) - http(before, 'POST', '/v1/orders', 429)).toBe(keyLimited);
    // Unknown keys from one address: 401 for the first 20, then 429 RATE_LIMITED (README).
    let unknownLimited = 0;
    for (let i = 0; i < 25; i++) {
      const r = await post(url, `not-a-key-${i}-xxxxxxxx`, order(A, 'buy', 500, 1));
      if (r.status === 429) {
        expect(r.body.error?.code).toBe('RATE_LIMITED');
        unknownLimited++;
      } else expect(r.status).toBe(401);
    }
    expect(unknownLimited).toBeGreaterThan(0);
    const m2 = await scraper.scrape();
    expect(http(m2, 'POST', '/v1/orders', 429) - http(m1, 'POST', '/v1/orders', 429)).toBe(unknownLimited);
    expect(count(m2, 'gx3_rate_limited_total') - count(m1, 'gx3_rate_limited_total'), 'the 429 RATE_LIMITED answers to unknown keys').toBe(unknownLimited);
  });
});
