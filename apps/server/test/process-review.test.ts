// Review: the server as a process (the built bin) and its bus. Settings through flags, the
// environment and a config file; graceful shutdown with requests in flight; SIGKILL under load;
// two servers on one data directory; the NATS JetStream bus across restarts and crashes; the demo
// defaults in a fresh directory.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { codecByName, type Event } from '@gx3/codecs';
import { NatsJetStreamBus } from '@gx3/outbox-publisher';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALICE, API_KEYS_ENV, BIN_JS, BOB, checkBuilt, Client, removeTmpDirs, request, serverEnv, ServerProcess, sleep, SYM, tmpDir, until, within, WsClient, wsUrl, type WsMsg } from './helpers.js';

afterAll(async () => {
  await ServerProcess.killAll();
  removeTmpDirs();
});

beforeAll(() => {
  checkBuilt();
});

/** This process's environment without any GX3_* variable (so that only what a test gives applies). */
function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('GX3_') && v !== undefined) out[k] = v;
  return { ...out, ...extra };
}

/** Runs the bin to its exit (a start that must fail), killing it if it starts after all. */
function runToExit(args: string[], env: Record<string, string>, cwd?: string): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [BIN_JS, ...args], { env: cleanEnv(env), cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    proc.stderr.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
      if (/listening on/.test(stderr)) proc.kill('SIGKILL');
    });
    proc.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    proc.once('exit', (code) => {
      resolve({ code, stderr, stdout });
    });
  });
}

/** The built bin as a child process, with flags, an environment of its own (no inherited GX3_*) and a cwd. */
class Proc {
  static readonly all = new Set<Proc>();
  stderr = '';
  stdout = '';
  url = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly proc: ChildProcess;
  constructor(args: string[], env: Record<string, string>, cwd?: string) {
    this.proc = spawn(process.execPath, [BIN_JS, ...args], { env: cleanEnv(env), cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout?.setEncoding('utf8').on('data', (s: string) => (this.stdout += s));
    this.proc.stderr?.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    Proc.all.add(this);
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code, signal) => {
        Proc.all.delete(this);
        resolve({ code, signal });
      });
    });
  }

  static async start(args: string[], env: Record<string, string>, cwd?: string): Promise<Proc> {
    const p = new Proc(args, env, cwd);
    let gone = false;
    void p.exited.then(() => (gone = true));
    await until(() => {
      if (gone) throw new Error(`the server exited at start:\n${p.stderr}`);
      const url = /listening on (http:\/\/\S+)/.exec(p.stderr)?.[1];
      if (url !== undefined) p.url = url;
      return url !== undefined;
    }, () => `the server's "listening on" line (stderr so far: ${p.stderr})`);
    return p;
  }

  kill(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    return this.exited;
  }
}

afterAll(async () => {
  for (const p of [...Proc.all]) await p.kill('SIGKILL');
});

const BAD_EXIT = /^error \[(INVALID_CONFIG|CONFIG_FILE)\]: /m;

