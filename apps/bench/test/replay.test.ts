import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  apply,
  bookFor,
  CsvParseError,
  generateText,
  parseWorkload,
  replay,
  summarize,
  SummarySink,
  type GeneratorOptions,
  type ReplaySummary,
} from '../src/index.js';
import { EMPTY_SUMMARY, GEN_MJS, HAVE_SHARED, nodeStdout, REF_MJS, SUMMARY_KEYS, tempDir, warnIfNoShared, WORKLOADS_DIR } from './helpers.js';

const h16 = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 16);

function summaryOf(csv: string): ReplaySummary {
  return replay(parseWorkload(csv), { warmup: 0, latency: false }).summary;
}

// A workload that touches every rule of the format; its summary is worked out by hand below.
const EVERY_RULE = [
  'L,1,S,105,5',
  'L,2,S,103,2',
  'L,3,S,103,4',
  'A,2,1', // reduce, keeps its place ahead of 3
  'L,4,B,110,3,IOC', // fills 2 (1 lot) then 3 (2 lots) at the maker price 103
  'L,5,B,104,10,FOK', // only 2 lots within 104: rejected, nothing trades
  'L,6,B,103,1,POST', // would cross: rejected
  'L,7,B,102,4,POST', // rests
  'L,7,S,200,1', // id 7 is resting: rejected
  'C,99', // never seen: cancel reject
  'A,7,4', // not a reduction: amend reject
  'A,7,0', // zero: amend reject
  'M,8,B,100', // sweeps 3 (2 lots at 103) and 1 (5 lots at 105); the rest is dropped
  'C,1', // filled: cancel reject
  'L,9,S,101,1,IOC', // fills 7 (1 lot at 102)
  'L,10,B,101,2',
  'C,10',
].join('\n');

describe('replay summary (worked out by hand)', () => {
  it('follows price-time priority and trades at the maker price', () => {
    const s = summaryOf('L,1,B,100,5\nL,2,B,100,3\nL,3,B,99,4\nL,4,S,98,6\n');
    expect(s).toEqual({
      ops: 4,
      trades: 2,
      volume: 6,
      cancels: 0,
      cancelRejects: 0,
      rejects: 0,
      amends: 0,
      amendRejects: 0,
      restingBids: 2,
      restingBidQty: 6,
      restingAsks: 0,
      restingAskQty: 0,
      bestBid: 100,
      bestAsk: null,
      tradeHash: h16('1,4,100,5;2,4,100,1;'),
      bookHash: h16('B,100,2,2;B,99,3,4;'),
    });
  });

  it('applies every rule of the format', () => {
    expect(summaryOf(EVERY_RULE)).toEqual({
      ops: 17,
      trades: 5,
      volume: 11,
      cancels: 1,
      cancelRejects: 2,
      rejects: 3,
      amends: 1,
      amendRejects: 2,
      restingBids: 1,
      restingBidQty: 3,
      restingAsks: 0,
      restingAskQty: 0,
      bestBid: 102,
      bestAsk: null,
      tradeHash: h16('2,4,103,1;3,4,103,2;3,8,103,2;1,8,105,5;7,9,102,1;'),
      bookHash: h16('B,102,7,3;'),
    });
  });

  it('hashes bids best first, then asks best first, each level in time order', () => {
    const s = summaryOf('L,1,S,110,1\nL,2,B,90,2\nL,3,S,105,3\nL,4,B,95,4\nL,5,S,105,5\nL,6,B,95,6\nA,3,2\n');
    expect(s.bookHash).toBe(h16('B,95,4,4;B,95,6,6;B,90,2,2;S,105,3,2;S,105,5,5;S,110,1,1;'));
    expect(s).toMatchObject({ restingBids: 3, restingBidQty: 12, restingAsks: 3, restingAskQty: 8, bestBid: 95, bestAsk: 105, amends: 1 });
    expect(s.tradeHash).toBe(h16(''));
  });

  it('summarizes an empty workload', () => {
    expect(summaryOf('')).toEqual({ ...EMPTY_SUMMARY, tradeHash: h16(''), bookHash: h16('') });
  });

  it('does not let the warm-up passes or the latency pass change the summary', () => {
    const w = parseWorkload(generateText({ ops: 4000, prefill: 200, seed: 21, band: 4, mix: [40, 25, 10, 5, 5, 5, 5, 5] }));
    const base = replay(w, { warmup: 0, latency: false }).summary;
    expect(replay(w, { warmup: 2, latency: false }).summary).toEqual(base);
    expect(replay(w, { warmup: 1, latency: true }).summary).toEqual(base);
    expect(replay(w).summary).toEqual(base);
    expect(base.ops).toBe(4200);
    expect(base.trades).toBeGreaterThan(0);
  });

  it('gives the same summary when the workload is applied in pieces', () => {
    const w = parseWorkload(generateText({ ops: 3000, prefill: 100, seed: 4, band: 3, mix: [3, 2, 1, 1, 1, 1, 1, 2] }));
    const sink = new SummarySink(16);
    const book = bookFor(w, sink);
    for (let i = 0; i < w.length; i += 977) apply(book, w, i, Math.min(w.length, i + 977));
    expect(summarize(w.length, sink, book)).toEqual(replay(w, { warmup: 0, latency: false }).summary);
  });

  it('keeps every fill when the sink has to grow its arrays', () => {
    // 40 resting asks at one price, one buy that takes them all: 40 fills through a 16-slot sink.
    const csv = Array.from({ length: 40 }, (_, i) => `L,${i + 1},S,100,1`).join('\n') + '\nL,41,B,100,40\n';
    const w = parseWorkload(csv);
    const sink = new SummarySink(1);
    apply(bookFor(w, sink), w, 0, w.length);
    expect(sink.trades).toBe(40);
    expect(sink.tradeHash()).toBe(h16(Array.from({ length: 40 }, (_, i) => `${i + 1},41,100,1;`).join('')));
  });
});

