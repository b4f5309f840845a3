// Configuration and start-up: settings from the defaults, a JSON file, the environment and flags
// (each overriding the one before), every bad setting refused with a ConfigError naming it (the bin
// exits 2 with it), the demo API keys (made once, kept in the data directory), a port in use, and
// the per-key token buckets of the rate limit (with a clock of the test's own).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KeyStore, RateLimiter, userIdOf } from '../src/auth.js';
import { DEFAULTS, loadConfig, resolveConfig } from '../src/config.js';
import { ApiError, ConfigError } from '../src/errors.js';
import { ALICE, BIN_JS, checkBuilt, Client, removeTmpDirs, request, start, SYM, tmpDir } from './helpers.js';
import { spawnSync } from 'node:child_process';

afterAll(removeTmpDirs);

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('settings', () => {
  it('defaults, then the file, then the environment, then flags', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'gx3.json');
    fs.writeFileSync(file, JSON.stringify({ port: 7001, rateLimit: 10, instruments: [{ symbol: 'XYZ', minPrice: 5, maxPrice: 50, maxQty: 9 }] }));
    const c = loadConfig(['--port', '7003', '--data-dir', dir], { GX3_CONFIG: file, GX3_PORT: '7002', GX3_RATE_BURST: '20', GX3_API_KEYS: 'u1:key-one-1, u2:key-two-2' });
    expect(c).toMatchObject({
      port: 7003,
      rateLimit: 10,
      rateBurst: 20,
      dataDir: path.resolve(dir),
      instruments: [{ symbol: 'XYZ', minPrice: 5, maxPrice: 50, maxQty: 9 }],
      apiKeys: [
        { user: 'u1', key: 'key-one-1' },
        { user: 'u2', key: 'key-two-2' },
      ],
      host: DEFAULTS.host,
      help: false,
    });
    expect(loadConfig([], {})).toMatchObject({ ...DEFAULTS, help: false });
    expect(loadConfig(['--help'], {}).help).toBe(true);
    expect(resolveConfig({ instruments: 'A:1:10:5,B.C:2:20:6' }).instruments).toEqual([
      { symbol: 'A', minPrice: 1, maxPrice: 10, maxQty: 5 },
      { symbol: 'B.C', minPrice: 2, maxPrice: 20, maxQty: 6 },
    ]);
  });

  it.each([
    ['port', { port: '70000' }, /port \(GX3_PORT/],
    ['port', { port: 'eighty' }, /port/],
    ['durability', { durability: 'sometimes' }, /durability.*none, batch, interval/],
    ['codec', { codec: 'xml' }, /codec/],
    ['logLevel', { logLevel: 'loud' }, /logLevel/],
    ['rateLimit', { rateLimit: '0' }, /rateLimit/],
    ['bodyLimit', { bodyLimit: '100' }, /bodyLimit.*1024/],
    ['bus', { bus: 'kafka://x' }, /bus.*NATS URL/],
    ['bus', { bus: 'not a url' }, /bus/],
    ['dataDir', { dataDir: '' }, /dataDir/],
    ['instruments', { instruments: 'BTC:1:10' }, /SYMBOL:MINPRICE:MAXPRICE:MAXQTY/],
    ['instruments', { instruments: 'btc:1:10:5' }, /symbol "btc"/],
    // A symbol ends its NATS subject: a trailing or doubled dot would make an empty token.
    ['instruments', { instruments: 'BTC.:1:10:5' }, /symbol "BTC\." .*no \. at the end or beside another/],
    ['instruments', { instruments: [{ symbol: 'A..B', minPrice: 1, maxPrice: 2, maxQty: 3 }] }, /symbol "A\.\.B"/],
    ['instruments', { instruments: 'A:1:10:5,A:1:10:5' }, /listed twice/],
    ['instruments', { instruments: 'A:10:5:5' }, /maxPrice/],
    ['instruments', { instruments: 'A:0:5:5' }, /minPrice/],
    ['instruments', { instruments: [{ symbol: 'A', minPrice: 1, maxPrice: 2, maxQty: 3, tick: 1 }] }, /unknown field "tick"/],
    ['instruments', { instruments: [] }, /at least one instrument/],
    ['apiKeys', { apiKeys: 'alice' }, /USER:KEY/],
    ['apiKeys', { apiKeys: 'alice:short' }, /at least 8 characters/],
    ['apiKeys', { apiKeys: 'alice:same-key-1,bob:same-key-1' }, /listed twice/],
    ['apiKeys', { apiKeys: 'al ice:long-enough-key' }, /the user of entry 1 must be 1-64 characters/],
  ] as const)('refuses a bad %s: %j', (_name, raw, message) => {
    const e = configError(() => resolveConfig(raw));
    expect(e.code).toBe('INVALID_CONFIG');
    expect(e.message).toMatch(message);
  });

  it('refuses an unknown flag, an unreadable or malformed config file, and an unknown setting in it', () => {
    expect(configError(() => loadConfig(['--prot', '1'], {})).message).toMatch(/prot[\s\S]*usage/);
    const dir = tmpDir();
    expect(configError(() => loadConfig([], { GX3_CONFIG: path.join(dir, 'missing.json') })).code).toBe('CONFIG_FILE');
    fs.writeFileSync(path.join(dir, 'bad.json'), '{ port: 1 }');
    expect(configError(() => loadConfig(['--config', path.join(dir, 'bad.json')], {})).message).toMatch(/not valid JSON/);
    fs.writeFileSync(path.join(dir, 'list.json'), '[1]');
    expect(configError(() => loadConfig(['--config', path.join(dir, 'list.json')], {})).message).toMatch(/JSON object/);
    fs.writeFileSync(path.join(dir, 'extra.json'), '{"prot": 1}');
    expect(configError(() => loadConfig(['--config', path.join(dir, 'extra.json')], {})).message).toMatch(/unknown setting "prot"/);
  });

  it('the bin exits 2 with the error naming the setting; --help prints the usage and exits 0', () => {
    checkBuilt();
    const bad = spawnSync(process.execPath, [BIN_JS], { env: { ...process.env, GX3_PORT: 'eighty', GX3_DATA_DIR: tmpDir() }, encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/error \[INVALID_CONFIG\]: port \(GX3_PORT \/ --port\)/);
    const help = spawnSync(process.execPath, [BIN_JS, '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: gx3-server/);
  });
});

describe('start-up', () => {
  it('without configured keys: demo keys for alice and bob, made once and kept in the data directory', async () => {
    const dataDir = tmpDir();
    const first = await start({ apiKeys: undefined }, dataDir);
    let keys: readonly { user: string; key: string }[];
    try {
      expect(first.demo).toBe(true);
      keys = first.apiKeys;
      expect(keys.map((k) => k.user)).toEqual(['alice', 'bob']);
      const file = path.join(dataDir, 'demo-api-keys.json');
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual(keys);
      const r = await new Client(first.url, keys[0]?.key ?? '').post({ side: 'buy', price: 500, qty: 1 });
      expect(r.status).toBe(200);
      expect((await new Client(first.url, ALICE).post({ side: 'buy', price: 500, qty: 1 })).status).toBe(401);
    } finally {
      await first.close();
    }
    const second = await start({ apiKeys: undefined }, dataDir);
    try {
      expect(second.apiKeys).toEqual(keys);
      expect((await new Client(second.url, keys[0]?.key ?? '').order(1)).user).toBe('alice');
    } finally {
      await second.close();
    }
  });

  it('the demo key file is readable by its owner only, though a crashed start left a readable temporary', async () => {
    const dataDir = tmpDir();
    fs.writeFileSync(path.join(dataDir, 'demo-api-keys.json.tmp'), '[', { mode: 0o644 });
    const server = await start({ apiKeys: undefined }, dataDir);
    try {
      const file = path.join(dataDir, 'demo-api-keys.json');
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual(server.apiKeys);
    } finally {
      await server.close();
    }
  });

  it('a corrupt demo key file stops the start with a ConfigError saying what to do', async () => {
    const dataDir = tmpDir();
    fs.writeFileSync(path.join(dataDir, 'demo-api-keys.json'), '{"not": "a list"}');
    const err = await start({ apiKeys: undefined }, dataDir).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toMatch(/delete it/);
  });

  for (const [what, keys, says] of [
    ['an empty list', [], /at least one/],
    ['a key with a space', [{ user: 'alice', key: 'has a space-123' }], /visible ASCII/],
    ['a key listed twice', [{ user: 'alice', key: 'same-key-1234' }, { user: 'bob', key: 'same-key-1234' }], /listed twice/],
    ['an entry with an unknown field', [{ user: 'alice', key: 'demo-key-12345', admin: true }], /unknown field "admin"/],
    ['a user name that is not a name', [{ user: 'al ice', key: 'demo-key-12345' }], /must be 1-64 characters/],
  ] as const) {
    it(`a demo key file with ${what} stops the start with a ConfigError (CONFIG_FILE) saying what is wrong`, async () => {
      const dataDir = tmpDir();
      fs.writeFileSync(path.join(dataDir, 'demo-api-keys.json'), JSON.stringify(keys));
      const err = await start({ apiKeys: undefined }, dataDir).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).code).toBe('CONFIG_FILE');
      expect((err as ConfigError).message).toMatch(says);
      expect((err as ConfigError).message).toMatch(/demo-api-keys\.json.*delete it/);
    });
  }

  it('an unreachable NATS bus fails the start (BUS_ERROR naming the URL)', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    await new Promise((resolve) => blocker.close(resolve)); // now nothing listens there
    const err = await start({ bus: `nats://127.0.0.1:${port}` }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as { code?: string } | undefined)?.code).toBe('BUS_ERROR');
    expect((err as Error).message).toContain(String(port));
  });

  it('a port in use fails the start, and the data directory can be opened again at once', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    const dataDir = tmpDir();
    try {
      const err = await start({ port }, dataDir).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).message).toMatch(/cannot listen on 127\.0\.0\.1:\d+ \(host GX3_HOST .*EADDRINUSE/);
      expect(((err as ConfigError).cause as NodeJS.ErrnoException).code).toBe('EADDRINUSE');
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
    const s = await start({}, dataDir);
    try {
      expect((await request(s.url, 'GET', `/v1/book/${SYM}`)).status).toBe(200);
    } finally {
      await s.close();
    }
  });
});