describe('settings', () => {
  // Each setting with a bad value, through each source: exit 2, `error [INVALID_CONFIG]: <setting>: ...`.
  const bad: [setting: string, env: string, flag: string, value: string, fileValue: unknown][] = [
    ['host', 'GX3_HOST', '--host', '', ''],
    ['port', 'GX3_PORT', '--port', '70000', 70000],
    ['dataDir', 'GX3_DATA_DIR', '--data-dir', '', 5],
    ['durability', 'GX3_DURABILITY', '--durability', 'always', 'always'],
    ['codec', 'GX3_CODEC', '--codec', 'xml', 'xml'],
    ['instruments', 'GX3_INSTRUMENTS', '--instruments', 'BTC:1:10', [{ symbol: 'btc', minPrice: 1, maxPrice: 10, maxQty: 1 }]],
    ['apiKeys', 'GX3_API_KEYS', '--api-keys', 'alice:short', [{ user: 'alice', key: 'short' }]],
    ['bus', 'GX3_BUS', '--bus', 'http://127.0.0.1:4222', 'kafka'],
    ['rateLimit', 'GX3_RATE_LIMIT', '--rate-limit', '0', 0],
    ['rateBurst', 'GX3_RATE_BURST', '--rate-burst', '1.5', 1.5],
    ['logLevel', 'GX3_LOG_LEVEL', '--log-level', 'loud', 'loud'],
    ['bodyLimit', 'GX3_BODY_LIMIT', '--body-limit', '10', 10],
    ['clientOrderIdWindow', 'GX3_CLIENT_ORDER_ID_WINDOW', '--client-order-id-window', '-1', -1],
    ['recentTrades', 'GX3_RECENT_TRADES', '--recent-trades', 'many', 'many'],
    ['orderHistory', 'GX3_ORDER_HISTORY', '--order-history', '0', 0],
    ['requestTimeoutMs', 'GX3_REQUEST_TIMEOUT_MS', '--request-timeout-ms', '99', 99],
  ];

  it('a bad value of every setting, through a flag, the environment or the config file, stops the start with exit 2 naming the setting', async () => {
    const dir = tmpDir('gx3-review-cfg-');
    const base = { GX3_DATA_DIR: path.join(dir, 'data'), GX3_PORT: '0', GX3_API_KEYS: API_KEYS_ENV, GX3_INSTRUMENTS: `${SYM}:100:10000:1000`, GX3_LOG_LEVEL: 'warn' };
    const failures: string[] = [];
    const cases: { what: string; setting: string; run: () => Promise<{ code: number | null; stderr: string }> }[] = [];
    for (const [setting, env, flag, value, fileValue] of bad) {
      // A flag with an empty value is given as --flag= (the parser refuses `--flag ''`? no: it takes it).
      cases.push({ what: `${flag}=${value}`, setting, run: () => runToExit([`${flag}=${value}`], base) });
      if (value !== '') cases.push({ what: `${env}=${value}`, setting, run: () => runToExit([], { ...base, [env]: value }) });
      const file = path.join(dir, `${setting}.json`);
      fs.writeFileSync(file, JSON.stringify({ [setting]: fileValue }));
      const without = Object.fromEntries(Object.entries(base).filter(([k]) => k !== env));
      cases.push({ what: `config file ${setting}: ${JSON.stringify(fileValue)}`, setting, run: () => runToExit(['--config', file], without) });
    }
    // Two at a time: a small machine.
    for (let i = 0; i < cases.length; i += 2) {
      const batch = cases.slice(i, i + 2);
      const results = await Promise.all(batch.map((c) => c.run()));
      results.forEach((r, k) => {
        const c = batch[k] as (typeof cases)[number];
        const line = r.stderr.split('\n').find((l) => l.startsWith('error ['));
        if (r.code !== 2 || line === undefined || !BAD_EXIT.test(line) || !line.includes(c.setting)) failures.push(`${c.what}: exit ${r.code}, ${r.stderr.slice(0, 300)}`);
      });
    }
    expect(failures).toEqual([]);
  }, 60_000);

  it('a signal sent the moment the banner appears stops the server gracefully (exit 0), never by the signal\'s default action', async () => {
    // The start-up handlers came off before the banner and the running server's went on after it:
    // a SIGINT read off the banner at once met no handler and killed the process (seen in CI).
    for (let round = 0; round < 6; round++) {
      const dir = tmpDir('gx3-review-banner-');
      const p = new Proc([], { GX3_DATA_DIR: path.join(dir, 'data'), GX3_PORT: '0', GX3_LOG_LEVEL: 'warn' });
      const signal: NodeJS.Signals = round % 2 === 0 ? 'SIGINT' : 'SIGTERM';
      // Polled as tightly as the event loop allows: the signal follows the first banner bytes.
      await new Promise<void>((resolve, reject) => {
        const onData = (): void => {
          if (p.stderr.includes('listening on')) {
            p.proc.stderr?.off('data', onData);
            p.proc.kill(signal);
            resolve();
          }
        };
        p.proc.stderr?.on('data', onData);
        void p.exited.then(() => {
          reject(new Error(`exited before its banner: ${p.stderr}`));
        });
      });
      expect(await p.exited, `round ${round} (${signal}): ${p.stderr}`).toEqual({ code: 0, signal: null });
    }
  }, 60_000);

  it('flags override the environment, which overrides the config file (the banner shows what is in force)', async () => {
    const dir = tmpDir('gx3-review-cfg-');
    const file = path.join(dir, 'gx3.json');
    fs.writeFileSync(
      file,
      JSON.stringify({
        host: '127.0.0.1',
        port: 0,
        dataDir: path.join(dir, 'from-file'),
        durability: 'none',
        codec: 'json',
        instruments: [{ symbol: 'FILESYM', minPrice: 5, maxPrice: 50, maxQty: 7 }],
        apiKeys: [{ user: 'fileuser', key: 'file-key-0001' }],
        rateLimit: 1,
        rateBurst: 1,
      }),
    );
    // File only.
    const a = await Proc.start(['--config', file], {});
    expect(a.stderr).toContain(`(data ${path.join(dir, 'from-file')}, durability none, codec json, bus memory)`);
    expect(a.stderr).toContain('FILESYM (price 5..50 ticks, qty <= 7)');
    expect(a.stderr).toContain('API keys configured for: fileuser');
    // The rate limit of the file: a burst of 1.
    const post = (key: string, symbol: string, price: number): Promise<{ status: number }> =>
      request(a.url, 'POST', '/v1/orders', { key, json: { symbol, side: 'buy', type: 'limit', price, qty: 1 } });
    expect((await post('file-key-0001', 'FILESYM', 5)).status).toBe(200);
    expect((await post('file-key-0001', 'FILESYM', 5)).status).toBe(429);
    expect((await a.kill('SIGTERM')).code).toBe(0);

    // The environment over the file (GX3_CONFIG names it), a flag over both.
    const b = await Proc.start(['--codec', 'binary', '--data-dir', path.join(dir, 'from-flag')], {
      GX3_CONFIG: file,
      GX3_DURABILITY: 'interval',
      GX3_CODEC: 'json',
      GX3_DATA_DIR: path.join(dir, 'from-env'),
      GX3_INSTRUMENTS: 'ENVSYM:1:100:10',
    });
    expect(b.stderr).toContain(`(data ${path.join(dir, 'from-flag')}, durability interval, codec binary, bus memory)`);
    expect(b.stderr).toContain('ENVSYM (price 1..100 ticks, qty <= 10)');
    expect(b.stderr).toContain('API keys configured for: fileuser');
    expect((await b.kill('SIGINT')).code).toBe(0);
  }, 40_000);

  it('a port already in use is a bad setting: exit 2 naming host and port', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const r = await runToExit(['--port', String(port)], { ...serverEnv(tmpDir()), GX3_PORT: '0' });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^error \[INVALID_CONFIG\]: .*port/m);
    } finally {
      blocker.close();
    }
  });

  it('a config file member that is not a setting (__proto__ included) is refused with exit 2 naming it', async () => {
    const dir = tmpDir('gx3-review-cfg-');
    for (const text of ['{"__proto__": {"port": 1}}', '{"prot": 8080}', '{"port": 0, "constructor": 1}']) {
      const file = path.join(dir, 'x.json');
      fs.writeFileSync(file, text);
      const r = await runToExit(['--config', file], serverEnv(tmpDir()));
      expect(r.code, text).toBe(2);
      expect(r.stderr, text).toMatch(BAD_EXIT);
      const member = Object.keys(JSON.parse(text) as object).find((k) => k !== 'port') as string;
      expect(r.stderr, text).toContain(member);
    }
  });
});


