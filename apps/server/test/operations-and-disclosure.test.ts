// What an operator running the gateway in production checks about operations and disclosure:
//
// - logs (pino): no API key, whole or in part, in any line the built server writes (at log level
//   trace), whatever clients send (good and failed authentications over HTTP and WebSocket, bad
//   requests, malformed HTTP carrying the key); a flood of bad requests adds no log line; the
//   banner names the configured users only; an error thrown in a handler is logged (with its
//   stack, for the operator) and answered without it;
// - configuration errors about API keys do not echo the key (the `error [...]` line goes to the
//   process's log like any other);
// - /metrics: no label made of a client-controlled value (paths with order ids, unknown symbols,
//   keys, methods Node does not know);
// - HTTP: no `x-powered-by` or `server` header; duplicate and conflicting headers (two x-api-key,
//   two content-type, content-length with transfer-encoding, two content-lengths) never
//   authenticate, place anything, or let a second request be smuggled behind the first;
// - error bodies carry neither stack traces nor the server's file paths.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pino, type Logger } from 'pino';
import { nodeFileIO, type FileIO } from '@gx3/wal';
import { loadConfig, resolveConfig, type ApiKeyConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import { startServer, type RunningServer } from '../src/server.js';
import {
  BIN_JS,
  checkBuilt,
  Client,
  metricSample,
  pathAwareIO,
  removeTmpDirs,
  request,
  SEGMENT,
  serverEnv,
  ServerProcess,
  SYM,
  TEST_INSTRUMENT,
  tmpDir,
  until,
  UpgradeRefused,
  WsClient,
  wsUrl,
  type WsMsg,
} from './helpers.js';

afterAll(async () => {
  await ServerProcess.killAll();
  removeTmpDirs();
});

beforeAll(() => {
  checkBuilt();
});

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
});

// Keys that look like secrets: no 6-character piece of them occurs in ordinary log text.
const KA = 'Qx9Vb2Lm7Tz4Kp1W';
const KB = 'Hr5Nc8Jd3Ys6Fg0E';
const KEYS: ApiKeyConfig[] = [
  { user: 'alice', key: KA },
  { user: 'bob', key: KB },
];

/** The 6-character pieces of `key` found in `text` (none: the key, whole or in part, is not there). */
function keyPieces(text: string, key: string): string[] {
  const found = new Set<string>();
  for (let i = 0; i + 6 <= key.length; i++) {
    const piece = key.slice(i, i + 6);
    if (text.includes(piece)) found.add(piece);
  }
  return [...found];
}

/** A pino logger that keeps every line, as its JSON text. */
function capturing(level: string): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: pino({ level }, { write: (l: string) => lines.push(l) }), lines };
}

async function boot(o: { logger: Logger; io?: FileIO; segmentSize?: number; settings?: Record<string, unknown> }): Promise<RunningServer & { dataDir: string }> {
  const dataDir = tmpDir();
  const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir, apiKeys: KEYS, instruments: [TEST_INSTRUMENT], ...o.settings });
  const server = await startServer(config, { logger: o.logger, engine: { segmentSize: o.segmentSize ?? SEGMENT, ...(o.io === undefined ? {} : { io: o.io }) } });
  closers.push(() => server.close());
  return { ...server, dataDir };
}

/** Writes `data` on a new connection and resolves with everything read until the server closes it. */
function rawExchange(url: string, data: string): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect({ host: u.hostname, port: Number(u.port) }, () => s.write(data));
    let out = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => (out += d));
    s.on('close', () => {
      resolve(out);
    });
    s.on('error', () => undefined);
  });
}

/** The status lines of the HTTP answers in `text`. */
function statusLines(text: string): string[] {
  return text.split('\r\n').filter((l) => /^HTTP\/1\.1 \d{3}/.test(l));
}

const limitOrder = (price: number, qty = 1): Record<string, unknown> => ({ symbol: SYM, side: 'buy', type: 'limit', price, qty });

// ---------------------------------------------------------------------------------------------

