// The REST API on fastify: order entry and queries for authenticated users, public market data,
// health and metrics. Bodies are JSON only, checked by JSON schema (no type coercion, no extra
// fields) and then by the shared request checks; every error is `{ error: { code, message } }`.

import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type RawServerDefault } from 'fastify';
import type { Logger } from 'pino';
import type { KeyStore, RateLimiter, User } from './auth.js';
import { orderResultJson } from './answer-json.js';
import { ApiError } from './errors.js';
import type { Gateway, OrderResult } from './gateway.js';
import type { Metrics } from './metrics.js';
import { CLIENT_ORDER_ID, invalid, parseAmendOrder, parseOrderId, parsePlaceOrder, queryInt, roundedMessage } from './requests.js';
import { fractionalNumber } from '@gx3/codecs';
import type { Publisher } from '@gx3/outbox-publisher';

export interface HttpDeps {
  readonly gateway: Gateway;
  readonly keys: KeyStore;
  readonly limiter: RateLimiter;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly bodyLimit: number;
  /** Time a client has to send a whole request (headers and body), in milliseconds (default 30 s). */
  readonly requestTimeoutMs?: number;
  /** Readiness: false while starting or shutting down. */
  readonly ready: () => boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    user: User | null;
  }
}

const positive = { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } as const;

/** The JSON schema of a POST /v1/orders body (the load suite's bare baseline checks bodies with it too). */
export const placeOrderSchema = {
  type: 'object',
  required: ['symbol', 'side', 'type', 'qty'],
  additionalProperties: false,
  properties: {
    symbol: { type: 'string', minLength: 1, maxLength: 32 },
    side: { type: 'string', enum: ['buy', 'sell'] },
    type: { type: 'string', enum: ['limit', 'market'] },
    price: positive,
    qty: positive,
    tif: { type: 'string', enum: ['GTC', 'IOC', 'FOK', 'POST'] },
    stp: { type: 'string', enum: ['NONE', 'CANCEL_NEWEST', 'CANCEL_OLDEST', 'CANCEL_BOTH', 'DECREMENT_CANCEL'] },
    clientOrderId: { type: 'string', pattern: CLIENT_ORDER_ID.source },
  },
} as const;

const amendOrderSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: { qty: positive, price: positive },
} as const;

const orderParams = {
  type: 'object',
  required: ['symbol', 'orderId'],
  properties: { symbol: { type: 'string', maxLength: 64 }, orderId: { type: 'string', maxLength: 32 } },
} as const;

const JSON_TYPE = 'application/json; charset=utf-8';

/** A command's answer as the body of the reply (its JSON written by answer-json.ts). */
function answer(reply: FastifyReply, result: Promise<OrderResult>): Promise<string> {
  return result.then((r) => {
    void reply.type(JSON_TYPE);
    return orderResultJson(r);
  });
}

/** A route handler as fastify wants it (async, so that a thrown ApiError becomes the error reply). */
function handle<T>(fn: (req: FastifyRequest, reply: FastifyReply) => T | Promise<T>): (req: FastifyRequest, reply: FastifyReply) => Promise<T> {
  return async (req, reply) => await fn(req, reply);
}

