// Differential fuzz against the shared reference matcher (../shared/workloads/ref.mjs): short random
// workloads in the CSV of ../shared/workloads/README.md (every line type, every time in force, the
// optional tif field omitted too, a few prices so that orders cross often, ids reused, unknown and
// far apart) run through ref.mjs and through the book exactly as the bench replays them
// (apps/bench: parseWorkload, bookFor, apply, summarize). The summaries, the fill lists and the final
// books (the strings the two hashes are taken over) must be equal, and audit() must pass after
// every operation.
//
// The CSV has no users, no self-trade prevention and no cancel-replace, so a second property drives
// the book directly with several users, every self-trade prevention mode and `amend` (price changes,
// size increases, reductions, no-ops, post-only replaces that would cross) and checks it against
// ref.mjs on a CSV translation of the same commands, per the book README: a reduction at the same
// price is `A`; a price change or a size increase is `C` then `L` with the same id and time in force
// (priority lost, matched again); a post-only replace that would cross, an amend that changes nothing
// and an amend of an id that is not resting are amend rejects. When a self-trade prevention mode
// actually fired, the reference cannot judge the run; the rules are checked instead (no trade
// between one user's orders, an accepted FOK fills completely, POST never trades, the book's audit).
//
// ref.mjs is loaded in-process (its two imports are supplied, its console.log captured, its hashes
// observed for the fill and book lists), checked once against a spawned `node ref.mjs FILE`.
// Skipped, visibly, when ../shared is absent. DIFF_FUZZ_RUNS_FACTOR=20 searches 20 times longer.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { apply, bookFor } from '../src/replay.js';
import { summarize, SummarySink, type ReplaySummary } from '../src/summary.js';
import { parseWorkload } from '../src/workload.js';
import {
  AmendKind,
  CancelReason,
  RejectReason,
  SelfTradePrevention as STP,
  Side,
  TimeInForce as TIF,
  type CommandKind,
  type OrderBook,
} from '@gx3/orderbook';

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const REPO_ROOT = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const REF_MJS = path.resolve(REPO_ROOT, '../shared/workloads/ref.mjs');
const HAVE_REF = existsSync(REF_MJS);
const RUNS_FACTOR = Math.max(1, Number(process.env.DIFF_FUZZ_RUNS_FACTOR ?? 1) || 1);

if (!HAVE_REF) console.warn(`[orderbook differential fuzz] skipped: ${REF_MJS} does not exist beside the repository`);

// ---------------------------------------------------------------------------------------------
// Both sides' results.

interface Run {
  summary: ReplaySummary;
  /** `maker,taker,price,qty;` per fill, in order (what tradeHash is taken over). */
  fills: string[];
  /** `side,price,id,qty;` per resting order, bids then asks, priority order (what bookHash is taken over). */
  book: string[];
  /** The book refused an order or amend with LEVEL_QTY_OVERFLOW (see the pinned divergences below). */
  overflow?: boolean;
}

/** ref.mjs as a function of the CSV text, run in-process. */
function loadRef(): (csv: string) => Run {
  const src = readFileSync(REF_MJS, 'utf8');
  const imports = src.match(/^import .*$/gm) ?? [];
  expect(imports).toEqual(["import { readFileSync } from 'node:fs';", "import { createHash } from 'node:crypto';"]);
  const body = `'use strict';\n${src.replace(/^#!.*$/m, '').replace(/^import .*$/gm, '')}`;
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const fn = new Function('readFileSync', 'createHash', 'process', 'console', body) as (...args: unknown[]) => void;
  return (csv) => {
    const seen: string[][] = [];
    let out = '';
    const hash = (alg: string): unknown => {
      const h = createHash(alg);
      const fed: string[] = [];
      seen.push(fed);
      const wrapped = {
        update(s: string) {
          fed.push(s);
          h.update(s);
          return wrapped;
        },
        digest: (enc: 'hex') => h.digest(enc),
      };
      return wrapped;
    };
    fn(() => csv, hash, { argv: [process.execPath, REF_MJS, 'workload.csv'] }, { log: (s: string) => (out += s) });
    return { summary: JSON.parse(out) as ReplaySummary, fills: seen[0] ?? [], book: seen[1] ?? [] };
  };
}