describe('replay perf figures', () => {
  const w = parseWorkload(generateText({ ops: 5000, prefill: 500, seed: 8, mix: [40, 25, 10, 5, 5, 5, 5, 5] }));

  it('reports throughput, GC and allocation, and zero latencies without the latency pass', () => {
    const { perf } = replay(w, { warmup: 0, latency: false });
    expect(perf.opsPerSec).toBeGreaterThan(0);
    expect(Number.isInteger(perf.opsPerSec)).toBe(true);
    expect(perf.nsPerOp).toBeGreaterThan(0);
    expect(Number.isInteger(perf.gcCount)).toBe(true);
    expect(perf.gcCount).toBeGreaterThanOrEqual(0);
    expect(perf.allocBytesPerOp).toBeGreaterThanOrEqual(0);
    expect(Number.isFinite(perf.allocBytesPerOp)).toBe(true);
    expect({ p50: perf.p50Ns, p99: perf.p99Ns, p999: perf.p999Ns, timer: perf.timerNs }).toEqual({ p50: 0, p99: 0, p999: 0, timer: 0 });
  });

  it('reports ordered latency percentiles with the latency pass', () => {
    const { perf } = replay(w, { warmup: 1 });
    for (const v of [perf.p50Ns, perf.p99Ns, perf.p999Ns, perf.timerNs]) {
      expect(Number.isInteger(v)).toBe(true);
      expect(v).toBeGreaterThanOrEqual(0);
    }
    expect(perf.p99Ns).toBeGreaterThanOrEqual(perf.p50Ns);
    expect(perf.p999Ns).toBeGreaterThanOrEqual(perf.p99Ns);
    expect(perf.p999Ns).toBeGreaterThan(0);
  });

  it('reports finite figures for an empty workload', () => {
    const { perf } = replay(parseWorkload(''), { warmup: 0, latency: false });
    for (const [k, v] of Object.entries(perf)) expect({ [k]: Number.isFinite(v) }).toEqual({ [k]: true });
  });
});

warnIfNoShared('the cross-check of replay() against ref.mjs and the W1/W2 expected summaries');

