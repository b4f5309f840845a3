// Measurement honesty of the benchmark harness: what the load clients count as done and as errors,
// which answers their latency percentiles hold, whether the bare baselines do the work they claim,
// the open loop's schedule and its behaviour when the engine halts, the baseline comparison's
// noise rule on figures that were zero, and results.md against results.json.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { SymbolActor } from '@gx3/engine';
import { replayEngine } from '../src/engine-replay.js';
import { generateText } from '../src/generator.js';
import { aggregate, compareWithBaseline, fmt, regressionsOf } from '../src/harness/report.js';
import type { BenchReport, SuiteRun } from '../src/harness/types.js';
import { startBareHttp, startBareWs } from '../src/load/bare-servers.js';
import { httpLoad } from '../src/load/http-load.js';
import { loadBodies, LOAD_KEY } from '../src/load/orders.js';
import { wsLoad } from '../src/load/ws-load.js';
import { openLoop } from '../src/open-loop.js';
import { parseWorkload } from '../src/workload.js';
import { BENCH_DIR, runNode, tempDir } from './helpers.js';

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

/** A WebSocket server at /v1/ws that hands every frame (parsed) to `onFrame` with its running count. */
async function fakeWs(onFrame: (ws: WebSocket, m: { id: number; order: unknown }, n: number) => void): Promise<{ port: number; frames: () => number }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/v1/ws' });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  let n = 0;
  wss.on('connection', (ws) => {
    ws.on('message', (d) => {
      onFrame(ws, JSON.parse((d as Buffer).toString('utf8')) as { id: number; order: unknown }, ++n);
    });
  });
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => {
          resolve();
        });
      }),
  );
  return { port: (wss.address() as AddressInfo).port, frames: () => n };
}

/** An HTTP server on 127.0.0.1 (closed after the test, its open connections destroyed). */
async function fakeHttp(handler: http.RequestListener): Promise<number> {
  const sockets = new Set<Socket>();
  const srv = http.createServer(handler);
  srv.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        srv.close(() => {
          resolve();
        });
      }),
  );
  return (srv.address() as AddressInfo).port;
}

