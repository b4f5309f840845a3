// The metrics of a request that takes two engine commands (a PATCH of the quantity alone that is a
// size increase: a reduction attempt, refused, then a replace) count and time it once.
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ALICE, Client, removeTmpDirs, request, start, type TestServer } from './helpers.js';

afterAll(removeTmpDirs);

let server: TestServer;
beforeEach(async () => {
  server = await start();
});
afterEach(async () => {
  await server.close();
});

/** The value of `name{labels}` in a Prometheus text exposition (label order ignored), or undefined. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const got: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) got[l[1] as string] = l[2] as string;
    const keys = Object.keys(labels);
    if (keys.length === Object.keys(got).length && keys.every((k) => got[k] === labels[k])) return Number(m[3]);
  }
  return undefined;
}

describe('gx3_commands_total and gx3_command_durable_seconds', () => {
  it('count a successful quantity-only size increase (PATCH {qty}) once, as amend ok, not also as a rejected amend', async () => {
    const alice = new Client(server.url, ALICE);
    const o = await alice.place({ side: 'buy', price: 1000, qty: 5 });
    const r = await alice.amend(o.order.orderId, { qty: 8 }); // a size increase: the client's one amendment succeeds
    expect(r.status).toBe(200);
    expect(r.body.order).toMatchObject({ qty: 8, remainingQty: 8, status: 'open' });

    const text = (await request(server.url, 'GET', '/metrics')).text;
    // The client saw one amendment, and it succeeded: no amendment was rejected by the book.
    expect(sample(text, 'gx3_commands_total', { kind: 'amend', outcome: 'rejected' }) ?? 0).toBe(0);
    expect(sample(text, 'gx3_commands_total', { kind: 'amend', outcome: 'ok' })).toBe(1);
    // One submission-to-answer latency for the one amendment.
    expect(sample(text, 'gx3_command_durable_seconds_count', { kind: 'amend' })).toBe(1);
  });
});
