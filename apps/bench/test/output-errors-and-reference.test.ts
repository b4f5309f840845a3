// The bench's user-facing commands (gen, replay, replay --engine, recover): crafted edge
// workloads against ../shared/workloads/ref.mjs, recover after a SIGKILL of `replay --engine`, and
// how the commands fail (one line `error [CODE]: ...`, exit 2, nothing on stdout; a stack only for a
// bug; README "Failure modes").
import { spawn } from 'node:child_process';
import { existsSync, openSync, closeSync, readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateText } from '../src/index.js';
import { BENCH_DIR, EMPTY_SUMMARY, GEN_JS, HAVE_SHARED, nodeStdout, REF_MJS, REPLAY_JS, runNode, tempDir, type RunResult } from './helpers.js';

const RECOVER_JS = path.join(BENCH_DIR, 'dist/bin/recover.js');
let tmp: { dir: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  for (const f of [REPLAY_JS, RECOVER_JS, GEN_JS]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: run \`pnpm -s build\` before the CLI tests`);
  }
  tmp = await tempDir();
});
afterAll(async () => {
  await tmp.cleanup();
});

let n = 0;
async function csvFile(text: string): Promise<string> {
  const file = path.join(tmp.dir, `w${n++}.csv`);
  await writeFile(file, text);
  return file;
}
function dataDir(): string {
  return path.join(tmp.dir, `data${n++}`);
}
function withoutPerf(line: string): Record<string, unknown> {
  const o = JSON.parse(line) as Record<string, unknown>;
  delete o.perf;
  return o;
}
function recovered(line: string): { summary: Record<string, unknown>; commands: number } {
  const { commands, recovery: _r, ...summary } = JSON.parse(line) as Record<string, unknown> & { commands: number };
  return { summary, commands };
}