/** The replay's SummarySink, also keeping the fills as the strings tradeHash is taken over. */
class RecordingSink extends SummarySink {
  readonly log: string[] = [];
  /** Whether the book refused something with LEVEL_QTY_OVERFLOW (a documented divergence: the reference has no such limit). */
  overflow = false;
  override onRejected(kind: CommandKind, orderId: number, reason: RejectReason): void {
    if (reason === RejectReason.LevelQtyOverflow) this.overflow = true;
    super.onRejected(kind, orderId, reason);
  }
  override onTrade(makerId: number, takerId: number, mu: number, tu: number, side: Side, price: number, qty: number): void {
    this.log.push(`${makerId},${takerId},${price},${qty};`);
    super.onTrade(makerId, takerId, mu, tu, side, price, qty);
  }
}

function bookLines(book: OrderBook): string[] {
  const out: string[] = [];
  for (const side of [Side.Buy, Side.Sell]) {
    const tag = side === Side.Buy ? 'B' : 'S';
    book.forEachOrder(side, (id, _user, price, qty) => out.push(`${tag},${price},${id},${qty};`));
  }
  return out;
}

/** The bench's replay of a CSV (parseWorkload, bookFor, apply, summarize), one operation at a time with an audit after each. */
function replayBook(csv: string): Run {
  const w = parseWorkload(csv);
  const sink = new RecordingSink(w.length);
  const book = bookFor(w, sink);
  for (let i = 0; i < w.length; i++) {
    apply(book, w, i, i + 1);
    book.audit();
  }
  return { summary: summarize(w.length, sink, book), fills: sink.log, book: bookLines(book), overflow: sink.overflow };
}

function diff(what: string, csv: string, ref: Run, ours: Run): string {
  return [
    `${what} disagrees with ref.mjs on:`,
    csv,
    `ref:  ${JSON.stringify(ref.summary)}`,
    `book: ${JSON.stringify(ours.summary)}`,
    `ref fills:  ${ref.fills.join(' ')}`,
    `book fills: ${ours.fills.join(' ')}`,
    `ref book:   ${ref.book.join(' ')}`,
    `book book:  ${ours.book.join(' ')}`,
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Generators. A case draws a handful of prices (narrow around a mid, or spread over the price
// index's word, page and directory boundaries, up to the widest band a book covers) and a
// quantity style; its operations pick prices, ids and quantities from those.

const MID = 100_000;
/** Offsets that straddle the ladder's bitset words (32, 1024 ticks), pages (32,768) and page directory words. */
const FAR_OFFSETS = [0, 1, 2, 31, 32, 33, 1023, 1024, 1025, 32_767, 32_768, 32_769, 65_536, 32 * 32_768, 1 << 26, 2 ** 31 - 3];
const BIG_QTY = [2 ** 40, 2 ** 51, 2 ** 52 - 1, 2 ** 52, 3 * 2 ** 51, MAX_SAFE - 1, MAX_SAFE];
/** Id jumps past the id index's window (2^20 in the replay's books) and up to the safe limit. */
const ID_JUMPS = [1 << 20, (1 << 20) - 1, (1 << 20) + 1, 1 << 21, 2 ** 32, 2 ** 40, MAX_SAFE];

const pricesArb = fc.oneof(
  { weight: 4, arbitrary: fc.uniqueArray(fc.integer({ min: MID - 3, max: MID + 3 }), { minLength: 1, maxLength: 5 }) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: 1, max: 3 }), fc.uniqueArray(fc.constantFrom(...FAR_OFFSETS), { minLength: 2, maxLength: 5 }))
      .map(([base, offs]) => offs.map((o) => base + o)),
  },
);

