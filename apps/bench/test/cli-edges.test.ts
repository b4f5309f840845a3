// The bench's command-line tools at their edges: an amend to quantity 0 through the engine replay,
// and gen options that would write lines replay refuses.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BenchError, generateText, parseWorkload, replay, type GeneratorOptions } from '../src/index.js';
import { BENCH_DIR, REPLAY_JS, runNode, tempDir } from './helpers.js';

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

function withoutPerf(line: string): Record<string, unknown> {
  const o = JSON.parse(line) as Record<string, unknown>;
  delete o.perf;
  return o;
}

describe('replay --engine', () => {
  // `A,<id>,0` is a valid line (the parser accepts it on purpose, the book replay and ref.mjs count
  // it as an amend reject), but commandAt turns it into {type: 'amend', price: 0, qty: 0}, which the
  // codec refuses before the engine sees it: the run dies half-way with `error [IO]: command N
  // refused: INVALID_COMMAND`, leaving a data directory that holds only the commands before it.
  it('counts an amend to quantity 0 as an amend reject, like the book replay and the reference', async () => {
    const csv = 'L,1,B,100,5\nL,2,S,101,5\nA,1,0\nA,1,3\nM,3,S,10\n';
    const file = path.join(tmp.dir, 'amend-zero.csv');
    await writeFile(file, csv);
    const expected = replay(parseWorkload(csv), { warmup: 0, latency: false }).summary;
    expect(expected.amendRejects).toBe(1);

    const dataDir = path.join(tmp.dir, 'data-amend-zero');
    const r = await runNode([REPLAY_JS, file, '--engine', '--data-dir', dataDir, '--durability', 'none']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(withoutPerf(r.stdout)).toEqual(expected);

    const rec = await runNode([RECOVER_JS, '--data-dir', dataDir]);
    expect(rec.stderr).toBe('');
    const { commands, recovery: _r, ...summary } = JSON.parse(rec.stdout) as Record<string, unknown>;
    expect(commands).toBe(5);
    expect(summary).toEqual(expected);
  });
});

describe('gen', () => {
  // The generator checks only `band >= 1`, `cross >= 1`, `maxqty >= 1`; around its fixed mid of
  // 100,000 a band or cross of 100,000 or more writes prices of 0 or below, and a maxqty near 2^53
  // writes quantities (up to 3 * maxqty for FOK, 2 * maxqty for aggressive orders) beyond the safe
  // integer range. Either way `gen` exits 0 with a workload its own `replay` refuses (CSV_PARSE).
  it.each<[string, GeneratorOptions]>([
    ['a band reaching below price 1', { ops: 0, prefill: 300, seed: 1, band: 300_000 }],
    ['a cross reaching below price 1', { ops: 300, prefill: 0, seed: 1, cross: 300_000, mix: [0, 0, 1, 0, 0, 0, 0, 0] }],
    ['a maxqty whose doubled quantities are unsafe', { ops: 300, prefill: 0, seed: 1, maxQty: Number.MAX_SAFE_INTEGER, mix: [0, 0, 1, 0, 0, 0, 0, 0] }],
  ])('refuses %s with BAD_ARGUMENT or writes only lines that parse', (_name, options) => {
    let text: string;
    try {
      text = generateText(options);
    } catch (err) {
      expect(err).toBeInstanceOf(BenchError);
      expect((err as BenchError).code).toBe('BAD_ARGUMENT');
      return;
    }
    expect(() => parseWorkload(text)).not.toThrow();
  });
});
