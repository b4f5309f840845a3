// The WebSocket load client reads answers without parsing them whole: the frame id at the start and
// one "ok" per order. These tests hold it to the answers the gateway and the bare server write, and
// run it against the bare server (which checks every order with the gateway's parsePlaceOrder).
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import type { AddressInfo } from 'node:net';
import { startBareWs } from '../src/load/bare-servers.js';
import { answerId, countOk, wsLoad } from '../src/load/ws-load.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

describe('reading answers', () => {
  it('takes the frame id from the start of an answer, and nothing from push messages or malformed text', () => {
    expect(answerId('{"id":17,"ok":true,"order":{"orderId":3},"events":[]}')).toBe(17);
    expect(answerId('{"id":4,"results":[{"ok":true}]}')).toBe(4);
    expect(answerId('{"type":"trades","symbol":"BTCUSDT","trades":[]}')).toBeUndefined();
    expect(answerId('{"id":"abc","ok":true}')).toBeUndefined();
    expect(answerId('{"id":12')).toBeUndefined();
    expect(answerId('[{"id":1}]')).toBeUndefined();
  });

  it('counts one ok or failure per order, in single answers and in frames of several', () => {
    const gx3 =
      '{"id":1,"ok":true,"order":{"orderId":5,"symbol":"BTCUSDT","status":"filled"},"events":[{"symbol":"BTCUSDT","type":"accepted"},{"type":"trade","qty":2}]}';
    expect(countOk(gx3)).toEqual({ ok: 1, failed: 0 });
    expect(countOk('{"id":2,"ok":false,"error":{"code":"VALIDATION","message":"order.qty: must be positive"}}')).toEqual({ ok: 0, failed: 1 });
    const frame = `{"id":3,"results":[${['{"ok":true,"orderId":1}', '{"ok":false,"error":{"code":"X","message":"y"}}', '{"ok":true,"orderId":2}'].join(',')}]}`;
    expect(countOk(frame)).toEqual({ ok: 2, failed: 1 });
    expect(countOk('{"id":9,"error":{"code":"MALFORMED_JSON","message":"bad"}}')).toEqual({ ok: 0, failed: 0 });
  });
});

describe('wsLoad', () => {
  it('drives the bare server: every order of every frame answered ok, no errors', async () => {
    const bare = await startBareWs();
    closers.push(bare.close);
    const r = await wsLoad(`ws://127.0.0.1:${bare.port}/v1/ws`, { connections: 2, window: 4, perFrame: 3, seconds: 1 });
    expect(r.errors).toBe(0);
    expect(r.total).toBeGreaterThan(0);
    expect(r.total % 3).toBe(0);
    expect(r.p50Ms).toBeGreaterThan(0);
  });

  it('counts refused orders and error frames as errors, not as orders done', async () => {
    // Answers the first order of each frame ok and the others with an error; every fifth frame
    // gets an error frame without any "ok".
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/v1/ws' });
    await new Promise<void>((resolve) => wss.once('listening', resolve));
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          for (const c of wss.clients) c.terminate();
          wss.close(() => {
            resolve();
          });
        }),
    );
    let frames = 0;
    wss.on('connection', (ws) => {
      ws.on('message', (data) => {
        const m = JSON.parse((data as Buffer).toString('utf8')) as { id: number; order: unknown[] };
        frames++;
        if (frames % 5 === 0) ws.send(JSON.stringify({ id: m.id, error: { code: 'RATE_LIMITED', message: 'slow down' } }));
        else ws.send(JSON.stringify({ id: m.id, results: m.order.map((_, i) => (i === 0 ? { ok: true } : { ok: false, error: { code: 'X', message: 'no' } })) }));
      });
    });
    const port = (wss.address() as AddressInfo).port;
    const r = await wsLoad(`ws://127.0.0.1:${port}/v1/ws`, { connections: 1, window: 2, perFrame: 4, seconds: 0.3 });
    const errorFrames = Math.floor(frames / 5);
    const okFrames = frames - errorFrames;
    expect(frames).toBeGreaterThan(5);
    expect(r.total).toBe(okFrames);
    expect(r.errors).toBe(okFrames * 3 + errorFrames * 4);
  });
});
