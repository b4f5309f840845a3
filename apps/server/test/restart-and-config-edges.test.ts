// Restarts and configuration at their edges: a symbol named like the data directory's lock file
// (refused as configuration, exit 2); the book's L2 sequence across a restart (never back); a
// restart with a smaller instrument maxQty (refused: the command log is replayed under the limits
// it was written with, and other limits would silently drop acknowledged orders); and SIGTERM while
// a client holds a request whose body never arrives (cut after a grace period, exit 0).
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ALICE,
  BIN_JS,
  BOB,
  book,
  CAROL,
  checkBuilt,
  Client,
  removeTmpDirs,
  serverEnv,
  ServerProcess,
  start,
  TEST_INSTRUMENT,
  tmpDir,
  until,
  within,
  type TestServer,
} from './helpers.js';

afterAll(async () => {
  await ServerProcess.killAll();
  removeTmpDirs();
});

describe('configuration', () => {
  it('refuses a symbol that names the lock file of the data directory (LOCK) with exit 2 and INVALID_CONFIG naming instruments', () => {
    checkBuilt();
    const r = spawnSync(process.execPath, [BIN_JS], {
      env: { ...process.env, ...serverEnv(tmpDir()), GX3_INSTRUMENTS: 'LOCK:100:10000:1000' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    // Without the check: exit 1, `error [RECOVERY_FAILED]: cannot recover LOCK from <dataDir>/LOCK: ... ENOTDIR`.
    expect(r.stderr).toMatch(/^error \[INVALID_CONFIG\]: instruments/m);
    expect(r.status).toBe(2);
  });
});

describe('restart', () => {
  it("the book's L2 sequence does not go back after a restart (a snapshot after it is not behind one before it)", async () => {
    let server: TestServer = await start();
    try {
      const alice = new Client(server.url, ALICE);
      for (let i = 0; i < 5; i++) await alice.place({ side: 'buy', price: 1000 + i, qty: 1 });
      const before = await book(server.url);
      expect(before.seq).toBe(5);
      await server.close();
      server = await start({}, server.dataDir);
      const after = await book(server.url);
      expect({ bids: after.bids, asks: after.asks }).toEqual({ bids: before.bids, asks: before.asks });
      // Without it: 0, so a client that resumes sees sequence numbers it already saw, with other levels.
      expect(after.seq).toBeGreaterThanOrEqual(before.seq);
    } finally {
      await server.close();
    }
  });

  it('a restart with a smaller maxQty keeps the acknowledged resting orders and the book, or refuses the setting (INVALID_CONFIG naming instruments)', async () => {
    const first = await start();
    const alice = new Client(first.url, ALICE);
    const carol = new Client(first.url, CAROL);
    const x = (await alice.place({ side: 'sell', price: 1000, qty: 500 })).order.orderId; // above the later maxQty
    const p = (await carol.place({ side: 'sell', price: 1001, qty: 50 })).order.orderId;
    const q = (await carol.place({ side: 'sell', price: 1001, qty: 50 })).order.orderId;
    await new Client(first.url, BOB).place({ side: 'buy', price: 1001, qty: 100 }); // fills 100 of x
    const bookBefore = await book(first.url);
    const pBefore = await carol.order(p);
    expect(pBefore).toMatchObject({ status: 'open', remainingQty: 50 });
    await first.close();

    // New orders above 100 lots are refused from now on; the ones already taken are not new orders.
    const outcome = await start({ instruments: [{ ...TEST_INSTRUMENT, maxQty: 100 }] }, first.dataDir).then(
      (s) => ({ server: s, error: undefined }),
      (e: unknown) => ({ server: undefined, error: e as Error & { code?: string } }),
    );
    if (outcome.server === undefined) {
      expect(outcome.error.code).toBe('INVALID_CONFIG');
      expect(outcome.error.message).toMatch(/instruments/);
      return;
    }
    const server = outcome.server;
    try {
      // Replayed under the new maxQty, x is rejected, bob's order fills p and q instead (the
      // event counts happen to match, so recovery does not notice), and x, p and q are 404.
      expect(await new Client(server.url, CAROL).order(p)).toEqual(pBefore);
      expect(await new Client(server.url, CAROL).order(q)).toMatchObject({ status: 'open', remainingQty: 50 });
      expect(await new Client(server.url, ALICE).order(x)).toMatchObject({ status: 'partially_filled', remainingQty: 400 });
      const bookAfter = await book(server.url);
      expect({ bids: bookAfter.bids, asks: bookAfter.asks }).toEqual({ bids: bookBefore.bids, asks: bookBefore.asks });
    } finally {
      await server.close();
    }
  });
});

describe('graceful shutdown', () => {
  it('SIGTERM exits 0 while a client holds a request open without sending its body', async () => {
    checkBuilt();
    const proc = await ServerProcess.spawn(serverEnv(tmpDir()));
    const url = new URL(proc.url);
    const socket = net.connect(Number(url.port), url.hostname);
    socket.on('error', () => undefined);
    let received = '';
    socket.on('data', (d: Buffer) => (received += d.toString('utf8')));
    try {
      await new Promise<void>((resolve) => socket.once('connect', () => { resolve(); }));
      // The headers, and 5 of the 100 bytes of body announced; `expect: 100-continue` makes the
      // server say when it has read the headers (so the request is in the server before SIGTERM).
      socket.write(
        `POST /v1/orders HTTP/1.1\r\nhost: x\r\nx-api-key: ${ALICE}\r\ncontent-type: application/json\r\ncontent-length: 100\r\nexpect: 100-continue\r\n\r\n{"sym`,
      );
      await until(() => received.includes('100 Continue'), 'the server to read the request headers');
      // A hang guard, not a measurement: without the grace period the server never exits.
      const exit = await within(proc.kill('SIGTERM'), 20_000, 'the shutdown after SIGTERM');
      expect(exit).toEqual({ code: 0, signal: null });
    } finally {
      socket.destroy();
    }
  }, 40_000);
});