async function postOrder(port: number, body: unknown): Promise<{ status: number; text: string }> {
  const r = await fetch(`http://127.0.0.1:${port}/v1/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': LOAD_KEY },
    body: JSON.stringify(body),
  });
  return { status: r.status, text: await r.text() };
}

/** Orders the gateway's parsePlaceOrder refuses although they pass the JSON schema. */
const REFUSED_BY_THE_GATEWAY = [
  { symbol: 'NOPE', side: 'buy', type: 'limit', price: 1000, qty: 1, tif: 'GTC' },
  { symbol: 'BTCUSDT', side: 'buy', type: 'limit', price: 2_000_000_000, qty: 1, tif: 'GTC' },
  { symbol: 'BTCUSDT', side: 'buy', type: 'market', price: 5, qty: 1 },
];

/**
 * Makes the engine's fdatasync fail (EIO) once a command was submitted (so that opening still works):
 * the actor then halts. `abort()` makes trySubmit throw, to end a submit loop that would not stop.
 */
function injectSyncFailure(): { abort: () => void; restore: () => void } {
  let armed = false;
  let aborted = false;
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called with the actor as `this` below
  const trySubmit = SymbolActor.prototype.trySubmit;
  const s1 = vi.spyOn(SymbolActor.prototype, 'trySubmit').mockImplementation(function (this: SymbolActor, cmd) {
    if (aborted) throw new Error('aborted by the test');
    armed = true;
    return trySubmit.call(this, cmd);
  });
  const fdatasync = fs.fdatasync;
  const s2 = vi.spyOn(fs, 'fdatasync').mockImplementation(((fd: number, cb: (e: NodeJS.ErrnoException | null) => void) => {
    if (armed) {
      process.nextTick(() => {
        cb(Object.assign(new Error('EIO: i/o error, fdatasync (injected by the test)'), { code: 'EIO' }));
      });
      return;
    }
    fdatasync(fd, cb);
  }));
  return {
    abort: () => {
      aborted = true;
    },
    restore: () => {
      s1.mockRestore();
      s2.mockRestore();
    },
  };
}

/** Settles with the promise's outcome, or 'hung' if it has not settled within `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<{ value: T } | { error: unknown } | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<'hung'>((resolve) => {
    timer = setTimeout(() => {
      resolve('hung');
    }, ms);
  });
  try {
    return await Promise.race([p.then((value) => ({ value }), (error: unknown) => ({ error })), guard]);
  } finally {
    clearTimeout(timer);
  }
}

function report(suites: BenchReport['suites']): BenchReport {
  return { version: 1, startedAt: '2026-01-01T00:00:00.000Z', node: 'v20', machine: { cpus: 2, model: 'x', memoryGiB: 1, platform: 'linux' }, smoke: false, suites };
}

function roundsOf(name: string, values: number[]): SuiteRun[] {
  return values.map((value) => ({ metrics: [{ name, value, unit: name === 'gcCount' ? '' : 'B', better: 'lower' as const }] }));
}

// ---- bugs ---------------------------------------------------------------------------------------

describe('the WebSocket load client counts a refused frame of N orders as N errors', () => {
  it('an answer {"id":N,"ok":false,"error":...} to a frame of 5 orders (the gateway refuses a whole frame so: RATE_LIMITED, VALIDATION) is 5 orders in error, not 1', async () => {
    // The gateway's WsApi.replyError answers a frame refused whole with ONE "ok":false, whatever the
    // number of orders in it; ws-load.ts counts the "ok"s of the answer (1) instead of the orders sent (5).
    const s = await fakeWs((ws, m) => {
      ws.send(JSON.stringify({ id: m.id, ok: false, error: { code: 'RATE_LIMITED', message: 'slow down' } }));
    });
    const r = await wsLoad(`ws://127.0.0.1:${s.port}/v1/ws`, { connections: 1, window: 2, perFrame: 5, seconds: 0.2 });
    expect(s.frames()).toBeGreaterThan(0);
    expect(r.total).toBe(0);
    expect(r.errors).toBe(s.frames() * 5);
  });
});

describe('the WebSocket load client counts the frames in flight when the server drops the connection as errors', () => {
  it('7 frames sent, 3 answered ok, then the connection is cut: the 4 unanswered orders are errors (or the run fails), not silently gone', async () => {
    // window 4: 4 frames at open, and one more after each of the 3 answers = 7 frames of 1 order.
    const s = await fakeWs((ws, m, n) => {
      if (n <= 3) ws.send(JSON.stringify({ id: m.id, ok: true }));
      else ws.terminate();
    });
    const outcome = await within(wsLoad(`ws://127.0.0.1:${s.port}/v1/ws`, { connections: 1, window: 4, perFrame: 1, seconds: 5 }), 10_000);
    expect(outcome).not.toBe('hung');
    if (outcome !== 'hung' && 'value' in outcome) {
      // Today: { total: 3, errors: 0 }: a gateway that crashed mid-run would show "0 errors".
      expect(outcome.value.total).toBe(3);
      expect(outcome.value.errors).toBe(4);
    }
  });
});

describe('the WebSocket load client keeps refused frames out of its latency percentiles', () => {
  it('fast refusals (ok:false) do not pull p50 below the latency of the orders that were done', async () => {
    // 3 frames in 4 are refused at once, 1 in 4 is answered ok after 40 ms: every successful order
    // took at least ~40 ms, yet the p50 over all answered frames is a refusal's (well under 1 ms).
    const s = await fakeWs((ws, m, n) => {
      if (n % 4 === 0) {
        setTimeout(() => {
          if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ id: m.id, ok: true }));
        }, 40);
      } else ws.send(JSON.stringify({ id: m.id, ok: false, error: { code: 'BACKPRESSURE', message: 'busy' } }));
    });
    const r = await wsLoad(`ws://127.0.0.1:${s.port}/v1/ws`, { connections: 1, window: 4, perFrame: 1, seconds: 0.5 });
    expect(r.total).toBeGreaterThan(0);
    expect(r.errors).toBeGreaterThan(r.total);
    // A lower bound set by the server's own 40 ms timer, not a speed of the code under test.
    expect(r.p50Ms).toBeGreaterThanOrEqual(30);
  });
});

describe('the HTTP load counts a timed-out request as one error', () => {
  it('one request that times out (autocannon: 10 s) is one error', { timeout: 30_000 }, async () => {
    // http-load.ts sums result.errors + result.timeouts, but autocannon's onTimeout increments both.
    let requests = 0;
    const port = await fakeHttp(() => {
      requests++; // never answered
    });
    const r = await httpLoad(`http://127.0.0.1:${port}`, { connections: 1, seconds: 10.5 });
    expect(requests).toBeGreaterThanOrEqual(1);
    expect(r.total).toBe(0);
    expect(r.errors).toBe(1);
  });
});

