// The command-line tools (replay, recover, gen) on bad input: a typed one-line `error [CODE]: ...`
// (exit 2, no stack trace), also for the engine's own errors.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Engine } from '@gx3/engine';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GEN_JS, REPLAY_JS, REPO_ROOT, runNode, tempDir, type RunResult } from './helpers.js';

const RECOVER_JS = path.join(REPO_ROOT, 'apps/bench/dist/bin/recover.js');

/** A failed run: status 2, nothing on stdout, one `error [CODE]: ...` report and no stack trace. */
function expectCleanFailure(r: RunResult): void {
  expect({ status: r.status, stdout: r.stdout }).toEqual({ status: 2, stdout: '' });
  expect(r.stderr).toMatch(/^error \[[A-Z_]+\]: /);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

let dir = '';
let cleanup: () => Promise<void> = () => Promise.resolve();
const CSV = 'L,1,B,100,5\nL,2,S,101,5\n';

beforeAll(async () => {
  for (const f of [REPLAY_JS, RECOVER_JS]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: run \`pnpm -s build\` before the CLI tests`);
  }
  ({ dir, cleanup } = await tempDir());
});
afterAll(async () => {
  await cleanup();
});

describe('replay --engine --data-dir', () => {
  it('a --data-dir that is a file is a typed error (exit 2), not a stack trace', async () => {
    const csv = path.join(dir, 'w1.csv');
    await writeFile(csv, CSV);
    const file = path.join(dir, 'not-a-dir');
    await writeFile(file, 'x');
    const r = await runNode([REPLAY_JS, csv, '--engine', '--data-dir', file, '--durability', 'none']);
    expectCleanFailure(r);
  });

  it('an empty --data-dir is a typed error (exit 2), not a stack trace', async () => {
    const csv = path.join(dir, 'w2.csv');
    await writeFile(csv, CSV);
    const r = await runNode([REPLAY_JS, csv, '--engine', '--data-dir', '', '--durability', 'none'], dir);
    expectCleanFailure(r);
  });
});

describe('recover', () => {
  it('a gx3-replay.json of the wrong shape is a typed error (exit 2), not a TypeError stack trace', async () => {
    const d = path.join(dir, 'recover-bad-config');
    await mkdir(d);
    for (const bad of ['{}', '{"symbol":{"symbol":"BTCUSDT"},"codec":"binary","durability":"none"}', '{"symbol":{"symbol":"BTCUSDT","minPrice":1,"maxPrice":9,"maxQty":9},"codec":"xml","durability":"none"}']) {
      await writeFile(path.join(d, 'gx3-replay.json'), bad);
      const r = await runNode([RECOVER_JS, '--data-dir', d]);
      expectCleanFailure(r);
      expect(r.stderr).toMatch(/^error \[IO\]: .* is not an engine replay data directory/);
    }
  });

  it("the engine's own errors are typed one-liners too: a data directory in use is LOCKED (exit 2)", async () => {
    const d = path.join(dir, 'recover-locked');
    await mkdir(d);
    const symbol = { symbol: 'BTCUSDT', minPrice: 1, maxPrice: 1000, maxQty: 1000 };
    await writeFile(path.join(d, 'gx3-replay.json'), JSON.stringify({ symbol, codec: 'binary', durability: 'none' }));
    const engine = await Engine.open({ dataDir: d, symbols: [symbol], durability: 'none' });
    try {
      const r = await runNode([RECOVER_JS, '--data-dir', d]);
      expectCleanFailure(r);
      expect(r.stderr).toMatch(/^error \[LOCKED\]: /);
    } finally {
      await engine.close();
    }
  });
});

describe('a negative number after an option that takes one (`--ops -1`, as `--ops N` is documented)', () => {
  it.each([
    ['gen', () => [GEN_JS, '--ops', '-1'], /--ops/],
    ['replay', () => [REPLAY_JS, path.join(dir, 'none.csv'), '--warmup', '-1'], /--warmup/],
    ['recover', () => [RECOVER_JS, '--data-dir', '-1'], /-1/],
  ])('%s: one line naming the option and what is wrong with the value, not node\'s "argument is ambiguous"', async (_name, args, names) => {
    await writeFile(path.join(dir, 'none.csv'), CSV);
    const r = await runNode(args(), dir);
    expectCleanFailure(r);
    expect(r.stderr).not.toMatch(/ambiguous/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(names);
  });
});

describe('recover --data-dir', () => {
  it("an empty --data-dir is BAD_ARGUMENT naming it, not a read of the working directory's gx3-replay.json", async () => {
    const r = await runNode([RECOVER_JS, '--data-dir', ''], dir);
    expectCleanFailure(r);
    expect(r.stderr).toMatch(/^error \[BAD_ARGUMENT\]: --data-dir must name a directory/);
  });
});