describe('API keys and the rate limit', () => {
  it('a user id is stable and derived from the name; keys of one user share it', () => {
    expect(userIdOf('alice')).toBe(userIdOf('alice'));
    expect(userIdOf('alice')).not.toBe(userIdOf('bob'));
    expect(userIdOf('alice')).toBeGreaterThanOrEqual(1);
    expect(userIdOf('alice')).toBeLessThanOrEqual(2 ** 48);
    const ks = new KeyStore([
      { user: 'alice', key: 'alice-key-1' },
      { user: 'alice', key: 'alice-key-2' },
    ]);
    expect(ks.authenticate('alice-key-1')).toBe(ks.authenticate('alice-key-2'));
    expect(ks.users).toHaveLength(1);
    expect(() => ks.authenticate('nope')).toThrow(ApiError);
    expect(() => ks.authenticate(undefined)).toThrow(/missing API key/);
  });

  it('token buckets: a burst, then the rate; Retry-After in whole seconds; per key; a request above the burst never passes', () => {
    let now = 0;
    const rl = new RateLimiter(2, 4, () => now);
    for (let i = 0; i < 4; i++) rl.take('a');
    const refused = (() => {
      try {
        rl.take('a');
      } catch (err) {
        return err as ApiError;
      }
      return undefined;
    })();
    expect(refused?.code).toBe('RATE_LIMITED');
    expect(refused?.status).toBe(429);
    expect(refused?.retryAfter).toBe(1);
    rl.take('b'); // another key has its own bucket
    now += 500; // half a second: one token back
    rl.take('a');
    expect(() => {
      rl.take('a');
    }).toThrow(ApiError);
    now += 10_000; // refilled up to the burst, not beyond
    for (let i = 0; i < 4; i++) rl.take('a');
    expect(() => {
      rl.take('a');
    }).toThrow(ApiError);
    now += 10_000;
    expect(() => {
      rl.take('a', 5);
    }).toThrow(/more than the burst/);
    rl.take('a', 4);
    // Waiting for 3 tokens at 2 a second: 2 seconds (rounded up).
    const slow = new RateLimiter(2, 4, () => now);
    slow.take('k', 4);
    try {
      slow.take('k', 3);
      expect.fail('taken');
    } catch (err) {
      expect((err as ApiError).retryAfter).toBe(2);
    }
  });
});

