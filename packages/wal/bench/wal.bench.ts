// WAL benchmarks (tinybench) for 64-byte records: append with no sync (flush to the OS only), append
// with an fdatasync every 64 and every 1024 records (durability `batch`: the group-commit path),
// and read (replay). Each tinybench iteration handles a batch of records, so the figures are per
// record: the batch's time divided by its size. Allocation is the used-heap growth over a separate
// no-sync pass (run with --expose-gc for a clean baseline).
//
//   pnpm --filter @gx3/wal bench     (BENCH_TIME=ms per task, default 2000; WAL_BENCH_DIR=directory)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { Bench } from 'tinybench';
import { WalReader, WalRecord, WalWriter } from '../src/index.js';

const RECORD = 64;
const payload = Buffer.alloc(RECORD, 0xab);
const root = fs.mkdtempSync(path.join(process.env.WAL_BENCH_DIR ?? os.tmpdir(), 'gx3-wal-bench-'));
let n = 0;
// Each timed batch starts on a fresh, preallocated 16 MiB segment (set up untimed), so a batch never
// includes a segment roll; a roll's cost (preallocating the next segment) is measured separately.
const fresh = (durability: 'none' | 'batch'): WalWriter => {
  const dir = path.join(root, `log-${n++}`);
  return WalWriter.open(dir, { durability, segmentSize: 16 << 20 });
};
const renew = async (durability: 'none' | 'batch'): Promise<void> => {
  const old = writer;
  await old.close();
  fs.rmSync(old.dir, { recursive: true, force: true });
  writer = fresh(durability);
};

let writer = fresh('none');
const BATCH = 100_000;

const bench = new Bench({ name: '@gx3/wal', time: Number(process.env.BENCH_TIME ?? 2000), warmupTime: 200, iterations: 5 });

bench.add(
  'append, no sync',
  () => {
    for (let i = 0; i < BATCH; i++) writer.append(payload);
    writer.flush();
  },
  { beforeEach: () => renew('none') },
);

function syncedEvery(k: number, batch: number): () => Promise<void> {
  return async () => {
    for (let i = 0; i < batch; i += k) {
      for (let j = 0; j < k; j++) writer.append(payload);
      await writer.sync();
    }
  };
}

const SYNC64 = 64 * 64;
const SYNC1024 = 1024 * 32;
bench.add('append, sync every 64', syncedEvery(64, SYNC64), { beforeEach: () => renew('batch') });
bench.add('append, sync every 1024', syncedEvery(1024, SYNC1024), { beforeEach: () => renew('batch') });

// Read: a log of READ records written once, replayed from the start in each iteration.
const READ = 1_000_000;
const readDir = path.join(root, 'read');
{
  const w = WalWriter.open(readDir, { durability: 'none', segmentSize: 32 << 20 });
  for (let i = 0; i < READ; i++) w.append(payload);
  await w.close();
}
const rec = new WalRecord();
bench.add('read (replay)', () => {
  const r = new WalReader(readDir);
  let count = 0;
  while (r.next(rec)) count++;
  r.close();
  if (count !== READ) throw new Error(`read ${count} of ${READ} records`);
});

// Allocation of the append path, outside tinybench.
const gc = (globalThis as { gc?: () => void }).gc;
await renew('none');
function appendPass(w: WalWriter, count: number): void {
  for (let i = 0; i < count; i++) w.append(payload);
  w.flush();
}
// Ten passes; the JIT settles over the first few (its compilations show up as heap growth), so the
// figure is the median of the last five.
const perPass: number[] = [];
for (let pass = 0; pass < 10; pass++) {
  gc?.();
  const before = v8.getHeapStatistics().used_heap_size;
  appendPass(writer, BATCH);
  perPass.push((v8.getHeapStatistics().used_heap_size - before) / BATCH);
}
const allocPerRecord = perPass.slice(5).sort((a, b) => a - b)[2] as number;

await bench.run();

// A segment roll. Appends of 1 MiB records, each synced, at about 100 MB/s: the next segment is
// preallocated in the background once the current one is a quarter full, so the roll is a rename;
// the slowest roll of the run is reported next to the slowest ordinary append.
const rollDir = path.join(root, 'roll');
const big = Buffer.alloc(1 << 20, 1);
const rw = WalWriter.open(rollDir, { durability: 'batch', segmentSize: 64 << 20 });
let rollMs = 0;
let appendMs = 0;
let rolled = 0;
for (let i = 0; i < 64 * 3 + 2; i++) {
  const segmentsBefore = fs.readdirSync(rollDir).filter((f) => f.endsWith('.wal')).length;
  const t0 = performance.now();
  rw.append(big);
  const dt = performance.now() - t0;
  if (fs.readdirSync(rollDir).filter((f) => f.endsWith('.wal')).length > segmentsBefore) {
    rolled++;
    rollMs = Math.max(rollMs, dt);
  } else {
    appendMs = Math.max(appendMs, dt);
  }
  await rw.sync();
  await new Promise((r) => setTimeout(r, 10));
}
await rw.close();
await writer.close();

const perBatch: Record<string, number> = {
  'append, no sync': BATCH,
  'append, sync every 64': SYNC64,
  'append, sync every 1024': SYNC1024,
  'read (replay)': READ,
};
const rows = bench.tasks.map((t) => {
  const r = t.result;
  if (r.state !== 'completed') return { task: t.name, state: r.state, error: r.state === 'errored' ? r.error.message : '' };
  const size = perBatch[t.name] ?? 1;
  const nsPer = (r.latency.mean * 1e6) / size;
  return {
    task: t.name,
    'records/s': Math.round(1e9 / nsPer).toLocaleString('en-US'),
    'ns/record': nsPer.toFixed(1),
    'MB/s': ((RECORD + 8) * (1e3 / nsPer)).toFixed(1),
    batches: r.latency.samplesCount,
  };
});
console.log(`${bench.name}: ${RECORD}-byte records, node ${process.version}, dir ${root}`);
console.table(rows);
console.log(`append allocation: ${allocPerRecord.toFixed(3)} bytes/record (used-heap growth over ${BATCH} records, median of the last 5 of 10 passes${gc ? '' : '; run with --expose-gc for a clean baseline'})`);
console.log(`segment roll (64 MiB segments, 1 MiB records synced at ~100 MB/s): slowest of ${rolled} rolls ${rollMs.toFixed(1)} ms; slowest other append ${appendMs.toFixed(1)} ms`);
fs.rmSync(root, { recursive: true, force: true });
