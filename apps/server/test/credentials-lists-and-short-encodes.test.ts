// The last commit (7da6af3), checked from outside:
// - outbox-publisher `withoutCredentials` (parses the URL) as used by the bus's connect error, and
//   by config.ts parseBus (the value trimmed; a refused value echoed only when it parses) and the
//   bin's banner;
// - ws.ts: each 500 of a WebSocket list of orders logged, never a 4xx or a 503;
// - codecs encodeToBuffer: the record alone when a getter answered shorter the second time, a typed
//   BUFFER_TOO_SMALL when it answered longer.
import { jsonCodec, binaryCodec, EncodeError, MESSAGE_TYPES, type Codec, type Message } from '@gx3/codecs';
import { NatsJetStreamBus, OutboxError, withoutCredentials } from '@gx3/outbox-publisher';
import { nodeFileIO } from '@gx3/wal';
import fc from 'fast-check';
import { pino, type Logger } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ARBS } from '../../../packages/codecs/test/support.js';
import { loadConfig, resolveConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import { startServer, type RunningServer } from '../src/server.js';
import { Client, pathAwareIO, removeTmpDirs, SEGMENT, tmpDir, until, WsClient, wsUrl } from './helpers.js';

afterAll(removeTmpDirs);

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
});

const SECRET = 'Qv7sPw3Zk9Lm';

