// What a user runs, at its edges: the server's bin (--help, the start-up banner, a bad --bus), the
// bench's CLIs (pnpm bench, bench compare, gen, replay) and the WAL's CLI, as child processes of
// the built bins.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BENCH_DIR, GEN_JS, REPLAY_JS, REPO_ROOT, runNode, tempDir, type RunResult } from './helpers.js';

const BENCH_JS = path.join(BENCH_DIR, 'dist/bin/bench.js');
const SERVER_JS = path.join(REPO_ROOT, 'apps/server/dist/bin/server.js');
const WAL_JS = path.join(REPO_ROOT, 'packages/wal/dist/bin/wal.js');

let tmp: { dir: string; cleanup: () => Promise<void> };
let n = 0;
const fresh = (name: string): string => path.join(tmp.dir, `${name}-${++n}`);

beforeAll(async () => {
  for (const f of [BENCH_JS, GEN_JS, REPLAY_JS, SERVER_JS, WAL_JS]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: run \`pnpm -s build\` first`);
  }
  tmp = await tempDir();
});
afterAll(async () => {
  await tmp.cleanup();
});

/** A clean CLI failure as the READMEs describe it: exit 2, nothing on stdout, one line `error [CODE]: ...`. */
function expectOneLineError(r: RunResult, code: string, why?: RegExp): void {
  expect({ status: r.status, stdout: r.stdout }).toEqual({ status: 2, stdout: '' });
  expect(r.stderr).toMatch(new RegExp(`^error \\[${code}\\]: [^\\n]*\\n$`));
  if (why) expect(r.stderr).toMatch(why);
}

/** Environment for the server bin without the test runner's GX3_* settings. */
function serverEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('GX3_')) env[k] = v;
  return { ...env, GX3_LOG_LEVEL: 'silent', GX3_PORT: '0', ...extra };
}

/** Starts the server bin; resolves with its start-up banner (stderr up to the `try:` line), then stops it with SIGTERM. */
async function bannerOf(args: string[], env: NodeJS.ProcessEnv, use?: (banner: string) => Promise<void>): Promise<string> {
  const child = spawn(process.execPath, [SERVER_JS, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => { resolve(c); }));
  try {
    const banner = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        if (/\ntry: [^\n]*\n/.test(err)) resolve(err);
      });
      child.on('exit', (c) => { reject(new Error(`the server exited ${String(c)} before its banner: ${err}`)); });
    });
    if (use) await use(banner);
    return banner;
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

describe('gx3-server (apps/server/dist/bin/server.js)', () => {
  it('--help lists every flag of the README (--client-order-id-window, --recent-trades, --order-history)', () => {
    const r = spawnSync(process.execPath, [SERVER_JS, '--help'], { env: serverEnv({}), encoding: 'utf8' });
    expect(r.status).toBe(0);
    for (const flag of ['--client-order-id-window', '--recent-trades', '--order-history']) expect(r.stdout).toContain(flag);
  });

  it('--help prints the usage and exits 0 even when the environment holds a bad setting', () => {
    const r = spawnSync(process.execPath, [SERVER_JS, '--help'], { env: serverEnv({ GX3_PORT: 'eighty' }), encoding: 'utf8' });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    expect(r.stdout).toMatch(/^usage: gx3-server/);
  });

  it('a --bus URL without a host (nats://) is a bad setting: error [INVALID_CONFIG] naming bus, exit 2', () => {
    const r = spawnSync(process.execPath, [SERVER_JS, '--bus', 'nats://', '--data-dir', fresh('data')], { env: serverEnv({}), encoding: 'utf8' });
    expect(r.stderr).toMatch(/^error \[INVALID_CONFIG\]: bus/);
    expect(r.status).toBe(2);
  });

  it('the banner does not print configured (secret) API keys, only their users', async () => {
    const banner = await bannerOf(['--data-dir', fresh('data')], serverEnv({ GX3_API_KEYS: 'alice:s3cret-alice-key,bob:s3cret-bob-key' }));
    expect(banner).toMatch(/API keys configured for: alice, bob/);
    expect(banner).not.toContain('s3cret-alice-key');
    expect(banner).not.toContain('s3cret-bob-key');
  });

  it("the banner's `try: curl` example places an order the server accepts (price inside the first instrument's band)", async () => {
    await bannerOf(['--data-dir', fresh('data'), '--instruments', 'TEST:200:300:10'], serverEnv({}), async (banner) => {
      const m = /try: curl -s -X POST (\S+) -H 'content-type: application\/json' -H 'x-api-key: ([^']+)' -d '([^']+)'/.exec(banner);
      expect(m, banner).not.toBeNull();
      const [, url, key, body] = m as RegExpExecArray;
      const res = await fetch(url as string, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key as string }, body: body as string });
      expect(res.status, await res.text()).toBe(200);
    });
  });
});

