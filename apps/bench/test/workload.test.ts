import { describe, expect, it } from 'vitest';
import { BenchError, CsvParseError, OpKind, parseWorkload, type Workload } from '../src/index.js';

interface Op {
  kind: number;
  id: number;
  side: number;
  price: number;
  qty: number;
  tif: number;
}

/** The operations of a workload as plain objects, for readable comparisons. */
function ops(w: Workload): Op[] {
  const out: Op[] = [];
  for (let i = 0; i < w.length; i++) {
    out.push({
      kind: w.kind[i] ?? -1,
      id: w.id[i] ?? -1,
      side: w.side[i] ?? -1,
      price: w.price[i] ?? -1,
      qty: w.qty[i] ?? -1,
      tif: w.tif[i] ?? -1,
    });
  }
  return out;
}

function expectSameArrays(w: Workload): void {
  for (const a of [w.kind, w.id, w.side, w.price, w.qty, w.tif]) expect(a.length).toBe(w.length);
}

/** The CsvParseError that parsing `text` throws. */
function parseError(text: string): CsvParseError {
  try {
    parseWorkload(text);
  } catch (err) {
    expect(err).toBeInstanceOf(CsvParseError);
    expect(err).toBeInstanceOf(BenchError);
    return err as CsvParseError;
  }
  return expect.fail(`parseWorkload accepted ${JSON.stringify(text)}`);
}

const L = OpKind.Limit;
const M = OpKind.Market;
const C = OpKind.Cancel;
const A = OpKind.Amend;

describe('parseWorkload: line forms', () => {
  it('parses a limit order without time in force as GTC', () => {
    const w = parseWorkload('L,7,B,100000,25\n');
    expect(w.length).toBe(1);
    expectSameArrays(w);
    expect(ops(w)).toEqual([{ kind: L, id: 7, side: 0, price: 100000, qty: 25, tif: 0 }]);
  });

  it('parses a sell limit order', () => {
    expect(ops(parseWorkload('L,8,S,99999,1\n'))).toEqual([{ kind: L, id: 8, side: 1, price: 99999, qty: 1, tif: 0 }]);
  });

  it.for([
    ['GTC', 0],
    ['IOC', 1],
    ['FOK', 2],
    ['POST', 3],
  ] as const)('parses a limit order with time in force %s', ([name, code]) => {
    expect(ops(parseWorkload(`L,3,S,101,9,${name}\n`))).toEqual([{ kind: L, id: 3, side: 1, price: 101, qty: 9, tif: code }]);
  });

  it('parses a market order', () => {
    expect(ops(parseWorkload('M,12,S,40\n'))).toEqual([{ kind: M, id: 12, side: 1, price: 0, qty: 40, tif: 0 }]);
    expect(ops(parseWorkload('M,13,B,1'))).toEqual([{ kind: M, id: 13, side: 0, price: 0, qty: 1, tif: 0 }]);
  });

  it('parses a cancel', () => {
    expect(ops(parseWorkload('C,5\n'))).toEqual([{ kind: C, id: 5, side: 0, price: 0, qty: 0, tif: 0 }]);
  });

  it('parses an amend, including a zero quantity (which the book rejects, as the reference does)', () => {
    expect(ops(parseWorkload('A,5,3\nA,6,0\n'))).toEqual([
      { kind: A, id: 5, side: 0, price: 0, qty: 3, tif: 0 },
      { kind: A, id: 6, side: 0, price: 0, qty: 0, tif: 0 },
    ]);
  });

  it('keeps the operations in file order and accepts the largest safe integers', () => {
    const max = Number.MAX_SAFE_INTEGER;
    const w = parseWorkload(`L,1,B,100,5\nL,${max},S,${max},${max},POST\nM,2,B,${max}\nC,${max}\nA,${max},${max}\nL,007,B,0100,05\n`);
    expectSameArrays(w);
    expect(ops(w)).toEqual([
      { kind: L, id: 1, side: 0, price: 100, qty: 5, tif: 0 },
      { kind: L, id: max, side: 1, price: max, qty: max, tif: 3 },
      { kind: M, id: 2, side: 0, price: 0, qty: max, tif: 0 },
      { kind: C, id: max, side: 0, price: 0, qty: 0, tif: 0 },
      { kind: A, id: max, side: 0, price: 0, qty: max, tif: 0 },
      { kind: L, id: 7, side: 0, price: 100, qty: 5, tif: 0 },
    ]);
  });

  it('parses an empty or all-blank text as an empty workload', () => {
    for (const text of ['', '\n', '\r\n', '\n\n  \n\t\n', ' ']) {
      const w = parseWorkload(text);
      expect(w.length).toBe(0);
      expectSameArrays(w);
    }
  });

  const LF = 'L,1,B,100,5\nL,2,S,101,6,IOC\nM,3,B,7\nC,1\nA,2,3\n';

  it('reads CRLF line endings like LF ones', () => {
    const crlf = LF.replaceAll('\n', '\r\n');
    expect(ops(parseWorkload(crlf))).toEqual(ops(parseWorkload(LF)));
    expect(parseWorkload(crlf).length).toBe(5);
    // Mixed endings, and a last line without any ending.
    expect(ops(parseWorkload('L,1,B,100,5\r\nL,2,S,101,6,IOC\nM,3,B,7\r\nC,1\nA,2,3'))).toEqual(ops(parseWorkload(LF)));
  });

  it('skips blank lines (empty, whitespace, CR only) wherever they are', () => {
    const text = '\n\nL,1,B,100,5\n   \nL,2,S,101,6,IOC\r\n\r\n\t\nM,3,B,7\n\nC,1\nA,2,3\n\n\n';
    const w = parseWorkload(text);
    expectSameArrays(w);
    expect(ops(w)).toEqual(ops(parseWorkload(LF)));
  });

  it('does not accept a CR in the middle of a line', () => {
    expect(parseError('L,1,B,100,5\rL,2,S,101,6\n').line).toBe(1);
  });
});