/** The message of the ConfigError `fn` throws, or undefined when it accepts. */
function refusal(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Credentials in the bus URL

describe('a password written in the bus URL', () => {
  it('accepted forms (percent-encoded characters, IPv6 hosts, a tab or newline inside, 100 kB passwords, spaces around) are passed on trimmed and otherwise unchanged, and printed without the password', () => {
    const accepted = [
      `nats://gx3:ab%2F${SECRET}%40x@nats.internal:4222`,
      `nats://gx3:${SECRET}%25@nats.internal:4222`,
      `nats://gx3:${SECRET}%zz@nats.internal:4222`,
      `nats://gx3:${SECRET}@[::1]:4222`,
      `nats://gx3:${SECRET}@[fe80::1]`,
      `nats://gx3:${SECRET}@[::ffff:127.0.0.1]:4222`,
      `nats://gx3:${SECRET.slice(0, 6)}\t${SECRET.slice(6)}@h:4222`,
      `nats://gx3:${SECRET.slice(0, 6)}\n${SECRET.slice(6)}@h:4222`,
      `nats://gx3:${'p'.repeat(100_000)}${SECRET}@h:4222`,
      ` \t nats://gx3:${SECRET}@h:4222 \n`,
      `NATS://${SECRET}@H:4222`,
      `tls://:${SECRET}@h:4222/`,
    ];
    for (const bus of accepted) {
      const config = loadConfig([], { GX3_BUS: bus });
      // What NATS is given: the text as written, trimmed.
      expect(config.bus).toBe(bus.trim());
      const shown = withoutCredentials(config.bus);
      expect(shown).not.toContain(SECRET.slice(0, 6));
      expect(shown).not.toContain(SECRET.slice(6));
      expect(shown).toMatch(/^(nats|NATS|tls):\/\/\*\*\*@/);
      expect(shown.length).toBeLessThan(100);
    }
  });

  it('refused forms (lists separated by commas, spaces or newlines, IPv6 without brackets or with a zone, bad ports) never show it', () => {
    const refused = [
      `nats://gx3:${SECRET}@h1:4222,nats://gx3:${SECRET}@h2:4222`,
      `nats://h1:4222,nats://gx3:${SECRET}@h2:4222`,
      `nats://h1:4222, nats://gx3:${SECRET}@h2:4222`,
      `nats://gx3:${SECRET}@h1:4222 nats://h2:4222`,
      `nats://gx3:${SECRET}@h1:4222\nnats://h2:4222`,
      `nats://gx3:${SECRET}@::1:4222`,
      `nats://gx3:${SECRET}@[fe80::1%25eth0]:4222`,
      `nats://gx3:${SECRET}@h:99999`,
      `nats://gx3:${SECRET}@h:42a2`,
      `nats://gx3:${SECRET}@`,
      `http://gx3:${SECRET}@h:4222`,
      `nats:gx3:${SECRET}@h:4222`,
      `nats:/gx3:${SECRET}@h:4222`,
      `nats:\\\\gx3:${SECRET}@h:4222`,
    ];
    for (const bus of refused) {
      const message = refusal(() => loadConfig([], { GX3_BUS: bus }));
      expect(message, bus).toMatch(/^bus \(GX3_BUS \/ --bus\): must be memory or a NATS URL/);
      expect(message).not.toContain(SECRET);
    }
  });

  it('a refused URL whose authority is empty (`nats:///user:pass@host`, `tls:///...`, `nats://?...`, `nats://#...`) is never echoed with the password', () => {
    // README (Configuration): "a user and password written in the NATS URL are shown as `***` (in
    // errors and the banner)". parseBus refuses these (hostname '') and echoes
    // withoutCredentials(s); withoutCredentials (nats-bus.ts) parses the text, finds no username
    // or password (the parser put them in the path, query or fragment: the authority is empty) and
    // returns the text unchanged because it starts with `scheme://` ("an `@` is in the path, query
    // or fragment"). A third slash is an ordinary typo; the message then holds the password.
    const refused = [`nats:///gx3:${SECRET}@nats.internal:4222`, `tls:///gx3:${SECRET}@nats.internal:4222`, `nats://?gx3:${SECRET}@nats.internal:4222`, `nats://#gx3:${SECRET}@nats.internal`];
    const leaks = refused.filter((bus) => {
      const message = refusal(() => loadConfig([], { GX3_BUS: bus }));
      expect(message).toMatch(/^bus \(GX3_BUS \/ --bus\): must be memory or a NATS URL/);
      return message?.includes(SECRET) === true;
    });
    expect(leaks).toEqual([]);
  });

  it('the bus connect error leaves out the password of `nats:///user:pass@host` (a URL NATS itself connects with)', async () => {
    // README (outbox-publisher): "`withoutCredentials(url)`: a server URL for messages and logs:
    // its user and password (or token) shown as `***` ... The bus's connection error uses it".
    // The NATS client strips `nats://` and reads `/gx3:<password>@127.0.0.1:1` as an http URL,
    // whose extra slash is ignored: it dials 127.0.0.1:1 with these credentials. The error names
    // the server through withoutCredentials, which returns a `scheme://` text whose parsed
    // authority is empty unchanged.
    let err: unknown;
    try {
      const bus = await NatsJetStreamBus.connect({ servers: `nats:///gx3:${SECRET}@127.0.0.1:1`, connectTimeoutMs: 3000 });
      await bus.close();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OutboxError);
    expect((err as OutboxError).code).toBe('BUS_ERROR');
    expect((err as Error).message).toMatch(/^cannot connect to NATS at /);
    expect((err as Error).message).not.toContain(SECRET);
  });

  it('a token holding `/`, `?` or `#` (base64 tokens hold `/`) is refused without being shown, and the bus\'s connection error leaves it out', async () => {
    // README (Configuration): "a user and password written in the NATS URL are shown as `***` (in
    // errors and the banner)"; the commit refuses `nats://gx3:ab/<password>@host` (the URL parser
    // fails on the port `ab`), but with a token alone the parser takes `ab` for the host and the
    // rest for a path, query or fragment: parseBus accepts it (hostname `ab`), and
    // withoutCredentials returns it unchanged (no username, `scheme://`). The bin prints
    // `withoutCredentials(config.bus)` in its banner, and the bus connect error (the NATS client
    // also reads `ab` as the host, so it fails) names the server the same way.
    const tokens = [`nats://ab/${SECRET}@127.0.0.1:1`, `nats://ab?${SECRET}@127.0.0.1:1`, `nats://ab#${SECRET}@127.0.0.1:1`];
    const shown: string[] = [];
    for (const bus of tokens) {
      const message = refusal(() => loadConfig([], { GX3_BUS: bus }));
      if (message !== undefined) {
        shown.push(message);
        continue;
      }
      const config = loadConfig([], { GX3_BUS: bus });
      shown.push(withoutCredentials(config.bus)); // the banner's text
    }
    // The gateway refuses them (a NATS URL has no path, query or fragment); the bus's own
    // connection error, for a program that gives it such a URL, names the server without it.
    let startError: unknown;
    try {
      const bus = await NatsJetStreamBus.connect({ servers: tokens[0] as string, connectTimeoutMs: 500 });
      closers.push(() => bus.close());
    } catch (err) {
      startError = err;
    }
    expect((startError as { code?: string } | undefined)?.code).toBe('BUS_ERROR');
    shown.push((startError as Error).message);
    expect(shown.filter((s) => s.includes(SECRET))).toEqual([]);
  }, 20_000);
});

// ---------------------------------------------------------------------------------------------
// WebSocket lists mixing 4xx, 503 and 500 answers

interface Line {
  level: number;
  msg: string;
  err?: { message?: string };
}

function capturing(): { logger: Logger; parsed: () => Line[] } {
  const lines: string[] = [];
  return { logger: pino({ level: 'trace' }, { write: (l: string) => lines.push(l) }), parsed: () => lines.map((l) => JSON.parse(l) as Line) };
}

const KA = 'Hn4Rw8Tc2Jv6Mb3X';

describe('a WebSocket list of orders mixing 4xx, 503 and 500 answers', () => {
  it('logs exactly one error line per 500, none for the others, each holding its failure', async () => {
    const { logger, parsed } = capturing();
    const fail = { on: false };
    const io = pathAwareIO(() => ({
      sync: (fd, done) => {
        if (fail.on) {
          setImmediate(() => {
            done(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
          });
          return;
        }
        nodeFileIO.sync(fd, done);
      },
    }));
    const config = resolveConfig({
      host: '127.0.0.1',
      port: 0,
      dataDir: tmpDir(),
      apiKeys: [{ user: 'alice', key: KA }],
      instruments: [
        { symbol: 'TEST', minPrice: 100, maxPrice: 10_000, maxQty: 1000 },
        { symbol: 'HALT', minPrice: 100, maxPrice: 10_000, maxQty: 1000 },
      ],
      rateLimit: 1,
      rateBurst: 40,
    });
    const server: RunningServer = await startServer(config, { logger, engine: { segmentSize: SEGMENT, io } });
    closers.push(() => server.close());
    // HALT halted by an I/O error (its own line), TEST's engine failing each command (500).
    fail.on = true;
    expect((await new Client(server.url, KA).post({ symbol: 'HALT', side: 'buy', price: 500, qty: 1 })).status).toBe(503);
    fail.on = false;
    await until(() => parsed().some((l) => l.msg.startsWith('the symbol halted')), 'the halt line');
    const actor = server.engine.actor('TEST') as unknown as { clock: () => number };
    actor.clock = () => {
      throw new Error('clock source unavailable');
    };
    const ws = await WsClient.connect(wsUrl(server.url), { 'x-api-key': KA });
    closers.push(() => ws.close());
    const before = parsed().length;
    const o = (symbol: string, price = 500): Record<string, unknown> => ({ symbol, side: 'buy', type: 'limit', price, qty: 1 });
    const list = [o('TEST', 500), o('NOPE'), { ...o('TEST'), qty: -1 }, o('HALT'), o('TEST', 501), { ...o('TEST'), price: 1 }, o('HALT', 502), o('TEST', 503)];
    const answer = await ws.call({ op: 'order', order: list });
    expect(answer.results?.map((r) => r.error?.code)).toEqual(['INTERNAL', 'UNKNOWN_SYMBOL', 'VALIDATION', 'HALTED', 'INTERNAL', 'VALIDATION', 'HALTED', 'INTERNAL']);
    // A second frame, answered alone: lines are not held back nor repeated.
    expect((await ws.call({ op: 'order', order: [o('HALT'), o('NOPE')] })).results?.map((r) => r.error?.code)).toEqual(['HALTED', 'UNKNOWN_SYMBOL']);
    const loud = parsed()
      .slice(before)
      .filter((l) => l.level >= 40);
    expect(loud.map((l) => [l.level, l.msg])).toEqual([
      [50, 'websocket request failed'],
      [50, 'websocket request failed'],
      [50, 'websocket request failed'],
    ]);
    for (const l of loud) expect(l.err?.message).toContain('clock source unavailable');
  });
});

// ---------------------------------------------------------------------------------------------
// encodeToBuffer with getters that answer differently the second time

describe('encodeToBuffer of a message whose field getter answers another valid value the second time', () => {
  it('every type and field, both codecs: the record of the second answer exactly when it is no longer, a typed BUFFER_TOO_SMALL when longer (seeded)', () => {
    const seen = { shorter: 0, longer: 0 };
    for (const codec of [jsonCodec, binaryCodec] as Codec[]) {
      for (const type of MESSAGE_TYPES) {
        const samples = fc.sample(ARBS[type], { numRuns: 30, seed: 0x5eed_0007 }) as unknown as Record<string, unknown>[];
        for (let i = 0; i < samples.length; i++) {
          const first = samples[i] as Record<string, unknown>;
          const other = samples[(i * 7 + 3) % samples.length] as Record<string, unknown>;
          for (const field of Object.keys(first)) {
            if (field === 'type' || !(field in other)) continue;
            const second = { ...first, [field]: other[field] } as unknown as Message;
            let wantLength: number;
            try {
              wantLength = codec.encodedLength(second);
            } catch {
              continue; // the pair is not a valid message (a market order's price, say)
            }
            const firstLength = codec.encodedLength(first as unknown as Message);
            let reads = 0;
            const m: Record<string, unknown> = { ...first };
            Object.defineProperty(m, field, { enumerable: true, get: () => (reads++ === 0 ? first[field] : other[field]) });
            if (wantLength > firstLength) {
              seen.longer++;
              let err: unknown;
              try {
                codec.encodeToBuffer(m as unknown as Message);
              } catch (e) {
                err = e;
              }
              expect(err, `${codec.name} ${type}.${field}`).toBeInstanceOf(EncodeError);
              expect((err as EncodeError).code).toBe('BUFFER_TOO_SMALL');
            } else {
              if (wantLength < firstLength) seen.shorter++;
              const b = codec.encodeToBuffer(m as unknown as Message);
              expect(b.equals(codec.encodeToBuffer(second)), `${codec.name} ${type}.${field}`).toBe(true);
              expect(codec.decode(b)).toEqual(codec.decode(codec.encodeToBuffer(second)));
            }
          }
        }
      }
    }
    // Both directions were exercised.
    expect(seen.shorter).toBeGreaterThan(100);
    expect(seen.longer).toBeGreaterThan(100);
  });
});
