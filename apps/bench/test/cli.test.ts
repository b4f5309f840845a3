// The built command-line tools (dist/bin, made by `pnpm -s build`, which CI runs before the tests).
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateText, parseWorkload, replay } from '../src/index.js';
import { GEN_JS, GEN_MJS, HAVE_SHARED, nodeStdout, REPLAY_JS, runNode, SUMMARY_KEYS, tempDir, warnIfNoShared, type RunResult } from './helpers.js';

/** A failed run: status 2, nothing on stdout, one `error [CODE]: ...` report and no stack trace. */
function expectCleanFailure(r: RunResult, code: string, why: RegExp): void {
  expect({ status: r.status, stdout: r.stdout }).toEqual({ status: 2, stdout: '' });
  expect(r.stderr).toMatch(new RegExp(`^error \\[${code}\\]: `));
  expect(r.stderr).toMatch(why);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stderr.endsWith('\n')).toBe(true);
}

beforeAll(() => {
  for (const f of [REPLAY_JS, GEN_JS]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: run \`pnpm -s build\` before the CLI tests`);
  }
});

describe('replay CLI', () => {
  let dir = '';
  let cleanup: () => Promise<void> = () => Promise.resolve();
  const csv = generateText({ ops: 3000, prefill: 200, seed: 31, band: 4, mix: [40, 25, 10, 5, 5, 5, 5, 5] });
  let good = '';

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir());
    good = path.join(dir, 'good.csv');
    await writeFile(good, csv);
  });
  afterAll(async () => {
    await cleanup();
  });

  it('prints one JSON line: the summary and the perf figures', async () => {
    const r = await runNode([REPLAY_JS, good, '--warmup', '1']);
    expect(r.status).toBe(0);
    expect(r.stdout.endsWith('\n')).toBe(true);
    expect(r.stdout.trimEnd().split('\n')).toHaveLength(1);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(Object.keys(out)).toEqual([...SUMMARY_KEYS, 'perf']);

    const { perf, ...summary } = out;
    expect(summary).toEqual(replay(parseWorkload(csv), { warmup: 0, latency: false }).summary);

    expect(typeof perf).toBe('object');
    const p = perf as Record<string, unknown>;
    for (const k of ['opsPerSec', 'nsPerOp', 'p50Ns', 'p99Ns', 'p999Ns', 'gcCount', 'allocBytesPerOp']) {
      expect(typeof p[k], k).toBe('number');
      expect(Number.isFinite(p[k]), k).toBe(true);
      expect(p[k] as number, k).toBeGreaterThanOrEqual(0);
    }
    expect(p.opsPerSec).toBeGreaterThan(0);
    expect(p.nsPerOp).toBeGreaterThan(0);
    expect(p.p999Ns).toBeGreaterThan(0);
    expect(p.p99Ns as number).toBeGreaterThanOrEqual(p.p50Ns as number);
    expect(p.p999Ns as number).toBeGreaterThanOrEqual(p.p99Ns as number);
    expect(Number.isInteger(p.gcCount)).toBe(true);
  });

  it('skips the latency pass with --no-latency', async () => {
    const r = await runNode([REPLAY_JS, '--no-latency', '--warmup=0', good]);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { ops: number; perf: Record<string, number> };
    expect(out.ops).toBe(3200);
    expect([out.perf.p50Ns, out.perf.p99Ns, out.perf.p999Ns]).toEqual([0, 0, 0]);
    expect(out.perf.opsPerSec).toBeGreaterThan(0);
  });

  it('reads a CRLF file with blank lines like the LF one', async () => {
    const crlf = path.join(dir, 'crlf.csv');
    await writeFile(crlf, '\r\n' + csv.replaceAll('\n', '\r\n') + '\r\n\r\n');
    const [a, b] = await Promise.all([runNode([REPLAY_JS, good, '--warmup=0', '--no-latency']), runNode([REPLAY_JS, crlf, '--warmup=0', '--no-latency'])]);
    expect(a.status).toBe(0);
    expect(b.status).toBe(0);
    const strip = (s: string): unknown => {
      const { perf: _perf, ...rest } = JSON.parse(s) as Record<string, unknown>;
      return rest;
    };
    expect(strip(b.stdout)).toEqual(strip(a.stdout));
  });

  it('exits 2 on a bad line 3, naming the file and the line, with nothing on stdout', async () => {
    const bad = path.join(dir, 'bad.csv');
    await writeFile(bad, 'L,1,B,100,5\nC,1\nL,2,B,x,5\nL,3,S,101,5\n');
    const r = await runNode([REPLAY_JS, bad]);
    expectCleanFailure(r, 'CSV_PARSE', /line 3\b/);
    expect(r.stderr).toContain('bad.csv');
    expect(r.stderr).toMatch(/price/);
  });

  it('exits 2 on a bad time in force on line 3', async () => {
    const bad = path.join(dir, 'bad-tif.csv');
    await writeFile(bad, 'L,1,B,100,5\n\nL,2,S,101,5,DAY\n');
    expectCleanFailure(await runNode([REPLAY_JS, bad]), 'CSV_PARSE', /line 3: time in force/);
  });

  it('exits 2 on a missing file', async () => {
    const missing = path.join(dir, 'no-such-file.csv');
    const r = await runNode([REPLAY_JS, missing]);
    expectCleanFailure(r, 'IO', /cannot read/);
    expect(r.stderr).toContain('no-such-file.csv');
  });

  it('exits 2 on a directory', async () => {
    expectCleanFailure(await runNode([REPLAY_JS, dir]), 'IO', /cannot read/);
  });

  it('exits 2 with its usage when the file argument is missing', async () => {
    expectCleanFailure(await runNode([REPLAY_JS]), 'BAD_ARGUMENT', /usage: replay FILE\.csv/);
    expectCleanFailure(await runNode([REPLAY_JS, '--no-latency']), 'BAD_ARGUMENT', /usage/);
  });

  it('exits 2 on two files, an unknown option or a bad --warmup', async () => {
    expectCleanFailure(await runNode([REPLAY_JS, good, good]), 'BAD_ARGUMENT', /usage/);
    expectCleanFailure(await runNode([REPLAY_JS, good, '--bogus']), 'BAD_ARGUMENT', /bogus/);
    expectCleanFailure(await runNode([REPLAY_JS, good, '--warmup', 'two']), 'BAD_ARGUMENT', /--warmup must be an integer/);
    expectCleanFailure(await runNode([REPLAY_JS, good, '--warmup=-1']), 'BAD_ARGUMENT', /--warmup/);
    expectCleanFailure(await runNode([REPLAY_JS, good, '--warmup']), 'BAD_ARGUMENT', /warmup/);
  });
});

