// While a command is processed but not durable yet (its command log's fsync held back by the test's
// file layer), the gateway shows nothing of it: market data and order states come from the events
// of durable commands only, even when the outbox itself was synced ahead of the command log.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { nodeFileIO, type FileIO } from '@gx3/wal';
import { resolveConfig } from '../src/config.js';
import { startServer } from '../src/server.js';
import { ALICE, API_KEYS, BOB, book, Client, removeTmpDirs, SEGMENT, silentLogger, SYM, TEST_INSTRUMENT, tmpDir, until } from './helpers.js';

afterAll(removeTmpDirs);

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

/**
 * A file layer whose asynchronous fsyncs of the command log (paths under `/cmd/`) can be held back
 * until released: a command then stays processed but not durable for as long as the test wants.
 */
function gatedIO(): { io: FileIO; gate: { holdCmd: boolean; holdAll: boolean }; release: () => void; held: () => number } {
  const paths = new Map<number, string>();
  const queue: (() => void)[] = [];
  const gate = { holdCmd: false, holdAll: false };
  const io: FileIO = {
    ...nodeFileIO,
    open: (p, flags) => {
      const fd = nodeFileIO.open(p, flags);
      paths.set(fd, p);
      return fd;
    },
    sync: (fd, done) => {
      const isCmd = (paths.get(fd) ?? '').includes('/cmd/');
      if (gate.holdAll || (gate.holdCmd && isCmd)) {
        queue.push(() => {
          nodeFileIO.sync(fd, done);
        });
        return;
      }
      nodeFileIO.sync(fd, done);
    },
  };
  return {
    io,
    gate,
    release: () => {
      for (const f of queue.splice(0)) f();
    },
    held: () => queue.length,
  };
}

async function startGated(): Promise<{ server: Awaited<ReturnType<typeof startServer>>; g: ReturnType<typeof gatedIO> }> {
  const g = gatedIO();
  const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir: tmpDir(), apiKeys: API_KEYS, instruments: [TEST_INSTRUMENT] });
  const server = await startServer(config, { logger: silentLogger, engine: { segmentSize: SEGMENT, io: g.io } });
  closers.push(async () => {
    g.gate.holdAll = false;
    g.gate.holdCmd = false;
    g.release();
    await server.engine.close();
    await server.close();
  });
  return { server, g };
}

describe('market data comes from durable events only', () => {
  it('does not show an order whose command is not durable yet (outbox synced ahead of the command log)', async () => {
    const { server, g } = await startGated();
    const alice = new Client(server.url, ALICE);
    const bob = new Client(server.url, BOB);
    const actor = server.engine.actor(SYM);
    if (actor === undefined) throw new Error('no actor');
    const outboxCaughtUp = (): boolean => actor.outbox.durableOffset >= actor.outbox.log.writtenOffset;

    g.gate.holdCmd = true; // the command log's fsyncs wait; the outbox's go through
    const first = alice.post({ side: 'buy', price: 1000, qty: 1 });
    await until(() => actor.processedSeq >= 1 && outboxCaughtUp(), 'alice\'s order processed, its events synced');
    const second = bob.post({ side: 'buy', price: 900, qty: 2 });
    await until(() => actor.processedSeq >= 2 && outboxCaughtUp(), 'bob\'s order processed, its events synced');
    // Let the command log's first fsync (alice's batch) complete; bob's command log record stays unsynced.
    g.release();
    expect((await first).status).toBe(200);
    expect(actor.durableSeq).toBe(1);
    // Bob's order is not durable (not acknowledged; a crash now would lose it), yet the gateway shows it.
    const seen = await book(server.url);
    g.gate.holdCmd = false;
    g.release();
    expect((await second).status).toBe(200);
    expect(seen).toMatchObject({ bids: [[1000, 1]] });
  }, 30_000);
});

