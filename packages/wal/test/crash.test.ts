// Crash test: a child process (the built package) appends records with durability 'batch' and reports
// each completed sync; the parent kills it with SIGKILL at a random moment, then recovers the log:
// every record a reported sync covered is there byte for byte, the log is ok or has a torn tail that
// opening repairs, and appending continues. The same log goes through every trial, so each child also
// starts on a log that was just recovered (or killed while it was recovering).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyLog, WalWriter } from '../src/index.js';
import { appendAt, HEADER, MAX, payloadFor, prng, readAll, removeTmpDirs, SMALL, tmpDir } from './helpers.js';

const DIST = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const CHILD = fileURLToPath(new URL('./fixtures/crash-child.mjs', import.meta.url));
const TRIALS = 24;

afterAll(removeTmpDirs);

interface Trial {
  /** The last complete `synced` line: durable offset and records covered. */
  synced: { offset: number; records: number } | undefined;
  ready: boolean;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/**
 * Runs the child on `dir` from record `first` and kills it `killAfterMs` after it started or, with
 * `afterReady`, after it opened the log.
 */
function runChild(dir: string, first: number, seed: number, killAfterMs: number, afterReady: boolean): Promise<Trial> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dir, String(first), String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      timer ??= setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    };
    child.stdout.on('data', (s: string) => {
      out += s;
      if (afterReady && out.includes('\n')) arm();
    });
    child.stderr.on('data', (s: string) => {
      stderr += s;
    });
    if (!afterReady) arm();
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (_code, signal) => {
      clearTimeout(timer);
      // Only complete lines count: a line is written whole, after its sync completed.
      const lines = out.split('\n').slice(0, -1);
      let synced: Trial['synced'];
      let ready = false;
      for (const line of lines) {
        const [kind, a, b] = line.split(' ');
        if (kind === 'ready') ready = true;
        if (kind === 'synced') synced = { offset: Number(a), records: Number(b) };
      }
      resolve({ synced, ready, signal, stderr });
    });
  });
}

describe('crash recovery (SIGKILL of a writing process)', () => {
  beforeAll(() => {
    if (!existsSync(DIST)) {
      throw new Error(`${DIST} is missing: the crash test runs the built package; run \`pnpm build\` (tsc -p tsconfig.build.json) in packages/wal first`);
    }
  });

  it(`keeps every synced record through ${TRIALS} random kills, repairs torn tails and continues`, async () => {
    const dir = tmpDir();
    const rnd = prng(20240611);
    let count = 0; // records in the log (indices 0..count-1)
    let end = 0; // the log's end offset
    let reportedSyncs = 0;
    let repairs = 0;
    for (let trial = 0; trial < TRIALS; trial++) {
      // Even trials: killed 20..200 ms after the spawn (often while starting or recovering the log);
      // odd ones: 10..150 ms after the child opened the log (while appending and syncing).
      const afterReady = trial % 2 === 1;
      const killAfter = afterReady ? 10 + Math.floor(rnd() * 140) : 20 + Math.floor(rnd() * 180);
      const t = await runChild(dir, count, trial + 1, killAfter, afterReady);
      const label = `trial ${trial} (killed ${killAfter} ms after ${afterReady ? 'opening the log' : 'the spawn'})`;
      expect(t.signal, `${label}: the child ended on its own: ${t.stderr}`).toBe('SIGKILL');

      const v = verifyLog(dir, { maxRecordSize: MAX });
      expect(['ok', 'torn-tail'], `${label}: ${JSON.stringify(v)}`).toContain(v.status);
      const w = WalWriter.open(dir, { ...SMALL, durability: 'batch' });
      if (v.status === 'torn-tail') {
        expect(w.repaired, label).toBeDefined();
        repairs++;
      }
      const records = readAll(dir);
      // Every record in the log is the one its index says, at the offset the ones before it give.
      let at = 0;
      records.forEach((r, i) => {
        expect(r.offset, `${label}: offset of record ${i}`).toBe(at);
        if (!r.payload.equals(payloadFor(i))) expect.fail(`${label}: record ${i} differs`);
        at += HEADER + r.payload.length;
      });
      expect(w.nextOffset).toBe(at);
      // Nothing that was in the log before this child ran was lost.
      expect(records.length, label).toBeGreaterThanOrEqual(count);
      if (t.synced !== undefined) {
        reportedSyncs++;
        // Every record the last reported sync covered is there, and the reported offset is its end.
        expect(records.length, `${label}: records covered by the last reported sync`).toBeGreaterThanOrEqual(t.synced.records);
        const covered = records[t.synced.records - 1];
        const coveredEnd = covered === undefined ? 0 : covered.offset + HEADER + covered.payload.length;
        expect(t.synced.offset, label).toBe(coveredEnd);
      }
      // Appending continues after the recovered end.
      count = records.length;
      for (let k = 0; k < 3; k++) {
        appendAt(w, payloadFor(count));
        count++;
      }
      end = w.nextOffset;
      await w.close();
    }
    const final = readAll(dir);
    expect(final.length).toBe(count);
    expect(final.every((r, i) => r.payload.equals(payloadFor(i)))).toBe(true);
    expect(verifyLog(dir, { maxRecordSize: MAX })).toEqual({ status: 'ok', records: count, bytes: end });
    // The trials must have exercised something: some children synced before being killed.
    expect(reportedSyncs, 'no child reported a sync before it was killed').toBeGreaterThanOrEqual(TRIALS / 4);
    console.info(`crash test: ${TRIALS} kills, ${reportedSyncs} with reported syncs, ${repairs} torn tails repaired, ${count} records`);
  });
});