describe('gen CLI', () => {
  it('writes the workload of generateText', async () => {
    const options = { ops: 1200, prefill: 40, seed: 5, band: 3, cross: 2, maxQty: 9, mix: [1, 1, 1, 1, 1, 1, 1, 1.5] };
    const out = await nodeStdout([GEN_JS, '--ops', '1200', '--prefill', '40', '--seed', '5', '--band', '3', '--cross', '2', '--maxqty', '9', '--mix', '1,1,1,1,1,1,1,1.5']);
    expect(out).toBe(generateText(options));
    // More than one 10,000-line chunk, in order.
    expect(await nodeStdout([GEN_JS, '--ops', '25000', '--prefill', '7'])).toBe(generateText({ ops: 25_000, prefill: 7 }));
    expect(await nodeStdout([GEN_JS, '--ops', '0', '--prefill', '0'])).toBe('');
  });

  const bad: { args: string[]; why: RegExp }[] = [
    { args: ['--ops', 'abc'], why: /--ops must be an integer/ },
    { args: ['--ops', '1.5'], why: /--ops must be an integer/ },
    { args: ['--ops=-1'], why: /--ops/ },
    { args: ['--ops', '99999999999999999999'], why: /--ops/ },
    { args: ['--band', '0'], why: /--band/ },
    { args: ['--cross', '0'], why: /--cross/ },
    { args: ['--maxqty', '0'], why: /--maxqty/ },
    { args: ['--seed', 'x'], why: /--seed/ },
    { args: ['--mix', '1,2,3'], why: /--mix takes 8/ },
    { args: ['--mix', '1,1,1,1,1,1,1,x'], why: /--mix/ },
    { args: ['--mix', '1,1,1,1,1,1,1,-1'], why: /--mix/ },
    { args: ['--mix', '0,0,0,0,0,0,0,0'], why: /--mix/ },
    { args: ['--bogus', '1'], why: /bogus/ },
    { args: ['--ops'], why: /ops/ },
    { args: ['extra'], why: /extra|positional|argument/i },
  ];

  it.for(bad)('exits 2 on $args', async ({ args, why }) => {
    expectCleanFailure(await runNode([GEN_JS, '--prefill', '5', ...args]), 'BAD_ARGUMENT', why);
  });
});

warnIfNoShared('the comparison of the gen CLI with gen.mjs');

describe.skipIf(!HAVE_SHARED)('gen CLI vs gen.mjs', () => {
  it.for([
    '--ops 100',
    '--ops 2000 --seed 7 --mix 40,25,10,5,5,5,5,5',
    '--ops 500 --prefill 0 --seed=-9 --band 2 --cross 1 --maxqty 3 --mix 2.5,1,1,1,1,1,1,1',
  ])('gen.js %s matches gen.mjs byte for byte', async (line) => {
    const args = line.split(' ');
    const [ours, ref] = await Promise.all([nodeStdout([GEN_JS, ...args]), nodeStdout([GEN_MJS, ...args])]);
    expect(ours.length).toBeGreaterThan(0);
    expect(ours).toBe(ref);
  });
});
