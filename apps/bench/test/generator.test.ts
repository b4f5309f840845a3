import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BenchError, DEFAULT_MIX, generate, generateText, parseWorkload, type GeneratorOptions } from '../src/index.js';
import { GEN_MJS, HAVE_SHARED, nodeStdout, warnIfNoShared } from './helpers.js';

const MID = 100_000;

function lines(options: GeneratorOptions): string[] {
  const out: string[] = [];
  generate(options, (l) => out.push(l));
  return out;
}

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

describe('generator', () => {
  it('has the W1 mix as its default', () => {
    expect([...DEFAULT_MIX]).toEqual([55, 30, 15, 0, 0, 0, 0, 0]);
  });

  it('is deterministic and depends on the seed', () => {
    const a = generateText({ ops: 3000, seed: 5 });
    expect(generateText({ ops: 3000, seed: 5 })).toBe(a);
    expect(generateText({ ops: 3000, seed: 6 })).not.toBe(a);
    // Omitted options are the defaults.
    expect(generateText({ ops: 500 })).toBe(
      generateText({ ops: 500, prefill: 10_000, seed: 42, band: 50, cross: 5, maxQty: 100, mix: DEFAULT_MIX }),
    );
  });

  it('generateText is the lines of generate joined by newlines, with a final newline', () => {
    const options = { ops: 700, prefill: 30, seed: 9, mix: [1, 1, 1, 1, 1, 1, 1, 1] };
    const ls = lines(options);
    expect(ls).toHaveLength(730);
    expect(generateText(options)).toBe(ls.join('\n') + '\n');
    expect(generateText({ ops: 0, prefill: 0 })).toBe('');
    expect(generateText({ ops: 0, prefill: 1 })).toMatch(/^L,1,[BS],\d+,\d+\n$/);
  });

  it('writes `prefill` passive limits, then `ops` operations, all of which parse', () => {
    const text = generateText({ ops: 2000, prefill: 300, seed: 3, mix: [40, 25, 10, 5, 5, 5, 5, 5] });
    const ls = text.trimEnd().split('\n');
    expect(ls).toHaveLength(2300);
    ls.slice(0, 300).forEach((l, i) => {
      expect(l).toMatch(new RegExp(`^L,${i + 1},[BS],\\d+,\\d+$`));
    });
    expect(parseWorkload(text).length).toBe(2300);
  });

  it('gives new orders consecutive ids and cancels/amends only ids already issued', () => {
    let next = 1;
    for (const l of lines({ ops: 5000, prefill: 100, seed: 11, band: 4, mix: [3, 2, 1, 1, 1, 1, 1, 2] })) {
      const f = l.split(',');
      const id = Number(f[1]);
      if (f[0] === 'L' || f[0] === 'M') expect(id).toBe(next++);
      else {
        expect(id).toBeGreaterThanOrEqual(Math.max(1, next - 20_000));
        expect(id).toBeLessThan(next);
      }
    }
  });

  // Each weight alone selects one kind of operation.
  const shapes: { name: string; at: number; check: (f: string[], band: number, cross: number, maxQty: number) => void }[] = [
    {
      name: 'passive limit',
      at: 0,
      check: (f, band, _cross, maxQty) => {
        expect(f).toHaveLength(5);
        expect(f[0]).toBe('L');
        const px = Number(f[3]);
        const off = f[2] === 'B' ? MID - px : px - MID;
        expect(off).toBeGreaterThanOrEqual(1);
        expect(off).toBeLessThanOrEqual(band);
        expect(Number(f[4])).toBeGreaterThanOrEqual(1);
        expect(Number(f[4])).toBeLessThanOrEqual(maxQty);
      },
    },
    {
      name: 'cancel',
      at: 1,
      check: (f) => {
        expect(f).toHaveLength(2);
        expect(f[0]).toBe('C');
      },
    },
    {
      name: 'aggressive limit',
      at: 2,
      check: (f, _band, cross, maxQty) => {
        expect(f).toHaveLength(5);
        expect(f[0]).toBe('L');
        const px = Number(f[3]);
        const off = f[2] === 'B' ? px - MID : MID - px;
        expect(off).toBeGreaterThanOrEqual(0);
        expect(off).toBeLessThan(cross);
        expect(Number(f[4])).toBeLessThanOrEqual(2 * maxQty);
      },
    },
    {
      name: 'market',
      at: 3,
      check: (f, _band, _cross, maxQty) => {
        expect(f).toHaveLength(4);
        expect(f[0]).toBe('M');
        expect(Number(f[3])).toBeLessThanOrEqual(2 * maxQty);
      },
    },
    {
      name: 'IOC',
      at: 4,
      check: (f) => {
        expect(f).toHaveLength(6);
        expect(f[5]).toBe('IOC');
      },
    },
    {
      name: 'FOK',
      at: 5,
      check: (f, _band, _cross, maxQty) => {
        expect(f).toHaveLength(6);
        expect(f[5]).toBe('FOK');
        expect(Number(f[4])).toBeLessThanOrEqual(3 * maxQty);
      },
    },
    {
      name: 'post-only',
      at: 6,
      check: (f) => {
        expect(f).toHaveLength(6);
        expect(f[5]).toBe('POST');
      },
    },
    {
      name: 'amend',
      at: 7,
      check: (f, _band, _cross, maxQty) => {
        expect(f).toHaveLength(3);
        expect(f[0]).toBe('A');
        expect(Number(f[2])).toBeGreaterThanOrEqual(1);
        expect(Number(f[2])).toBeLessThanOrEqual(maxQty);
      },
    },
  ];

  it.for(shapes)('a mix of only $name weight writes only that operation', ({ at, check }) => {
    const mix = [0, 0, 0, 0, 0, 0, 0, 0];
    mix[at] = 3;
    const band = 7;
    const cross = 3;
    const maxQty = 9;
    const ls = lines({ ops: 400, prefill: 0, seed: 17 + at, band, cross, maxQty, mix });
    expect(ls).toHaveLength(400);
    for (const l of ls) check(l.split(','), band, cross, maxQty);
  });

  const badOptions: { name: string; options: GeneratorOptions; why: RegExp }[] = [
    { name: 'negative ops', options: { ops: -1 }, why: /--ops/ },
    { name: 'fractional ops', options: { ops: 1.5 }, why: /--ops/ },
    { name: 'NaN ops', options: { ops: Number.NaN }, why: /--ops/ },
    { name: 'infinite ops', options: { ops: Number.POSITIVE_INFINITY }, why: /--ops/ },
    { name: 'unsafe ops', options: { ops: 2 ** 53 }, why: /--ops/ },
    { name: 'negative prefill', options: { prefill: -5 }, why: /--prefill/ },
    { name: 'zero band', options: { band: 0 }, why: /--band/ },
    { name: 'fractional band', options: { band: 2.5 }, why: /--band/ },
    { name: 'zero cross', options: { cross: 0 }, why: /--cross/ },
    { name: 'zero maxQty', options: { maxQty: 0 }, why: /--maxqty/ },
    { name: 'negative maxQty', options: { maxQty: -10 }, why: /--maxqty/ },
    { name: 'fractional seed', options: { seed: 1.5 }, why: /--seed/ },
    { name: 'NaN seed', options: { seed: Number.NaN }, why: /--seed/ },
    { name: 'mix of 7 weights', options: { mix: [1, 1, 1, 1, 1, 1, 1] }, why: /--mix takes 8/ },
    { name: 'mix of 9 weights', options: { mix: [1, 1, 1, 1, 1, 1, 1, 1, 1] }, why: /--mix takes 8/ },
    { name: 'empty mix', options: { mix: [] }, why: /--mix takes 8/ },
    { name: 'negative weight', options: { mix: [1, 1, 1, -1, 1, 1, 1, 1] }, why: /--mix/ },
    { name: 'NaN weight', options: { mix: [1, Number.NaN, 1, 1, 1, 1, 1, 1] }, why: /--mix/ },
    { name: 'infinite weight', options: { mix: [Number.POSITIVE_INFINITY, 1, 1, 1, 1, 1, 1, 1] }, why: /--mix/ },
    { name: 'all-zero mix', options: { mix: [0, 0, 0, 0, 0, 0, 0, 0] }, why: /--mix weights must not all be zero/ },
  ];

  it.for(badOptions)('rejects $name with BAD_ARGUMENT before writing anything', ({ options, why }) => {
    let emitted = 0;
    let thrown: unknown;
    try {
      generate({ ops: 10, prefill: 10, ...options }, () => emitted++);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(BenchError);
    const e = thrown as BenchError;
    expect(e.code).toBe('BAD_ARGUMENT');
    expect(e.message).toMatch(why);
    expect(emitted).toBe(0);
    expect(() => generateText({ ops: 10, prefill: 10, ...options })).toThrow(BenchError);
  });
});

warnIfNoShared('the comparison of generate() with gen.mjs');

describe.skipIf(!HAVE_SHARED)('generator vs gen.mjs (byte for byte)', () => {
  const configs: { args: string[]; options: GeneratorOptions }[] = [
    { args: ['--ops', '2000'], options: { ops: 2000 } },
    { args: ['--ops', '3000', '--seed', '7', '--mix', '40,25,10,5,5,5,5,5'], options: { ops: 3000, seed: 7, mix: [40, 25, 10, 5, 5, 5, 5, 5] } },
    {
      args: ['--ops', '1500', '--prefill', '200', '--seed', '123', '--band', '3', '--cross', '2', '--maxqty', '7', '--mix', '1,1,1,1,1,1,1,1'],
      options: { ops: 1500, prefill: 200, seed: 123, band: 3, cross: 2, maxQty: 7, mix: [1, 1, 1, 1, 1, 1, 1, 1] },
    },
    {
      args: ['--ops', '1000', '--prefill', '0', '--seed=-3', '--band', '1', '--cross', '1', '--maxqty', '1', '--mix', '10.5,3,2.25,1,1,1,1,1.75'],
      options: { ops: 1000, prefill: 0, seed: -3, band: 1, cross: 1, maxQty: 1, mix: [10.5, 3, 2.25, 1, 1, 1, 1, 1.75] },
    },
    { args: ['--ops', '500', '--prefill', '50', '--seed', '4294967338'], options: { ops: 500, prefill: 50, seed: 4294967338 } },
    { args: ['--ops', '2500', '--seed', '0', '--band', '500', '--cross', '40', '--maxqty', '1000'], options: { ops: 2500, seed: 0, band: 500, cross: 40, maxQty: 1000 } },
    { args: ['--ops', '800', '--prefill', '20', '--seed', '99', '--mix', '0,0,0,0,0,0,0,1'], options: { ops: 800, prefill: 20, seed: 99, mix: [0, 0, 0, 0, 0, 0, 0, 1] } },
    { args: ['--ops', '0', '--prefill', '25'], options: { ops: 0, prefill: 25 } },
    { args: ['--ops', '0', '--prefill', '0'], options: { ops: 0, prefill: 0 } },
  ];

  it.for(configs)('gen.mjs $args', async ({ args, options }) => {
    const expected = await nodeStdout([GEN_MJS, ...args]);
    const ours = generateText(options);
    if (ours !== expected) {
      // Name the first differing line rather than dumping two large strings.
      const a = ours.split('\n');
      const b = expected.split('\n');
      const i = a.findIndex((l, k) => l !== b[k]);
      expect.fail(
        `first difference at line ${i + 1}: ours ${JSON.stringify(a[i])}, gen.mjs ${JSON.stringify(b[i])} ` +
          `(${a.length - 1} and ${b.length - 1} lines)`,
      );
    }
    expect(ours).toBe(expected);
  });

  const named: { name: string; args: string[]; options: GeneratorOptions }[] = [
    { name: 'W1', args: [], options: {} },
    { name: 'W2', args: ['--seed', '7', '--mix', '40,25,10,5,5,5,5,5'], options: { seed: 7, mix: [40, 25, 10, 5, 5, 5, 5, 5] } },
  ];

  it.for(named)('the full $name workload is identical to gen.mjs', async ({ args, options }) => {
    const expected = await nodeStdout([GEN_MJS, ...args]);
    const ours = generateText(options);
    expect(ours.length).toBe(expected.length);
    expect(sha(ours)).toBe(sha(expected));
  });
});
