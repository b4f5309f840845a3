// The benchmark harness's vocabulary: a suite runs once per fresh process and reports metrics; the
// harness runs each suite for several rounds and reports each metric's median, min and max.

export interface Metric {
  /** Stable name within the suite, e.g. `opsPerSec`, `p99Us`. */
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  /** Which way is better: the baseline check flags a move the other way. */
  readonly better: 'higher' | 'lower';
  /** For the report's charts: the suite's throughput figure, or a latency percentile. */
  readonly kind?: 'throughput' | 'latency';
}

export interface SuiteRun {
  readonly metrics: Metric[];
  /** A suite that could not run here (e.g. NATS unreachable) says why instead. */
  readonly skipped?: string;
  /** Free-form lines for the report (settings, caveats). */
  readonly notes?: string[];
}

export interface SuiteDef {
  readonly id: string;
  readonly layer: 'orderbook' | 'codecs' | 'wal' | 'outbox' | 'engine' | 'server' | 'compare';
  readonly title: string;
  /** Rounds by default (each in a fresh process). */
  readonly rounds?: number;
  /** Node flags of the suite's process. */
  readonly nodeFlags?: string[];
  run(smoke: boolean): Promise<SuiteRun>;
}

export interface Stat {
  median: number;
  min: number;
  max: number;
}

export interface SuiteResult {
  readonly id: string;
  readonly layer: string;
  readonly title: string;
  readonly rounds: number;
  readonly skipped?: string;
  readonly notes: string[];
  readonly metrics: (Omit<Metric, 'value'> & Stat & { values: number[] })[];
  readonly seconds: number;
}

export interface BenchReport {
  readonly version: 1;
  readonly startedAt: string;
  readonly node: string;
  readonly machine: { cpus: number; model: string; memoryGiB: number; platform: string };
  readonly smoke: boolean;
  readonly suites: SuiteResult[];
}
