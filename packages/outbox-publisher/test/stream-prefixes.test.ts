// Stream prefixes: deployments that share a NATS server keep apart by their prefixes, so no two
// (prefix, symbol) pairs may give one stream name. A prefix may not hold `_`, which separates it
// from the symbol's part (where `_` is written `__`): `PROD` with `EU_BTC` and `PROD_EU_` with `BTC`
// would otherwise both be `PROD_EU__BTC`.
import { describe, expect, it } from 'vitest';
import { streamName, streamPrefixProblem } from '../src/index.js';

describe('stream prefixes', () => {
  it('refuses a prefix holding _, and takes letters, digits and -', () => {
    expect(streamPrefixProblem('PROD_EU_')).toMatch(/no _/);
    expect(streamPrefixProblem('PROD_EU')).toMatch(/no _/);
    expect([streamPrefixProblem('PROD'), streamPrefixProblem('PROD-EU'), streamPrefixProblem('gx3-2')]).toEqual([undefined, undefined, undefined]);
  });

  it('gives distinct (valid prefix, symbol) pairs distinct stream names', () => {
    const prefixes = ['PROD', 'PROD-EU', 'PROD-EU-', 'P', 'GX3', 'GX3-'];
    const symbols = ['BTC', 'EU_BTC', 'EU-BTC', 'EU.BTC', 'BTC_', 'B__C', 'B_x2e_C', 'EU', '1'];
    const seen = new Map<string, string>();
    for (const p of prefixes) {
      expect(streamPrefixProblem(p)).toBeUndefined();
      for (const s of symbols) {
        const name = streamName(p, s);
        expect(seen.get(name), `${p} + ${s} and ${seen.get(name) ?? ''} give ${name}`).toBeUndefined();
        seen.set(name, `${p} + ${s}`);
      }
    }
  });
});