describe('the bare HTTP baseline checks the order as the gateway (and the bare WebSocket baseline) does', () => {
  it('answers an unknown symbol, a price outside the band and a market order with a price with an error, not 200 ok', async () => {
    // bare-servers.ts startBareHttp checks the JSON schema only; the gateway's route and the bare ws
    // server also run parsePlaceOrder. The HTTP ratio's denominator is a route that does less work.
    const b = await startBareHttp();
    closers.push(b.close);
    for (const order of REFUSED_BY_THE_GATEWAY) {
      const r = await postOrder(b.port, order);
      expect(r.status, `${JSON.stringify(order)} -> ${r.text}`).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
    }
  });
});

describe('the bare WebSocket baseline answers a frame that is not a JSON object and stays up', () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    if (child !== undefined && child.exitCode === null) child.kill('SIGKILL');
    child = undefined;
  });

  it('answers `not json` and `null` with an error and goes on answering orders (its process stays up)', async () => {
    const c = spawn(process.execPath, [path.join(BENCH_DIR, 'dist/bin/load-server.js'), 'bare-ws'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    const exited = new Promise<number | null>((resolve) => c.once('exit', (code) => { resolve(code); }));
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      c.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /port (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      c.once('exit', () => { reject(new Error('the bare ws server exited before listening')); });
    });
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/ws`, { headers: { 'x-api-key': LOAD_KEY } });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => { resolve(); });
      ws.once('error', reject);
    });
    // Each answer in turn, or null once the connection closed (the server gone).
    const waiting: ((text: string | null) => void)[] = [];
    ws.on('message', (d) => waiting.shift()?.((d as Buffer).toString('utf8')));
    ws.on('close', () => {
      for (const w of waiting.splice(0)) w(null);
    });
    ws.on('error', () => undefined);
    const ask = (frame: string): Promise<string | null> =>
      new Promise((resolve) => {
        if (ws.readyState !== WebSocket.OPEN) {
          resolve(null);
          return;
        }
        waiting.push(resolve);
        ws.send(frame);
      });
    for (const frame of ['not json', 'null']) {
      const a = await ask(frame);
      expect(a, `answer to ${frame}`).not.toBeNull();
      expect(JSON.parse(a as string)).toHaveProperty('error');
    }
    const answer = await ask(JSON.stringify({ op: 'order', id: 7, order: JSON.parse(loadBodies(1)[0] as string) as unknown }));
    expect(answer).not.toBeNull();
    expect(JSON.parse(answer as string)).toMatchObject({ id: 7, ok: true });
    ws.close();
    expect(c.exitCode).toBeNull();
    c.kill('SIGTERM');
    await exited;
  });
});

describe('the open loop offers each command when it is due', () => {
  it('at 2 commands/s, command 0 (due at the start) is offered at once, not 500 ms later: its latency is not inflated by a whole period', async () => {
    // open-loop.ts: dueCount = floor(elapsed * rate) counts the commands due strictly before the
    // current period, so command i (due at i / rate) waits until (i + 1) / rate. Every latency then
    // holds one inter-arrival time the engine never caused (here 500 ms; 10 us at 100,000/s).
    const { dir, cleanup } = await tempDir();
    try {
      const r = await openLoop(dir, 2, 1, 0);
      expect(r.latenciesUs.length).toBe(2);
      // 250 ms: half a period, far above a batch fdatasync; today every sample is >= 500,000 us.
      expect(r.latenciesUs[0] as number).toBeLessThan(250_000);
    } finally {
      await cleanup();
    }
  });
});

describe('the open loop fails with a typed error when the engine halts', () => {
  it('an I/O error that halts the actor makes openLoop fail with a typed error instead of retrying a HALTED refusal without end', async () => {
    // open-loop.ts treats every refusal of trySubmit as MAILBOX_FULL (refused++, offered again next
    // turn): after a halt, no command is ever taken again and the loop never ends.
    const { dir, cleanup } = await tempDir();
    const inject = injectSyncFailure();
    try {
      const run = openLoop(dir, 1000, 1, 0);
      const outcome = await within(run, 4000);
      inject.abort();
      await run.catch(() => undefined);
      expect(outcome).not.toBe('hung');
      expect(outcome).toHaveProperty('error');
      const err = (outcome as { error: { code?: unknown } }).error;
      expect(typeof err.code).toBe('string');
    } finally {
      inject.abort();
      inject.restore();
      await cleanup();
    }
  });
});

describe('the baseline check flags a figure that was zero in the baseline', () => {
  it('gcCount 0 -> 40 and bytes/op 0 -> 500 are regressions beyond the noise', () => {
    // report.ts compareWithBaseline skips every metric whose baseline median is 0, so a change that
    // makes the order-book replay collect garbage (W1: 0 GCs today) passes --fail-on-regression.
    const def = { id: 'book-w1', layer: 'orderbook', title: 't' };
    const base = report([aggregate(def, [...roundsOf('gcCount', [0, 0, 0])], 1), aggregate({ ...def, id: 'codecs' }, roundsOf('bytesPerOp', [0, 0, 0]), 1)]);
    const now = report([aggregate(def, roundsOf('gcCount', [40, 41, 42]), 1), aggregate({ ...def, id: 'codecs' }, roundsOf('bytesPerOp', [500, 500, 501]), 1)]);
    const c = compareWithBaseline(now, base);
    expect(c.map((x) => [x.suite, x.metric, x.verdict])).toEqual([
      ['book-w1', 'gcCount', 'worse'],
      ['codecs', 'bytesPerOp', 'worse'],
    ]);
    expect(regressionsOf(c)).toHaveLength(2);
  });
});

// ---- guards of what is right today --------------------------------------------------------------

describe('the HTTP load keeps refused (non-2xx) answers out of its latency percentiles', () => {
  it('fast 503s do not pull p50 below the latency of the requests that were done', async () => {
    // http-load.ts calls autocannon without excludeErrorStats: true, and autocannon (9.0.0, run.js
    // onResponse) then records every answer's latency, 503 BACKPRESSURE included. 3 requests in 4
    // are refused at once, 1 in 4 answered 200 after 40 ms: p50 comes out 0 ms.
    let ok = 0;
    let refused = 0;
    const port = await fakeHttp((req, res) => {
      req.resume();
      req.on('end', () => {
        if ((ok + refused) % 4 === 0) {
          ok++;
          setTimeout(() => {
            res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
          }, 40);
        } else {
          refused++;
          res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":{"code":"BACKPRESSURE"}}');
        }
      });
    });
    const r = await httpLoad(`http://127.0.0.1:${port}`, { connections: 2, seconds: 1 });
    expect(r.total).toBeGreaterThan(0);
    expect(r.errors).toBeGreaterThan(r.total);
    // Bounded below by the server's own 40 ms timer, not a speed of the code under test.
    expect(r.p50Ms).toBeGreaterThanOrEqual(30);
  });
});

