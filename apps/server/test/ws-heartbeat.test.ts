// The WebSocket heartbeat: every wsHeartbeatMs each connection is pinged, and one that sent nothing
// (no pong, no frame) since the previous ping is cut, so that a peer that vanished without closing
// does not keep its connection, and its key's connection slot, for ever. A client that answers
// pings (every WebSocket library does) stays connected however long it is idle.
import net from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { loadConfig, resolveConfig } from '../src/config.js';
import { ALICE, removeTmpDirs, request, start, until, wsUrl, type TestServer } from './helpers.js';

afterAll(removeTmpDirs);

const servers: TestServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

/** The open WebSocket connections, from /metrics. */
async function wsConnections(s: TestServer): Promise<number> {
  const m = /^gx3_ws_connections (\d+)$/m.exec((await request(s.url, 'GET', '/metrics')).text);
  return Number(m?.[1] ?? -1);
}

/** A peer that completes the handshake and then never answers anything (as a vanished host). */
function silentPeer(url: string): Promise<{ socket: net.Socket; closed: Promise<void> }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => {
      socket.write(
        `GET /v1/ws HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nx-api-key: ${ALICE}\r\n\r\n`,
      );
    });
    const closed = new Promise<void>((r) => {
      socket.once('close', () => {
        r();
      });
    });
    let head = '';
    const onData = (d: Buffer): void => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      if (!head.startsWith('HTTP/1.1 101')) reject(new Error(`no upgrade: ${head.slice(0, 80)}`));
      else resolve({ socket, closed });
      // From here on, whatever comes (pings) is read and never answered.
      socket.on('data', () => undefined);
    };
    socket.on('data', onData);
    socket.on('error', () => undefined);
  });
}

describe('the WebSocket heartbeat', () => {
  it('cuts a connection that answers no ping, and frees its slot; keeps one that answers, however idle', async () => {
    const s = await start({ wsHeartbeatMs: '100' });
    servers.push(s);
    const live = new WebSocket(wsUrl(s.url), { headers: { 'x-api-key': ALICE } });
    let pings = 0;
    live.on('ping', () => pings++);
    await new Promise((r) => live.once('open', r));
    const peer = await silentPeer(s.url);
    await until(async () => (await wsConnections(s)) === 2, 'two connections');
    // The silent peer is cut by the server (its socket closes), the live client is not.
    await peer.closed;
    await until(async () => (await wsConnections(s)) === 1, 'the silent connection cut');
    await until(() => pings >= 4, 'the live client pinged several times');
    expect(live.readyState).toBe(WebSocket.OPEN);
    live.close();
  });

  it('with wsHeartbeatMs 0 sends no pings (while a server with 100 ms pings its client several times)', async () => {
    const none = await start({ wsHeartbeatMs: '0' });
    servers.push(none);
    const fast = await start({ wsHeartbeatMs: '100' });
    servers.push(fast);
    const counts = { none: 0, fast: 0 };
    const client = (s: TestServer, which: 'none' | 'fast'): WebSocket => {
      const c = new WebSocket(wsUrl(s.url), { headers: { 'x-api-key': ALICE } });
      c.on('ping', () => {
        counts[which]++;
      });
      return c;
    };
    const clients = [client(none, 'none'), client(fast, 'fast')];
    await Promise.all(clients.map((c) => new Promise((r) => c.once('open', r))));
    await until(() => counts.fast >= 3, 'three pings from the server with a heartbeat');
    expect(counts.none).toBe(0);
    for (const c of clients) c.close();
  });

  it('is a setting: GX3_WS_HEARTBEAT_MS, --ws-heartbeat-ms, 30 s by default, 0 or 100 ms .. 1 hour', () => {
    expect(resolveConfig({}).wsHeartbeatMs).toBe(30_000);
    expect(loadConfig(['--ws-heartbeat-ms', '5000'], { GX3_WS_HEARTBEAT_MS: '100' }).wsHeartbeatMs).toBe(5000);
    expect(loadConfig([], { GX3_WS_HEARTBEAT_MS: '0' }).wsHeartbeatMs).toBe(0);
    expect(() => resolveConfig({ wsHeartbeatMs: '50' })).toThrow(/wsHeartbeatMs \(GX3_WS_HEARTBEAT_MS \/ --ws-heartbeat-ms\): must be 0 \(no heartbeat\) or 100\.\.3600000/);
    expect(() => resolveConfig({ wsHeartbeatMs: '-1' })).toThrow(/wsHeartbeatMs/);
    expect(() => resolveConfig({ wsHeartbeatMs: '3600001' })).toThrow(/wsHeartbeatMs/);
  });
});