describe('parseWorkload: line numbers of errors', () => {
  it('numbers lines from 1', () => {
    const e = parseError('X,1\n');
    expect(e.line).toBe(1);
    expect(e.message).toMatch(/^line 1: /);
  });

  it('counts blank lines and CRLF lines', () => {
    expect(parseError('\n\nL,1,B,100,5\n\nQ\n').line).toBe(5);
    expect(parseError('L,1,B,100,5\r\n\r\n  \r\nC,1\r\nC,x\r\nC,2\r\n').line).toBe(5);
  });

  it('reports the first bad line', () => {
    const e = parseError('L,1,B,100,5\nL,2,B,0,5\nL,3,B,100,0\n');
    expect(e.line).toBe(2);
    expect(e.message).toMatch(/price/);
  });

  it('reports a bad last line without a line ending', () => {
    expect(parseError('L,1,B,100,5\nC,1\nC,').line).toBe(3);
  });

  it('has code CSV_PARSE, the name BenchError and a `detail` without the line prefix', () => {
    const e = parseError('C,1\nC,-1\n');
    expect(e.code).toBe('CSV_PARSE');
    expect(e.name).toBe('BenchError');
    expect(e.line).toBe(2);
    expect(e.message).toBe(`line 2: ${e.detail}`);
    expect(e.detail).toMatch(/id/);
  });
});

