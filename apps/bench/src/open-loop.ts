// The engine's submit-to-durable latency at a fixed offered load (open loop): commands are due on a
// schedule and each one's latency runs from when it was due, so that queueing is not hidden. The
// figures of the whole run include the engine's warm-up (its first commands run before the JIT has
// compiled the hot path); the steady-state ones leave out the commands due in the first
// `warmupSeconds` (they are still offered and acknowledged).

import { Engine, type SymbolActor } from '@gx3/engine';
import { commandAt, REPLAY_SYMBOL } from './engine-replay.js';
import { generateText } from './generator.js';
import { parseWorkload } from './workload.js';
import { BenchError } from './errors.js';

export interface OpenLoopResult {
  /** Latencies in microseconds, ascending. */
  latenciesUs: Float64Array;
  /** The latencies of the commands due after the warm-up, ascending. */
  steadyLatenciesUs: Float64Array;
  /** Times the mailbox refused a due command (it was offered again on the next turn). */
  refused: number;
}

/** Offers `rate` W1 commands a second for `seconds` to a new engine in `dataDir` (batch durability). */
export async function openLoop(dataDir: string, rate: number, seconds: number, warmupSeconds = 0.5): Promise<OpenLoopResult> {
  const w = parseWorkload(generateText({ ops: rate * seconds, prefill: 0 }));
  const engine = await Engine.open({
    dataDir,
    symbols: [{ symbol: REPLAY_SYMBOL, minPrice: 1, maxPrice: 1_000_000, maxQty: Number.MAX_SAFE_INTEGER }],
    durability: 'batch',
  });
  const actor = engine.actor(REPLAY_SYMBOL) as SymbolActor;
  const due = new Float64Array(w.length + 1);
  const lat = new Float64Array(w.length);
  const steady = new Float64Array(w.length);
  let measured = 0;
  let measuredSteady = 0;
  let lastDurable = 0;
  let steadyFrom = Infinity;
  actor.onDurable((seq) => {
    const now = performance.now();
    for (let s = lastDurable + 1; s <= seq; s++) {
      const d = due[s] as number;
      const us = (now - d) * 1000;
      lat[measured++] = us;
      if (d >= steadyFrom) steady[measuredSteady++] = us;
    }
    lastDurable = seq;
  });
  const t0 = performance.now();
  steadyFrom = t0 + warmupSeconds * 1000;
  let refused = 0;
  for (let i = 0; i < w.length; ) {
    // Command i is due at i / rate: at time t, commands 0 .. floor(t * rate) are due.
    const dueCount = Math.min(w.length, Math.floor(((performance.now() - t0) / 1000) * rate) + 1);
    while (i < dueCount) {
      const r = actor.trySubmit(commandAt(w, i));
      if (typeof r !== 'number') {
        // Backpressure is retried on the next turn (and counted); anything else ends the run.
        if (r.code !== 'MAILBOX_FULL' && r.code !== 'DURABILITY_BACKLOG') {
          await engine.close().catch(() => undefined);
          throw new BenchError('IO', `command ${i + 1} refused: ${r.code}: ${r.message}`);
        }
        refused++;
        break;
      }
      due[r] = t0 + (i / rate) * 1000;
      i++;
    }
    await new Promise((res) => setImmediate(res));
  }
  await actor.waitForDurable(actor.lastSubmittedSeq);
  await engine.close();
  return { latenciesUs: lat.subarray(0, measured).sort(), steadyLatenciesUs: steady.subarray(0, measuredSteady).sort(), refused };
}
