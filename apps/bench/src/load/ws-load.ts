// WebSocket order entry: `connections` clients, each keeping `window` frames in flight (closed
// loop), each frame holding `perFrame` orders (one order as an object, several as an array). A
// frame's latency runs from its send to its answer (frames with no order done give none); only
// orders answered `ok` count, every other order sent (refused, or unanswered when the server closed
// the connection) is an error. The client
// shares the two cores with the server it measures, so it reads an answer without parsing it whole
// (as autocannon reads only an HTTP answer's status): the frame id at its start, and one `"ok":true`
// or `"ok":false` per order (the gateway's and the bare server's answers hold no other `"ok"`).

import { WebSocket, type RawData } from 'ws';
import { LOAD_KEY, loadOrder } from './orders.js';
import type { LoadFigures } from './http-load.js';

/** A WebSocket message as text (a Buffer, fragments, or an ArrayBuffer). */
export function frameText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

const ID_PREFIX = '{"id":';

/** The frame id at the start of an answer (`{"id":N,`), or undefined (a push message, a malformed answer). */
export function answerId(answer: string): number | undefined {
  if (!answer.startsWith(ID_PREFIX)) return undefined;
  const comma = answer.indexOf(',', ID_PREFIX.length);
  if (comma < 0) return undefined;
  const id = Number(answer.slice(ID_PREFIX.length, comma));
  return Number.isSafeInteger(id) ? id : undefined;
}

/** How many `"ok":true` and `"ok":false` an answer holds. */
export function countOk(answer: string): { ok: number; failed: number } {
  let ok = 0;
  let failed = 0;
  for (let i = answer.indexOf('"ok":'); i >= 0; i = answer.indexOf('"ok":', i + 5)) {
    if (answer.startsWith('true', i + 5)) ok++;
    else failed++;
  }
  return { ok, failed };
}

export async function wsLoad(url: string, options: { connections: number; window: number; perFrame: number; seconds: number }): Promise<LoadFigures> {
  const frames: string[] = [];
  for (let f = 0; f < 64; f++) {
    const orders = Array.from({ length: options.perFrame }, (_, k) => loadOrder(f * options.perFrame + k));
    frames.push(JSON.stringify({ op: 'order', id: 0, order: options.perFrame === 1 ? orders[0] : orders }).replace('"id":0', '"id":__ID__'));
  }
  const latencies: number[] = [];
  let okOrders = 0;
  let errors = 0;
  let stopAt = 0;
  const runOne = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers: { 'x-api-key': LOAD_KEY }, perMessageDeflate: false });
      const sentAt = new Map<number, number>();
      let next = 1;
      const send = (): void => {
        const id = next++;
        sentAt.set(id, performance.now());
        ws.send((frames[id % frames.length] as string).replace('__ID__', String(id)));
      };
      ws.on('open', () => {
        for (let k = 0; k < options.window; k++) send();
      });
      ws.on('message', (data) => {
        const answer = frameText(data);
        const id = answerId(answer);
        if (id === undefined) return;
        const t0 = sentAt.get(id);
        if (t0 === undefined) return;
        sentAt.delete(id);
        const now = performance.now();
        const { ok } = countOk(answer);
        okOrders += ok;
        // Every order of the frame not answered ok is an error (a frame refused whole answers one
        // "ok":false for all its orders); only frames with orders done give a latency.
        errors += options.perFrame - ok;
        if (ok > 0) latencies.push(now - t0);
        if (now < stopAt) send();
        else if (sentAt.size === 0) ws.close();
      });
      ws.on('close', () => {
        // Frames still in flight when the server closed the connection were never answered.
        errors += sentAt.size * options.perFrame;
        sentAt.clear();
        resolve();
      });
      ws.on('error', reject);
    });
  const t0 = performance.now();
  stopAt = t0 + options.seconds * 1000;
  await Promise.all(Array.from({ length: options.connections }, runOne));
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const q = (f: number): number => latencies[Math.min(latencies.length - 1, Math.floor(f * latencies.length))] ?? 0;
  return { perSec: okOrders / elapsed, p50Ms: q(0.5), p99Ms: q(0.99), errors, total: okOrders };
}
