// The compare benchmark: every adapter reports the same outcome as gx3 on generated workloads, the
// agreement check catches a wrong summary or a wrong mapping, and the CLI prints its table. No
// timing is asserted.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMPARED_FIELDS, commandsUsed, compareSummaries, type CompareSubject, type CompareSummary } from '../src/compare/book.js';
import { gx3 } from '../src/compare/gx3.js';
import { nodejsOrderBook } from '../src/compare/nodejs-order-book.js';
import { orderbookMatchEngine } from '../src/compare/orderbook-match-engine.js';
import { compareOn, formatReport, runCompare, SUBJECTS, type TimingOptions } from '../src/compare/runner.js';
import { generateText, parseWorkload, type GeneratorOptions, type Workload } from '../src/index.js';
import { BENCH_DIR, HAVE_SHARED, nodeStdout, REF_MJS, runNode, tempDir, warnIfNoShared } from './helpers.js';

const COMPARE_JS = path.join(BENCH_DIR, 'dist/bin/compare.js');
/** One untimed-in-spirit pass: no warm-up, no repetition. */
const QUICK: TimingOptions = { minSeconds: 0, maxPasses: 1, warmupOps: 0 };
const h16 = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 16);

function summaryOf(subject: CompareSubject, w: Workload): CompareSummary {
  const book = subject.create(w);
  book.apply(0, w.length);
  return book.summary();
}

describe('adapters on a hand-checked workload (limits and cancels)', () => {
  const w = parseWorkload(
    [
      'L,1,B,100,5',
      'L,2,B,100,3',
      'L,3,B,99,4',
      'L,4,S,98,6', // fills 1 (5 at 100) and 2 (1 at 100, 2 left): the taker is filled completely
      'C,2', // cancels the rest of 2
      'C,1', // filled: cancel reject
      'C,77', // never seen: cancel reject
      'L,5,S,101,2', // rests
      'L,6,B,102,3', // fills 5 (2 at 101), rests 1 at 102
    ].join('\n'),
  );
  const expected: CompareSummary = {
    ops: 9,
    trades: 3,
    volume: 8,
    cancels: 1,
    cancelRejects: 2,
    rejects: 0,
    restingBids: 2,
    restingBidQty: 5,
    restingAsks: 0,
    restingAskQty: 0,
    bestBid: 102,
    bestAsk: null,
    tradeHash: h16('1,4,100,5;2,4,100,1;5,6,101,2;'),
    bookHash: h16('B,102,6,1;B,99,3,4;'),
  };
  for (const s of SUBJECTS) {
    it(`${s.name} reports it exactly`, () => {
      expect(summaryOf(s, w)).toEqual(expected);
    });
  }
});

describe('adapters agree with gx3 on generated W1-shaped workloads', () => {
  const cases: GeneratorOptions[] = [
    { ops: 4000, prefill: 500, seed: 1 },
    { ops: 4000, prefill: 500, seed: 2, band: 4, cross: 3 }, // a narrow book: deep levels, sweeps across levels
    { ops: 3000, prefill: 0, seed: 3, maxQty: 1 }, // unit lots: many exact fills
  ];
  for (const g of cases) {
    it(`seed ${g.seed}`, () => {
      const w = parseWorkload(generateText(g));
      const { results, ok } = compareOn(w, SUBJECTS, QUICK);
      expect(results.map((r) => [r.name, r.agrees, r.mismatches])).toEqual(SUBJECTS.map((s) => [s.name, true, []]));
      expect(ok).toBe(true);
      const s = results[0]?.summary as CompareSummary;
      // The workload exercises what is compared.
      expect(s.trades).toBeGreaterThan(100);
      expect(s.cancels).toBeGreaterThan(100);
      expect(s.cancelRejects).toBeGreaterThan(10);
      expect(s.restingBids + s.restingAsks).toBeGreaterThan(0);
    });
  }

  it('runCompare generates W1 by default and reports every book', () => {
    const r = runCompare({ orders: 2000, prefill: 300, ...QUICK });
    expect(r.workload.kinds).toEqual(['C', 'L/GTC']);
    expect(r.workload.commands).toBe(2300);
    expect(r.results.map((x) => [x.name, x.commands, x.agrees])).toEqual([
      ['gx3', 2300, true],
      ['orderbook-match-engine', 2300, true],
      ['nodejs-order-book', 2300, true],
    ]);
    expect(r.ok).toBe(true);
    const md = formatReport(r);
    expect(md).toContain('| name | commands | ops/s | ns/op | ratio vs gx3 | agrees |');
    expect(md).not.toContain('DISAGREES');
  });
});