type QtyStyle = 'small' | 'big';

interface RawOp {
  kind: 'L' | 'M' | 'C' | 'A' | 'R';
  tif: '' | 'GTC' | 'IOC' | 'FOK' | 'POST';
  side: 'B' | 'S';
  px: number;
  qty: number;
  bigQty: number;
  /** 0..6 a fresh id, 7..8 a used one, 9 a fresh id far above the last. */
  idMode: number;
  idPick: number;
  user: number;
  stp: number;
}

const rawOpArb = (kinds: fc.Arbitrary<RawOp['kind']>): fc.Arbitrary<RawOp> =>
  fc.record({
    kind: kinds,
    tif: fc.constantFrom<RawOp['tif']>('', '', 'GTC', 'IOC', 'FOK', 'POST'),
    side: fc.constantFrom<RawOp['side']>('B', 'S'),
    px: fc.nat(15),
    qty: fc.integer({ min: 0, max: 6 }),
    bigQty: fc.nat(BIG_QTY.length - 1),
    idMode: fc.nat(9),
    idPick: fc.nat(63),
    user: fc.integer({ min: 1, max: 3 }),
    stp: fc.nat(4),
  });

const csvKinds = fc.oneof(
  { weight: 6, arbitrary: fc.constant<RawOp['kind']>('L') },
  { weight: 1, arbitrary: fc.constant<RawOp['kind']>('M') },
  { weight: 2, arbitrary: fc.constant<RawOp['kind']>('C') },
  { weight: 2, arbitrary: fc.constant<RawOp['kind']>('A') },
);
const allKinds = fc.oneof(
  { weight: 6, arbitrary: fc.constant<RawOp['kind']>('L') },
  { weight: 1, arbitrary: fc.constant<RawOp['kind']>('M') },
  { weight: 2, arbitrary: fc.constant<RawOp['kind']>('C') },
  { weight: 2, arbitrary: fc.constant<RawOp['kind']>('A') },
  { weight: 3, arbitrary: fc.constant<RawOp['kind']>('R') },
);

interface Case {
  prices: number[];
  qtyStyle: QtyStyle;
  ops: RawOp[];
}

const caseArb = (kinds: fc.Arbitrary<RawOp['kind']>, maxLength: number): fc.Arbitrary<Case> =>
  fc.record({
    prices: pricesArb,
    qtyStyle: fc.oneof({ weight: 5, arbitrary: fc.constant<QtyStyle>('small') }, { weight: 1, arbitrary: fc.constant<QtyStyle>('big') }),
    ops: fc.array(rawOpArb(kinds), { minLength: 1, maxLength }),
  });

/** Resolved operation: a CSV line, or an amend (cancel-replace or reduction) with a price. */
type Op =
  | { t: 'L'; id: number; side: 'B' | 'S'; price: number; qty: number; tif: RawOp['tif']; user: number; stp: number }
  | { t: 'M'; id: number; side: 'B' | 'S'; qty: number; user: number; stp: number }
  | { t: 'C'; id: number }
  | { t: 'A'; id: number; qty: number }
  | { t: 'R'; id: number; price: number; qty: number };

const csvLine = (op: Exclude<Op, { t: 'R' }>): string => {
  switch (op.t) {
    case 'L':
      return `L,${op.id},${op.side},${op.price},${op.qty}${op.tif === '' ? '' : `,${op.tif}`}`;
    case 'M':
      return `M,${op.id},${op.side},${op.qty}`;
    case 'C':
      return `C,${op.id}`;
    case 'A':
      return `A,${op.id},${op.qty}`;
  }
};

/**
 * Ids, prices and quantities for the raw operations. Market orders take a fresh id or the id of an
 * order that can never have rested (a market, IOC or FOK id never used by a GTC or POST order):
 * the book refuses a market order with a resting order's id, which the reference does not check
 * (docs/workload-format.md; pinned by its own test below).
 */
