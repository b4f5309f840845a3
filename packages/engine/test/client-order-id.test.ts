// An order's client order id is logged with its command and echoed in the event that answers it
// (accepted or rejected); recovery derives those events again byte for byte, the id included; an
// invalid one is refused before anything is logged.
import { binaryCodec, jsonCodec, type Codec, type CodecName, type Command, type Event } from '@gx3/codecs';
import { truncateLog } from '@gx3/wal';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine, type SymbolActor } from '../src/index.js';
import { cancel, cmdDirOf, evDirOf, limit, market, rawRecords, readCommandLog, readOutbox, refused, removeTmpDirs, SEGMENT, tmpDir } from './helpers.js';

afterEach(removeTmpDirs);

const SYM = 'BTCUSDT';

const codecs: { name: CodecName; codec: Codec }[] = [
  { name: 'binary', codec: binaryCodec },
  { name: 'json', codec: jsonCodec },
];

function open(dataDir: string, codec: CodecName): Promise<Engine> {
  return Engine.open({ dataDir, symbols: [{ symbol: SYM, maxQty: 100 }], durability: 'batch', codec, segmentSize: SEGMENT });
}

const ofType = <T extends Event['type']>(events: readonly Event[], type: T): Extract<Event, { type: T }>[] =>
  events.filter((e): e is Extract<Event, { type: T }> => e.type === type);