describe('command kinds a peer cannot express', () => {
  it('nodejs-order-book agrees on IOC, FOK, post-only and market orders; orderbook-match-engine is skipped, saying why', () => {
    const w = parseWorkload(generateText({ ops: 4000, prefill: 500, seed: 7, band: 6, mix: [40, 25, 10, 5, 5, 5, 5, 0] }));
    const { results, ok } = compareOn(w, SUBJECTS, QUICK);
    expect(ok).toBe(true);
    const byName = new Map(results.map((r) => [r.name, r]));
    expect(byName.get('nodejs-order-book')?.agrees).toBe(true);
    expect((byName.get('gx3')?.summary as CompareSummary).rejects).toBeGreaterThan(0); // FOK and post-only rejects
    const ome = byName.get('orderbook-match-engine');
    expect(ome?.agrees).toBeNull();
    expect(ome?.skipped).toBe('cannot express L/FOK, L/IOC, L/POST, M');
  });

  it('no peer expresses a reduce (A): both are skipped', () => {
    const w = parseWorkload(generateText({ ops: 500, prefill: 100, seed: 5, mix: [50, 20, 10, 0, 0, 0, 0, 20] }));
    const { results } = compareOn(w, SUBJECTS, QUICK);
    expect(results.map((r) => r.skipped)).toEqual([null, 'cannot express A', 'cannot express A']);
  });

  it('an adapter refuses a kind it cannot express rather than guessing', () => {
    const w = parseWorkload('L,1,B,100,5,IOC\n');
    expect(() => {
      orderbookMatchEngine.create(w).apply(0, 1);
    }).toThrow(/cannot express/);
    expect(() => {
      nodejsOrderBook.create(parseWorkload('L,1,B,100,5\nA,1,2\n')).apply(0, 2);
    }).toThrow(/cannot express/);
  });
});

warnIfNoShared('the cross-check of the compare adapters against ref.mjs');

describe.skipIf(!HAVE_SHARED)('every book vs ref.mjs (a check independent of gx3)', () => {
  let dir = '';
  let cleanup: () => Promise<void> = () => Promise.resolve();
  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir());
  });
  afterAll(async () => {
    await cleanup();
  });

  const cases: [string, GeneratorOptions][] = [
    ['W1 mix', { ops: 3000, prefill: 300, seed: 21, band: 5 }],
    ['every kind but A', { ops: 3000, prefill: 300, seed: 22, band: 4, mix: [40, 25, 10, 5, 5, 5, 5, 0] }],
  ];
  for (const [name, g] of cases) {
    it(name, async () => {
      const csv = generateText(g);
      const file = path.join(dir, `${g.seed ?? 0}.csv`);
      await writeFile(file, csv);
      const ref = JSON.parse(await nodeStdout([REF_MJS, file])) as Record<string, unknown>;
      const w = parseWorkload(csv);
      const expected = Object.fromEntries(COMPARED_FIELDS.map((k) => [k, ref[k]]));
      const kinds = [...commandsUsed(w)];
      const able = SUBJECTS.filter((s) => kinds.every((k) => s.supports.has(k)));
      expect(able.map((s) => s.name)).toEqual(g.mix ? ['gx3', 'nodejs-order-book'] : ['gx3', 'orderbook-match-engine', 'nodejs-order-book']);
      for (const s of able) expect({ [s.name]: summaryOf(s, w) }).toEqual({ [s.name]: expected });
    });
  }
});