describe('settings that must not slip through', () => {
  const failure = (fn: () => unknown): unknown => {
    try {
      fn();
    } catch (err) {
      return err;
    }
    return undefined;
  };

  it.each(['constructor', 'toString', 'hasOwnProperty', '__proto__'])('a config file with the member %j (a name of Object.prototype) is refused as an unknown setting', (key) => {
    const file = path.join(tmpDir(), 'gx3.json');
    // JSON.parse makes "__proto__" an own member: it must not reach the settings through the prototype.
    fs.writeFileSync(file, `{${JSON.stringify(key)}: {"port": 1234}}`);
    const err = failure(() => loadConfig(['--config', file], {}));
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toMatch(/unknown setting/);
  });

  it.each(['..', '.', '.A', '-A'])('refuses the symbol %j: a symbol names its directory in the data directory, so it starts with a letter or digit', (symbol) => {
    const err = failure(() => resolveConfig({ instruments: `${symbol}:1:100:10` }));
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toMatch(/first a letter or digit/);
    expect(resolveConfig({ instruments: 'A.B-C_1:1:100:10' }).instruments[0]?.symbol).toBe('A.B-C_1');
  });

  it('refuses an unknown field in an API key of the file, and a key with spaces (header values are trimmed: it could never be sent)', () => {
    const unknown = failure(() => resolveConfig({ apiKeys: [{ user: 'alice', key: 'alice-key-123', role: 'admin' }] }));
    expect(unknown).toBeInstanceOf(ConfigError);
    expect((unknown as ConfigError).message).toMatch(/unknown field "role"/);
    const spaced = failure(() => resolveConfig({ apiKeys: [{ user: 'alice', key: ` ${ALICE} ` }] }));
    expect(spaced).toBeInstanceOf(ConfigError);
    expect((spaced as ConfigError).message).toMatch(/without spaces/);
    // From GX3_API_KEYS the pairs are trimmed, as before.
    expect(resolveConfig({ apiKeys: ` alice: ${ALICE} ` }).apiKeys).toEqual([{ user: 'alice', key: ALICE }]);
  });

  it('an address this host does not have is a ConfigError naming the host setting', async () => {
    const err = await start({ host: '10.255.255.1' }).then(
      async (s) => {
        await s.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toMatch(/cannot listen on 10\.255\.255\.1:0 \(host GX3_HOST/);
  });
});