describe('what the load clients count', () => {
  it('HTTP: only 2xx answers count as done, and refusals (503) count as errors', async () => {
    let ok = 0;
    let refused = 0;
    const port = await fakeHttp((req, res) => {
      req.resume();
      req.on('end', () => {
        if ((ok + refused) % 2 === 0) {
          ok++;
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
        } else {
          refused++;
          res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":{"code":"BACKPRESSURE"}}');
        }
      });
    });
    const r = await httpLoad(`http://127.0.0.1:${port}`, { connections: 2, seconds: 1 });
    expect(r.total).toBeGreaterThan(0);
    expect(r.total).toBeLessThanOrEqual(ok);
    expect(r.errors).toBeGreaterThan(0);
    expect(r.errors).toBeLessThanOrEqual(refused);
    expect(Math.abs(r.total - r.errors)).toBeLessThanOrEqual(4);
  });

  it('WebSocket: a frame of several orders counts each order once, ok or refused, and every frame sent is answered before the run ends', async () => {
    const s = await fakeWs((ws, m) => {
      const orders = m.order as unknown[];
      ws.send(JSON.stringify({ id: m.id, results: orders.map((_, i) => (i < 2 ? { ok: true, orderId: i } : { ok: false, error: { code: 'VALIDATION', message: 'no' } })) }));
    });
    const r = await wsLoad(`ws://127.0.0.1:${s.port}/v1/ws`, { connections: 2, window: 3, perFrame: 5, seconds: 0.3 });
    expect(s.frames()).toBeGreaterThan(0);
    expect(r.total).toBe(s.frames() * 2);
    expect(r.errors).toBe(s.frames() * 3);
  });
});

