// Prometheus metrics (prom-client, a registry per server): HTTP requests by route and status,
// commands by kind and outcome with their submit-to-durable latency, WebSocket connections and
// messages, and per symbol the engine's watermarks, mailbox depth and halted state (read at scrape).
// What is counted per request or per command is counted in plain arrays and handed to prom-client
// when /metrics is scraped: a labelled `inc` or `observe` hashes its label object on every call,
// which cost several percent of the server's time under load.

import type { Command } from '@gx3/codecs';
import type { Engine } from '@gx3/engine';
import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import type { GatewayObserver } from './gateway.js';

const KINDS: readonly Command['type'][] = ['limit', 'market', 'cancel', 'amend'];
const OUTCOMES = ['ok', 'rejected', 'refused'] as const;
const KIND_INDEX = Object.fromEntries(KINDS.map((k, i) => [k, i])) as Readonly<Record<Command['type'], number>>;
const OUTCOME_INDEX = Object.fromEntries(OUTCOMES.map((o, i) => [o, i])) as Readonly<Record<(typeof OUTCOMES)[number], number>>;

interface ExportedValue {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

/**
 * A Prometheus histogram with one label, `kind`, over fixed buckets, kept in typed arrays (an
 * observation is a few array writes) and exported in prom-client's format when scraped.
 */
export class KindHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  /** Per kind: the count of each bucket (not cumulative), then the count above the last bound. */
  private readonly counts: Float64Array;
  private readonly sums: Float64Array;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
    registry: Registry,
  ) {
    this.counts = new Float64Array(KINDS.length * (bounds.length + 1));
    this.sums = new Float64Array(KINDS.length);
    registry.registerMetric(this as unknown as Metric);
  }

  observe(kind: Command['type'], seconds: number): void {
    const k = KIND_INDEX[kind];
    const b = this.bounds;
    let i = 0;
    while (i < b.length && seconds > (b[i] as number)) i++;
    const at = k * (b.length + 1) + i;
    this.counts[at] = (this.counts[at] as number) + 1;
    this.sums[k] = (this.sums[k] as number) + seconds;
  }

  /** Observations of `kind` so far. */
  count(kind: Command['type']): number {
    const n = this.bounds.length + 1;
    let c = 0;
    for (let i = 0; i < n; i++) c += this.counts[KIND_INDEX[kind] * n + i] as number;
    return c;
  }

  reset(): void {
    this.counts.fill(0);
    this.sums.fill(0);
  }

  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: ExportedValue[] }> {
    const values: ExportedValue[] = [];
    const n = this.bounds.length + 1;
    KINDS.forEach((kind, k) => {
      const total = this.count(kind);
      if (total === 0) return;
      let cumulative = 0;
      for (let i = 0; i < n; i++) {
        cumulative += this.counts[k * n + i] as number;
        values.push({ metricName: `${this.name}_bucket`, labels: { le: i < this.bounds.length ? (this.bounds[i] as number) : '+Inf', kind }, value: cumulative });
      }
      values.push({ metricName: `${this.name}_sum`, labels: { kind }, value: this.sums[k] as number });
      values.push({ metricName: `${this.name}_count`, labels: { kind }, value: total });
    });
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }
}

export class Metrics implements GatewayObserver {
  readonly registry = new Registry();
  private readonly collectors: (() => void)[] = [];
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly commands: Counter<'kind' | 'outcome'>;
  readonly commandLatency: KindHistogram;
  /** Commands by kind and outcome since the last scrape (KINDS x OUTCOMES). */
  private readonly commandCounts = new Float64Array(KINDS.length * OUTCOMES.length);
  /** HTTP requests by method, route and status since the last scrape. */
  private readonly httpCounts = new Map<string, { method: string; route: string; status: number; n: number }>();
  readonly wsConnections: Gauge;
  readonly wsMessages: Counter<'direction'>;
  readonly rateLimited: Counter;

  /** Symbols whose feed stopped (set by the server; exported as gx3_feed_failed). */
  readonly failedFeeds = new Set<string>();

