// The Prometheus metrics of metrics.ts, read through the registry's text output (what /metrics
// serves). KindHistogram: an observation exactly on a bound lands in that bucket (le is inclusive),
// one above the last bound only in +Inf, buckets are cumulative, _sum and _count are per kind, a
// kind without observations is absent, reset() clears. Metrics: commands and HTTP requests counted
// cheaply between scrapes are handed to prom-client at each scrape and accumulate across scrapes
// (also with two scrapes at once), refused commands are counted but not timed, and the per-symbol
// gauges read the engine at scrape time.
import type { Engine } from '@gx3/engine';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { KindHistogram, Metrics } from '../src/metrics.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition (comments left out). */
function samples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] as string] = l[2] as string;
    const raw = m[3] as string;
    out.push({ name: m[1] as string, labels, value: raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw) });
  }
  return out;
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

/** The value of the one sample `name{labels}` (label order does not matter), or undefined if absent. */
function valueOf(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples(text).filter((s) => s.name === name && sameLabels(s.labels, labels));
  expect(found.length, `samples ${name} ${JSON.stringify(labels)}`).toBeLessThanOrEqual(1);
  return found[0]?.value;
}

/** Every sample of `name` (any labels). */
function samplesOf(text: string, name: string): Sample[] {
  return samples(text).filter((s) => s.name === name);
}

/** A stand-in for the engine: the metrics read `symbols` and `actor(symbol)` only, at scrape time. */
interface FakeActor {
  processedSeq: number;
  durableSeq: number;
  queued: number;
  halted: Error | undefined;
  orders: number;
  publisher?: { lastEventSeq: number; lagBytes: number; consecutiveFailures: number };
}

function fakeEngine(actors: Record<string, FakeActor> = {}): Engine {
  return {
    symbols: Object.keys(actors),
    actor(symbol: string) {
      const a = actors[symbol];
      if (a === undefined) return undefined;
      return { processedSeq: a.processedSeq, durableSeq: a.durableSeq, queued: a.queued, halted: a.halted, book: { orderCount: a.orders } };
    },
    publisher(symbol: string) {
      const p = actors[symbol]?.publisher;
      return p === undefined ? undefined : { stats: () => p };
    },
  } as unknown as Engine;
}

// ---------------------------------------------------------------------------------------------

