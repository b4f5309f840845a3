// When a symbol's feed cannot read the outbox any more (an I/O error), the gateway's view of the
// symbol stops following the engine: the symbol then takes only cancels (503 HALTED for the rest),
// and /health, /metrics and the log say so.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { nodeFileIO, type FileIO } from '@gx3/wal';
import { resolveConfig } from '../src/config.js';
import { startServer } from '../src/server.js';
import { ALICE, API_KEYS, Client, pathAwareIO, removeTmpDirs, request, SEGMENT, SYM, TEST_INSTRUMENT, tmpDir, until } from './helpers.js';

afterAll(removeTmpDirs);

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

/** A file layer whose reads of outbox files (paths under `/ev/`) fail with EIO while `fail.ev` is set. */
function failingReads(): { io: FileIO; fail: { ev: boolean } } {
  const fail = { ev: false };
  const io = pathAwareIO((pathOf) => ({
    read: (fd, buf, offset, length, position) => {
      if (fail.ev && pathOf(fd).includes('/ev/')) throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
      return nodeFileIO.read(fd, buf, offset, length, position);
    },
  }));
  return { io, fail };
}

describe('a feed that cannot read the outbox', () => {
  it('leaves the symbol taking only cancels, and says so in /health, /metrics and the log', async () => {
    const { io, fail } = failingReads();
    const logged: { msg?: string; symbol?: string }[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => logged.push(JSON.parse(line) as { msg?: string; symbol?: string }) });
    const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir: tmpDir(), apiKeys: API_KEYS, instruments: [TEST_INSTRUMENT] });
    const server = await startServer(config, { logger, engine: { segmentSize: SEGMENT, io } });
    closers.push(() => server.close());
    const alice = new Client(server.url, ALICE);
    const resting = await alice.place({ side: 'buy', price: 1000, qty: 5 });
    const other = await alice.place({ side: 'buy', price: 990, qty: 5 });

    fail.ev = true;
    // This order is taken and durable; the feed fails reading its events.
    expect((await alice.post({ side: 'buy', price: 980, qty: 1 })).status).toBe(200);
    const feed = server.gateway.feeds.get(SYM);
    await until(() => feed?.error !== undefined, 'the feed failed');

    const refused = await alice.post({ side: 'sell', price: 1000, qty: 1 });
    expect(refused.status).toBe(503);
    expect(refused.body.error?.code).toBe('HALTED');
    expect(refused.body.error?.message).toMatch(/only cancels.*EIO/);
    expect(refused.headers.get('retry-after')).toBe('30');
    const amend = await alice.amend(other.order.orderId, { qty: 2 });
    expect(amend.status).toBe(503);
    expect(amend.body.error?.code).toBe('HALTED');
    // Cancels still work: a participant can take its orders off the book.
    const canceled = await alice.cancel(resting.order.orderId);
    expect(canceled.status).toBe(200);
    expect(canceled.body.events?.some((e) => e.type === 'canceled')).toBe(true);

    const health = await request(server.url, 'GET', '/health');
    expect(health.body.status).toBe('halted');
    expect(health.text).toContain('EIO');
    const metrics = await request(server.url, 'GET', '/metrics');
    expect(metrics.text).toMatch(new RegExp(`gx3_feed_failed\\{symbol="${SYM}"\\} 1`));
    expect(logged.filter((l) => l.symbol === SYM && /market data .* stopped/.test(l.msg ?? ''))).toHaveLength(1);
  }, 30_000);
});