function resolve(c: Case): Op[] {
  let next = 1;
  const used: number[] = [];
  const neverRests = new Set<number>();
  const fresh = (r: RawOp): number => {
    // Jumps stop 64 short of the largest safe id, so that a case's fresh ids stay fresh.
    if (r.idMode === 9) next = Math.max(next, Math.min(MAX_SAFE - 64, next - 1 + (ID_JUMPS[r.idPick % ID_JUMPS.length] as number)));
    const id = next++;
    if (!used.includes(id)) used.push(id);
    return id;
  };
  const anyUsed = (r: RawOp): number => (used.length === 0 || r.idPick === 63 ? next + 7 : (used[r.idPick % used.length] as number));
  const qty = (r: RawOp): number => (c.qtyStyle === 'big' && r.qty >= 4 ? (BIG_QTY[r.bigQty] as number) : Math.max(1, r.qty));
  const price = (r: RawOp): number => c.prices[r.px % c.prices.length] as number;
  const out: Op[] = [];
  for (const r of c.ops) {
    switch (r.kind) {
      case 'L': {
        const id = r.idMode >= 7 && r.idMode <= 8 && used.length > 0 ? anyUsed(r) : fresh(r);
        if (r.tif === 'IOC' || r.tif === 'FOK') {
          if (!out.some((o) => o.t === 'L' && o.id === id && o.tif !== 'IOC' && o.tif !== 'FOK')) neverRests.add(id);
        } else neverRests.delete(id);
        out.push({ t: 'L', id, side: r.side, price: price(r), qty: qty(r), tif: r.tif, user: r.user, stp: r.stp });
        break;
      }
      case 'M': {
        const reuse = [...neverRests];
        const id = r.idMode >= 7 && r.idMode <= 8 && reuse.length > 0 ? (reuse[r.idPick % reuse.length] as number) : fresh(r);
        if (!out.some((o) => o.t === 'L' && o.id === id && o.tif !== 'IOC' && o.tif !== 'FOK')) neverRests.add(id);
        out.push({ t: 'M', id, side: r.side, qty: qty(r), user: r.user, stp: r.stp });
        break;
      }
      case 'C':
        out.push({ t: 'C', id: anyUsed(r) });
        break;
      case 'A':
        // newQty 0 is allowed by the CSV (an amend reject).
        out.push({ t: 'A', id: anyUsed(r), qty: c.qtyStyle === 'big' && r.qty >= 5 ? (BIG_QTY[r.bigQty] as number) : r.qty });
        break;
      case 'R':
        out.push({ t: 'R', id: anyUsed(r), price: price(r), qty: qty(r) });
        break;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Property 2's driver: the book called directly (users, self-trade prevention, amend), the
// reference's CSV written alongside from the book's state before each command.

interface DirectRun extends Run {
  /** The CSV for ref.mjs. */
  csv: string;
  /** Cancel-replaces applied (each is a `C` for the reference, not a cancel for the replay's counters). */
  replaces: number;
  /** Whether a self-trade prevention mode fired (then the reference cannot judge the run). */
  selfTrade: boolean;
}

class CheckingSink extends RecordingSink {
  selfTrade = false;
  takerStp: number = STP.None;
  filled = 0;
  readonly problems: string[] = [];
  override onTrade(makerId: number, takerId: number, mu: number, tu: number, side: Side, price: number, qty: number): void {
    if (mu === tu && this.takerStp !== STP.None) this.problems.push(`trade between orders of user ${mu} (taker ${takerId}, stp ${this.takerStp})`);
    this.filled += qty;
    super.onTrade(makerId, takerId, mu, tu, side, price, qty);
  }
  override onCanceled(id: number, user: number, reason: CancelReason): void {
    if (reason === CancelReason.SelfTrade) this.selfTrade = true;
    super.onCanceled(id, user, reason);
  }
  override onAmended(id: number, user: number, side: Side, price: number, qty: number, kind: AmendKind): void {
    if (kind === AmendKind.SelfTradeDecrement) this.selfTrade = true;
    super.onAmended(id, user, side, price, qty, kind);
  }
}

const COUNTERS = ['trades', 'cancels', 'cancelRejects', 'rejects', 'amends', 'amendRejects', 'restingBids', 'restingAsks'] as const;

const TIF_CODE = { '': TIF.GTC, GTC: TIF.GTC, IOC: TIF.IOC, FOK: TIF.FOK, POST: TIF.POST } as const;
const TIF_NAME = ['GTC', 'IOC', 'FOK', 'POST'] as const;

function runDirect(ops: Op[], withStp: boolean): DirectRun {
  // The replay's book, sized by bookFor over every price the commands use.
  const band = ops
    .filter((o): o is Extract<Op, { t: 'L' | 'R' }> => o.t === 'L' || o.t === 'R')
    .map((o) => `L,1,B,${o.price},1`)
    .join('\n');
  const sink = new CheckingSink(ops.length);
  const book = bookFor(parseWorkload(band), sink);
  const lines: string[] = [];
  let replaces = 0;
  for (const op of ops) {
    const stp = withStp && (op.t === 'L' || op.t === 'M') ? op.stp : STP.None;
    sink.takerStp = stp;
    sink.filled = 0;
    switch (op.t) {
      case 'L': {
        lines.push(csvLine(op));
        const fok = op.tif === 'FOK' ? fokFillable(book, op, stp) : undefined;
        if (fok?.metSelf === true) sink.selfTrade = true; // the reference knows no users: it cannot judge this run
        const r = book.submitLimit(op.id, op.user, op.side === 'B' ? Side.Buy : Side.Sell, op.price, op.qty, TIF_CODE[op.tif], stp as STP);
        if (fok !== undefined && (r === RejectReason.None) !== fok.fillable && (r === RejectReason.None || r === RejectReason.FokNotFillable)) {
          sink.problems.push(`FOK ${op.id} ${r === RejectReason.None ? 'accepted' : 'refused'}, though the liquidity it can reach ${fok.fillable ? 'fills' : 'does not fill'} it`);
        }
        if (r === RejectReason.None && op.tif === 'FOK' && sink.filled !== op.qty) sink.problems.push(`FOK ${op.id} accepted, filled ${sink.filled} of ${op.qty}`);
        if (r === RejectReason.None && op.tif === 'POST' && sink.filled !== 0) sink.problems.push(`POST ${op.id} traded ${sink.filled}`);
        if (op.tif === 'IOC' && book.has(op.id) && r === RejectReason.None) sink.problems.push(`IOC ${op.id} rests`);
        break;
      }
      case 'M':
        lines.push(csvLine(op));
        book.submitMarket(op.id, op.user, op.side === 'B' ? Side.Buy : Side.Sell, op.qty, stp as STP);
        if (book.has(op.id)) sink.problems.push(`market order ${op.id} rests`);
        break;
      case 'C':
        lines.push(csvLine(op));
        book.cancel(op.id);
        break;
      case 'A':
        lines.push(csvLine(op));
        book.reduce(op.id, op.qty);
        break;
      case 'R': {
        const o = book.getOrder(op.id);
        if (o === undefined || (op.price === o.price && op.qty === o.qty)) {
          lines.push(`A,${op.id},0`); // unknown order, or no change: an amend reject
        } else if (op.price === o.price && op.qty < o.qty) {
          lines.push(`A,${op.id},${op.qty}`); // a reduction keeps priority
        } else {
          const buy = o.side === Side.Buy;
          const opp = buy ? book.bestAsk : book.bestBid;
          const crosses = opp !== null && (buy ? opp <= op.price : opp >= op.price);
          if (o.timeInForce === TIF.POST && crosses) {
            lines.push(`A,${op.id},0`); // a post-only replace that would cross is refused, the order unchanged
          } else {
            lines.push(`C,${op.id}`, `L,${op.id},${buy ? 'B' : 'S'},${op.price},${op.qty},${TIF_NAME[o.timeInForce]}`);
            replaces++;
          }
        }
        book.amend(op.id, op.price, op.qty);
        break;
      }
    }
    book.audit();
    if (sink.problems.length > 0) throw new Error(`${sink.problems.join('; ')} after:\n${fmtOps(ops)}`);
  }
  return {
    summary: summarize(ops.length, sink, book),
    fills: sink.log,
    book: bookLines(book),
    csv: lines.join('\n'),
    replaces,
    selfTrade: sink.selfTrade,
    overflow: sink.overflow,
  };
}

/**
 * Whether a FOK order can be filled from the liquidity it can reach (book README: "A FOK order counts
 * only the liquidity it can reach before a self-match would stop it (with CancelOldest, self orders
 * are skipped)"), and whether it meets an order of its own user on the way (with a mode on).
 */
function fokFillable(book: OrderBook, op: Extract<Op, { t: 'L' }>, stp: number): { fillable: boolean; metSelf: boolean } {
  const buy = op.side === 'B';
  let need = op.qty;
  let stopped = false;
  let metSelf = false;
  book.forEachOrder(buy ? Side.Sell : Side.Buy, (_id, user, price, qty) => {
    if (stopped || need <= 0 || (buy ? price > op.price : price < op.price)) return;
    if (stp !== STP.None && user === op.user) {
      metSelf = true;
      if (stp !== STP.CancelOldest) stopped = true;
      return;
    }
    need -= qty;
  });
  return { fillable: need <= 0, metSelf };
}

const fmtOps = (ops: Op[], withUsers = false): string =>
  ops
    .map((o) =>
      o.t === 'R'
        ? `amend(${o.id}, ${o.price}, ${o.qty})`
        : `${csvLine(o)}${withUsers && (o.t === 'L' || o.t === 'M') ? `   user ${o.user} stp ${o.stp}` : ''}`,
    )
    .join('\n');

// ---------------------------------------------------------------------------------------------

describe.skipIf(!HAVE_REF)('differential fuzz against ref.mjs', () => {
  const ref = HAVE_REF ? loadRef() : (): Run => expect.fail('no ref.mjs');

  it('runs ref.mjs in-process exactly as `node ref.mjs FILE` does', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gx3-diff-fuzz-'));
    try {
      const samples = fc.sample(caseArb(csvKinds, 40), { seed: 1, numRuns: 3 }).map((c) => resolve(c).map((o) => csvLine(o as Exclude<Op, { t: 'R' }>)).join('\n'));
      samples.push('L,1,S,101,2\nL,2,S,101,3\nA,1,1\nL,3,B,101,4,IOC\nL,4,B,102,9,POST\nM,5,S,1\nC,2\nC,2');
      for (const [i, csv] of samples.entries()) {
        const file = path.join(dir, `w${i}.csv`);
        writeFileSync(file, `${csv}\n`);
        const r = spawnSync(process.execPath, [REF_MJS, file], { encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(0);
        expect(ref(csv).summary).toEqual(JSON.parse(r.stdout) as unknown);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('replays random CSV workloads like ref.mjs (summary, every fill, the final book)', () => {
    const kinds = new Map<string, number>();
    let overflows = 0;
    const counted = new Set<string>();
    fc.assert(
      fc.property(caseArb(csvKinds, 30), (c) => {
        const csv = resolve(c)
          .map((o) => csvLine(o as Exclude<Op, { t: 'R' }>))
          .join('\n');
        for (const l of csv.split('\n')) {
          const f = l.split(',');
          const k = f[0] === 'L' ? `L${f.length === 6 ? `,${f[5]}` : ''}` : (f[0] as string);
          kinds.set(k, (kinds.get(k) ?? 0) + 1);
        }
        const expected = ref(csv);
        const ours = replayBook(csv);
        if (ours.overflow === true) {
          overflows++;
          return;
        }
        for (const k of COUNTERS) if (expected.summary[k] > 0) counted.add(k);
        if (
          JSON.stringify(ours.summary) !== JSON.stringify(expected.summary) ||
          ours.fills.join() !== expected.fills.join() ||
          ours.book.join() !== expected.book.join()
        ) {
          throw new Error(diff('the replay', csv, expected, ours));
        }
      }),
      { numRuns: 1500 * RUNS_FACTOR },
    );
    // Every line type and every form of the time in force field was generated.
    expect([...kinds.keys()].sort()).toEqual(['A', 'C', 'L', 'L,FOK', 'L,GTC', 'L,IOC', 'L,POST', 'M']);
    expect([...counted].sort()).toEqual([...COUNTERS].sort()); // every counter was exercised
    expect(overflows).toBeLessThan(150 * RUNS_FACTOR); // most big-quantity cases are still judged
  });

  it('agrees with ref.mjs under several users, self-trade prevention and cancel-replace amends', () => {
    let judged = 0;
    let stpFired = 0;
    fc.assert(
      fc.property(caseArb(allKinds, 30), fc.boolean(), (c, withStp) => {
        const ops = resolve(c);
        const ours = runDirect(ops, withStp);
        if (ours.selfTrade || ours.overflow === true) {
          stpFired++;
          return; // the rules were checked as the commands ran
        }
        judged++;
        const expected = ref(ours.csv);
        // The translation's `C` of a replace is no cancel in the replay's counters, and its lines are more.
        const want = { ...expected.summary, ops: ops.length, cancels: expected.summary.cancels - ours.replaces };
        if (
          JSON.stringify(ours.summary) !== JSON.stringify(want) ||
          ours.fills.join() !== expected.fills.join() ||
          ours.book.join() !== expected.book.join()
        ) {
          throw new Error(diff(`the book (commands:\n${fmtOps(ops, true)}\n), as the CSV`, ours.csv, { ...expected, summary: want }, ours));
        }
      }),
      { numRuns: 1500 * RUNS_FACTOR },
    );
    expect(judged).toBeGreaterThan(100);
    expect(stpFired).toBeGreaterThan(40);
  });

  // A divergence documented in the book's README only ("an order that would push a level's total
  // past 2^53 - 1 is refused (LEVEL_QTY_OVERFLOW)"), not in docs/workload-format.md or the shared
  // README: the reference rests the order and reports an unsafe restingAskQty. The fuzzers skip
  // the cases where the book refused something for this reason.
  it('pins the level total divergence: the reference rests an order past a level total of 2^53 - 1', () => {
    const csv = 'L,1,S,100,1\nL,2,S,100,9007199254740991';
    expect(ref(csv).summary).toMatchObject({ rejects: 0, restingAsks: 2, restingAskQty: 2 ** 53 });
    expect(replayBook(csv).summary).toMatchObject({ rejects: 1, restingAsks: 1, restingAskQty: 1 });
  });

  // Known, documented divergence (docs/workload-format.md): the reference checks duplicate ids on
  // limit orders only, so it lets a market order trade with the resting order of the same id; the
  // book refuses it. The fuzzers above never give a market order the id of a resting order.
  it('pins the one documented divergence: a market order with the id of a resting order', () => {
    const csv = 'L,1,B,100,5\nM,1,S,3';
    expect(ref(csv).summary).toMatchObject({ rejects: 0, trades: 1, volume: 3, restingBidQty: 2 });
    expect(ref(csv).fills).toEqual(['1,1,100,3;']);
    expect(replayBook(csv).summary).toMatchObject({ rejects: 1, trades: 0, volume: 0, restingBidQty: 5 });
  });
});