describe('KindHistogram', () => {
  const NAME = 'test_latency_seconds';
  const BOUNDS = [0.1, 0.5, 1];

  function histogram(bounds: readonly number[] = BOUNDS): { h: KindHistogram; registry: Registry } {
    const registry = new Registry();
    const h = new KindHistogram(NAME, 'A test histogram', bounds, registry);
    return { h, registry };
  }

  it('is exported as a histogram with its help', async () => {
    const { h, registry } = histogram();
    h.observe('limit', 0.2);
    const text = await registry.metrics();
    expect(text).toMatch(new RegExp(`^# HELP ${NAME} A test histogram$`, 'm'));
    expect(text).toMatch(new RegExp(`^# TYPE ${NAME} histogram$`, 'm'));
  });

  it('counts an observation exactly on a bound in that bucket (le is inclusive), and buckets are cumulative', async () => {
    const { h, registry } = histogram();
    h.observe('limit', 0.1); // on the first bound
    h.observe('limit', 0.5); // on the second
    h.observe('limit', 0.3); // between the first and the second
    h.observe('limit', 1); // on the last
    const text = await registry.metrics();
    const bucket = (le: string): number | undefined => valueOf(text, `${NAME}_bucket`, { le, kind: 'limit' });
    expect(bucket('0.1')).toBe(1);
    expect(bucket('0.5')).toBe(3);
    expect(bucket('1')).toBe(4);
    expect(bucket('+Inf')).toBe(4);
    expect(valueOf(text, `${NAME}_count`, { kind: 'limit' })).toBe(4);
    expect(valueOf(text, `${NAME}_sum`, { kind: 'limit' })).toBeCloseTo(1.9, 12);
    // the buckets of a kind are the bounds in order, then +Inf, never decreasing
    const buckets = samplesOf(text, `${NAME}_bucket`).filter((s) => s.labels.kind === 'limit');
    expect(buckets.map((s) => s.labels.le)).toEqual(['0.1', '0.5', '1', '+Inf']);
    for (let i = 1; i < buckets.length; i++) expect((buckets[i] as Sample).value).toBeGreaterThanOrEqual((buckets[i - 1] as Sample).value);
  });

  it('counts a value just above a bound in the next bucket, and one above the last bound only in +Inf', async () => {
    const { h, registry } = histogram();
    h.observe('market', 0.1000001);
    h.observe('market', 1.0000001);
    h.observe('market', 60);
    const text = await registry.metrics();
    const bucket = (le: string): number | undefined => valueOf(text, `${NAME}_bucket`, { le, kind: 'market' });
    expect(bucket('0.1')).toBe(0);
    expect(bucket('0.5')).toBe(1);
    expect(bucket('1')).toBe(1);
    expect(bucket('+Inf')).toBe(3);
    expect(valueOf(text, `${NAME}_count`, { kind: 'market' })).toBe(3);
    expect(valueOf(text, `${NAME}_sum`, { kind: 'market' })).toBeCloseTo(61.1000002, 9);
  });

  it('counts zero in the first bucket', async () => {
    const { h, registry } = histogram();
    h.observe('amend', 0);
    const text = await registry.metrics();
    expect(valueOf(text, `${NAME}_bucket`, { le: '0.1', kind: 'amend' })).toBe(1);
    expect(valueOf(text, `${NAME}_sum`, { kind: 'amend' })).toBe(0);
    expect(valueOf(text, `${NAME}_count`, { kind: 'amend' })).toBe(1);
  });

  it('keeps _sum and _count per kind, and leaves out kinds without observations', async () => {
    const { h, registry } = histogram();
    h.observe('limit', 0.25);
    h.observe('limit', 0.75);
    h.observe('cancel', 2);
    const text = await registry.metrics();
    expect(valueOf(text, `${NAME}_count`, { kind: 'limit' })).toBe(2);
    expect(valueOf(text, `${NAME}_sum`, { kind: 'limit' })).toBe(1);
    expect(valueOf(text, `${NAME}_count`, { kind: 'cancel' })).toBe(1);
    expect(valueOf(text, `${NAME}_sum`, { kind: 'cancel' })).toBe(2);
    expect(valueOf(text, `${NAME}_bucket`, { le: '1', kind: 'cancel' })).toBe(0);
    expect(valueOf(text, `${NAME}_bucket`, { le: '+Inf', kind: 'cancel' })).toBe(1);
    expect(valueOf(text, `${NAME}_bucket`, { le: '0.5', kind: 'limit' })).toBe(1);
    const kinds = new Set(samples(text).filter((s) => s.name.startsWith(NAME)).map((s) => s.labels.kind));
    expect([...kinds].sort()).toEqual(['cancel', 'limit']);
    expect(text).not.toContain('kind="market"');
    expect(text).not.toContain('kind="amend"');
    expect(h.count('limit')).toBe(2);
    expect(h.count('cancel')).toBe(1);
    expect(h.count('market')).toBe(0);
  });

  it('keeps its counts across scrapes (a histogram is cumulative)', async () => {
    const { h, registry } = histogram();
    h.observe('limit', 0.05);
    expect(valueOf(await registry.metrics(), `${NAME}_count`, { kind: 'limit' })).toBe(1);
    h.observe('limit', 0.05);
    const text = await registry.metrics();
    expect(valueOf(text, `${NAME}_count`, { kind: 'limit' })).toBe(2);
    expect(valueOf(text, `${NAME}_bucket`, { le: '0.1', kind: 'limit' })).toBe(2);
    expect(valueOf(text, `${NAME}_sum`, { kind: 'limit' })).toBeCloseTo(0.1, 12);
  });

  it('reset() clears every kind', async () => {
    const { h, registry } = histogram();
    h.observe('limit', 0.2);
    h.observe('market', 3);
    expect(samplesOf(await registry.metrics(), `${NAME}_bucket`).length).toBe(8);
    h.reset();
    const text = await registry.metrics();
    expect(samples(text).filter((s) => s.name.startsWith(NAME))).toEqual([]);
    expect(h.count('limit')).toBe(0);
    expect(h.count('market')).toBe(0);
    // and counts again from zero afterwards
    h.observe('market', 0.4);
    const after = await registry.metrics();
    expect(valueOf(after, `${NAME}_count`, { kind: 'market' })).toBe(1);
    expect(valueOf(after, `${NAME}_sum`, { kind: 'market' })).toBe(0.4);
    expect(valueOf(after, `${NAME}_bucket`, { le: '0.1', kind: 'market' })).toBe(0);
    expect(valueOf(after, `${NAME}_bucket`, { le: '0.5', kind: 'market' })).toBe(1);
    expect(valueOf(after, `${NAME}_count`, { kind: 'limit' })).toBeUndefined();
  });

  it('with no bounds, has only the +Inf bucket', async () => {
    const { h, registry } = histogram([]);
    h.observe('cancel', 0.001);
    h.observe('cancel', 100);
    const text = await registry.metrics();
    expect(samplesOf(text, `${NAME}_bucket`)).toEqual([{ name: `${NAME}_bucket`, labels: { le: '+Inf', kind: 'cancel' }, value: 2 }]);
    expect(valueOf(text, `${NAME}_count`, { kind: 'cancel' })).toBe(2);
  });
});