describe('the bare baselines', () => {
  it('the bare WebSocket server refuses, order by order, what the gateway refuses, and acknowledges the load flow', async () => {
    const b = await startBareWs();
    closers.push(b.close);
    const ws = new WebSocket(`ws://127.0.0.1:${b.port}/v1/ws`);
    closers.push(() => {
      ws.terminate();
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => { resolve(); });
      ws.once('error', reject);
    });
    const answer = new Promise<string>((resolve) => ws.once('message', (d) => { resolve((d as Buffer).toString('utf8')); }));
    const good = JSON.parse(loadBodies(1)[0] as string) as unknown;
    ws.send(JSON.stringify({ op: 'order', id: 1, order: [...REFUSED_BY_THE_GATEWAY, good] }));
    const a = JSON.parse(await answer) as { id: number; results: { ok: boolean }[] };
    expect(a.id).toBe(1);
    expect(a.results.map((x) => x.ok)).toEqual([false, false, false, true]);
  });

  it('the bare HTTP route answers the load flow 200 and refuses a body the schema refuses', async () => {
    const b = await startBareHttp();
    closers.push(b.close);
    for (const body of loadBodies(8)) expect((await postOrder(b.port, JSON.parse(body))).status).toBe(200);
    expect((await postOrder(b.port, { symbol: 'BTCUSDT', side: 'buy', type: 'limit', price: 1.5, qty: 1 })).status).toBe(400);
    expect((await postOrder(b.port, { symbol: 'BTCUSDT', side: 'buy', type: 'limit', price: 1000, qty: 1, extra: 1 })).status).toBe(400);
  });
});

describe('the closed-loop engine replay', () => {
  it('fails with a typed error, never hangs nor reports figures, when the engine halts on an I/O error', async () => {
    const { dir, cleanup } = await tempDir();
    const inject = injectSyncFailure();
    try {
      const w = parseWorkload(generateText({ ops: 2000 }));
      const outcome = await within(replayEngine(w, { dataDir: path.join(dir, 'data'), durability: 'batch' }), 10_000);
      inject.abort();
      expect(outcome).not.toBe('hung');
      expect(outcome).toHaveProperty('error');
      expect(typeof (outcome as { error: { code?: unknown } }).error.code).toBe('string');
    } finally {
      inject.abort();
      inject.restore();
      await cleanup();
    }
  });

  it('counts every command, and its latency samples are one per command, ascending, in microseconds', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const w = parseWorkload(generateText({ ops: 3000 }));
      const { perf, summary } = await replayEngine(w, { dataDir: path.join(dir, 'data'), durability: 'batch' });
      expect(summary.ops).toBe(w.length);
      expect(perf.commandsPerSec).toBeGreaterThan(0);
      expect(perf.p50Us).toBeLessThanOrEqual(perf.p99Us);
      expect(perf.p99Us).toBeLessThanOrEqual(perf.p999Us);
      expect(perf.p999Us).toBeLessThanOrEqual(perf.maxUs);
    } finally {
      await cleanup();
    }
  });
});

describe('the open loop', () => {
  it('measures every command offered, from when it was due, ascending', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const r = await openLoop(dir, 2000, 1, 0.5);
      expect(r.latenciesUs.length).toBe(2000);
      for (let i = 1; i < r.latenciesUs.length; i++) expect(r.latenciesUs[i] as number).toBeGreaterThanOrEqual(r.latenciesUs[i - 1] as number);
      // The steady samples are those due after the warm-up: a subset, about half of them.
      expect(r.steadyLatenciesUs.length).toBeGreaterThan(0);
      expect(r.steadyLatenciesUs.length).toBeLessThan(2000);
    } finally {
      await cleanup();
    }
  });
});

describe('results.md against results.json', () => {
  it('every figure of the Markdown report is the JSON report\'s median (min-max), formatted', { timeout: 60_000 }, async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const r = await runNode([path.join(BENCH_DIR, 'dist/bin/bench.js'), '--smoke', '--suites', 'codecs', '--out', dir]);
      expect(r.status, r.stderr).toBe(0);
      const json = JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8')) as BenchReport;
      const md = fs.readFileSync(path.join(dir, 'results.md'), 'utf8');
      const metrics = json.suites[0]?.metrics ?? [];
      expect(metrics.length).toBeGreaterThan(0);
      for (const m of metrics) {
        expect(m.values).toHaveLength(1);
        expect(m.median).toBe(m.values[0]);
        const cell = `${fmt(m.median)}${m.min === m.max ? '' : ` (${fmt(m.min)}-${fmt(m.max)})`}${m.unit === '' ? '' : ` ${m.unit}`}`;
        expect(md).toContain(`| ${m.name} | ${cell} |`);
      }
    } finally {
      await cleanup();
    }
  });
});