  constructor(engine: Engine) {
    collectDefaultMetrics({ register: this.registry, prefix: 'gx3_process_' });
    const httpCounts = this.httpCounts;
    this.httpRequests = new Counter({
      name: 'gx3_http_requests_total',
      help: 'HTTP requests by method, route and status',
      labelNames: ['method', 'route', 'status'],
      registers: [this.registry],
      collect() {
        for (const c of httpCounts.values()) {
          if (c.n > 0) this.inc({ method: c.method, route: c.route, status: c.status }, c.n);
          c.n = 0;
        }
      },
    });
    const commandCounts = this.commandCounts;
    this.commands = new Counter({
      name: 'gx3_commands_total',
      help: 'Commands submitted to the engine by kind and outcome (ok, rejected by the book, refused by the engine)',
      labelNames: ['kind', 'outcome'],
      registers: [this.registry],
      collect() {
        for (let k = 0; k < KINDS.length; k++) {
          for (let o = 0; o < OUTCOMES.length; o++) {
            const n = commandCounts[k * OUTCOMES.length + o] as number;
            if (n > 0) this.inc({ kind: KINDS[k] as string, outcome: OUTCOMES[o] as string }, n);
          }
        }
        commandCounts.fill(0);
      },
    });
    this.commandLatency = new KindHistogram(
      'gx3_command_durable_seconds',
      'From submission to the engine until the command is durable and answered',
      [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      this.registry,
    );
    this.wsConnections = new Gauge({ name: 'gx3_ws_connections', help: 'Open WebSocket connections', registers: [this.registry] });
    const collectors = this.collectors;
    this.wsMessages = new Counter({
      name: 'gx3_ws_messages_total',
      help: 'WebSocket messages by direction',
      labelNames: ['direction'],
      registers: [this.registry],
      collect() {
        for (const c of collectors) c();
      },
    });
    this.rateLimited = new Counter({ name: 'gx3_rate_limited_total', help: 'Requests refused by a rate limit (per key; per WebSocket connection for ping, auth and subscription frames; per address for unknown API keys)', registers: [this.registry] });
    const perSymbol = (name: string, help: string, read: (symbol: string) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ['symbol'],
        registers: [this.registry],
        collect() {
          for (const symbol of engine.symbols) this.set({ symbol }, read(symbol));
        },
      });
    };
    perSymbol('gx3_engine_processed_seq', 'Last command applied to the book', (s) => engine.actor(s)?.processedSeq ?? 0);
    perSymbol('gx3_engine_durable_seq', 'Last command durable and acknowledged', (s) => engine.actor(s)?.durableSeq ?? 0);
    perSymbol('gx3_engine_mailbox_depth', 'Commands waiting in the mailbox', (s) => engine.actor(s)?.queued ?? 0);
    perSymbol('gx3_engine_halted', '1 if the symbol halted after an I/O error', (s) => (engine.actor(s)?.halted ? 1 : 0));
    perSymbol('gx3_feed_failed', "1 if the symbol's market data stopped (its outbox could not be read): only cancels are taken", (s) => (this.failedFeeds.has(s) ? 1 : 0));
    perSymbol('gx3_book_orders', 'Resting orders', (s) => engine.actor(s)?.book.orderCount ?? 0);
    perSymbol('gx3_publisher_last_event_seq', 'Last event the bus acknowledged (in order)', (s) => engine.publisher(s)?.stats().lastEventSeq ?? 0);
    perSymbol('gx3_publisher_lag_bytes', 'Outbox bytes the bus has not acknowledged', (s) => engine.publisher(s)?.stats().lagBytes ?? 0);
    perSymbol('gx3_publisher_consecutive_failures', 'Publish failures since the last acknowledgement (0: publishing works)', (s) => engine.publisher(s)?.stats().consecutiveFailures ?? 0);
  }

  /** Runs `fn` whenever the metrics are scraped (to add counts kept cheaply elsewhere). */
  onCollect(fn: () => void): void {
    this.collectors.push(fn);
  }

  command(kind: Command['type'], outcome: 'ok' | 'rejected' | 'refused', seconds: number): void {
    const at = KIND_INDEX[kind] * OUTCOMES.length + OUTCOME_INDEX[outcome];
    this.commandCounts[at] = (this.commandCounts[at] as number) + 1;
    if (outcome !== 'refused') this.commandLatency.observe(kind, seconds);
  }

  /** Counts an HTTP request (exported as gx3_http_requests_total). */
  httpRequest(method: string, route: string, status: number): void {
    const key = `${method} ${status} ${route}`;
    const c = this.httpCounts.get(key);
    if (c !== undefined) c.n++;
    else this.httpCounts.set(key, { method, route, status, n: 1 });
  }
}