// ---------------------------------------------------------------------------------------------

describe('Metrics', () => {
  it('counts commands by kind and outcome, and times only those that were not refused', async () => {
    const m = new Metrics(fakeEngine());
    m.command('limit', 'ok', 0.002);
    m.command('limit', 'ok', 0.002);
    m.command('cancel', 'refused', 0.1);
    m.command('market', 'rejected', 0.03);
    const text = await m.registry.metrics();
    expect(text).toMatch(/^gx3_commands_total\{kind="limit",outcome="ok"\} 2$/m);
    expect(text).toMatch(/^gx3_commands_total\{kind="cancel",outcome="refused"\} 1$/m);
    expect(valueOf(text, 'gx3_commands_total', { kind: 'market', outcome: 'rejected' })).toBe(1);
    expect(samplesOf(text, 'gx3_commands_total')).toHaveLength(3); // no lines for combinations never seen
    expect(valueOf(text, 'gx3_command_durable_seconds_count', { kind: 'limit' })).toBe(2);
    expect(valueOf(text, 'gx3_command_durable_seconds_sum', { kind: 'limit' })).toBeCloseTo(0.004, 12);
    expect(valueOf(text, 'gx3_command_durable_seconds_bucket', { le: '0.001', kind: 'limit' })).toBe(0);
    expect(valueOf(text, 'gx3_command_durable_seconds_bucket', { le: '0.0025', kind: 'limit' })).toBe(2);
    expect(valueOf(text, 'gx3_command_durable_seconds_count', { kind: 'market' })).toBe(1); // rejected commands are timed
    expect(valueOf(text, 'gx3_command_durable_seconds_count', { kind: 'cancel' })).toBeUndefined(); // refused ones are not
    expect(m.commandLatency.count('cancel')).toBe(0);
  });

  it('command counts accumulate across scrapes', async () => {
    const m = new Metrics(fakeEngine());
    m.command('limit', 'ok', 0.002);
    m.command('limit', 'ok', 0.002);
    m.command('cancel', 'refused', 0.1);
    const first = await m.registry.metrics();
    expect(valueOf(first, 'gx3_commands_total', { kind: 'limit', outcome: 'ok' })).toBe(2);

    // a scrape with nothing new in between changes nothing
    const idle = await m.registry.metrics();
    expect(valueOf(idle, 'gx3_commands_total', { kind: 'limit', outcome: 'ok' })).toBe(2);
    expect(valueOf(idle, 'gx3_commands_total', { kind: 'cancel', outcome: 'refused' })).toBe(1);

    m.command('limit', 'ok', 0.004);
    const second = await m.registry.metrics();
    expect(valueOf(second, 'gx3_commands_total', { kind: 'limit', outcome: 'ok' })).toBe(3);
    expect(valueOf(second, 'gx3_commands_total', { kind: 'cancel', outcome: 'refused' })).toBe(1);
    expect(valueOf(second, 'gx3_command_durable_seconds_count', { kind: 'limit' })).toBe(3);
    expect(valueOf(second, 'gx3_command_durable_seconds_bucket', { le: '0.005', kind: 'limit' })).toBe(3);
    expect(valueOf(second, 'gx3_command_durable_seconds_bucket', { le: '0.0025', kind: 'limit' })).toBe(2);
  });

  it('two scrapes at once count each command once', async () => {
    const m = new Metrics(fakeEngine());
    for (let i = 0; i < 5; i++) m.command('amend', 'ok', 0.001);
    for (let i = 0; i < 4; i++) m.httpRequest('DELETE', '/v1/orders/:symbol/:orderId', 200);
    const [a, b] = await Promise.all([m.registry.metrics(), m.registry.metrics()]);
    for (const text of [a, b]) {
      expect(valueOf(text, 'gx3_commands_total', { kind: 'amend', outcome: 'ok' })).toBe(5);
      expect(valueOf(text, 'gx3_http_requests_total', { method: 'DELETE', route: '/v1/orders/:symbol/:orderId', status: '200' })).toBe(4);
    }
    m.command('amend', 'ok', 0.001);
    m.httpRequest('DELETE', '/v1/orders/:symbol/:orderId', 200);
    const text = await m.registry.metrics();
    expect(valueOf(text, 'gx3_commands_total', { kind: 'amend', outcome: 'ok' })).toBe(6);
    expect(valueOf(text, 'gx3_http_requests_total', { method: 'DELETE', route: '/v1/orders/:symbol/:orderId', status: '200' })).toBe(5);
  });

  it('counts HTTP requests by method, route and status, across scrapes', async () => {
    const m = new Metrics(fakeEngine());
    m.httpRequest('POST', '/v1/orders', 200);
    m.httpRequest('POST', '/v1/orders', 200);
    m.httpRequest('POST', '/v1/orders', 404);
    m.httpRequest('GET', '/v1/orders', 200);
    const text = await m.registry.metrics();
    expect(text).toMatch(/^gx3_http_requests_total\{method="POST",route="\/v1\/orders",status="200"\} 2$/m);
    expect(valueOf(text, 'gx3_http_requests_total', { method: 'POST', route: '/v1/orders', status: '200' })).toBe(2);
    expect(valueOf(text, 'gx3_http_requests_total', { method: 'POST', route: '/v1/orders', status: '404' })).toBe(1);
    expect(valueOf(text, 'gx3_http_requests_total', { method: 'GET', route: '/v1/orders', status: '200' })).toBe(1);
    expect(samplesOf(text, 'gx3_http_requests_total')).toHaveLength(3);

    m.httpRequest('POST', '/v1/orders', 200);
    const again = await m.registry.metrics();
    expect(valueOf(again, 'gx3_http_requests_total', { method: 'POST', route: '/v1/orders', status: '200' })).toBe(3);
    expect(valueOf(again, 'gx3_http_requests_total', { method: 'POST', route: '/v1/orders', status: '404' })).toBe(1);
    expect(valueOf(again, 'gx3_http_requests_total', { method: 'GET', route: '/v1/orders', status: '200' })).toBe(1);
  });

  it('keeps the counts of each Metrics in its own registry', async () => {
    const a = new Metrics(fakeEngine());
    const b = new Metrics(fakeEngine());
    a.command('limit', 'ok', 0.001);
    a.httpRequest('GET', '/health', 200);
    const textB = await b.registry.metrics();
    expect(samplesOf(textB, 'gx3_commands_total')).toEqual([]);
    expect(samplesOf(textB, 'gx3_http_requests_total')).toEqual([]);
    const textA = await a.registry.metrics();
    expect(valueOf(textA, 'gx3_commands_total', { kind: 'limit', outcome: 'ok' })).toBe(1);
    expect(valueOf(textA, 'gx3_http_requests_total', { method: 'GET', route: '/health', status: '200' })).toBe(1);
  });

  it('runs onCollect callbacks at each scrape (to add counts kept elsewhere)', async () => {
    const m = new Metrics(fakeEngine());
    let pending = 3;
    let calls = 0;
    m.onCollect(() => {
      calls++;
      m.wsMessages.inc({ direction: 'in' }, pending);
      pending = 0;
    });
    const first = await m.registry.metrics();
    expect(calls).toBe(1);
    expect(valueOf(first, 'gx3_ws_messages_total', { direction: 'in' })).toBe(3);
    pending = 2;
    const second = await m.registry.metrics();
    expect(calls).toBe(2);
    expect(valueOf(second, 'gx3_ws_messages_total', { direction: 'in' })).toBe(5);
  });

  it('reads the per-symbol engine gauges at scrape time; with no symbols there are none', async () => {
    const empty = new Metrics(fakeEngine());
    const none = await empty.registry.metrics();
    expect(samplesOf(none, 'gx3_engine_processed_seq')).toEqual([]);
    expect(samplesOf(none, 'gx3_engine_halted')).toEqual([]);

    const actors: Record<string, FakeActor> & { AAA: FakeActor } = {
      AAA: { processedSeq: 10, durableSeq: 9, queued: 2, halted: undefined, orders: 4, publisher: { lastEventSeq: 17, lagBytes: 96, consecutiveFailures: 3 } },
      BBB: { processedSeq: 0, durableSeq: 0, queued: 0, halted: new Error('disk'), orders: 0 },
    };
    const m = new Metrics(fakeEngine(actors));
    const text = await m.registry.metrics();
    expect(valueOf(text, 'gx3_engine_processed_seq', { symbol: 'AAA' })).toBe(10);
    expect(valueOf(text, 'gx3_engine_durable_seq', { symbol: 'AAA' })).toBe(9);
    expect(valueOf(text, 'gx3_engine_mailbox_depth', { symbol: 'AAA' })).toBe(2);
    expect(valueOf(text, 'gx3_engine_halted', { symbol: 'AAA' })).toBe(0);
    expect(valueOf(text, 'gx3_book_orders', { symbol: 'AAA' })).toBe(4);
    expect(valueOf(text, 'gx3_engine_halted', { symbol: 'BBB' })).toBe(1);
    expect(valueOf(text, 'gx3_publisher_last_event_seq', { symbol: 'AAA' })).toBe(17);
    expect(valueOf(text, 'gx3_publisher_lag_bytes', { symbol: 'AAA' })).toBe(96);
    expect(valueOf(text, 'gx3_publisher_consecutive_failures', { symbol: 'AAA' })).toBe(3);
    // A symbol without a publisher (no bus) shows zeros.
    expect(valueOf(text, 'gx3_publisher_consecutive_failures', { symbol: 'BBB' })).toBe(0);
    actors.AAA.processedSeq = 11;
    expect(valueOf(await m.registry.metrics(), 'gx3_engine_processed_seq', { symbol: 'AAA' })).toBe(11);
  });
});