describe('the agreement check', () => {
  const w = parseWorkload(generateText({ ops: 2000, prefill: 300, seed: 11 }));
  const ref = summaryOf(gx3, w);

  it('finds every field of a wrong summary', () => {
    expect(compareSummaries(ref, { ...ref })).toEqual([]);
    expect(compareSummaries(ref, { ...ref, trades: ref.trades + 1 })).toEqual([{ field: 'trades', expected: ref.trades, actual: ref.trades + 1 }]);
    expect(compareSummaries(ref, { ...ref, volume: ref.volume - 1, restingAsks: ref.restingAsks + 1 }).map((m) => m.field)).toEqual(['volume', 'restingAsks']);
    expect(compareSummaries(ref, { ...ref, bestBid: null }).map((m) => m.field)).toEqual(['bestBid']);
    expect(compareSummaries(ref, { ...ref, bookHash: '0000000000000000' }).map((m) => m.field)).toEqual(['bookHash']);
  });

  it('fails the run when a book reports a wrong summary', () => {
    const tampered: CompareSubject = {
      name: 'tampered',
      supports: orderbookMatchEngine.supports,
      create: (x) => {
        const book = orderbookMatchEngine.create(x);
        return {
          apply: (from, to) => {
            book.apply(from, to);
          },
          summary: () => {
            const s = book.summary();
            return { ...s, restingBids: s.restingBids + 1 };
          },
        };
      },
    };
    const r = compareOn(w, [gx3, tampered], QUICK);
    expect(r.ok).toBe(false);
    expect(r.results[1]?.agrees).toBe(false);
    expect(r.results[1]?.mismatches.map((m) => m.field)).toEqual(['restingBids']);
  });

  it('catches a mapping error: sides swapped', () => {
    const swapped: CompareSubject = {
      name: 'swapped sides',
      supports: nodejsOrderBook.supports,
      create: (x) => nodejsOrderBook.create({ ...x, side: x.side.map((s) => 1 - s) }),
    };
    const r = compareOn(w, [gx3, swapped], QUICK);
    expect(r.ok).toBe(false);
    expect(r.results[1]?.mismatches.map((m) => m.field)).toEqual(expect.arrayContaining(['trades', 'volume', 'tradeHash', 'bookHash']));
    const md = formatReport({
      node: process.version,
      workload: { generator: { ops: 2000, prefill: 300, seed: 11, mix: [55, 30, 15, 0, 0, 0, 0, 0] }, commands: w.length, kinds: ['C', 'L/GTC'] },
      timing: { minSeconds: 0, maxPasses: 1, warmupOps: 0, gcBetweenPasses: false },
      reference: 'gx3',
      results: r.results,
      ok: r.ok,
    });
    expect(md).toMatch(/\| swapped sides \| 2,300 \| [0-9,]+ \| [0-9.]+ \| [0-9.]+x \| no \|/);
    expect(md).toContain('swapped sides DISAGREES with gx3:');
    expect(md).toMatch(/- trades: gx3 \d+, swapped sides \d+/);
  });
});

describe('compare CLI', () => {
  let dir = '';
  let cleanup: () => Promise<void> = () => Promise.resolve();
  beforeAll(async () => {
    if (!existsSync(COMPARE_JS)) throw new Error(`${COMPARE_JS} is missing: run \`pnpm --filter @gx3/bench build\` before the CLI tests`);
    ({ dir, cleanup } = await tempDir());
  });
  afterAll(async () => {
    await cleanup();
  });

  it('prints the table, writes the JSON report and exits 0 when every book agrees', async () => {
    const json = path.join(dir, 'report.json');
    const r = await runNode([COMPARE_JS, '--orders', '3000', '--seed', '5', '--json', json]);
    expect(r.status).toBe(0);
    const rows = r.stdout.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| name') && !l.startsWith('| ---'));
    expect(rows.slice(0, 3).map((l) => l.split(' | ')[0])).toEqual(['| gx3', '| orderbook-match-engine', '| nodejs-order-book']);
    expect(rows.slice(0, 3).map((l) => l.split(' | ')[1])).toEqual(['13,000', '13,000', '13,000']);
    expect(rows.slice(0, 3).map((l) => l.split(' | ')[5])).toEqual(['yes (reference) |', 'yes |', 'yes |']);
    const report = JSON.parse(await readFile(json, 'utf8')) as { ok: boolean; results: { name: string; agrees: boolean }[] };
    expect(report.ok).toBe(true);
    expect(report.results.map((x) => x.agrees)).toEqual([true, true, true]);
  });

  it('reports a bad option as a one-line error with status 2', async () => {
    const r = await runNode([COMPARE_JS, '--orders', 'many']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^error \[BAD_ARGUMENT\]: --orders must be an integer/);
  });
});