/** Every order of the server's one symbol after a restart (orders 1..processedSeq when only orders were sent). */
async function recoveredOrders(url: string, keys: string[]): Promise<Map<number, { clientOrderId?: string; status: string; qty: number; price: number; side: string }>> {
  const health = await request(url, 'GET', '/health');
  const processed = health.body.symbols?.[SYM]?.processedSeq ?? 0;
  const out = new Map<number, { clientOrderId?: string; status: string; qty: number; price: number; side: string }>();
  const clients = keys.map((k) => new Client(url, k));
  for (let id = 1; id <= processed; id++) {
    for (const c of clients) {
      const r = await c.get(id);
      if (r.status === 200 && r.body.order !== undefined) {
        out.set(id, r.body.order);
        break;
      }
    }
  }
  return out;
}

describe('graceful shutdown with requests in flight', () => {
  it('SIGTERM while WebSocket order frames (single and batches) are in flight: every order the engine took was answered ok, then exit 0', async () => {
    const dataDir = tmpDir();
    const first = await Proc.start([], serverEnv(dataDir));
    const keys = [ALICE, BOB];
    const clients = await Promise.all(keys.map((k) => WsClient.connect(wsUrl(first.url), { 'x-api-key': k })));
    let n = 0;
    const order = (k: number): Record<string, unknown> => {
      const i = n++;
      const side = i % 2 === 0 ? 'buy' : 'sell';
      return { symbol: SYM, side, type: 'limit', price: side === 'buy' ? 100 + (i % 400) : 5000 + (i % 400), qty: 1 + (i % 5), clientOrderId: `c${k}-${i}` };
    };
    // Warm up: one order each.
    for (const [k, c] of clients.entries()) expect(await c.call({ op: 'order', order: order(k) })).toMatchObject({ ok: true });
    const sent: { client: number; id: string; clientOrderIds: string[]; batch: boolean }[] = [];
    let round = 0;
    const sendRound = (): void => {
      for (const [k, c] of clients.entries()) {
        if (c.ws.readyState !== c.ws.OPEN) continue;
        if (round % 10 === 0) {
          const batch = Array.from({ length: 20 }, () => order(k));
          const id = `b${k}-${round}`;
          c.send({ op: 'order', id, order: batch });
          sent.push({ client: k, id, clientOrderIds: batch.map((o) => o.clientOrderId as string), batch: true });
        } else {
          const o = order(k);
          const id = `s${k}-${round}`;
          c.send({ op: 'order', id, order: o });
          sent.push({ client: k, id, clientOrderIds: [o.clientOrderId as string], batch: false });
        }
      }
      round++;
    };
    // Frames keep coming until the server closes the connections; SIGTERM once some were answered.
    const pump = setInterval(sendRound, 1);
    let exit: { code: number | null; signal: NodeJS.Signals | null };
    try {
      await until(() => clients.every((c) => c.received.filter((m) => typeof m.id === 'string' && /^[bs]/.test(m.id)).length >= 50), 'answers to the flood');
      exit = await within(first.kill('SIGTERM'), 20_000, 'the server to exit on SIGTERM');
    } finally {
      clearInterval(pump);
    }
    expect(exit).toEqual({ code: 0, signal: null });
    await Promise.all(clients.map((c) => c.close()));
    const total = sent.length;
    const codes = new Map<string, number>();
    for (const c of clients) for (const m of c.received) for (const r of m.results ?? [m]) if (r.error !== undefined) codes.set(r.error.code, (codes.get(r.error.code) ?? 0) + 1);
    expect([...codes.keys()].filter((c) => c !== 'SHUTTING_DOWN')).toEqual([]);

    const okCids = new Set<string>();
    const answeredFrames = new Set<string>();
    for (const [k, c] of clients.entries()) {
      for (const m of c.received) {
        if (typeof m.id !== 'string') continue;
        answeredFrames.add(`${k}:${m.id}`);
        const s = sent.find((x) => x.client === k && x.id === m.id);
        if (s === undefined) continue;
        if (s.batch) (m.results ?? []).forEach((r, j) => r.ok === true && okCids.add(s.clientOrderIds[j] as string));
        else if (m.ok === true) okCids.add(s.clientOrderIds[0] as string);
      }
    }
    const second = await Proc.start([], serverEnv(dataDir));
    try {
      const recovered = await recoveredOrders(second.url, keys);
      const takenCids = new Set([...recovered.values()].map((o) => o.clientOrderId as string).filter((c) => /^c\d-/.test(c) && !/^c\d-[01]$/.test(c)));
      for (const c of clients.keys()) {
        okCids.add(`c${c}-${c}`);
        takenCids.add(`c${c}-${c}`);
      }
      const takenNotAnswered = [...takenCids].filter((c) => !okCids.has(c));
      const answeredNotTaken = [...okCids].filter((c) => !takenCids.has(c));
      expect({ answeredNotTaken, takenNotAnswered, frames: total }).toEqual({ answeredNotTaken: [], takenNotAnswered: [], frames: total });
      // Every frame sent before the signal reached the server whose order was taken got its answer.
      const unanswered = sent.filter((s) => !answeredFrames.has(`${s.client}:${s.id}`) && s.clientOrderIds.some((c) => takenCids.has(c)));
      expect(unanswered.map((s) => s.id)).toEqual([]);
    } finally {
      expect((await second.kill('SIGTERM')).code).toBe(0);
    }
  }, 60_000);
});