export function buildHttp(deps: HttpDeps): FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, Logger> {
  const { gateway, keys, limiter, metrics } = deps;
  const requestTimeout = deps.requestTimeoutMs ?? 30_000;
  const app = Fastify({
    loggerInstance: deps.logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.bodyLimit,
    // A client that sends its request slowly (or never finishes it) holds a connection and its
    // buffers: past the timeout it gets 408 and the connection is closed. It must reach Node's
    // server through its constructor: fastify's own requestTimeout sets it after, and on Node 20 a
    // timeout set after construction covers the headers only, not a body that never arrives. Node
    // checks the pending requests at the interval (by default every 30 s, too coarse for a short timeout).
    requestTimeout,
    http: { requestTimeout, connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(requestTimeout / 4))) },
    // What Node's HTTP parser refuses (malformed requests, headers too large, a request too slow)
    // is answered in the API's error format too.
    clientErrorHandler: (err, socket) => {
      clientError(err, socket, metrics);
    },
    // What fastify refuses before routing (a path whose percent-encoding is malformed): in the API's
    // format, and counted (no route's hooks run for it).
    frameworkErrors: (err, req, reply) => {
      const api = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? new ApiError('URI_TOO_LONG', err.message) : new ApiError('BAD_REQUEST', err.message);
      metrics.httpRequest(req.method, 'unmatched', api.status);
      sendError(reply, api);
    },
    // Shutting down is answered below, in the API's own error format.
    return503OnClosing: false,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
  });
  // JSON bodies only: anything else is 415.
  app.removeContentTypeParser('text/plain');
  // JSON bodies parsed with JSON.parse, which keeps a `__proto__` member as an own property (it
  // never sets a prototype): such a member is then a field the request does not have (VALIDATION
  // naming it), not malformed JSON as fastify's parser, which refuses it, would say. The routes'
  // schemas refuse every member they do not list (`constructor` too) before any handler runs.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    let text = body as string;
    // A byte order mark some clients put first (as fastify's parser did, it is skipped).
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (text.length === 0) {
      done(new ApiError('MALFORMED_JSON', 'the body is empty; send a JSON object'), undefined);
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      done(new ApiError('MALFORMED_JSON', `the body is not valid JSON: ${(err as Error).message}`), undefined);
      return;
    }
    if (typeof value === 'object' && value !== null && Object.hasOwn(value, '__proto__')) {
      done(invalid('__proto__', 'is not a field of this request'), undefined);
      return;
    }
    // A number JSON.parse reads as an integer although it is not one (9007199254740990.5 is read as
    // 9007199254740990): refused, not taken at a value the client did not send.
    const rounded = fractionalNumber(text, true);
    if (rounded !== undefined) {
      done(invalid(rounded.member, roundedMessage(rounded.token)), undefined);
      return;
    }
    done(null, value);
  });
  app.decorateRequest('user', null);

  app.setErrorHandler((err: FastifyError | ApiError, req, reply) => {
    const api = toApiError(err);
    // A 500 only (a bug, or an engine failure): a 503 BACKPRESSURE, HALTED or SHUTTING_DOWN is an
    // answer, and logging each would let clients flood the log (a halt is logged once, by itself).
    if (api.status === 500) req.log.error({ err }, 'request failed');
    sendError(reply, api);
  });
  app.setNotFoundHandler((req, reply) => {
    sendError(reply, new ApiError('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0] ?? ''}`));
  });
  // Shutting down (not ready once it listened): requests other than health and metrics are refused
  // with 503 SHUTTING_DOWN, and the answer to the last request in flight on a connection closes
  // it, so that a keep-alive client whose request was in flight when the shutdown began does not
  // keep the server from stopping. Only the last: Node ends a connection once an answer that says
  // `connection: close` is sent, and the requests a client pipelined behind it (taken, and carried
  // out during the drain) would lose their answers.
  // Each connection's requests are numbered as they are read (a client may pipeline several), and
  // Node sends their answers in that order: the one that closes the connection is the answer to
  // the last request read, whichever answer is made first.
  const readOn = new WeakMap<object, number>();
  const numberOf = new WeakMap<object, number>();
  app.addHook('onRequest', (req, _reply, done) => {
    const socket = req.raw.socket;
    const n = (readOn.get(socket) ?? 0) + 1;
    readOn.set(socket, n);
    numberOf.set(req.raw, n);
    if (!deps.ready() && !req.url.startsWith('/health') && !req.url.startsWith('/metrics')) {
      done(new ApiError('SHUTTING_DOWN', 'the server is shutting down', 5));
      return;
    }
    done();
  });
  app.addHook('onSend', (req, reply, payload, done) => {
    if (!deps.ready() && numberOf.get(req.raw) === readOn.get(req.raw.socket)) void reply.header('connection', 'close');
    done(null, payload);
  });
  app.addHook('onResponse', (req, reply, done) => {
    metrics.httpRequest(req.method, req.routeOptions.url ?? 'unmatched', reply.statusCode);
    done();
  });

  // Order routes authenticate and rate-limit first, before the body is read or checked.
  const auth = (req: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void => {
    try {
      let user: User;
      try {
        user = keys.authenticateFrom(req.headers['x-api-key'], req.socket.remoteAddress);
      } catch (err) {
        // Unknown keys from one address past their limit: refused by a rate limit too.
        if (err instanceof ApiError && err.code === 'RATE_LIMITED') metrics.rateLimited.inc();
        throw err;
      }
      try {
        limiter.take(req.headers['x-api-key'] as string);
      } catch (err) {
        metrics.rateLimited.inc();
        throw err;
      }
      req.user = user;
      done();
    } catch (err) {
      done(err as Error);
    }
  };
  // A DELETE or GET without a body may still say `content-type: application/json` (many clients
  // always send it): it is not a malformed body.
  const noBody = (req: FastifyRequest, _reply: FastifyReply, done: () => void): void => {
    const len = req.headers['content-length'];
    if ((len === undefined || len === '0') && req.headers['transfer-encoding'] === undefined) delete req.headers['content-type'];
    done();
  };
  const authenticate = (req: FastifyRequest): User => {
    if (req.user === null) throw new ApiError('UNAUTHORIZED', 'missing API key: send it in the x-api-key header');
    return req.user;
  };

  app.post('/v1/orders', { onRequest: auth, schema: { body: placeOrderSchema } }, handle((req, reply) => {
    const user = authenticate(req);
    return answer(reply, gateway.place(user, parsePlaceOrder(req.body, gateway.instruments)));
  }));

  app.delete('/v1/orders/:symbol/:orderId', { onRequest: [noBody, auth], schema: { params: orderParams } }, handle((req, reply) => {
    const user = authenticate(req);
    const { symbol, orderId } = req.params as { symbol: string; orderId: string };
    return answer(reply, gateway.cancel(user, symbol, parseOrderId(orderId)));
  }));

  app.patch('/v1/orders/:symbol/:orderId', { onRequest: auth, schema: { params: orderParams, body: amendOrderSchema } }, handle((req, reply) => {
    const user = authenticate(req);
    const { symbol, orderId } = req.params as { symbol: string; orderId: string };
    const id = parseOrderId(orderId);
    const amend = parseAmendOrder(req.body, gateway.instrument(symbol));
    // A quantity alone may take two engine commands (a reduction, then a replace): a second token.
    // (charged without refusing: a burst of 1 must still allow it).
    if (amend.price === undefined) limiter.charge(req.headers['x-api-key'] as string, 1);
    return answer(reply, gateway.amend(user, symbol, id, amend));
  }));

  app.get('/v1/orders/:symbol/:orderId', { onRequest: [noBody, auth], schema: { params: orderParams } }, handle((req) => {
    const user = authenticate(req);
    const { symbol, orderId } = req.params as { symbol: string; orderId: string };
    return { order: gateway.getOrder(user, symbol, parseOrderId(orderId)) };
  }));

  app.get('/v1/book/:symbol', handle((req) => {
    const { symbol } = req.params as { symbol: string };
    const depth = queryInt((req.query as Record<string, unknown>).depth, 'depth', 20, 1000);
    return gateway.book(symbol, depth);
  }));

  app.get('/v1/trades/:symbol', handle((req) => {
    const { symbol } = req.params as { symbol: string };
    const limit = queryInt((req.query as Record<string, unknown>).limit, 'limit', 100, 1000);
    return { symbol, trades: gateway.trades(symbol, limit) };
  }));

  app.get('/v1/instruments', handle(() => ({ instruments: [...gateway.instruments.values()] })));

  const health = (): { status: string; live: boolean; ready: boolean; symbols: Record<string, unknown> } => {
    const symbols: Record<string, unknown> = {};
    let halted = false;
    for (const symbol of gateway.engine.symbols) {
      const a = gateway.engine.actor(symbol);
      const feedError = gateway.feeds.get(symbol)?.error;
      if (a?.halted !== undefined || feedError !== undefined) halted = true;
      symbols[symbol] = {
        halted: a?.halted !== undefined,
        ...(a?.halted ? { haltedBy: a.halted.message } : {}),
        ...(feedError ? { feedError: feedError.message } : {}),
        processedSeq: a?.processedSeq,
        durableSeq: a?.durableSeq,
        queued: a?.queued,
        ...publisherHealth(gateway.engine.publisher(symbol)),
      };
    }
    const ready = deps.ready() && !halted;
    return { status: halted ? 'halted' : ready ? 'ok' : 'not_ready', live: true, ready, symbols };
  };
  app.get('/health', handle((_req, reply) => {
    const h = health();
    if (!h.ready) void reply.code(503).header('retry-after', '5');
    return h;
  }));
  app.get('/health/live', handle(() => ({ live: true })));
  app.get('/health/ready', handle((_req, reply) => {
    const h = health();
    if (!h.ready) void reply.code(503).header('retry-after', '5');
    return { ready: h.ready, status: h.status };
  }));

  app.get('/metrics', handle((_req, reply) => {
    void reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  }));

  return app;
}

/**
 * A symbol's publisher as /health shows it: how far the bus is behind and, while publishing fails,
 * the last error. A failing bus does not make the server unready: the events wait in the outbox.
 */
function publisherHealth(p: Publisher | undefined): { publisher?: Record<string, unknown> } {
  if (p === undefined) return {};
  const s = p.stats();
  const e = s.consecutiveFailures > 0 ? s.lastError : undefined;
  return {
    publisher: {
      lastEventSeq: s.lastEventSeq,
      lagBytes: s.lagBytes,
      consecutiveFailures: s.consecutiveFailures,
      ...(e === undefined ? {} : { lastError: { code: (e as { code?: unknown }).code ?? 'ERROR', message: e.message } }),
    },
  };
}

/** Answers what Node's HTTP server refused before any route saw it, then closes the connection. */
function clientError(err: Error & { code?: string }, socket: Duplex, metrics: Metrics): void {
  // A connection reset: nothing to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const api =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? new ApiError('REQUEST_TIMEOUT', 'the request was not received whole in time (requestTimeoutMs)')
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? new ApiError('HEADERS_TOO_LARGE', 'the request headers are too large')
        : new ApiError('BAD_REQUEST', `malformed HTTP request${err.code === undefined ? '' : ` (${err.code})`}`);
  const body = JSON.stringify(api.toJSON());
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  // Counted as the answers fastify gives before routing are (the parser did not get a method).
  metrics.httpRequest('UNKNOWN', 'unmatched', api.status);
  socket.end(`HTTP/1.1 ${api.status} ${STATUS_CODES[api.status] ?? ''}\r\nConnection: close\r\nContent-Type: ${JSON_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`, () => {
    socket.destroy();
  });
}

function sendError(reply: FastifyReply, err: ApiError): void {
  if (err.retryAfter !== undefined) void reply.header('retry-after', String(err.retryAfter));
  void reply.code(err.status).type('application/json').send(err.toJSON());
}

/** Fastify's own errors (schema, content type, body) as the API's. */
export function toApiError(err: FastifyError | ApiError | Error): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as FastifyError;
  if (e.validation !== undefined && e.validation.length > 0) {
    const v = e.validation[0] as { instancePath?: string; message?: string; params?: Record<string, unknown> };
    const where = e.validationContext ?? 'body';
    let field = (v.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
    const params = v.params ?? {};
    if (typeof params.missingProperty === 'string') field = field === '' ? params.missingProperty : `${field}.${params.missingProperty}`;
    if (typeof params.additionalProperty === 'string') {
      return new ApiError('VALIDATION', `${field === '' ? '' : `${field}.`}${params.additionalProperty}: is not a field of this request`);
    }
    if (typeof params.missingProperty === 'string') return new ApiError('VALIDATION', `${field}: is required`);
    return new ApiError('VALIDATION', `${field === '' ? where : field}: ${v.message ?? 'is invalid'}`);
  }
  switch (e.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_TYPE':
      return new ApiError('UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('BODY_TOO_LARGE', e.message);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError('MALFORMED_JSON', 'the body is empty; send a JSON object');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ApiError('MALFORMED_JSON', `the body is not valid JSON: ${e.message}`);
    default:
      break;
  }
  if (err instanceof SyntaxError || (e.statusCode === 400 && /JSON/i.test(e.message))) return new ApiError('MALFORMED_JSON', `the body is not valid JSON: ${e.message}`);
  if (e.statusCode === 413) return new ApiError('BODY_TOO_LARGE', e.message);
  if (e.statusCode === 415) return new ApiError('UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json');
  if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) return new ApiError('BAD_REQUEST', e.message);
  if (e.statusCode === 503) return new ApiError('SHUTTING_DOWN', 'the server is shutting down', 5);
  return new ApiError('INTERNAL', 'internal error');
}
