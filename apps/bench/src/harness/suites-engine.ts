// Engine suites, each run in its own process: W1 end to end through the engine (commands logged,
// applied, events in the outbox, durable per the mode) in each durability mode and with the JSON
// codec; recovery speed; and submit-to-durable latency at a fixed offered load (open loop).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CodecName } from '@gx3/codecs';
import type { Durability } from '@gx3/wal';
import { recoverEngine, replayEngine } from '../engine-replay.js';
import { openLoop } from '../open-loop.js';
import { generateText } from '../generator.js';
import { parseWorkload } from '../workload.js';
import { allocationMeter, quantile } from './measure.js';
import type { Metric, SuiteDef } from './types.js';

function tmp(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Deletes the clean-close markers of every log under `dir` (what a crash leaves). */
function removeCleanMarkers(dir: string): void {
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && entry.name === 'CLEAN') fs.rmSync(path.join(entry.parentPath, entry.name));
  }
}

function engineSuite(id: string, durability: Durability, codec: CodecName): SuiteDef {
  return {
    id,
    layer: 'engine',
    title: `engine end to end: W1, ${codec} codec, durability ${durability} (closed loop: submit as fast as the mailbox takes, wait until durable)`,
    nodeFlags: ['--expose-gc'],
    async run(smoke) {
      const w = parseWorkload(generateText({ ops: smoke ? 50_000 : codec === 'json' ? 300_000 : 1_000_000 }));
      const dir = tmp('gx3-bench-engine-');
      try {
        const meter = allocationMeter();
        const { perf, summary } = await replayEngine(w, { dataDir: path.join(dir, 'data'), durability, codec });
        const alloc = meter.stop(w.length);
        const metrics: Metric[] = [
          { name: 'commandsPerSec', value: perf.commandsPerSec, unit: 'commands/s', better: 'higher', kind: 'throughput' },
          { name: 'nsPerCommand', value: 1e9 / perf.commandsPerSec, unit: 'ns', better: 'lower' },
          { name: 'p50Us', value: perf.p50Us, unit: 'us', better: 'lower', kind: 'latency' },
          { name: 'p99Us', value: perf.p99Us, unit: 'us', better: 'lower', kind: 'latency' },
          { name: 'bytesPerCommand', value: alloc.bytesPerOp, unit: 'B', better: 'lower' },
          { name: 'gcCount', value: alloc.gcCount, unit: '', better: 'lower' },
        ];
        const notes = [
          `${w.length.toLocaleString('en-US')} commands, ${summary.trades.toLocaleString('en-US')} trades; closed loop: latency includes queueing in a 65,536-command mailbox (backpressure waits: ${perf.backpressureWaits}); allocation includes the replay's own command objects and summary`,
        ];
        if (durability === 'batch' && codec === 'binary') {
          const data = path.join(dir, 'data');
          const rec = await recoverEngine(data);
          metrics.push({ name: 'recoveryCommandsPerSec', value: rec.commands / (rec.recovery.millis / 1000), unit: 'commands/s', better: 'higher' });
          // The same files as a crash would leave them: without the clean-close markers, so that
          // opening scans the last segment of each log for a torn tail.
          removeCleanMarkers(data);
          const crashed = await recoverEngine(data);
          metrics.push({ name: 'recoveryAfterCrashCommandsPerSec', value: crashed.commands / (crashed.recovery.millis / 1000), unit: 'commands/s', better: 'higher' });
          notes.push(
            'recovery: reopening the data directory after a clean shutdown (open, replay of the command log into a fresh book, every CRC checked); after a crash: the same files without the clean-close markers, so that opening also scans the last segment of each log for a torn tail',
          );
        }
        return { metrics, notes };
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

const openLoopSuite: SuiteDef = {
  id: 'engine-open-loop',
  layer: 'engine',
  title: 'engine submit-to-durable latency at a fixed offered load (open loop, batch durability)',
  async run(smoke) {
    const rate = smoke ? 20_000 : 100_000;
    const seconds = smoke ? 1 : 3;
    const dir = tmp('gx3-bench-open-');
    try {
      const warmup = smoke ? 0.2 : 0.5;
      const { latenciesUs: l, steadyLatenciesUs: st, refused } = await openLoop(dir, rate, seconds, warmup);
      return {
        metrics: [
          { name: 'p50Us', value: quantile(l, 0.5), unit: 'us', better: 'lower', kind: 'latency' },
          { name: 'p99Us', value: quantile(l, 0.99), unit: 'us', better: 'lower', kind: 'latency' },
          { name: 'p999Us', value: quantile(l, 0.999), unit: 'us', better: 'lower', kind: 'latency' },
          { name: 'maxUs', value: quantile(l, 1), unit: 'us', better: 'lower' },
          { name: 'steadyP50Us', value: quantile(st, 0.5), unit: 'us', better: 'lower', kind: 'latency' },
          { name: 'steadyP99Us', value: quantile(st, 0.99), unit: 'us', better: 'lower', kind: 'latency' },
          { name: 'steadyP999Us', value: quantile(st, 0.999), unit: 'us', better: 'lower', kind: 'latency' },
          { name: 'steadyMaxUs', value: quantile(st, 1), unit: 'us', better: 'lower' },
          { name: 'refused', value: refused, unit: 'times', better: 'lower' },
        ],
        notes: [
          `${rate.toLocaleString('en-US')} commands/s offered for ${seconds} s; latency from when each command was due, so queueing is not hidden`,
          `p50/p99/p999/max: every command, the engine's warm-up (JIT) included; steady*: the commands due after the first ${warmup} s`,
        ],
      };
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
};

export const ENGINE_SUITES: SuiteDef[] = [
  engineSuite('engine-none', 'none', 'binary'),
  engineSuite('engine-batch', 'batch', 'binary'),
  engineSuite('engine-interval', 'interval', 'binary'),
  engineSuite('engine-json-batch', 'batch', 'json'),
  openLoopSuite,
];