/** A POST over a keep-alive agent; resolves with the status, headers and body, or the socket error's code. */
function postRaw(agent: http.Agent, url: string, key: string, body: unknown): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const text = JSON.stringify(body);
    const req = http.request(`${url}/v1/orders`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'x-api-key': key, 'content-length': Buffer.byteLength(text) } }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (s: string) => (b += s));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b });
      });
      res.on('error', (err: NodeJS.ErrnoException) => {
        resolve({ error: err.code ?? err.message });
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      resolve({ error: err.code ?? err.message });
    });
    req.end(text);
  });
}

describe('graceful shutdown with HTTP requests in flight', () => {
  it('SIGTERM while HTTP orders are in flight on keep-alive connections: every order the engine took was answered 200, the others 503 SHUTTING_DOWN (or not taken at all), exit 0', async () => {
    const dataDir = tmpDir();
    const first = await Proc.start([], serverEnv(dataDir));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    let n = 0;
    const results: { cid: string; r: Awaited<ReturnType<typeof postRaw>> }[] = [];
    let stop = false;
    let answered200 = 0;
    const worker = async (w: number): Promise<void> => {
      while (!stop) {
        const i = n++;
        const side = i % 2 === 0 ? 'buy' : 'sell';
        const cid = `h${i}`;
        const r = await postRaw(agent, first.url, w % 2 === 0 ? ALICE : BOB, { symbol: SYM, side, type: 'limit', price: side === 'buy' ? 100 + (i % 400) : 5000 + (i % 400), qty: 1 + (i % 5), clientOrderId: cid });
        results.push({ cid, r });
        if ('status' in r && r.status === 200) answered200++;
        if ('error' in r || r.status !== 200) {
          if (!('status' in r) || r.status !== 503) stop = true;
          await sleep(1);
        }
      }
    };
    const workers = Array.from({ length: 16 }, (_, w) => worker(w));
    await until(() => answered200 >= 200, '200 answers');
    const exit = await within(first.kill('SIGTERM'), 20_000, 'the server to exit on SIGTERM');
    stop = true;
    await Promise.all(workers);
    agent.destroy();
    expect(exit).toEqual({ code: 0, signal: null });
    const bad = results.filter(({ r }) => 'status' in r && !(r.status === 200 || (r.status === 503 && /SHUTTING_DOWN/.test(r.body) && r.headers['retry-after'] !== undefined && r.headers.connection === 'close')));
    expect(bad.map(({ cid, r }) => `${cid}: ${JSON.stringify(r)}`)).toEqual([]);
    const ok = new Set(results.filter(({ r }) => 'status' in r && r.status === 200).map(({ cid }) => cid));
    const second = await Proc.start([], serverEnv(dataDir));
    try {
      const recovered = await recoveredOrders(second.url, [ALICE, BOB]);
      const taken = new Set([...recovered.values()].map((o) => o.clientOrderId as string));
      const errors = new Map<string, string>(results.filter(({ r }) => 'error' in r).map(({ cid, r }) => [cid, (r as { error: string }).error]));
      expect({
        answeredNotTaken: [...ok].filter((c) => !taken.has(c)),
        takenNotAnswered: [...taken].filter((c) => !ok.has(c)).map((c) => `${c} (${errors.get(c) ?? JSON.stringify(results.find((x) => x.cid === c)?.r)})`),
      }).toEqual({ answeredNotTaken: [], takenNotAnswered: [] });
    } finally {
      expect((await second.kill('SIGTERM')).code).toBe(0);
    }
  }, 60_000);
});

