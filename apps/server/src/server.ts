// Composes the exchange: the engine (recovered from the data directory), the bus its publishers
// deliver to, the gateway, the HTTP and WebSocket APIs and the metrics; and shuts it all down in
// order: stop taking commands, let in-flight requests finish, drain and sync the engine, close the
// connections and the bus.

import type { AddressInfo } from 'node:net';
import { Engine, EngineError, type EngineOptions } from '@gx3/engine';
import { MemoryBus, NatsJetStreamBus, type Bus } from '@gx3/outbox-publisher';
import { makeDirectory } from '@gx3/wal';
import { pino, type Logger } from 'pino';
import { demoKeys, KeyStore, RateLimiter } from './auth.js';
import type { ApiKeyConfig, ServerConfig } from './config.js';
import { ConfigError } from './errors.js';
import { Gateway } from './gateway.js';
import { buildHttp } from './http.js';
import { Metrics } from './metrics.js';
import { WsApi } from './ws.js';

export interface RunningServer {
  /** `http://host:port` */
  readonly url: string;
  readonly port: number;
  readonly gateway: Gateway;
  readonly engine: Engine;
  readonly bus: Bus;
  /** The API keys in force (the demo keys when none were configured). */
  readonly apiKeys: readonly ApiKeyConfig[];
  readonly demo: boolean;
  /** Graceful shutdown; safe to call more than once. */
  close(): Promise<void>;
}

export interface StartOptions {
  readonly logger?: Logger;
  /** Engine settings beyond the configuration (log segment size, mailbox, the file layer for fault injection). */
  readonly engine?: Pick<EngineOptions, 'segmentSize' | 'mailboxSize' | 'maxPending' | 'batchMax' | 'io' | 'syncIntervalMs'>;
  /** Unsent bytes past which a WebSocket connection is dropped (default 64 MiB). */
  readonly wsMaxBufferedBytes?: number;
  /** WebSocket connections per API key, and anonymous ones per address (default 256 each). */
  readonly wsMaxConnections?: { readonly perKey?: number; readonly perAddress?: number };
}

/** How long a shutdown waits for connections whose requests are not answered yet before cutting them. */
const SHUTDOWN_GRACE_MS = 2_000;