describe('logs of the built server', () => {
  it('at log level trace: no configured key, whole or in part, in stdout or stderr after good and failed authentications (HTTP, WebSocket header, ?apiKey=, auth frames), bad and malformed requests carrying the key, and a flood of 300 bad requests, none of which is logged; the banner names the users only', async () => {
    const dataDir = tmpDir();
    const p = await ServerProcess.spawn({ ...serverEnv(dataDir), GX3_API_KEYS: KEYS.map((k) => `${k.user}:${k.key}`).join(','), GX3_LOG_LEVEL: 'trace' });
    const url = p.url;
    const alice = new Client(url, KA);
    expect(p.stderr).toContain('API keys configured for: alice, bob');

    // Good requests.
    const placed = await alice.place({ side: 'buy', price: 500, qty: 1 });
    expect((await alice.get(placed.order.orderId)).status).toBe(200);
    // Failed authentications with keys one character off the real ones (a typo of a secret is a secret).
    for (const k of [`${KA}x`, KA.slice(0, -1), KB.toLowerCase()]) expect((await new Client(url, k).post({ side: 'buy', price: 500, qty: 1 })).status).toBe(401);
    // Bad requests with the right key.
    expect((await request(url, 'POST', '/v1/orders', { key: KA, raw: '{"symbol":', contentType: 'application/json' })).status).toBe(400);
    expect((await request(url, 'POST', '/v1/orders', { key: KA, json: { ...limitOrder(500), qty: -1 } })).status).toBe(400);
    expect((await request(url, 'POST', '/v1/orders', { key: KA, raw: 'x', contentType: 'text/plain' })).status).toBe(415);
    expect((await request(url, 'GET', `/v1/orders/${SYM}/987654`, { key: KA })).status).toBe(404);
    expect((await request(url, 'GET', `/no/route/${KA}`, { key: KA })).status).toBe(404);
    // Requests Node's parser refuses, carrying the key in a header.
    expect(statusLines(await rawExchange(url, `GET /health HTTP/1.1\r\nHost: x\r\nx-api-key: ${KA}\r\nBad Header\r\n\r\n`))[0]).toMatch(/ 400 /);
    expect(statusLines(await rawExchange(url, `GET /health HTTP/1.1\r\nHost: x\r\nx-api-key: ${KA}\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`))[0]).toMatch(/ 431 /);
    expect(statusLines(await rawExchange(url, `POST /v1/orders HTTP/1.1\r\nHost: x\r\nx-api-key: ${KA}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`))[0]).toMatch(/ 400 /);

    // WebSocket: the key in the upgrade header, in ?apiKey=, a wrong one in ?apiKey=, auth frames.
    const byHeader = await WsClient.connect(wsUrl(url), { 'x-api-key': KA });
    closers.push(() => byHeader.close());
    expect(await byHeader.call({ op: 'order', order: limitOrder(501) })).toMatchObject({ ok: true });
    const byQuery = await WsClient.connect(wsUrl(url, `?apiKey=${KB}`));
    closers.push(() => byQuery.close());
    expect(await byQuery.call({ op: 'ping' })).toMatchObject({ pong: true });
    const refused = await WsClient.connect(wsUrl(url, `?apiKey=${KB}z`)).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(UpgradeRefused);
    const anon = await WsClient.connect(wsUrl(url));
    closers.push(() => anon.close());
    expect(await anon.call({ op: 'auth', key: `${KA}!` })).toMatchObject({ ok: false, error: { code: 'UNAUTHORIZED' } });
    expect(await anon.call({ op: 'auth', key: KA })).toMatchObject({ ok: true, user: 'alice' });
    expect(await anon.call({ op: 'order', order: { ...limitOrder(502), stp: 'BOGUS' } })).toMatchObject({ ok: false, error: { code: 'VALIDATION' } });
    const guesser = await WsClient.connect(wsUrl(url));
    for (let i = 0; i < 5; i++) guesser.send({ op: 'auth', id: i, key: `${KB.slice(0, -1)}${i}` });
    await until(() => guesser.closeInfo !== undefined, 'the guessing connection closed');
    expect(guesser.closeInfo?.code).toBe(1008);

    // A flood of bad requests: unknown keys (401, then 429 past 20 from this address), malformed
    // bodies, unknown routes and symbols, malformed HTTP.
    const flood: Promise<unknown>[] = [];
    for (let i = 0; i < 300; i++) {
      switch (i % 5) {
        case 0:
          flood.push(request(url, 'POST', '/v1/orders', { key: `${KA}-${i}`, json: limitOrder(500) }));
          break;
        case 1:
          flood.push(request(url, 'POST', '/v1/orders', { key: KA, raw: `{"qty":${i},`, contentType: 'application/json' }));
          break;
        case 2:
          flood.push(request(url, 'GET', `/v1/book/NOPE${i}`));
          break;
        case 3:
          flood.push(request(url, 'DELETE', `/v1/orders/${SYM}/${1000 + i}`, { key: KA }));
          break;
        default:
          flood.push(rawExchange(url, `BAD ${i}\r\n\r\n`));
      }
      if (flood.length >= 20) await Promise.all(flood.splice(0));
    }
    await Promise.all(flood);
    // The server still serves (the flood did it no harm).
    expect((await request(url, 'GET', '/health')).status).toBe(200);

    await byHeader.close();
    await byQuery.close();
    await anon.close();
    expect((await p.kill('SIGTERM')).code).toBe(0);
    const everything = p.stdout + p.stderr;
    // Not one line for any of those requests, at level trace: the start, the listening line, the stop.
    const msgs = p.stdout
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(msgs.map((m) => m.replace(/http:\/\/\S+/, 'URL'))).toEqual(['recovered', 'Server listening at URL', 'stopped']);
    expect(keyPieces(everything, KA), 'pieces of alice\'s key in the output').toEqual([]);
    expect(keyPieces(everything, KB), 'pieces of bob\'s key in the output').toEqual([]);
  }, 40_000);
});