describe('pnpm bench (apps/bench/dist/bin/bench.js)', () => {
  it('a missing --baseline file is refused before any suite runs: one line, exit 2', async () => {
    const r = await runNode([BENCH_JS, '--smoke', '--suites', 'codecs', '--out', fresh('out'), '--baseline', path.join(tmp.dir, 'no-such-baseline.json')]);
    // Now: `[1/1] codecs round 1/1 ...` (the suite ran) and only then `error [IO]: cannot read the baseline ...`.
    expectOneLineError(r, 'IO', /baseline/);
  });

  it('--rounds -1 is a one-line BAD_ARGUMENT saying --rounds must be >= 1', async () => {
    const r = await runNode([BENCH_JS, '--suites', 'codecs', '--rounds', '-1', '--out', fresh('out')]);
    expectOneLineError(r, 'BAD_ARGUMENT', /--rounds must be >= 1/);
  });
});

describe('pnpm bench compare (apps/bench/dist/bin/compare.js)', () => {
  it('an unsafe --orders is refused naming --orders (not the generator\'s --ops)', async () => {
    const r = await runNode([BENCH_JS, 'compare', '--orders', '99999999999999999999']);
    expectOneLineError(r, 'BAD_ARGUMENT', /--orders/);
  });

  it('an unwritable --json is refused before the comparison runs: nothing on stdout, exit 2', async () => {
    const file = path.join(tmp.dir, `plain-file-${++n}`);
    writeFileSync(file, '');
    const r = await runNode([BENCH_JS, 'compare', '--orders', '0', '--json', path.join(file, 'report.json')]);
    // Now: the whole comparison runs, its table goes to stdout, and then `error [IO]: cannot write ...`.
    expectOneLineError(r, 'IO', /cannot write/);
  });
});

describe('pnpm -s gen (apps/bench/dist/bin/gen.js)', () => {
  it('streams its output: a workload larger than the heap is written, not buffered whole (no out-of-memory crash)', () => {
    // 2,000,000 operations are about 33 MB of CSV; the generator itself runs them in about 15 MB of
    // heap, but gen keeps every line in memory until the end, so a big --ops (here: a small heap)
    // dies with `FATAL ERROR: ... JavaScript heap out of memory` and exit 134.
    const devNull = openSync('/dev/null', 'w');
    try {
      const r = spawnSync(process.execPath, ['--max-old-space-size=32', GEN_JS, '--ops', '2000000'], { stdio: ['ignore', devNull, 'pipe'], encoding: 'utf8' });
      expect({ status: r.status, stderr: r.stderr.slice(0, 300) }).toEqual({ status: 0, stderr: '' });
    } finally {
      closeSync(devNull);
    }
  });
});

describe('pnpm -s replay (apps/bench/dist/bin/replay.js)', () => {
  it('--engine with a non-integer --warmup is a BAD_ARGUMENT, not silently ignored', async () => {
    const csv = path.join(tmp.dir, `w-${++n}.csv`);
    writeFileSync(csv, 'L,1,B,100,5\nL,2,S,101,5\n');
    const r = await runNode([REPLAY_JS, csv, '--engine', '--data-dir', fresh('engine'), '--durability', 'none', '--warmup', 'abc']);
    expectOneLineError(r, 'BAD_ARGUMENT', /--warmup/);
  });
});

describe('pnpm -s wal (packages/wal/dist/bin/wal.js)', () => {
  it('errors have the form `error [CODE]: ...` like the other CLIs', () => {
    const file = path.join(tmp.dir, `not-a-segment-${++n}`);
    writeFileSync(file, 'x');
    const r = spawnSync(process.execPath, [WAL_JS, 'verify', file], { encoding: 'utf8' });
    // Now: `error: [IO] ... is not a log segment: ...`.
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^error \[[A-Z_]+\]: [^\n]*\n$/);
  });

  it('`wal dump LOG | head -1` ends quietly, without an EPIPE stack trace', async () => {
    // A log of about 5,000 records (some 700 KB of hex dump, far more than a pipe holds).
    const csv = path.join(tmp.dir, `w-${++n}.csv`);
    const g = spawnSync(process.execPath, [GEN_JS, '--ops', '5000', '--prefill', '100'], { encoding: 'utf8', maxBuffer: 1 << 26 });
    expect(g.status).toBe(0);
    writeFileSync(csv, g.stdout);
    const dataDir = fresh('engine');
    const rep = await runNode([REPLAY_JS, csv, '--engine', '--data-dir', dataDir, '--durability', 'none']);
    expect(rep.status, rep.stderr).toBe(0);
    const log = path.join(dataDir, 'REPLAY', 'cmd');
    const r = spawnSync('sh', ['-c', `"${process.execPath}" "${WAL_JS}" dump "${log}" | head -n 1 > /dev/null`], { encoding: 'utf8' });
    expect(r.stderr).not.toMatch(/EPIPE|Unhandled 'error' event|\n\s+at /);
  });
});