describe.each(codecs)('client order ids ($name codec)', ({ name, codec }) => {
  it('are echoed in the accepted or rejected event of their order, and logged with the command', async () => {
    const dataDir = tmpDir();
    const engine = await open(dataDir, name);
    const rest = await engine.submit(limit(SYM, 1, 'sell', 100, 5, { clientOrderId: 'ask-1', userId: 7 }));
    expect(ofType(rest.events, 'accepted')).toEqual([expect.objectContaining({ orderId: 1, clientOrderId: 'ask-1' })]);
    // A post-only order that would cross: rejected, with its id.
    const post = await engine.submit(limit(SYM, 2, 'buy', 100, 1, { tif: 'POST', clientOrderId: 'post:2' }));
    // The rejection tells the whole order: what it asked for, with its id.
    expect(ofType(post.events, 'rejected')).toEqual([
      expect.objectContaining({ orderId: 2, reason: 'POST_ONLY_WOULD_CROSS', clientOrderId: 'post:2', side: 'buy', price: 100, qty: 1, tif: 'POST', stp: 'NONE' }),
    ]);
    const mkt = await engine.submit(market(SYM, 3, 'buy', 2, { clientOrderId: 'mkt.3', stp: 'CANCEL_NEWEST' }));
    // The accepted event tells the order's stp too.
    expect(ofType(mkt.events, 'accepted')).toEqual([expect.objectContaining({ orderType: 'market', clientOrderId: 'mkt.3', stp: 'CANCEL_NEWEST' })]);
    expect(ofType(rest.events, 'accepted')[0]).toHaveProperty('stp', 'NONE');
    expect(ofType(mkt.events, 'trade')).toHaveLength(1);
    // Without one, the event has no such property; a cancel's rejection never has one.
    const plain = await engine.submit(limit(SYM, 4, 'buy', 90, 1));
    expect(ofType(plain.events, 'accepted')[0]).not.toHaveProperty('clientOrderId');
    const notOwner = await engine.submit(cancel(SYM, 1, { userId: 8 }));
    expect(ofType(notOwner.events, 'rejected')[0]).toMatchObject({ reason: 'NOT_OWNER' });
    expect(ofType(notOwner.events, 'rejected')[0]).not.toHaveProperty('clientOrderId');
    expect(ofType(notOwner.events, 'rejected')[0]).not.toHaveProperty('side');
    // A market order above the maximum quantity: price 0 and tif IOC, and no client order id to echo.
    const big = await engine.submit(market(SYM, 5, 'sell', 1000, { stp: 'CANCEL_OLDEST' }));
    const bigReject = ofType(big.events, 'rejected')[0];
    expect(bigReject).toMatchObject({ reason: 'QTY_ABOVE_MAX', side: 'sell', price: 0, qty: 1000, tif: 'IOC', stp: 'CANCEL_OLDEST' });
    expect(bigReject).not.toHaveProperty('clientOrderId');
    await engine.close();

    const logged = readCommandLog(cmdDirOf(dataDir, SYM), codec).map((r) => r.msg as Command & { clientOrderId?: string });
    expect(logged.map((c) => c.clientOrderId)).toEqual(['ask-1', 'post:2', 'mkt.3', undefined, undefined, undefined]);
    const stored = readOutbox(evDirOf(dataDir, SYM), codec).map((r) => r.msg);
    expect(stored.filter((e) => e.type === 'accepted' || e.type === 'rejected').map((e) => (e as { clientOrderId?: string }).clientOrderId)).toEqual([
      'ask-1',
      'post:2',
      'mkt.3',
      undefined,
      undefined,
      undefined,
    ]);
    // The stored rejections hold their orders too.
    expect(stored.filter((e) => e.type === 'rejected').map((e) => (e as { side?: string }).side)).toEqual(['buy', undefined, 'sell']);
    // The stored acceptances hold their orders' stp.
    expect(stored.filter((e) => e.type === 'accepted').map((e) => (e as { stp?: string }).stp)).toEqual(['NONE', 'CANCEL_NEWEST', 'NONE']);
  });

  it('are in the events that recovery derives again, byte for byte', async () => {
    const dataDir = tmpDir();
    const engine = await open(dataDir, name);
    for (let i = 1; i <= 40; i++) {
      const side = i % 2 === 0 ? 'buy' : 'sell';
      // Every seventh a post-only order that crosses (a rejection with its order), with or without an id.
      const o =
        i % 7 === 0
          ? limit(SYM, i, side, side === 'buy' ? 200 : 1, 1, { tif: 'POST', ...(i % 2 === 0 ? { clientOrderId: `p-${i}` } : {}) })
          : i % 5 === 0
            ? market(SYM, i, side, 1, { clientOrderId: `m-${i}` })
            : limit(SYM, i, side, 100 + (i % 3), 2, { clientOrderId: `l-${i}` });
      await engine.submit(o);
    }
    await engine.close();
    const evDir = evDirOf(dataDir, SYM);
    const before = rawRecords(evDir);
    const events = readOutbox(evDir, codec);
    const cut = events.find((r) => r.msg.type === 'cmdEnd' && r.msg.seq === 10);
    if (cut === undefined) return expect.fail('no CmdEnd of command 10');
    truncateLog(evDir, cut.end);

    const again = await open(dataDir, name);
    expect((again.actor(SYM) as SymbolActor).recovery.rederived).toBe(30);
    await again.close();
    const after = rawRecords(evDir);
    expect(after.length).toBe(before.length);
    expect(after.every((b, i) => b.equals(before[i] as Buffer))).toBe(true);
    expect(readOutbox(evDir, codec).filter((r) => r.msg.type === 'accepted' && r.msg.seq === 40)[0]?.msg).toMatchObject({ clientOrderId: 'm-40' });
  });

  it('an invalid one is refused (INVALID_COMMAND naming the field) and nothing is logged', async () => {
    const dataDir = tmpDir();
    const engine = await open(dataDir, name);
    const actor = engine.actor(SYM) as SymbolActor;
    for (const bad of ['', 'x'.repeat(65), 'has space', 'caf\u00e9']) {
      const r = refused(actor.trySubmit(limit(SYM, 1, 'buy', 100, 1, { clientOrderId: bad })));
      expect(r.code).toBe('INVALID_COMMAND');
      expect(r.message).toContain('clientOrderId');
    }
    expect(actor.lastSubmittedSeq).toBe(0);
    await expect(engine.submit(limit(SYM, 1, 'buy', 100, 1, { clientOrderId: 'fine' }))).resolves.toMatchObject({ seq: 1 });
    await engine.close();
    expect(readCommandLog(cmdDirOf(dataDir, SYM), codec)).toHaveLength(1);
  });
});
