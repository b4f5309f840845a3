// The metrics of a request that takes two engine commands (a PATCH of the quantity alone that is a
// size increase: a reduction attempt, refused, then a replace) count and time it once.
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ALICE, Client, removeTmpDirs, request, start, type TestServer, metricSample } from './helpers.js';

afterAll(removeTmpDirs);

let server: TestServer;
beforeEach(async () => {
  server = await start();
});
afterEach(async () => {
  await server.close();
});


describe('gx3_commands_total and gx3_command_durable_seconds', () => {
  it('count a successful quantity-only size increase (PATCH {qty}) once, as amend ok, not also as a rejected amend', async () => {
    const alice = new Client(server.url, ALICE);
    const o = await alice.place({ side: 'buy', price: 1000, qty: 5 });
    const r = await alice.amend(o.order.orderId, { qty: 8 }); // a size increase: the client's one amendment succeeds
    expect(r.status).toBe(200);
    expect(r.body.order).toMatchObject({ qty: 8, remainingQty: 8, status: 'open' });

    const text = (await request(server.url, 'GET', '/metrics')).text;
    // The client saw one amendment, and it succeeded: no amendment was rejected by the book.
    expect(metricSample(text, 'gx3_commands_total', { kind: 'amend', outcome: 'rejected' }) ?? 0).toBe(0);
    expect(metricSample(text, 'gx3_commands_total', { kind: 'amend', outcome: 'ok' })).toBe(1);
    // One submission-to-answer latency for the one amendment.
    expect(metricSample(text, 'gx3_command_durable_seconds_count', { kind: 'amend' })).toBe(1);
  });
});
