// Finding, in a JSON text, a number written as a value that is not an integer. JSON.parse rounds
// such a number to the nearest double, which for 9007199254740990.5 or 1.0000000000000001 is an
// integer: a reader that checks the parsed value alone would take it at a value the writer did not
// write. The text is scanned only when a digit in it is followed by `.` or an exponent (the usual
// text holds none).

/** A number of a JSON text whose value is not an integer, and where it is. */
export interface FractionalNumber {
  /** The member of the top-level object it is in (a number nested in a member's value belongs to that member). */
  readonly field: string;
  /** The innermost member it is the value of, or in (an array's). */
  readonly member: string;
  /** The number as written. */
  readonly token: string;
}

const NUMBER = /-?(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?/y;
/** A digit followed by `.` or an exponent: without one, no number of the text has a fraction. */
const MAYBE_FRACTION = /\d[.eE]/;

/**
 * The first number of a JSON text (one JSON.parse accepted) written as a value that is not an
 * integer (`1.5`, `5e-1`; `1.0` and `1e2` are integers); with `readAsIntegerOnly`, the first that
 * JSON.parse nevertheless reads as an integer (`9007199254740990.5`, `1.0000000000000001`, not `1.5`).
 * Undefined if there is none. A number directly in a top-level member named `skipField` is passed
 * over (a request id, which need not be an integer).
 */
export function fractionalNumber(text: string, readAsIntegerOnly = false, skipField?: string): FractionalNumber | undefined {
  return scan(text, readAsIntegerOnly, skipField, undefined);
}

/**
 * Every number of a JSON text (one JSON.parse accepted) written as a value that is not an integer,
 * by the top-level member it is in (the first such number of each member). Undefined if there is
 * none. A decoder that checks its fields in a fixed order asks it whether each field has one.
 */
export function fractionalNumbers(text: string): ReadonlyMap<string, FractionalNumber> | undefined {
  const all = new Map<string, FractionalNumber>();
  scan(text, false, undefined, all);
  return all.size === 0 ? undefined : all;
}

/** A member name as JSON.parse reads it (`"s\u0065q"` is `seq`). */
function keyOf(text: string, start: number, end: number): string {
  const raw = text.slice(start, end);
  if (raw.indexOf('\\') < 0) return raw;
  try {
    return JSON.parse(`"${raw}"`) as string;
  } catch {
    return raw; // JSON.parse accepted the text, so this cannot be
  }
}

function scan(text: string, readAsIntegerOnly: boolean, skipField: string | undefined, all: Map<string, FractionalNumber> | undefined): FractionalNumber | undefined {
  if (!MAYBE_FRACTION.test(text)) return undefined;
  // The last string's bounds, the top-level member name's and the innermost member name's (each
  // the string before its ':'), sliced only for the answer.
  let strStart = 0;
  let strEnd = 0;
  let keyStart = 0;
  let keyEnd = 0;
  let memberStart = 0;
  let memberEnd = 0;
  // The innermost member around each open object or array, restored when it closes (a number in
  // an array belongs to the array's member, not to the last member of an object before it).
  const around: number[] = [];
  let depth = 0;
  for (let i = 0; i < text.length; ) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      let j = i + 1;
      while (j < text.length && text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c ? 2 : 1;
      strStart = i + 1;
      strEnd = j;
      i = j + 1;
      continue;
    }
    if (c === 0x7b || c === 0x5b) {
      depth++;
      around.push(memberStart, memberEnd);
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
      memberEnd = around.pop() ?? 0;
      memberStart = around.pop() ?? 0;
    } else if (c === 0x3a) {
      memberStart = strStart;
      memberEnd = strEnd;
      if (depth === 1) {
        keyStart = strStart;
        keyEnd = strEnd;
      }
    }
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(text);
      if (m === null) return undefined; // not a number: JSON.parse accepted the text, so this cannot be
      const digits = (m[1] ?? '') + (m[2] ?? '');
      const point = (m[1] ?? '').length + Number(m[3] ?? 0);
      for (let k = Math.max(0, point); k < digits.length; k++) {
        if (digits.charCodeAt(k) !== 0x30) {
          if (readAsIntegerOnly && !Number.isInteger(Number(m[0]))) break;
          const field = keyOf(text, keyStart, keyEnd);
          if (depth === 1 && field === skipField) break;
          const found = { field, member: keyOf(text, memberStart, memberEnd), token: m[0] };
          if (all === undefined) return found;
          if (!all.has(field)) all.set(field, found);
          break;
        }
      }
      i += m[0].length;
      continue;
    }
    i++;
  }
  return undefined;
}
