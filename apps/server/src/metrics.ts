// Prometheus metrics (prom-client, a registry per server): HTTP requests by route and status,
// commands by kind and outcome with their submit-to-durable latency, WebSocket connections and
// messages, and per symbol the engine's watermarks, mailbox depth and halted state (read at scrape).

import type { Command } from '@gx3/codecs';
import type { Engine } from '@gx3/engine';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { GatewayObserver } from './gateway.js';

export class Metrics implements GatewayObserver {
  readonly registry = new Registry();
  private readonly collectors: (() => void)[] = [];
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly commands: Counter<'kind' | 'outcome'>;
  readonly commandLatency: Histogram<'kind'>;
  readonly wsConnections: Gauge;
  readonly wsMessages: Counter<'direction'>;
  readonly rateLimited: Counter;

  constructor(engine: Engine) {
    collectDefaultMetrics({ register: this.registry, prefix: 'gx3_process_' });
    this.httpRequests = new Counter({
      name: 'gx3_http_requests_total',
      help: 'HTTP requests by method, route and status',
      labelNames: ['method', 'route', 'status'],
      registers: [this.registry],
    });
    this.commands = new Counter({
      name: 'gx3_commands_total',
      help: 'Commands submitted to the engine by kind and outcome (ok, rejected by the book, refused by the engine)',
      labelNames: ['kind', 'outcome'],
      registers: [this.registry],
    });
    this.commandLatency = new Histogram({
      name: 'gx3_command_durable_seconds',
      help: 'From submission to the engine until the command is durable and answered',
      labelNames: ['kind'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [this.registry],
    });
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
    this.rateLimited = new Counter({ name: 'gx3_rate_limited_total', help: 'Requests refused by the per-key rate limit', registers: [this.registry] });
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
    perSymbol('gx3_book_orders', 'Resting orders', (s) => engine.actor(s)?.book.orderCount ?? 0);
  }

  /** Runs `fn` whenever the metrics are scraped (to add counts kept cheaply elsewhere). */
  onCollect(fn: () => void): void {
    this.collectors.push(fn);
  }

  command(kind: Command['type'], outcome: 'ok' | 'rejected' | 'refused', seconds: number): void {
    this.commands.inc({ kind, outcome });
    if (outcome !== 'refused') this.commandLatency.observe({ kind }, seconds);
  }
}