describe.skipIf(!HAVE_SHARED)('replay vs ref.mjs', () => {
  let dir = '';
  let cleanup: () => Promise<void> = () => Promise.resolve();
  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir());
  });
  afterAll(async () => {
    await cleanup();
  });

  let n = 0;
  async function refSummary(csv: string): Promise<unknown> {
    const file = path.join(dir, `w${n++}.csv`);
    await writeFile(file, csv);
    return JSON.parse(await nodeStdout([REF_MJS, file])) as unknown;
  }

  // Random workloads: every operation, narrow bands so that prices collide, few ids.
  const random: string[] = [
    '--ops 3000 --prefill 200 --seed 1 --band 3 --mix 40,25,10,5,5,5,5,5',
    '--ops 3000 --prefill 50 --seed 2 --band 1 --cross 1 --mix 1,1,1,1,1,1,1,1',
    '--ops 2500 --prefill 0 --seed 3 --band 2 --cross 2 --maxqty 5 --mix 30,20,10,10,10,10,5,5',
    '--ops 4000 --prefill 300 --seed 4 --band 5 --mix 20,10,10,10,10,20,10,10',
    '--ops 2000 --prefill 100 --seed 5 --band 2 --maxqty 3 --mix 10,30,5,5,5,5,10,30',
    '--ops 3000 --prefill 20 --seed 6 --band 4 --cross 3 --maxqty 50 --mix 35,15,5,15,10,10,5,5',
    '--ops 3500 --prefill 500 --seed 7 --band 6 --mix 40,25,10,5,5,5,5,5',
    '--ops 2000 --prefill 10 --seed 8 --band 1 --cross 2 --maxqty 1 --mix 5,1,1,1,1,1,5,1',
    '--ops 3000 --prefill 150 --seed 9 --band 3 --cross 4 --maxqty 20 --mix 25,25,5,5,5,25,5,5',
    '--ops 2500 --prefill 80 --seed 10 --band 2 --maxqty 9 --mix 20,10,20,10,10,10,10,10',
    '--ops 3000 --prefill 0 --seed 11 --band 3 --cross 1 --mix 50,5,5,5,5,5,20,5',
    '--ops 1000 --prefill 5 --seed 12 --band 2 --cross 5 --maxqty 2 --mix 10,10,30,20,10,10,5,5',
    '--ops 300 --prefill 0 --seed 13 --band 1 --cross 1 --maxqty 2 --mix 1,3,2,4,2,2,1,2',
  ];

  const generated = new Map<string, Promise<string>>();
  function gen(args: string): Promise<string> {
    let csv = generated.get(args);
    if (csv === undefined) {
      csv = nodeStdout([GEN_MJS, ...args.split(' ')]);
      generated.set(args, csv);
    }
    return csv;
  }

  it.for(random)('gen.mjs %s', async (args) => {
    const csv = await gen(args);
    const w = parseWorkload(csv);
    expect(w.length).toBeGreaterThan(0);
    const ours = replay(w, { warmup: 0, latency: false }).summary;
    expect(Object.keys(ours)).toEqual(SUMMARY_KEYS);
    expect(ours).toEqual(await refSummary(csv));
  });

  it('the random workloads exercise every counter', async () => {
    // Guards the table above: if a change to the mixes stopped producing trades, rejects, amends
    // and empty sides, the cross-check would prove much less.
    const seen = new Set<string>();
    for (const args of random) {
      const s = summaryOf(await gen(args));
      for (const k of ['trades', 'cancels', 'cancelRejects', 'rejects', 'amends', 'amendRejects'] as const) if (s[k] > 0) seen.add(k);
    }
    expect([...seen].sort()).toEqual(['amendRejects', 'amends', 'cancelRejects', 'cancels', 'rejects', 'trades']);
  });

  // Hand-written workloads, for the cases a generated one never has.
  const edge: { name: string; csv: string }[] = [
    { name: 'every rule', csv: EVERY_RULE },
    { name: 'a market order on an empty book', csv: 'M,1,B,5\nM,2,S,5' },
    { name: 'one-sided books', csv: 'L,1,B,100,5\nL,2,B,99,5\nC,1' },
    { name: 'FOK filled exactly across levels', csv: 'L,1,S,101,2\nL,2,S,102,3\nL,3,S,103,9\nL,4,B,102,5,FOK' },
    { name: 'FOK one lot short', csv: 'L,1,S,101,2\nL,2,S,102,3\nL,3,S,103,9\nL,4,B,102,6,FOK' },
    { name: 'FOK against an empty side', csv: 'L,1,B,100,5,FOK\nL,2,S,100,5,FOK' },
    { name: 'IOC that does not cross', csv: 'L,1,S,101,2\nL,2,B,100,5,IOC' },
    { name: 'POST that does not cross rests', csv: 'L,1,S,101,2\nL,2,B,100,5,POST\nL,3,S,100,1,POST\nL,4,S,100,1' },
    { name: 'GTC that sweeps and rests the rest', csv: 'L,1,S,101,2\nL,2,S,102,3\nL,3,B,105,10\nL,4,S,104,1' },
    { name: 'an id reused after a fill and after a cancel', csv: 'L,1,S,101,2\nL,2,B,101,2\nL,1,S,102,2\nC,1\nL,1,B,99,1\nL,2,S,99,4' },
    { name: 'amend then fill', csv: 'L,1,S,101,10\nL,2,S,101,10\nA,1,3\nA,2,10\nA,2,11\nL,3,B,101,4\nA,2,9\nA,1,1' },
    { name: 'cancel of a partly filled order', csv: 'L,1,B,100,10\nL,2,S,100,4\nC,1\nC,1\nA,1,2' },
    { name: 'wide prices and large quantities', csv: 'L,1,B,1,1000000\nL,2,S,1000000000,1\nL,3,B,1000000000,1000001\nM,4,S,999999' },
  ];

  // gx3 refuses any order whose id is resting, market orders included (docs/workload-format.md);
  // the naive reference checks limit orders only. Generated workloads never reuse a live id.
  it('rejects a market order with the id of a resting order (where the reference does not check)', () => {
    const s = summaryOf('L,1,B,100,5\nM,1,S,3');
    expect(s).toMatchObject({ rejects: 1, trades: 0, volume: 0, restingBids: 1, restingBidQty: 5 });
  });

  it.for(edge)('$name', async ({ csv }) => {
    expect(summaryOf(csv)).toEqual(await refSummary(csv));
  });

  // Integers the CSV format allows but the default order book does not: the replay must either
  // refuse the file (naming the line) or give the reference summary, never a different one.
  const outOfRange: { name: string; csv: string }[] = [
    { name: 'a price above 10^9', csv: 'L,1,B,2000000000,5\nL,2,S,1999999999,3' },
    { name: 'a quantity above 2^48', csv: 'L,1,B,100,300000000000000\nL,2,S,100,1' },
  ];

  it.for(outOfRange)('$name is refused or replayed like ref.mjs', async ({ csv }) => {
    const expected = await refSummary(csv);
    let w;
    try {
      w = parseWorkload(csv);
    } catch (err) {
      expect(err).toBeInstanceOf(CsvParseError);
      expect((err as CsvParseError).line).toBe(1);
      return;
    }
    expect(replay(w, { warmup: 0, latency: false }).summary).toEqual(expected);
  });
});

describe.skipIf(!HAVE_SHARED)('W1 and W2 replays', () => {
  const named: { name: string; file: string; options: GeneratorOptions }[] = [
    { name: 'W1', file: 'w1.expected.json', options: {} },
    { name: 'W2', file: 'w2.expected.json', options: { seed: 7, mix: [40, 25, 10, 5, 5, 5, 5, 5] } },
  ];

  it.for(named)('$name equals $file', async ({ file, options }) => {
    const expected = JSON.parse(await readFile(path.join(WORKLOADS_DIR, file), 'utf8')) as unknown;
    const w = parseWorkload(generateText(options));
    expect(w.length).toBe(1_010_000);
    expect(replay(w, { warmup: 0, latency: false }).summary).toEqual(expected);
  });
});