describe('SIGKILL under load', () => {
  for (const durability of ['interval', 'none'] as const) {
    it(`durability ${durability}: orders and cancels over HTTP and WebSocket, SIGKILL mid-flood; after a restart every acknowledged order and cancel is there and ids continue`, async () => {
      const dataDir = tmpDir();
      const env = { ...serverEnv(dataDir), GX3_DURABILITY: durability };
      const first = await Proc.start([], env);
      const alice = new Client(first.url, ALICE);
      const ws = await WsClient.connect(wsUrl(first.url), { 'x-api-key': BOB });
      const acked = new Map<number, { key: string; side: string; price: number; qty: number; clientOrderId: string }>();
      const canceled = new Set<number>();
      // Cancels sent whose answer never came (the kill): taken or not, either outcome is right.
      const cancelSent = new Set<number>();
      let maxAnsweredId = 0;
      let i = 0;
      let stop = false;
      let killed: Promise<unknown> | undefined;
      const note = (key: string, o: { orderId: number; side: string; price: number; qty: number; clientOrderId?: string }): void => {
        acked.set(o.orderId, { key, side: o.side, price: o.price, qty: o.qty, clientOrderId: o.clientOrderId as string });
        maxAnsweredId = Math.max(maxAnsweredId, o.orderId);
        if (acked.size >= 150) killed ??= first.kill('SIGKILL');
      };
      const spec = (): { side: 'buy' | 'sell'; price: number; qty: number; clientOrderId: string } => {
        const k = i++;
        const side = k % 2 === 0 ? 'buy' : 'sell';
        return { side, price: side === 'buy' ? 100 + (k % 400) : 5000 + (k % 400), qty: 1 + (k % 9), clientOrderId: `k${k}` };
      };
      const httpWorker = async (): Promise<void> => {
        while (!stop) {
          const r = await alice.post(spec()).catch(() => undefined);
          if (r === undefined || r.status !== 200 || r.body.order === undefined) return;
          note(ALICE, r.body.order);
          // Every third acknowledged order is canceled (its cancel acknowledged or not).
          if (r.body.order.orderId % 3 === 0) {
            cancelSent.add(r.body.order.orderId);
            const c = await alice.cancel(r.body.order.orderId).catch(() => undefined);
            if (c === undefined) return;
            if (c.status === 200) canceled.add(r.body.order.orderId);
          }
        }
      };
      const wsPump = setInterval(() => {
        if (ws.ws.readyState === ws.ws.OPEN) ws.send({ op: 'order', id: `w${i}`, order: { symbol: SYM, type: 'limit', ...spec() } });
      }, 1);
      const seen = new Set<number>();
      const wsWatch = setInterval(() => {
        for (const m of ws.received) if (m.ok === true && m.order !== undefined && !seen.has(m.order.orderId)) {
          seen.add(m.order.orderId);
          note(BOB, m.order);
        };
      }, 1);
      try {
        await Promise.all(Array.from({ length: 6 }, () => httpWorker()));
        stop = true;
        await until(() => killed !== undefined, 'the kill');
        await first.exited;
        await ws.close();
      } finally {
        clearInterval(wsPump);
        clearInterval(wsWatch);
        stop = true;
      }
      for (const m of ws.received) if (m.ok === true && m.order !== undefined && !seen.has(m.order.orderId)) {
          seen.add(m.order.orderId);
          note(BOB, m.order);
        };
      expect((await first.exited).signal).toBe('SIGKILL');

      const second = await Proc.start([], env);
      try {
        const clients = new Map([ALICE, BOB].map((k) => [k, new Client(second.url, k)]));
        const wrong: string[] = [];
        for (const [orderId, o] of acked) {
          const r = await (clients.get(o.key) as Client).get(orderId);
          const v = r.body.order;
          const want = canceled.has(orderId) ? 'canceled' : 'open';
          const either = !canceled.has(orderId) && cancelSent.has(orderId) && v?.status === 'canceled';
          if (r.status !== 200 || v === undefined || v.side !== o.side || v.price !== o.price || v.qty !== o.qty || v.clientOrderId !== o.clientOrderId || (v.status !== want && !either)) {
            wrong.push(`${orderId}: ${r.status} ${JSON.stringify(v)} (want ${want} ${JSON.stringify(o)})`);
          }
        }
        expect(wrong).toEqual([]);
        const next = await (clients.get(ALICE) as Client).place({ side: 'buy', price: 100, qty: 1 });
        expect(next.order.orderId).toBeGreaterThan(maxAnsweredId);
        // Ids continue right after the highest logged one: no id is given twice, none skipped beyond the log.
        const prev = await (clients.get(ALICE) as Client).get(next.order.orderId - 1);
        const prevBob = await (clients.get(BOB) as Client).get(next.order.orderId - 1);
        expect([prev.status, prevBob.status]).toContain(200);
      } finally {
        expect((await second.kill('SIGTERM')).code).toBe(0);
      }
    }, 60_000);
  }
});

describe('two servers on one data directory', () => {
  it('the second does not start (LOCKED, naming the holder), the first keeps serving untouched, and the directory is usable once the first stops', async () => {
    const dataDir = tmpDir();
    const first = await Proc.start([], serverEnv(dataDir));
    const alice = new Client(first.url, ALICE);
    const o = await alice.place({ side: 'buy', price: 200, qty: 3 });
    const second = await runToExit([], serverEnv(dataDir));
    expect(second.code).not.toBe(0);
    expect(second.stderr).toMatch(/^error \[LOCKED\]: /m);
    expect(second.stderr).toContain(String(first.proc.pid));
    // The first is untouched: it takes orders, and its logs still recover whole.
    const o2 = await alice.place({ side: 'buy', price: 201, qty: 4 });
    expect(o2.order.orderId).toBe(o.order.orderId + 1);
    expect((await request(first.url, 'GET', '/health')).status).toBe(200);
    // In demo mode too (the keys file is not rewritten by the one that cannot start).
    expect((await first.kill('SIGTERM')).code).toBe(0);
    const third = await Proc.start([], serverEnv(dataDir));
    try {
      const c = new Client(third.url, ALICE);
      expect(await c.order(o.order.orderId)).toMatchObject({ status: 'open', qty: 3, price: 200 });
      expect(await c.order(o2.order.orderId)).toMatchObject({ status: 'open', qty: 4, price: 201 });
      expect((await c.place({ side: 'buy', price: 202, qty: 1 })).order.orderId).toBe(o2.order.orderId + 1);
    } finally {
      expect((await third.kill('SIGTERM')).code).toBe(0);
    }
  }, 40_000);

  it('demo mode: a second server on the data directory in use does not start and leaves the demo keys the first printed', async () => {
    const dataDir = tmpDir();
    const env = { GX3_DATA_DIR: dataDir, GX3_PORT: '0', GX3_LOG_LEVEL: 'warn' };
    const first = await Proc.start([], env);
    const keysFile = path.join(dataDir, 'demo-api-keys.json');
    const before = fs.readFileSync(keysFile, 'utf8');
    const second = await runToExit([], env);
    expect(second.code).not.toBe(0);
    expect(second.stderr).toMatch(/^error \[LOCKED\]: /m);
    expect(fs.readFileSync(keysFile, 'utf8')).toBe(before);
    expect((await first.kill('SIGTERM')).code).toBe(0);
  }, 30_000);
});

const NATS_URL = 'nats://127.0.0.1:4222';

