// Shared helpers of the bench tests: where things are, temp directories, and running Node scripts.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** apps/bench */
export const BENCH_DIR = fileURLToPath(new URL('..', import.meta.url));
/** The monorepo root (apps/bench/../..). */
export const REPO_ROOT = path.resolve(BENCH_DIR, '../..');
/** The shared workloads beside the repository; absent in a user's clone. */
export const SHARED_DIR = path.resolve(REPO_ROOT, '../shared');
export const WORKLOADS_DIR = path.join(SHARED_DIR, 'workloads');
export const GEN_MJS = path.join(WORKLOADS_DIR, 'gen.mjs');
export const REF_MJS = path.join(WORKLOADS_DIR, 'ref.mjs');
export const HAVE_SHARED = existsSync(GEN_MJS) && existsSync(REF_MJS);

/** The built command-line tools (made by `pnpm -s build`). */
export const REPLAY_JS = path.join(BENCH_DIR, 'dist/bin/replay.js');
export const GEN_JS = path.join(BENCH_DIR, 'dist/bin/gen.js');

/** Says, once per test file, why the tests that need ../shared are skipped. */
export function warnIfNoShared(what: string): void {
  if (!HAVE_SHARED) {
    console.warn(`[bench tests] skipping ${what}: ${WORKLOADS_DIR} (gen.mjs, ref.mjs) does not exist beside the repository`);
  }
}

export interface RunResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `node ...args` and collects its exit status and output (never throws on a non-zero exit). */
export function runNode(args: readonly string[], cwd: string = BENCH_DIR): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (status, signal) => {
      resolve({ status, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/** Runs `node ...args` and returns its stdout; fails with its stderr when it exits non-zero. */
export async function nodeStdout(args: readonly string[]): Promise<string> {
  const r = await runNode(args);
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${String(r.status ?? r.signal)}: ${r.stderr}`);
  return r.stdout;
}

/** A fresh temporary directory and its removal. */
export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gx3-bench-test-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** The reference summary's keys, in its order. */
export const SUMMARY_KEYS = [
  'ops',
  'trades',
  'volume',
  'cancels',
  'cancelRejects',
  'rejects',
  'amends',
  'amendRejects',
  'restingBids',
  'restingBidQty',
  'restingAsks',
  'restingAskQty',
  'bestBid',
  'bestAsk',
  'tradeHash',
  'bookHash',
];

/** The summary of a workload with no operations (the hashes are of no input: SHA-256 of nothing). */
export const EMPTY_SUMMARY = {
  ops: 0,
  trades: 0,
  volume: 0,
  cancels: 0,
  cancelRejects: 0,
  rejects: 0,
  amends: 0,
  amendRejects: 0,
  restingBids: 0,
  restingBidQty: 0,
  restingAsks: 0,
  restingAskQty: 0,
  bestBid: null,
  bestAsk: null,
  tradeHash: 'e3b0c44298fc1c14',
  bookHash: 'e3b0c44298fc1c14',
} as const;