describe('an error thrown in a handler (a stand-in for a bug: the gateway method replaced by one that throws)', () => {
  it('HTTP 500 INTERNAL and WebSocket INTERNAL with a message that holds neither the stack nor a path; each logged once at error level with the stack for the operator, without the key', async () => {
    const { logger, lines } = capturing('trace');
    const server = await boot({ logger });
    const secretPath = path.join(server.dataDir, 'TEST', 'cmd');
    const boom = (): never => {
      throw new TypeError(`cannot read properties of undefined (reading 'x') at ${secretPath}`);
    };
    const gateway = server.gateway as unknown as { place: () => never; book: () => never };
    gateway.place = boom;
    gateway.book = boom;

    const bookAnswer = await request(server.url, 'GET', `/v1/book/${SYM}`);
    const postAnswer = await request(server.url, 'POST', '/v1/orders', { key: KA, json: limitOrder(500) });
    const ws = await WsClient.connect(wsUrl(server.url), { 'x-api-key': KA });
    closers.push(() => ws.close());
    const wsAnswer = await ws.call({ op: 'order', order: limitOrder(500) });
    const wsBatch = await ws.call({ op: 'order', order: [limitOrder(500), limitOrder(501)] });
    for (const r of [bookAnswer, postAnswer]) {
      expect(r.status).toBe(500);
      expect(r.body).toEqual({ error: { code: 'INTERNAL', message: 'internal error' } });
      expect(r.text).not.toMatch(/at .*\.(ts|js):\d+|TypeError|\/tmp\/|node_modules/);
    }
    expect(wsAnswer).toMatchObject({ ok: false, error: { code: 'INTERNAL', message: 'internal error' } });
    expect(wsBatch.results?.map((r) => r.error)).toEqual([
      { code: 'INTERNAL', message: 'internal error' },
      { code: 'INTERNAL', message: 'internal error' },
    ]);
    expect(JSON.stringify(ws.received)).not.toContain(server.dataDir);

    // The operator sees each failure once, with its stack; no key in any line.
    const failures = lines.filter((l) => l.includes('"level":50'));
    expect(failures.filter((l) => l.includes('"msg":"request failed"') && l.includes('TypeError') && l.includes('"stack"'))).toHaveLength(2);
    // One for the single order, one for each of the list's two.
    expect(failures.filter((l) => l.includes('"msg":"websocket request failed"') && l.includes('TypeError'))).toHaveLength(3);
    expect(keyPieces(lines.join(''), KA)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('configuration errors about API keys', () => {
  const failure = (fn: () => unknown): ConfigError => {
    try {
      fn();
    } catch (err) {
      if (err instanceof ConfigError) return err;
      throw err;
    }
    throw new Error('no ConfigError');
  };

  it('a key shorter than 8 characters, one with a space or a non-ASCII character, one listed for two users, a bad user name, an unknown field: INVALID_CONFIG naming the user (the entry, in the form separated by commas), never the key; 8 characters are enough; one user may hold two keys', () => {
    const cases: { raw: unknown; key: string; says: RegExp }[] = [
      { raw: `alice:${KA},bob:Zk3!q7`, key: 'Zk3!q7', says: /the key of entry 2 must be at least 8 characters/ },
      { raw: `alice:${KA}\u00e9`, key: KA, says: /the key of entry 1 must be visible ASCII/ },
      { raw: [{ user: 'alice', key: `${KA} ${KB}` }], key: KA, says: /the key of user alice must be visible ASCII characters, without spaces/ },
      { raw: `alice:${KA},bob:${KA}`, key: KA, says: /a key is listed twice \(entry 2\)/ },
      { raw: `al ice:${KA}`, key: KA, says: /the user of entry 1 must be/ },
      { raw: [{ user: 'al ice', key: KA }], key: KA, says: /user "al ice" must be/ },
      { raw: [{ user: 'alice', key: KA, secret: KB }], key: KB, says: /unknown field "secret"/ },
    ];
    for (const c of cases) {
      const err = failure(() => resolveConfig({ apiKeys: c.raw }));
      expect(err.code).toBe('INVALID_CONFIG');
      expect(err.message).toMatch(/^apiKeys \(GX3_API_KEYS \/ --api-keys\)/);
      expect(err.message).toMatch(c.says);
      expect(keyPieces(err.message, c.key), err.message).toEqual([]);
    }
    expect(resolveConfig({ apiKeys: 'alice:8chars!!' }).apiKeys).toEqual([{ user: 'alice', key: '8chars!!' }]);
    expect(resolveConfig({ apiKeys: `alice:${KA},alice:${KB}` }).apiKeys).toEqual([
      { user: 'alice', key: KA },
      { user: 'alice', key: KB },
    ]);
  });

  // The bin prints a configuration error as one line, `error [CODE]: <message>`, on stderr, which a
  // production deployment collects with the rest of the process's output (journald, a log shipper).
  // The bin itself treats a configured key as a secret (bin/server.ts: "A configured key is a
  // secret: only the demo keys are printed"), and the brief of this review: no API key, whole or in
  // part, in any log line. Each of these malformed settings echoes the key it holds, or part of it.
  const dir = tmpDir('gx3-keys-cfg-');
  const file = (name: string, text: string): string => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text);
    return f;
  };
  const leaks: { what: string; argv: string[]; env: Record<string, string>; key: string }[] = [
    { what: 'GX3_API_KEYS with "=" for ":"', argv: [], env: { GX3_API_KEYS: `alice=${KA}` }, key: KA },
    // README: "a key is at least 8 visible ASCII characters, no spaces": a comma is one of them.
    { what: 'GX3_API_KEYS whose key holds a comma', argv: [], env: { GX3_API_KEYS: `alice:Ab1,Cd2Ef3,${KA}` }, key: `Ab1,Cd2Ef3,${KA}` },
    { what: '--api-keys with the pairs separated by a space', argv: ['--api-keys', `alice:${KA}`, `bob:${KB}`], env: {}, key: KB },
    { what: 'a config file whose key is in single quotes', argv: ['--config', file('quoted.json', `{"apiKeys": [{"user": "alice", "key": '${KA}'}]}`)], env: {}, key: KA },
    { what: 'a config file whose key is a number', argv: ['--config', file('number.json', '{"apiKeys": [{"user": "alice", "key": 73910486215537}]}')], env: {}, key: '73910486215537' },
  ];
  it.each(leaks)('a malformed API key setting ($what) is refused with an error that does not echo the key', ({ argv, env, key }) => {
    const err = failure(() => loadConfig(argv, env));
    expect(['INVALID_CONFIG', 'CONFIG_FILE']).toContain(err.code);
    expect(keyPieces(err.message, key), `the error: ${err.message.split('\n')[0] ?? ''}`).toEqual([]);
  });

  it('the built bin, given GX3_API_KEYS with "=" for ":", exits 2 with an error line that does not hold the key', async () => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('GX3_') && v !== undefined) env[k] = v;
    const proc = spawn(process.execPath, [BIN_JS], { env: { ...env, GX3_DATA_DIR: tmpDir(), GX3_PORT: '0', GX3_API_KEYS: `alice=${KA}` }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    proc.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    proc.stdout.resume();
    const code = await new Promise<number | null>((resolve) => proc.once('exit', resolve));
    expect(code).toBe(2);
    expect(stderr).toMatch(/^error \[INVALID_CONFIG\]: apiKeys/);
    expect(keyPieces(stderr, KA), stderr).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('/metrics label cardinality', () => {
  it('after requests with client-chosen paths, order ids, symbols, keys and methods: every label value is from a fixed set, none holds what a client sent', async () => {
    const { logger } = capturing('silent');
    const server = await boot({ logger, settings: { rateLimit: 1_000_000, rateBurst: 1_000_000 } });
    const url = server.url;
    const probe = 'PRB7q';
    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < 40; i++) {
      jobs.push(request(url, 'GET', `/v1/orders/${SYM}/${100_000 + i}`, { key: KA }));
      jobs.push(request(url, 'DELETE', `/v1/orders/${probe}${i}/${i + 1}`, { key: KA }));
      jobs.push(request(url, 'PATCH', `/v1/orders/${SYM}/${probe}${i}`, { key: KA, json: { qty: 1 } }));
      jobs.push(request(url, 'GET', `/v1/book/${probe}${i}?depth=${i + 1}`));
      jobs.push(request(url, 'GET', `/v1/trades/${probe}${i}`));
      jobs.push(request(url, 'POST', '/v1/orders', { key: `${probe}-key-${i}`, json: limitOrder(500) }));
      jobs.push(request(url, 'POST', '/v1/orders', { key: KA, json: { ...limitOrder(500), symbol: `${probe}${i}` } }));
      jobs.push(request(url, 'GET', `/${probe}/${i}`));
      jobs.push(request(url, i % 2 === 0 ? 'PROPFIND' : 'OPTIONS', `/v1/orders/${probe}${i}`));
      jobs.push(request(url, 'HEAD', `/v1/book/${probe}${i}`));
      jobs.push(rawExchange(url, `${probe}${i} / HTTP/1.1\r\nHost: x\r\n\r\n`));
    }
    await Promise.all(jobs);
    const ws = await WsClient.connect(wsUrl(server.url), { 'x-api-key': KA });
    closers.push(() => ws.close());
    for (let i = 0; i < 5; i++) {
      await ws.call({ op: 'subscribe', channel: 'book', symbol: `${probe}${i}` });
      await ws.call({ op: `${probe}${i}` });
    }

    const text = (await request(url, 'GET', '/metrics')).text;
    const labels = new Map<string, Set<string>>();
    for (const line of text.split('\n')) {
      const m = /^(gx3_[a-z_]+)\{(.*)\} \S+$/.exec(line);
      if (m === null || (m[1] as string).startsWith('gx3_process_')) continue;
      for (const l of (m[2] as string).matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) {
        const name = l[1] as string;
        if (!labels.has(name)) labels.set(name, new Set());
        labels.get(name)?.add(l[2] as string);
      }
    }
    expect(text).not.toContain(probe);
    expect(keyPieces(text, KA)).toEqual([]);
    const routes = ['/v1/orders', '/v1/orders/:symbol/:orderId', '/v1/book/:symbol', '/v1/trades/:symbol', '/v1/instruments', '/health', '/health/live', '/health/ready', '/metrics', 'unmatched'];
    expect([...(labels.get('route') ?? [])].filter((r) => !routes.includes(r))).toEqual([]);
    expect([...(labels.get('symbol') ?? [])]).toEqual([SYM]);
    // Methods as Node's parser knows them (a method it does not know is a parse error: UNKNOWN).
    expect([...(labels.get('method') ?? [])].every((m) => /^[A-Z-]{3,11}$/.test(m))).toBe(true);
    expect(labels.get('method')).toContain('UNKNOWN');
    expect([...(labels.get('status') ?? [])].every((s) => /^[1-5]\d\d$/.test(s))).toBe(true);
    expect([...labels.keys()].filter((l) => !['method', 'route', 'status', 'kind', 'outcome', 'le', 'direction', 'symbol'].includes(l))).toEqual([]);
    expect(metricSample(text, 'gx3_http_requests_total', { method: 'GET', route: '/v1/orders/:symbol/:orderId', status: '404' })).toBe(40);
  });
});

// ---------------------------------------------------------------------------------------------

describe('HTTP headers', () => {
  it('no x-powered-by or server header on any answer (200, 4xx, 500, parser refusals, WebSocket upgrade refusals)', async () => {
    const { logger } = capturing('silent');
    const server = await boot({ logger });
    const url = server.url;
    const answers = [
      await request(url, 'GET', '/health'),
      await request(url, 'GET', '/metrics'),
      await request(url, 'POST', '/v1/orders', { key: KA, json: limitOrder(500) }),
      await request(url, 'POST', '/v1/orders', { key: 'nope-nope-nope', json: limitOrder(500) }),
      await request(url, 'GET', '/nothing/here'),
      await request(url, 'POST', '/v1/orders', { key: KA, raw: '{', contentType: 'application/json' }),
    ];
    for (const r of answers) {
      expect(r.headers.get('x-powered-by')).toBeNull();
      expect(r.headers.get('server')).toBeNull();
    }
    const raws = [
      await rawExchange(url, 'NOT-HTTP\r\n\r\n'),
      await rawExchange(url, 'GET /v1/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nx-api-key: wrong-wrong-wrong\r\n\r\n'),
      await rawExchange(url, 'GET /elsewhere HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'),
    ];
    expect(raws.map((t) => statusLines(t)[0])).toEqual(['HTTP/1.1 400 Bad Request', 'HTTP/1.1 401 Unauthorized', 'HTTP/1.1 404 Not Found']);
    for (const t of raws) expect(t.toLowerCase()).not.toMatch(/\r\n(x-powered-by|server):/);
  });

  it('two x-api-key headers (even both the right key) never authenticate, over HTTP and the WebSocket upgrade; two content-types take the first; content-length with transfer-encoding, or two content-lengths, are 400 and close the connection, the request behind them never answered; nothing placed', async () => {
    const { logger } = capturing('silent');
    const server = await boot({ logger });
    const url = server.url;
    const body = JSON.stringify(limitOrder(500));
    const post = (headers: string, b = body): string => `POST /v1/orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${headers}Content-Length: ${Buffer.byteLength(b)}\r\n\r\n${b}`;

    const twoKeys = await rawExchange(url, post(`x-api-key: ${KA}\r\nx-api-key: ${KA}\r\nContent-Type: application/json\r\n`));
    expect(statusLines(twoKeys)).toEqual(['HTTP/1.1 401 Unauthorized']);
    expect(twoKeys).toContain('"UNAUTHORIZED"');
    const twoUsers = await rawExchange(url, post(`x-api-key: ${KA}\r\nx-api-key: ${KB}\r\nContent-Type: application/json\r\n`));
    expect(statusLines(twoUsers)).toEqual(['HTTP/1.1 401 Unauthorized']);
    const wsTwoKeys = await rawExchange(
      url,
      `GET /v1/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nx-api-key: ${KA}\r\nx-api-key: ${KB}\r\n\r\n`,
    );
    expect(statusLines(wsTwoKeys)).toEqual(['HTTP/1.1 401 Unauthorized']);

    const twoTypes = await rawExchange(url, post(`x-api-key: ${KA}\r\nContent-Type: text/plain\r\nContent-Type: application/json\r\n`));
    expect(statusLines(twoTypes)).toEqual(['HTTP/1.1 415 Unsupported Media Type']);

    // A second request smuggled in the body of the first (as a front proxy that reads the
    // content-length would see it): refused whole, nothing answered after the 400.
    const smuggled = `0\r\n\r\nPOST /v1/orders HTTP/1.1\r\nHost: x\r\nx-api-key: ${KA}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    const clte = await rawExchange(url, `POST /v1/orders HTTP/1.1\r\nHost: x\r\nx-api-key: ${KA}\r\nContent-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n${smuggled}`);
    expect(statusLines(clte)).toEqual(['HTTP/1.1 400 Bad Request']);
    expect(clte).toContain('"BAD_REQUEST"');
    const tecl = await rawExchange(url, `POST /v1/orders HTTP/1.1\r\nHost: x\r\nx-api-key: ${KA}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n${smuggled}`);
    expect(statusLines(tecl)).toEqual(['HTTP/1.1 400 Bad Request']);
    const twoLengths = await rawExchange(url, `POST /v1/orders HTTP/1.1\r\nHost: x\r\nx-api-key: ${KA}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Length: 1\r\n\r\n${body}GET /v1/instruments HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect(statusLines(twoLengths)).toEqual(['HTTP/1.1 400 Bad Request']);

    // Nothing of all that was placed: the next order is the first.
    const first = await new Client(url, KA).place({ side: 'buy', price: 500, qty: 1 });
    expect(first.order.orderId).toBe(1);
    expect(server.engine.actor(SYM)?.processedSeq).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------

describe('logging of refusals', () => {
  it('after a feed failure, the error is logged once (README), not once more for every HTTP order refused HALTED (a client could flood the log with error lines and stacks)', async () => {
    // README, Failure modes: "the gateway cannot read a symbol's outbox ... | the symbol takes only
    // cancels (orders and amendments get 503 HALTED, naming the error), the error is logged once".
    // The WebSocket API logs nothing for such a refusal (ws.ts replyError logs non-ApiErrors only);
    // the HTTP error handler (http.ts setErrorHandler: `if (api.status >= 500) req.log.error(...)`)
    // logs every 503 ApiError at level error with its stack: HALTED, BACKPRESSURE, SHUTTING_DOWN.
    const fail = { ev: false };
    const io = pathAwareIO((pathOf) => ({
      read: (fd, buf, offset, length, position) => {
        if (fail.ev && pathOf(fd).includes('/ev/')) throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
        return nodeFileIO.read(fd, buf, offset, length, position);
      },
    }));
    const { logger, lines } = capturing('info');
    const server = await boot({ logger, io });
    const alice = new Client(server.url, KA);
    await alice.place({ side: 'buy', price: 1000, qty: 5 });
    fail.ev = true;
    expect((await alice.post({ side: 'buy', price: 980, qty: 1 })).status).toBe(200);
    await until(() => server.gateway.feeds.get(SYM)?.error !== undefined, 'the feed failed');
    await until(() => lines.some((l) => l.includes('market data of the symbol stopped')), 'the failure logged');

    const ws = await WsClient.connect(wsUrl(server.url), { 'x-api-key': KA });
    closers.push(() => ws.close());
    for (let i = 0; i < 10; i++) expect(await ws.call({ op: 'order', order: limitOrder(980) })).toMatchObject({ ok: false, error: { code: 'HALTED' } });
    for (let i = 0; i < 10; i++) expect((await alice.post({ side: 'buy', price: 980, qty: 1 })).body.error?.code).toBe('HALTED');

    const mentions = lines.filter((l) => l.includes('EIO: i/o error, read'));
    expect(mentions.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['the market data of the symbol stopped (its outbox could not be read): only cancels are taken until a restart']);
  });
});

describe('error bodies', () => {
  it('a symbol halted by a full disk: the 503 HALTED answers (HTTP and WebSocket) do not give clients the server\'s file paths; the halt is logged once', async () => {
    // README, Errors: "`{ "error": { "code", "message" } }`, the message naming the field at
    // fault"; "503 | ... `HALTED` (the engine stopped after an I/O error; restart it to recover)".
    // A trader is told the symbol halted and to retry later; the data directory's absolute path and
    // its layout (<dataDir>/<SYMBOL>/cmd/<segment>.wal) are the operator's (in the log, /health),
    // not every client's. The message carried the engine's halt message whole (gateway.ts
    // engineToApi: `...: ${err.message}`), which names the segment file the log could not create.
    const full = { on: false };
    const enospc = (p: string, op: string): NodeJS.ErrnoException => Object.assign(new Error(`ENOSPC: no space left on device, ${op} '${p}'`), { code: 'ENOSPC', syscall: op, path: p });
    const base = pathAwareIO(() => ({
      preallocate: (p, size, done) => {
        if (full.on && p.includes(`${path.sep}cmd${path.sep}`)) {
          setImmediate(() => {
            done(enospc(p, 'write'));
          });
          return;
        }
        nodeFileIO.preallocate(p, size, done);
      },
    }));
    // The disk is full for new files of the command log: its spare segment cannot be made, and the
    // roll cannot create the next segment (as Node's fs says it: the path in the message).
    const io: FileIO = {
      ...base,
      open: (p, flags) => {
        if (full.on && flags === 'wx+' && p.includes(`${path.sep}cmd${path.sep}`)) throw enospc(p, 'open');
        return base.open(p, flags);
      },
    };
    const { logger, lines } = capturing('error');
    // The smallest segment that holds a record of the largest size; JSON logs fill it sooner.
    const server = await boot({ logger, io, segmentSize: (1 << 20) + 64, settings: { codec: 'json', rateLimit: 1_000_000, rateBurst: 1_000_000 } });
    full.on = true;
    const ws = await WsClient.connect(wsUrl(server.url), { 'x-api-key': KA });
    closers.push(() => ws.close());
    let halted: WsMsg | undefined;
    for (let f = 0; f < 40 && halted === undefined; f++) {
      const batch = Array.from({ length: 1000 }, (_, i) => ({ ...limitOrder(100 + (i % 100)), tif: 'IOC', clientOrderId: `roll-${f}-${i}-${'x'.repeat(40)}` }));
      halted = (await ws.call({ op: 'order', order: batch })).results?.find((r) => r.ok !== true);
    }
    expect(halted?.error?.code).toBe('HALTED');
    const http = await new Client(server.url, KA).post({ side: 'buy', price: 500, qty: 1 });
    expect(http.status).toBe(503);
    expect(http.body.error?.code).toBe('HALTED');
    expect(halted?.error?.message, 'the WebSocket answer').not.toContain(server.dataDir);
    expect(http.body.error?.message, 'the HTTP answer').not.toContain(server.dataDir);
    // The operator's log has the halt once, with its details; the refused requests add nothing.
    const logged = lines.map((l) => JSON.parse(l) as { msg: string; symbol?: string; err?: { message?: string } });
    expect(logged.map((l) => l.msg)).toEqual(['the symbol halted after an I/O error: it takes no commands until the server is restarted']);
    expect(logged[0]?.symbol).toBe(TEST_INSTRUMENT.symbol);
    expect(logged[0]?.err?.message).toContain('ENOSPC');
  }, 30_000);
});
