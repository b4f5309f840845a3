// The bare baselines of the load suite, measured in the same run as the gateway: a fastify route
// that parses and checks the same order body with the same JSON schema and the gateway's own order
// check (parsePlaceOrder), as the gateway's route does, and answers it, and a `ws`
// server that parses each frame, checks each order in it with the gateway's own order check
// (parsePlaceOrder) and acknowledges it. Neither matches, logs or syncs: they are the ceiling of
// the HTTP and WebSocket stacks on this machine.

import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { parsePlaceOrder, placeOrderSchema, type InstrumentConfig } from '@gx3/server';
import { WebSocketServer } from 'ws';
import { LOAD_INSTRUMENT, LOAD_SYMBOL } from './orders.js';
import { frameText } from './ws-load.js';

/** Starts the bare HTTP server on 127.0.0.1; resolves with its port. */
export async function startBareHttp(port = 0): Promise<{ port: number; close: () => Promise<void> }> {
  const app = Fastify({ logger: false, ajv: { customOptions: { coerceTypes: false, removeAdditional: false } } });
  let n = 0;
  app.post('/v1/orders', { schema: { body: placeOrderSchema } }, async (req, reply) => {
    let order;
    try {
      order = parsePlaceOrder(req.body, BARE_INSTRUMENTS);
    } catch (err) {
      return reply.code(400).send({ error: { code: 'VALIDATION', message: (err as Error).message } });
    }
    n++;
    return Promise.resolve({ ok: true, orderId: n, symbol: order.symbol, side: order.side, qty: order.qty });
  });
  await app.listen({ host: '127.0.0.1', port });
  return { port: (app.server.address() as AddressInfo).port, close: () => app.close() };
}

/** The instrument the load suite trades (the gateway's band for it). */
const BARE_INSTRUMENTS: ReadonlyMap<string, InstrumentConfig> = new Map([[LOAD_SYMBOL, LOAD_INSTRUMENT]]);

/** Starts the bare WebSocket server on 127.0.0.1 at /v1/ws; resolves with its port. */
export async function startBareWs(port = 0): Promise<{ port: number; close: () => Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port, path: '/v1/ws', maxPayload: 1 << 24 });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  let n = 0;
  const ack = (order: unknown, prefix: string): { ok: boolean; orderId?: number; error?: string } => {
    try {
      parsePlaceOrder(order, BARE_INSTRUMENTS, prefix);
      return { ok: true, orderId: ++n };
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
  };
  wss.on('connection', (ws) => {
    ws.on('message', (data) => {
      let m: { id: unknown; order: unknown };
      try {
        m = JSON.parse(frameText(data)) as { id: unknown; order: unknown };
        if (typeof m !== 'object' || m === null) throw new Error('a frame must be a JSON object');
      } catch (err) {
        ws.send(JSON.stringify({ ok: false, error: (err as Error).message }));
        return;
      }
      if (Array.isArray(m.order)) {
        ws.send(JSON.stringify({ id: m.id, results: m.order.map((o, i) => ack(o, `order[${i}].`)) }));
      } else {
        ws.send(JSON.stringify({ id: m.id, ...ack(m.order, 'order.') }));
      }
    });
  });
  return {
    port: (wss.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => {
          resolve();
        });
      }),
  };
}