describe('the NATS JetStream bus (the built server, --bus)', () => {
  const created: string[] = [];
  let reader: NatsJetStreamBus | undefined;
  beforeAll(async () => {
    reader = await NatsJetStreamBus.connect({ servers: NATS_URL, connectTimeoutMs: 2000 });
  });
  afterAll(async () => {
    for (const s of created) await reader?.jsm.streams.delete(s).catch(() => undefined);
    await reader?.close();
  });

  async function readStream(stream: string, count: number): Promise<{ seq: number; msgId: string | undefined; event: Event }[]> {
    const consumer = await (reader as NatsJetStreamBus).jsm.jetstream().consumers.get(stream);
    const codec = codecByName('binary');
    const out: { seq: number; msgId: string | undefined; event: Event }[] = [];
    if (count === 0) return out;
    const messages = await consumer.consume({ max_messages: 256 });
    try {
      for await (const m of messages) {
        out.push({ seq: m.seq, msgId: m.headers?.get('Nats-Msg-Id'), event: codec.decode(m.data) as Event });
        if (out.length >= count) break;
      }
    } finally {
      messages.stop();
    }
    return out;
  }

  async function publisherSeq(url: string, symbol: string): Promise<number> {
    const h = (await request(url, 'GET', '/health')).body as { symbols?: Record<string, { publisher?: { lastEventSeq?: number } }> };
    return h.symbols?.[symbol]?.publisher?.lastEventSeq ?? -1;
  }

  it('every event of the server\'s orders reaches the stream once, in order, without a gap, across a graceful restart and a SIGKILL under load', async () => {
    const symbol = `RV${Date.now().toString(36).toUpperCase()}${process.pid.toString(36).toUpperCase()}`;
    const stream = `GX3_${symbol}`;
    created.push(stream);
    const dataDir = tmpDir();
    const env = { ...serverEnv(dataDir), GX3_INSTRUMENTS: `${symbol}:1:100000:1000000` };
    const args = ['--bus', NATS_URL];
    const answered = new Map<number, Event>();
    const keep = (events: Event[] | undefined): void => {
      for (const e of events ?? []) answered.set(e.eventSeq, e);
    };
    const place = async (c: Client, side: 'buy' | 'sell', price: number, qty: number): Promise<void> => {
      const r = await request(c.base, 'POST', '/v1/orders', { key: c.key, json: { symbol, side, type: 'limit', price, qty } });
      if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
      keep(r.body.events);
    };

    // 1: some orders and trades, then SIGTERM.
    const a = await Proc.start(args, env);
    expect(a.stderr).toContain(`bus ${NATS_URL}`);
    for (let k = 0; k < 20; k++) await place(new Client(a.url, k % 2 === 0 ? ALICE : BOB), k % 2 === 0 ? 'sell' : 'buy', 500, 1 + (k % 3));
    expect((await a.kill('SIGTERM')).code).toBe(0);

    // 2: a restart, a flood, SIGKILL in the middle of it.
    const b = await Proc.start(args, env);
    let stop = false;
    let count = 0;
    const worker = async (key: string, side: 'buy' | 'sell'): Promise<void> => {
      const c = new Client(b.url, key);
      while (!stop) {
        const r = await request(c.base, 'POST', '/v1/orders', { key, json: { symbol, side, type: 'limit', price: side === 'buy' ? 400 + (count % 200) : 450 + (count % 200), qty: 1 + (count % 4) } }).catch(() => undefined);
        if (r === undefined || r.status !== 200) return;
        keep(r.body.events);
        if (++count === 150) void b.kill('SIGKILL');
      }
    };
    await Promise.all([worker(ALICE, 'buy'), worker(BOB, 'sell'), worker(ALICE, 'sell'), worker(BOB, 'buy')]);
    stop = true;
    expect((await b.exited).signal).toBe('SIGKILL');

    // 3: a restart after the crash, a few more orders; the publisher catches up.
    const c3 = await Proc.start(args, env);
    try {
      for (let k = 0; k < 10; k++) await place(new Client(c3.url, k % 2 === 0 ? ALICE : BOB), k % 2 === 0 ? 'sell' : 'buy', 300, 2);
      const lastAnswered = Math.max(...answered.keys());
      await until(async () => (await publisherSeq(c3.url, symbol)) >= lastAnswered, `the publisher to reach event ${lastAnswered}`);
      const last = await publisherSeq(c3.url, symbol);
      const info = await (reader as NatsJetStreamBus).jsm.streams.info(stream);
      expect(info.state.messages).toBe(last);
      const stored = await readStream(stream, last);
      expect(stored.map((x) => x.event.eventSeq)).toEqual(stored.map((_, k) => k + 1));
      expect(stored.map((x) => x.seq)).toEqual(stored.map((_, k) => k + 1));
      expect(stored.map((x) => x.msgId)).toEqual(stored.map((_, k) => `${symbol}:${k + 1}`));
      // Each answered event is the stored one (an answer shows a trade without the maker's details).
      const mismatched: string[] = [];
      for (const [seq, e] of answered) {
        const s = stored[seq - 1]?.event;
        if (s === undefined || s.type !== e.type || s.seq !== e.seq || (e.type !== 'trade' && !isDeepStrictEqual(s, e))) mismatched.push(`${seq}: ${JSON.stringify(e)} vs ${JSON.stringify(s)}`);
      }
      expect(mismatched.slice(0, 5), `${mismatched.length} events differ`).toEqual([]);
      const health = (await request(c3.url, 'GET', '/health')).body as { symbols?: Record<string, { publisher?: { consecutiveFailures?: number; lastError?: unknown } }> };
      expect(health.symbols?.[symbol]?.publisher?.consecutiveFailures).toBe(0);
    } finally {
      expect((await c3.kill('SIGTERM')).code).toBe(0);
    }
  }, 60_000);

  /** A TCP proxy to NATS that the test can cut (every connection dropped, new ones refused at once) and restore. */
  async function natsProxy(): Promise<{ url: string; cut: () => void; restore: () => void; close: () => Promise<void> }> {
    let down = false;
    const sockets = new Set<net.Socket>();
    const srv = net.createServer((client) => {
      if (down) {
        client.destroy();
        return;
      }
      const upstream = net.connect(4222, '127.0.0.1');
      sockets.add(client);
      sockets.add(upstream);
      const drop = (): void => {
        client.destroy();
        upstream.destroy();
        sockets.delete(client);
        sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const port = (srv.address() as net.AddressInfo).port;
    return {
      url: `nats://127.0.0.1:${port}`,
      cut: () => {
        down = true;
        for (const s of sockets) s.destroy();
        sockets.clear();
      },
      restore: () => {
        down = false;
      },
      close: () =>
        new Promise<void>((resolve) => {
          for (const s of sockets) s.destroy();
          srv.close(() => {
            resolve();
          });
        }),
    };
  }

  it('NATS lost while running: orders are still taken, SIGTERM still exits 0, and after a restart with NATS back every event reaches the stream once, in order, without a gap', async () => {
    const symbol = `RW${Date.now().toString(36).toUpperCase()}${process.pid.toString(36).toUpperCase()}`;
    const stream = `GX3_${symbol}`;
    created.push(stream);
    const proxy = await natsProxy();
    try {
      const dataDir = tmpDir();
      const env = { ...serverEnv(dataDir), GX3_INSTRUMENTS: `${symbol}:1:100000:1000000`, GX3_BUS: proxy.url };
      const a = await Proc.start([], env);
      const place = async (url: string, k: number): Promise<void> => {
        const r = await request(url, 'POST', '/v1/orders', { key: k % 2 === 0 ? ALICE : BOB, json: { symbol, side: k % 2 === 0 ? 'buy' : 'sell', type: 'limit', price: k % 2 === 0 ? 100 : 200, qty: 1 } });
        expect(r.status, r.text).toBe(200);
      };
      for (let k = 0; k < 5; k++) await place(a.url, k);
      await until(async () => (await publisherSeq(a.url, symbol)) === 10, 'the first events on the bus');
      proxy.cut();
      for (let k = 5; k < 15; k++) await place(a.url, k);
      const exit = await within(a.kill('SIGTERM'), 30_000, 'the server to exit on SIGTERM while NATS is unreachable');
      expect(exit).toEqual({ code: 0, signal: null });

      proxy.restore();
      const b = await Proc.start([], env);
      try {
        for (let k = 15; k < 20; k++) await place(b.url, k);
        await until(async () => (await publisherSeq(b.url, symbol)) === 40, 'the publisher to catch up (40 events)');
        const info = await (reader as NatsJetStreamBus).jsm.streams.info(stream);
        expect(info.state.messages).toBe(40);
        const stored = await readStream(stream, 40);
        expect(stored.map((x) => x.event.eventSeq)).toEqual(stored.map((_, k) => k + 1));
      } finally {
        expect((await b.kill('SIGTERM')).code).toBe(0);
      }
    } finally {
      await proxy.close();
    }
  }, 60_000);

  it('NATS lost and back while the server runs: every event reaches the stream once, in order, without a gap', async () => {
    const symbol = `RX${Date.now().toString(36).toUpperCase()}${process.pid.toString(36).toUpperCase()}`;
    const stream = `GX3_${symbol}`;
    created.push(stream);
    const proxy = await natsProxy();
    try {
      const env = { ...serverEnv(tmpDir()), GX3_INSTRUMENTS: `${symbol}:1:100000:1000000`, GX3_BUS: proxy.url };
      const a = await Proc.start([], env);
      try {
        const place = async (k: number): Promise<void> => {
          const r = await request(a.url, 'POST', '/v1/orders', { key: k % 2 === 0 ? ALICE : BOB, json: { symbol, side: k % 2 === 0 ? 'buy' : 'sell', type: 'limit', price: k % 2 === 0 ? 100 : 200, qty: 1 } });
          expect(r.status, r.text).toBe(200);
        };
        for (let k = 0; k < 5; k++) await place(k);
        await until(async () => (await publisherSeq(a.url, symbol)) === 10, 'the first events on the bus');
        proxy.cut();
        for (let k = 5; k < 15; k++) await place(k);
        proxy.restore();
        for (let k = 15; k < 20; k++) await place(k);
        await until(async () => (await publisherSeq(a.url, symbol)) === 40, 'the publisher to catch up (40 events)');
        expect((await (reader as NatsJetStreamBus).jsm.streams.info(stream)).state.messages).toBe(40);
        const stored = await readStream(stream, 40);
        expect(stored.map((x) => x.event.eventSeq)).toEqual(stored.map((_, k) => k + 1));
        expect(stored.map((x) => x.seq)).toEqual(stored.map((_, k) => k + 1));
      } finally {
        expect((await within(a.kill('SIGTERM'), 30_000, 'exit on SIGTERM')).code).toBe(0);
      }
    } finally {
      await proxy.close();
    }
  }, 60_000);

  it('a data directory that ran on the memory bus, restarted on NATS: the events of the orders placed from then on reach the stream', async () => {
    const symbol = `RY${Date.now().toString(36).toUpperCase()}${process.pid.toString(36).toUpperCase()}`;
    const stream = `GX3_${symbol}`;
    created.push(stream);
    const dataDir = tmpDir();
    const env = { ...serverEnv(dataDir), GX3_INSTRUMENTS: `${symbol}:1:100000:1000000` };
    const place = async (url: string, k: number): Promise<void> => {
      const r = await request(url, 'POST', '/v1/orders', { key: ALICE, json: { symbol, side: 'buy', type: 'limit', price: 100 + k, qty: 1 } });
      expect(r.status, r.text).toBe(200);
    };
    const a = await Proc.start([], env);
    for (let k = 0; k < 3; k++) await place(a.url, k);
    expect((await a.kill('SIGTERM')).code).toBe(0);
    const b = await Proc.start(['--bus', NATS_URL], env);
    try {
      for (let k = 3; k < 6; k++) await place(b.url, k);
      // The publisher delivers in the background: the orders placed on NATS (events 7..12) reach the stream
      // (whether or not the memory bus's earlier events are published again first).
      let last: Event | undefined;
      let publisher = '';
      await until(
        async () => {
          publisher = JSON.stringify(((await request(b.url, 'GET', '/health')).body as { symbols?: Record<string, { publisher?: unknown }> }).symbols?.[symbol]?.publisher);
          const info = await (reader as NatsJetStreamBus).jsm.streams.info(stream).catch(() => undefined);
          if (info === undefined || info.state.messages === 0) return false;
          const m = await (reader as NatsJetStreamBus).jsm.streams.getMessage(stream, { last_by_subj: `gx3.events.${symbol}` });
          if (m === null) return false;
          last = codecByName('binary').decode(m.data) as Event;
          return last.eventSeq === 12;
        },
        () => `events 7..12 in ${stream} (the publisher: ${publisher})`,
        15_000,
      );
      expect(last?.eventSeq).toBe(12);
    } finally {
      expect((await b.kill('SIGTERM')).code).toBe(0);
    }
  }, 40_000);

  it('SIGTERM while the server is still starting (its NATS server not answering yet): exit 0, not a death by the signal', async () => {
    const silent = net.createServer(() => undefined);
    const seen: net.Socket[] = [];
    silent.on('connection', (s) => seen.push(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const p = new Proc(['--bus', `nats://127.0.0.1:${port}`], serverEnv(tmpDir()));
      await until(() => seen.length > 0, 'the server to connect to the bus');
      const exit = await within(p.kill('SIGTERM'), 20_000, 'the server to exit');
      expect(exit).toEqual({ code: 0, signal: null });
    } finally {
      for (const s of seen) s.destroy();
      silent.close();
    }
  }, 30_000);

  it('NATS unreachable at start: the server does not start, with an error line naming the bus', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    blocker.close();
    const r = await within(runToExit(['--bus', `nats://127.0.0.1:${port}`], serverEnv(tmpDir())), 30_000, 'the server to give up on an unreachable NATS');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^error \[[A-Z_]+\]: /m);
    expect(r.stderr).not.toMatch(/listening on/);
  }, 40_000);
});

describe('the demo defaults', () => {
  it('no settings at all, in a fresh directory: 127.0.0.1:8080, ./data, BTCUSDT and ETHUSDT, demo keys printed, kept and working, as the README says', async () => {
    // Port 8080 is the default: wait for it to be free (another test run may hold it for a while).
    const free = (): Promise<boolean> =>
      new Promise((resolve) => {
        const srv = net.createServer();
        srv.once('error', () => {
          resolve(false);
        });
        srv.listen(8080, '127.0.0.1', () => {
          srv.close(() => {
            resolve(true);
          });
        });
      });
    await until(free, 'port 8080 to be free', 30_000);
    const cwd = fs.realpathSync(tmpDir('gx3-review-demo-'));
    const first = await Proc.start([], {}, cwd);
    let second: Proc | undefined;
    try {
      expect(first.url).toBe('http://127.0.0.1:8080');
      expect(first.stderr).toContain(`(data ${path.join(cwd, 'data')}, durability batch, codec binary, bus memory)`);
      expect(first.stderr).toContain('BTCUSDT (price 1..1000000000 ticks, qty <= 1000000000), ETHUSDT (price 1..1000000000 ticks, qty <= 1000000000)');
      const printed = [...first.stderr.matchAll(/^ {2}(alice|bob): (\S+)$/gm)].map((m) => ({ user: m[1], key: m[2] }));
      expect(printed.map((k) => k.user)).toEqual(['alice', 'bob']);
      const file = path.join(cwd, 'data', 'demo-api-keys.json');
      expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual(printed);
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      // The banner's example order, as printed.
      const tryLine = /^try: curl .* -H 'x-api-key: (\S+)' -d '(.*)'$/m.exec(first.stderr);
      expect(tryLine).not.toBeNull();
      const [, key, body] = tryLine as RegExpExecArray;
      const r = await request(first.url, 'POST', '/v1/orders', { key: key as string, json: JSON.parse(body as string) });
      expect(r.status).toBe(200);
      expect(r.body.order).toMatchObject({ symbol: 'BTCUSDT', side: 'buy', price: 100, qty: 1, status: 'open', user: 'alice' });
      // The README's second command.
      expect(await request('http://localhost:8080', 'GET', '/v1/book/BTCUSDT').then((x) => x.body)).toMatchObject({ symbol: 'BTCUSDT', bids: [[100, 1]], asks: [] });
      const bob = printed[1]?.key as string;
      expect((await request(first.url, 'POST', '/v1/orders', { key: bob, json: { symbol: 'ETHUSDT', side: 'sell', type: 'limit', price: 1_000_000_000, qty: 1_000_000_000 } })).status).toBe(200);
      expect((await request(first.url, 'GET', '/v1/instruments')).body.instruments?.map((x) => x.symbol)).toEqual(['BTCUSDT', 'ETHUSDT']);
      expect((await first.kill('SIGINT')).code).toBe(0);

      // Again: the same keys, the order kept.
      second = await Proc.start([], {}, cwd);
      const again = [...second.stderr.matchAll(/^ {2}(alice|bob): (\S+)$/gm)].map((m) => ({ user: m[1], key: m[2] }));
      expect(again).toEqual(printed);
      const o = await new Client(second.url, key as string).order(r.body.order?.orderId as number, 'BTCUSDT');
      expect(o).toMatchObject({ status: 'open', price: 100, qty: 1 });
    } finally {
      await first.kill('SIGKILL');
      if (second !== undefined) expect((await second.kill('SIGTERM')).code).toBe(0);
    }
  }, 50_000);
});

export type { WsMsg };