/** Runs `node ...args` with its stdout on a file descriptor of the caller's choice. */
function runWithStdout(args: readonly string[], stdoutFd: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: BENCH_DIR, stdio: ['ignore', stdoutFd, 'pipe'] });
    const err: Buffer[] = [];
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (status, signal) => {
      resolve({ status, signal, stdout: '', stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/** Runs `node ...args` with the read end of its stdout pipe closed before it writes (`cmd | head -0`). */
function runWithClosedPipe(args: readonly string[]): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: BENCH_DIR, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    const err: Buffer[] = [];
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (status, signal) => {
      resolve({ status, signal, stdout: '', stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

// Edge cases of every rule: FOK too big and exact, POST crossing and resting, IOC rest dropped,
// amends to 0, to the remaining, up and down, cancels of unknown/dead ids, ids reused after a
// fill/cancel/reject, a duplicate live id, markets with nothing resting.
const EDGE_LOW = [
  'M,1,B,5',
  'M,2,S,5',
  'C,77',
  'A,77,3',
  'L,10,S,100,5',
  'L,11,B,100,10,FOK',
  'L,12,B,101,5,POST',
  'L,13,B,99,5,POST',
  'A,13,0',
  'A,13,5',
  'A,13,9',
  'A,13,4',
  'L,10,S,100,1',
  'L,14,B,100,3,FOK',
  'L,15,B,100,9,IOC',
  'C,10',
  'C,13',
  'C,13',
  'L,13,B,99,2',
  'L,12,B,99,1,POST',
  'M,23,S,100',
  'L,24,S,99,1,GTC',
  'L,25,B,101,1',
];
// The largest safe ids, prices and quantities, prices at the edges of the workload's band.
const EDGE_HIGH = [
  'L,20,S,9007199254740,9007199254740991',
  'L,21,S,9007199254739,1',
  'L,9007199254740991,B,9007199254740,9007199254740990,IOC',
  'M,4294967297,B,3',
  'L,22,B,9007199254739,2',
  'A,20,1',
  'L,9007199254740991,S,9007199254741,9007199254740991,POST',
  'M,5,B,9007199254740991',
];

describe.skipIf(!HAVE_SHARED)('crafted workloads against ref.mjs', () => {
  it('book replay, engine replay and recover of an edge-case workload equal ref.mjs', async () => {
    for (const text of [EDGE_LOW.join('\n') + '\n', EDGE_HIGH.join('\n') + '\n']) {
      const file = await csvFile(text);
      const expected = JSON.parse(await nodeStdout([REF_MJS, file])) as Record<string, unknown>;
      const book = await runNode([REPLAY_JS, file, '--warmup', '0', '--no-latency']);
      expect(book.stderr).toBe('');
      expect(withoutPerf(book.stdout)).toEqual(expected);
      for (const codec of ['binary', 'json']) {
        const dir = dataDir();
        const eng = await runNode([REPLAY_JS, file, '--engine', '--data-dir', dir, '--durability', 'none', '--codec', codec]);
        expect(eng.stderr).toBe('');
        expect(withoutPerf(eng.stdout)).toEqual(expected);
        const rec = await runNode([RECOVER_JS, '--data-dir', dir]);
        expect(rec.stderr).toBe('');
        expect(recovered(rec.stdout)).toEqual({ summary: expected, commands: expected.ops });
      }
    }
  });

  it('a CRLF file with trailing blank lines gives the summary ref.mjs gives for the LF file', async () => {
    const lf = await csvFile(EDGE_LOW.join('\n') + '\n');
    const crlf = await csvFile(EDGE_LOW.join('\r\n') + '\r\n\r\n\n');
    const expected = JSON.parse(await nodeStdout([REF_MJS, lf])) as Record<string, unknown>;
    expect(withoutPerf(await nodeStdout([REPLAY_JS, crlf, '--warmup', '0', '--no-latency']))).toEqual(expected);
    const dir = dataDir();
    expect(withoutPerf(await nodeStdout([REPLAY_JS, crlf, '--engine', '--data-dir', dir]))).toEqual(expected);
  });

  it('an empty or all-blank file is an empty summary, through the book and the engine, and recover', async () => {
    for (const text of ['', '\n\n', '\r\n']) {
      const file = await csvFile(text);
      expect(withoutPerf(await nodeStdout([REPLAY_JS, file, '--warmup', '0', '--no-latency']))).toEqual(EMPTY_SUMMARY);
      const dir = dataDir();
      expect(withoutPerf(await nodeStdout([REPLAY_JS, file, '--engine', '--data-dir', dir]))).toEqual(EMPTY_SUMMARY);
      expect(recovered(await nodeStdout([RECOVER_JS, '--data-dir', dir]))).toEqual({ summary: EMPTY_SUMMARY, commands: 0 });
    }
  });
});

describe.skipIf(!HAVE_SHARED)('recover after a SIGKILL of replay --engine', () => {
  // Every operation, 120,000 lines; the JSON codec makes the run long enough to be killed in the
  // middle. Wherever the kill lands, recover must give ref.mjs's summary of the first `commands` lines.
  const CSV = generateText({ ops: 118_000, prefill: 2000, seed: 5, mix: [40, 25, 10, 5, 5, 5, 5, 5] });
  const LINES = CSV.trimEnd().split('\n');

  it.each(['batch', 'none'])('recovers a prefix of the workload whose summary is ref.mjs on it (durability %s)', async (durability) => {
    const file = await csvFile(CSV);
    const dir = dataDir();
    const child = spawn(process.execPath, [REPLAY_JS, file, '--engine', '--data-dir', dir, '--durability', durability, '--codec', 'json'], {
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    const closed = new Promise<void>((resolve) => {
      child.on('close', () => {
        resolve();
      });
    });
    // Kill once the outbox exists and the run has had a moment to write to it.
    const ev = path.join(dir, 'REPLAY', 'ev');
    let exited = false;
    void closed.then(() => (exited = true));
    while (!exited && !(existsSync(ev) && readdirSync(ev).some((f) => f.endsWith('.wal')))) await new Promise((r) => setTimeout(r, 2));
    await new Promise((r) => setTimeout(r, 250));
    if (!exited) child.kill('SIGKILL');
    await closed;

    const rec = await runNode([RECOVER_JS, '--data-dir', dir]);
    expect(rec.stderr).toBe('');
    expect(rec.status).toBe(0);
    const { summary, commands } = recovered(rec.stdout);
    expect(commands).toBeLessThanOrEqual(LINES.length);
    if (commands === 0) {
      expect(summary).toEqual(EMPTY_SUMMARY);
    } else {
      const prefix = await csvFile(LINES.slice(0, commands).join('\n') + '\n');
      expect(summary).toEqual(JSON.parse(await nodeStdout([REF_MJS, prefix])));
    }
    // A second recover (after the repair) gives the same.
    expect(recovered(await nodeStdout([RECOVER_JS, '--data-dir', dir]))).toEqual({ summary, commands });
  }, 60_000);
});

describe('failing writes to stdout are typed one-line errors, not stacks', () => {
  // README: "an error ... the system report[s] with a code (... ENOENT ...)" is a one-line
  // `error [CODE]: ...` with exit 2; "Only a bug prints a stack (exit 1)". A full disk on stdout
  // (ENOSPC, /dev/full) is such an error, but gen rethrows it from its stdout 'error' listener and
  // replay and recover have no listener at all: node prints an "Unhandled 'error' event" stack.
  const cases: [string, () => Promise<string[]>][] = [
    ['gen', () => Promise.resolve([GEN_JS, '--ops', '100', '--prefill', '10'])],
    ['replay', async () => [REPLAY_JS, await csvFile('L,1,B,100,5\n'), '--warmup', '0', '--no-latency']],
    [
      'recover',
      async () => {
        const dir = dataDir();
        await nodeStdout([REPLAY_JS, await csvFile('L,1,B,100,5\n'), '--engine', '--data-dir', dir]);
        return [RECOVER_JS, '--data-dir', dir];
      },
    ],
  ];

  it.skipIf(!existsSync('/dev/full')).each(cases)('%s > /dev/full: error [ENOSPC] in one line, exit 2', async (_name, args) => {
    const a = await args();
    const fd = openSync('/dev/full', 'w');
    let r: RunResult;
    try {
      r = await runWithStdout(a, fd);
    } finally {
      closeSync(fd);
    }
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stderr).toMatch(/^error \[ENOSPC\]: [^\n]*\n$/);
    expect(r.status).toBe(2);
  });

  // `gen | head -1` ends quietly (EPIPE, exit 0); `replay ... | head -0` and `recover ... | head -0`
  // print node's unhandled EPIPE stack and exit 1.
  it.each(cases)('%s with its stdout pipe closed ends without a stack trace', async (_name, args) => {
    const r = await runWithClosedPipe(await args());
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect([0, 2]).toContain(r.status);
  });
});