describe('parseWorkload: bad lines', () => {
  // Each bad line is line 3 of a file whose line 2 is blank, so that a parser that skipped blank
  // lines in its numbering (or numbered from 0) would report the wrong line.
  const bad: { text: string; why: RegExp }[] = [
    // Unknown operations.
    { text: 'X,1,B,100,5', why: /unknown operation "X"/ },
    { text: 'l,1,B,100,5', why: /unknown operation "l"/ },
    { text: 'LIMIT,1,B,100,5', why: /unknown operation "LIMIT"/ },
    { text: ' L,1,B,100,5', why: /unknown operation " L"/ },
    { text: ',1,B,100,5', why: /unknown operation ""/ },
    { text: ',', why: /unknown operation ""/ },
    { text: 'D,1', why: /unknown operation "D".*L, M, C or A/ },
    // Wrong field counts.
    { text: 'L', why: /L takes 4 or 5 fields, got 0/ },
    { text: 'L,1,B,100', why: /L takes 4 or 5 fields, got 3/ },
    { text: 'L,1,B,100,5,GTC,7', why: /L takes 4 or 5 fields, got 6/ },
    { text: 'M,1,B', why: /M takes 3 fields, got 2/ },
    { text: 'M,1,B,5,IOC', why: /M takes 3 fields, got 4/ },
    { text: 'M,1,B,100,5', why: /M takes 3 fields, got 4/ },
    { text: 'C', why: /C takes 1 fields?, got 0/ },
    { text: 'C,1,2', why: /C takes 1 fields?, got 2/ },
    { text: 'A,1', why: /A takes 2 fields, got 1/ },
    { text: 'A,1,2,3', why: /A takes 2 fields, got 3/ },
    // Numbers that are not non-negative integers.
    { text: 'L,abc,B,100,5', why: /id is not a non-negative integer: "abc"/ },
    { text: 'L,1,B,-100,5', why: /price is not a non-negative integer: "-100"/ },
    { text: 'L,1,B,100.5,5', why: /price is not a non-negative integer: "100.5"/ },
    { text: 'L,1,B,100,2.0', why: /qty is not a non-negative integer: "2.0"/ },
    { text: 'L,1,B,1e3,5', why: /price is not a non-negative integer: "1e3"/ },
    { text: 'L,1,B,0x10,5', why: /price is not a non-negative integer: "0x10"/ },
    { text: 'L,1,B, 100,5', why: /price is not a non-negative integer: " 100"/ },
    { text: 'L,+1,B,100,5', why: /id is not a non-negative integer: "\+1"/ },
    { text: 'M,1,S,-5', why: /qty is not a non-negative integer: "-5"/ },
    { text: 'M,1,S,Infinity', why: /qty is not a non-negative integer: "Infinity"/ },
    { text: 'C,-1', why: /id is not a non-negative integer: "-1"/ },
    { text: 'C,1.5', why: /id is not a non-negative integer: "1.5"/ },
    { text: 'A,1,-3', why: /newQty is not a non-negative integer: "-3"/ },
    { text: 'A,1,NaN', why: /newQty is not a non-negative integer: "NaN"/ },
    { text: 'A,x,3', why: /id is not a non-negative integer: "x"/ },
    // Integers beyond Number.MAX_SAFE_INTEGER.
    { text: 'L,9007199254740992,B,100,5', why: /id is beyond the safe integer range: 9007199254740992/ },
    { text: 'L,1,B,9007199254740993,5', why: /price is beyond the safe integer range/ },
    { text: 'L,1,B,100,99999999999999999999', why: /qty is beyond the safe integer range/ },
    { text: 'M,1,B,18446744073709551616', why: /qty is beyond the safe integer range/ },
    { text: 'C,9007199254740992', why: /id is beyond the safe integer range/ },
    { text: 'A,1,9007199254740992', why: /newQty is beyond the safe integer range/ },
    // Zero where a positive number is required.
    { text: 'L,0,B,100,5', why: /id must be positive/ },
    { text: 'L,1,B,0,5', why: /price must be positive/ },
    { text: 'L,1,B,100,0', why: /qty must be positive/ },
    { text: 'L,1,S,100,000', why: /qty must be positive/ },
    { text: 'M,0,B,5', why: /id must be positive/ },
    { text: 'M,1,B,0', why: /qty must be positive/ },
    { text: 'C,0', why: /id must be positive/ },
    { text: 'A,0,5', why: /id must be positive/ },
    // Bad sides.
    { text: 'L,1,X,100,5', why: /side must be B or S, got "X"/ },
    { text: 'L,1,b,100,5', why: /side must be B or S, got "b"/ },
    { text: 'L,1,Buy,100,5', why: /side must be B or S, got "Buy"/ },
    { text: 'M,1,s,5', why: /side must be B or S, got "s"/ },
    // Bad time in force, including names that are properties of every JavaScript object.
    { text: 'L,1,B,100,5,gtc', why: /time in force must be GTC, IOC, FOK or POST, got "gtc"/ },
    { text: 'L,1,B,100,5,DAY', why: /time in force must be GTC, IOC, FOK or POST, got "DAY"/ },
    { text: 'L,1,B,100,5,IOC ', why: /time in force must be GTC, IOC, FOK or POST, got "IOC "/ },
    { text: 'L,1,B,100,5,', why: /time in force must be GTC, IOC, FOK or POST, got ""/ },
    { text: 'L,1,B,100,5,constructor', why: /time in force must be GTC, IOC, FOK or POST, got "constructor"/ },
    { text: 'L,1,B,100,5,toString', why: /time in force must be GTC, IOC, FOK or POST, got "toString"/ },
    { text: 'L,1,B,100,5,__proto__', why: /time in force must be GTC, IOC, FOK or POST, got "__proto__"/ },
    { text: 'L,1,B,100,5,hasOwnProperty', why: /time in force must be GTC, IOC, FOK or POST, got "hasOwnProperty"/ },
    // Empty fields.
    { text: 'L,,B,100,5', why: /missing id/ },
    { text: 'L,1,,100,5', why: /side must be B or S, got ""/ },
    { text: 'L,1,B,,5', why: /missing price/ },
    { text: 'L,1,B,100,', why: /missing qty/ },
    { text: 'L,,,,', why: /missing id/ },
    { text: 'M,,B,5', why: /missing id/ },
    { text: 'M,1,,5', why: /side must be B or S, got ""/ },
    { text: 'M,1,B,', why: /missing qty/ },
    { text: 'C,', why: /missing id/ },
    { text: 'A,,5', why: /missing id/ },
    { text: 'A,1,', why: /missing newQty/ },
  ];

  it.for(bad)('rejects $text', ({ text, why }) => {
    for (const eol of ['\n', '\r\n']) {
      const file = ['L,1,B,100,5', '', text, 'L,2,S,101,5', ''].join(eol);
      const e = parseError(file);
      expect(e.code).toBe('CSV_PARSE');
      expect(e.line).toBe(3);
      expect(e.message).toMatch(/^line 3: /);
      expect(e.message).toMatch(why);
    }
  });
});