export async function startServer(config: ServerConfig, options: StartOptions = {}): Promise<RunningServer> {
  const logger = options.logger ?? pino({ level: config.logLevel, base: { service: 'gx3-server' } });
  try {
    makeDirectory(config.dataDir);
  } catch (err) {
    throw new ConfigError('INVALID_CONFIG', `cannot create the data directory ${config.dataDir}: ${(err as Error).message}`, { cause: err });
  }
  const demo = config.apiKeys === undefined;
  const apiKeys = config.apiKeys ?? demoKeys(config.dataDir).keys;
  const keys = new KeyStore(apiKeys);

  const bus: Bus = config.bus === 'memory' ? new MemoryBus() : await NatsJetStreamBus.connect({ servers: config.bus, streamPrefix: config.natsStreamPrefix, subjectPrefix: config.natsSubjectPrefix });
  let engine: Engine;
  try {
    engine = await Engine.open({
      dataDir: config.dataDir,
      symbols: config.instruments.map((i) => ({ symbol: i.symbol, minPrice: i.minPrice, maxPrice: i.maxPrice, maxQty: i.maxQty })),
      durability: config.durability,
      codec: config.codec,
      bus,
      // A bug in something that follows the engine's durable events (the feed, the WebSocket
      // broadcast) is logged; the engine and the other listeners go on.
      onListenerError: (err, symbol) => {
        logger.error({ err, symbol }, 'a listener of durable events failed');
      },
      // Logged once here; the clients' answers say HALTED without the I/O error's details (paths).
      onHalt: (err, symbol) => {
        logger.error({ err, symbol }, 'the symbol halted after an I/O error: it takes no commands until the server is restarted');
      },
      // The publishers retry by themselves; each failure is logged (and /health and /metrics show a failing one).
      publisher: {
        onError: (err) => {
          logger.warn({ err, code: (err as { code?: unknown }).code }, 'publishing events to the bus failed; retrying');
        },
      },
      ...options.engine,
    });
  } catch (err) {
    await bus.close();
    // The engine's configuration errors are about the instruments (a symbol's name, or limits other
    // than those its logs were written with) or the codec (not the one the logs were written
    // with): a configuration error naming the setting (exit 2).
    if (err instanceof EngineError && err.code === 'INVALID_CONFIG') {
      const setting =
        err.option === undefined
          ? 'instruments (GX3_INSTRUMENTS / --instruments)'
          : err.option === 'codec'
            ? 'codec (GX3_CODEC / --codec)'
            : err.option === 'dataDir'
              ? 'dataDir (GX3_DATA_DIR / --data-dir)'
              : err.option === 'durability'
                ? 'durability (GX3_DURABILITY / --durability)'
                : `the engine's ${err.option} option`;
      throw new ConfigError('INVALID_CONFIG', `${setting}: ${err.message}`, { cause: err });
    }
    throw err;
  }
  for (const symbol of engine.symbols) {
    const actor = engine.actor(symbol);
    const r = actor?.recovery;
    if (r) logger.info({ symbol, ...r }, 'recovered');
    if (actor?.cursorReset) {
      logger.warn({ symbol, ...actor.cursorReset, history: actor.outbox.history }, 'events already published were lost (the publisher cursor was past the recovered outbox): cursor moved back, new outbox history');
    }
  }
  // From here on a failure (the gateway's feed cannot read the outbox's history, the port is in
  // use) closes what was opened, so that an embedding program can start again in the same process:
  // the engine (and its lock on the data directory), the bus, the WebSocket heartbeat.
  let ready = false;
  const made: { gateway?: Gateway; ws?: WsApi } = {};
  const compose = async (): Promise<{ gateway: Gateway; ws: WsApi; app: ReturnType<typeof buildHttp> }> => {
    const metrics = new Metrics(engine);
    const gateway = new Gateway(engine, config, (id) => keys.userById(id)?.name ?? `user-${id}`, metrics, {
      ...(options.engine?.io === undefined ? {} : { io: options.engine.io }),
      onFeedFailure: (symbol, err) => {
        metrics.failedFeeds.add(symbol);
        logger.error({ err, symbol }, 'the market data of the symbol stopped (its outbox could not be read): only cancels are taken until a restart');
      },
    });
    made.gateway = gateway;
    const limiter = new RateLimiter(config.rateLimit, config.rateBurst);
    const app = buildHttp({ gateway, keys, limiter, metrics, logger, bodyLimit: config.bodyLimit, requestTimeoutMs: config.requestTimeoutMs, ready: () => ready });
    const ws = new WsApi({
      gateway,
      keys,
      limiter,
      metrics,
      logger,
      maxPayload: config.bodyLimit,
      frameRate: { rate: config.rateLimit, burst: config.rateBurst },
      ready: () => ready,
      heartbeatMs: config.wsHeartbeatMs,
      ...(options.wsMaxBufferedBytes === undefined ? {} : { maxBufferedBytes: options.wsMaxBufferedBytes }),
      ...(options.wsMaxConnections?.perKey === undefined ? {} : { maxConnectionsPerKey: options.wsMaxConnections.perKey }),
      ...(options.wsMaxConnections?.perAddress === undefined ? {} : { maxConnectionsPerAddress: options.wsMaxConnections.perAddress }),
    });
    made.ws = ws;
    app.server.on('upgrade', (req, socket, head) => {
      ws.handleUpgrade(req, socket, head);
    });
    try {
      await app.listen({ host: config.host, port: config.port });
    } catch (err) {
      // A setting the server cannot use (a port in use, an address this host does not have): a
      // configuration error naming the settings, with the system's error as its cause.
      throw new ConfigError('INVALID_CONFIG', `cannot listen on ${config.host}:${config.port} (host GX3_HOST / --host, port GX3_PORT / --port): ${(err as Error).message}`, {
        cause: err,
      });
    }
    return { gateway, ws, app };
  };
  let parts: { gateway: Gateway; ws: WsApi; app: ReturnType<typeof buildHttp> };
  try {
    parts = await compose();
  } catch (err) {
    made.ws?.close();
    made.gateway?.close();
    await engine.close().catch(() => undefined);
    await bus.close().catch(() => undefined);
    throw err;
  }
  const { gateway, ws, app } = parts;
  ready = true;
  const port = (app.server.address() as AddressInfo).port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      ready = false;
      gateway.stopIntake();
      // In-flight HTTP requests finish (their commands were taken and become durable below).
      const httpClosed = app.close();
      // Amendments under way finish first: the second command of one may not be submitted yet.
      await gateway.drained();
      await engine.close();
      // The WebSocket connections are closed before waiting for the HTTP server: its close waits
      // for every connection it accepted, upgraded ones included, so it would wait forever.
      ws.close();
      // Connections whose requests were answered above: their answers said `connection: close`,
      // and one still idle is closed here (the HTTP server's close waits for every connection).
      app.server.closeIdleConnections();
      // A connection whose request never reached a handler (a client that sent its headers and
      // not its whole body) would hold the server open: after a grace period it is cut.
      let grace: NodeJS.Timeout | undefined;
      const cut = new Promise<void>((resolve) => {
        grace = setTimeout(resolve, SHUTDOWN_GRACE_MS);
      });
      await Promise.race([httpClosed, cut]);
      clearTimeout(grace);
      app.server.closeAllConnections();
      // WebSocket clients that did not answer the closing handshake: the HTTP server waits for them too.
      ws.terminate();
      await httpClosed;
      gateway.close();
      await bus.close();
      logger.info('stopped');
    })();
    return closing;
  };
  return { url, port, gateway, engine, bus, apiKeys, demo, close };
}
