// replay --engine and recover, the built command-line tools through the whole engine: the summary
// comes from the outbox and must equal the book replay's (and the reference's, where ../shared is).
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateText, parseWorkload, replay } from '../src/index.js';
import { BENCH_DIR, HAVE_SHARED, nodeStdout, REF_MJS, REPLAY_JS, runNode, tempDir, warnIfNoShared } from './helpers.js';

const RECOVER_JS = path.join(BENCH_DIR, 'dist/bin/recover.js');
let tmp: { dir: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  for (const f of [REPLAY_JS, RECOVER_JS]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: run \`pnpm -s build\` before the CLI tests`);
  }
  tmp = await tempDir();
});
afterAll(async () => {
  await tmp.cleanup();
});

// Every operation, prices that collide, some large quantities.
const CSV = generateText({ ops: 6000, prefill: 300, seed: 11, band: 8, cross: 3, mix: [40, 25, 10, 5, 5, 5, 5, 5] });

function withoutPerf(line: string): Record<string, unknown> {
  const o = JSON.parse(line) as Record<string, unknown>;
  delete o.perf;
  return o;
}

describe('replay --engine and recover', () => {
  it.each(['binary', 'json'])('gives the book replay summary from the outbox (%s codec), and recover gives it again', async (codec) => {
    const file = path.join(tmp.dir, `w-${codec}.csv`);
    await writeFile(file, CSV);
    const dataDir = path.join(tmp.dir, `data-${codec}`);
    const expected = replay(parseWorkload(CSV), { warmup: 0, latency: false }).summary;

    const r = await runNode([REPLAY_JS, file, '--engine', '--data-dir', dataDir, '--durability', 'batch', '--codec', codec]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const line = JSON.parse(r.stdout) as { perf: Record<string, number> };
    expect(withoutPerf(r.stdout)).toEqual(expected);
    for (const k of ['commandsPerSec', 'p50Us', 'p99Us', 'p999Us', 'maxUs', 'backpressureWaits']) expect(typeof line.perf[k]).toBe('number');
    expect(line.perf.commandsPerSec).toBeGreaterThan(0);

    const rec = await runNode([RECOVER_JS, '--data-dir', dataDir]);
    expect(rec.stderr).toBe('');
    const recovered = JSON.parse(rec.stdout) as Record<string, unknown> & { commands: number; recovery: Record<string, number> };
    expect(recovered.commands).toBe(expected.ops);
    expect(recovered.recovery.commands).toBe(expected.ops);
    const { commands: _c, recovery: _r, ...summary } = recovered;
    expect(summary).toEqual(expected);
  });

  it.skipIf(!HAVE_SHARED)('equals the reference matcher', async () => {
    const file = path.join(tmp.dir, 'ref.csv');
    await writeFile(file, CSV);
    const dataDir = path.join(tmp.dir, 'data-ref');
    const out = await nodeStdout([REPLAY_JS, file, '--engine', '--data-dir', dataDir, '--durability', 'none']);
    expect(withoutPerf(out)).toEqual(JSON.parse(await nodeStdout([REF_MJS, file])));
  });
  if (!HAVE_SHARED) warnIfNoShared('the engine replay cross-check against ref.mjs');

  it.each<[string, string[], RegExp]>([
    ['--engine without --data-dir', ['--engine'], /--engine needs --data-dir/],
    ['--data-dir without --engine', ['--data-dir', 'x'], /go with --engine/],
    ['an unknown durability', ['--engine', '--data-dir', 'x', '--durability', 'sometimes'], /--durability must be none, batch or interval/],
    ['an unknown codec', ['--engine', '--data-dir', 'x', '--codec', 'xml'], /--codec must be binary or json/],
  ])('refuses %s', async (_name, args, why) => {
    const file = path.join(tmp.dir, 'args.csv');
    await writeFile(file, 'L,1,B,100,5\n');
    const r = await runNode([REPLAY_JS, file, ...args]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(why);
  });

  it('refuses a data directory that is not empty, and recover one that holds no engine replay', async () => {
    const file = path.join(tmp.dir, 'small.csv');
    await writeFile(file, 'L,1,B,100,5\nL,2,S,100,2\n');
    const dataDir = path.join(tmp.dir, 'data-twice');
    expect((await runNode([REPLAY_JS, file, '--engine', '--data-dir', dataDir])).status).toBe(0);
    const again = await runNode([REPLAY_JS, file, '--engine', '--data-dir', dataDir]);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/is not empty/);
    const r = await runNode([RECOVER_JS, '--data-dir', tmp.dir]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/not an engine replay data directory/);
    expect((await runNode([RECOVER_JS])).stderr).toMatch(/usage: recover --data-dir DIR/);
  });
});
