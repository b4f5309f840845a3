// The WebSocket API at /v1/ws: order entry with request ids (one order or an array of orders per
// frame), cancels and amendments, and subscriptions to public trades, the L2 book (a snapshot, then
// updates numbered by the book's sequence so a client can detect a gap and resubscribe) and the
// user's own order updates. The API key comes in the `x-api-key` header of the upgrade request, as
// `?apiKey=` in the URL, or in a first `{"op":"auth","key":...}` frame; market data needs no key.

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { RateLimiter, type KeyStore, type User } from './auth.js';
import { orderResultMembers } from './answer-json.js';
import { BookViews } from './book-views.js';
import { ApiError } from './errors.js';
import type { FeedUpdate } from './event-feed.js';
import type { Gateway, OrderResult } from './gateway.js';
import type { Metrics } from './metrics.js';
import { invalid, parseAmendOrder, parsePlaceOrder, positiveInt, roundedMessage } from './requests.js';
import { fractionalNumber } from '@gx3/codecs';

export interface WsDeps {
  readonly gateway: Gateway;
  readonly keys: KeyStore;
  readonly limiter: RateLimiter;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly maxPayload: number;
  /**
   * A connection whose unsent answers exceed this many bytes is dropped (default 64 MiB): a client
   * that sends and never reads would otherwise hold its answers in the server's memory without end.
   */
  readonly maxBufferedBytes?: number;
  /**
   * Each connection's own limit on the frames the key's limit does not count (ping, auth,
   * subscribe, unsubscribe), anonymous connections included: requests a second and burst
   * (default: the key's, 5,000 and 10,000). A book subscription costs one more per 1,000 levels.
   */
  readonly frameRate?: { readonly rate: number; readonly burst: number };
  /**
   * WebSocket connections one API key may hold, and anonymous ones (market data without a key) one
   * address may hold (default 256 each): each connection may hold up to maxBufferedBytes of answers.
   */
  readonly maxConnectionsPerKey?: number;
  readonly maxConnectionsPerAddress?: number;
  /** False while shutting down: an upgrade is then refused 503 SHUTTING_DOWN (default: always ready). */
  readonly ready?: () => boolean;
  /**
   * Every this many milliseconds each connection is pinged; one that has sent nothing (no pong, no
   * frame) since the previous ping is cut (default 30,000; 0: no heartbeat). A peer that vanished
   * without closing (its host gone, a cable pulled) would otherwise keep its connection, and one of
   * its key's connection slots, for ever.
   */
  readonly heartbeatMs?: number;
}

/** Failed `auth` frames after which a connection is closed (1008): keys cannot be guessed on one connection. */
const MAX_AUTH_FAILURES = 5;

/** A client whose unsent data exceeds this loses its market data subscriptions (it must resubscribe). */
const SLOW_CONSUMER_BYTES = 16 * 1024 * 1024;
const MAX_BUFFERED_BYTES = 64 * 1024 * 1024;
const MAX_ORDERS_PER_FRAME = 1000;
const MAX_BOOK_DEPTH = 10_000;

interface Client {
  readonly ws: WebSocket;
  user: User | undefined;
  key: string | undefined;
  readonly trades: Set<string>;
  /** Book subscriptions: symbol → depth. */
  readonly books: Map<string, number>;
  orders: boolean;
  corked: boolean;
  /** The connection's own bucket for the frames the key's limit does not count. */
  readonly frames: RateLimiter;
  authFailures: number;
  /**
   * How the frame being handled is counted: `connection` (one of the connection's own tokens,
   * given back once the key's limit counts it), or `key` (an order, cancel or amend of an
   * authenticated connection: the key's limit alone; `keyTaken` once it took its tokens).
   */
  frameCharge: 'connection' | 'key';
  keyTaken: boolean;
  /** Where it counts: its key's connections, or (anonymous) its address's. */
  counted: string;
  /** The client's address (failed authentications count against it). */
  readonly address: string | undefined;
  /** Something (a pong, a frame) came from the client since the last heartbeat's ping. */
  alive: boolean;
}

type Reply = Record<string, unknown>;

export class WsApi {
  private readonly wss: WebSocketServer;
  private readonly clients = new Set<Client>();
  private readonly bookViews: BookViews;
  private readonly unsubscribeFeeds: (() => void)[] = [];
  /** Messages received and sent (added to the metrics when they are scraped). */
  private inCount = 0;
  private outCount = 0;
  private readonly maxBuffered: number;

  private heartbeat: NodeJS.Timeout | undefined;

  constructor(private readonly deps: WsDeps) {
    this.maxBuffered = deps.maxBufferedBytes ?? MAX_BUFFERED_BYTES;
    this.bookViews = new BookViews((symbol, depth) => deps.gateway.book(symbol, depth));
    this.wss = new WebSocketServer({ noServer: true, maxPayload: deps.maxPayload });
    const heartbeat = deps.heartbeatMs ?? 30_000;
    if (heartbeat > 0) {
      this.heartbeat = setInterval(() => {
        this.beat();
      }, heartbeat);
      this.heartbeat.unref();
    }
    deps.metrics.onCollect(() => {
      deps.metrics.wsMessages.inc({ direction: 'in' }, this.inCount);
      deps.metrics.wsMessages.inc({ direction: 'out' }, this.outCount);
      this.inCount = 0;
      this.outCount = 0;
    });
    for (const feed of deps.gateway.feeds.values()) {
      this.unsubscribeFeeds.push(
        feed.onUpdate((u) => {
          this.broadcast(u);
        }),
      );
    }
  }

  /** Connections per key (`key:<key>`) and anonymous connections per address (`addr:<address>`). */
  private readonly connections = new Map<string, number>();

  private connectionLimit(counted: string): number {
    return counted.startsWith('key:') ? (this.deps.maxConnectionsPerKey ?? 256) : (this.deps.maxConnectionsPerAddress ?? 256);
  }

  private count(counted: string, delta: number): void {
    const n = (this.connections.get(counted) ?? 0) + delta;
    if (n <= 0) this.connections.delete(counted);
    else this.connections.set(counted, n);
  }

  /** Handles an HTTP upgrade request (the server's `upgrade` event). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      // A target that is not a URL path (`//`, `http://[`): no route (a throw here would crash the server).
      refuse(socket, 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    if (url.pathname !== '/v1/ws') {
      refuse(socket, 'HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    // Shutting down: refused as every other request then is (the API's format, with Retry-After).
    if (this.deps.ready?.() === false) {
      const e = new ApiError('SHUTTING_DOWN', 'the server is shutting down', 5);
      const body = JSON.stringify(e.toJSON());
      refuse(socket, `HTTP/1.1 503 Service Unavailable\r\nRetry-After: ${e.retryAfter ?? 5}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      return;
    }
    const key = (req.headers['x-api-key'] as string | undefined) ?? url.searchParams.get('apiKey') ?? undefined;
    let user: User | undefined;
    if (key !== undefined) {
      try {
        user = this.deps.keys.authenticateFrom(key, (req.socket as { remoteAddress?: string } | undefined)?.remoteAddress);
      } catch (err) {
        const e = err as ApiError;
        if (e.code === 'RATE_LIMITED') this.deps.metrics.rateLimited.inc();
        const body = JSON.stringify(e.toJSON());
        const status = e.status === 429 ? `429 Too Many Requests\r\nRetry-After: ${e.retryAfter ?? 1}` : '401 Unauthorized';
        refuse(socket, `HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
        return;
      }
    }
    const counted = key !== undefined ? `key:${key}` : `addr:${(req.socket as { remoteAddress?: string } | undefined)?.remoteAddress ?? ''}`;
    if ((this.connections.get(counted) ?? 0) >= this.connectionLimit(counted)) {
      const body = JSON.stringify(tooManyConnections(counted).toJSON());
      refuse(socket, `HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.connected(ws, user, key, counted, (req.socket as { remoteAddress?: string } | undefined)?.remoteAddress);
    });
  }

  /** The heartbeat: cuts the connections that sent nothing since the last ping, pings the others. */
  private beat(): void {
    for (const c of this.clients) {
      if (c.ws.readyState !== WebSocket.OPEN) continue;
      if (!c.alive) {
        this.deps.logger.info({ user: c.user?.name, address: c.address }, 'websocket client cut: no answer to the heartbeat');
        c.ws.terminate();
        continue;
      }
      c.alive = false;
      c.ws.ping();
    }
  }

  /** Closes every connection (1001, going away). */
  close(): void {
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    for (const u of this.unsubscribeFeeds) u();
    for (const c of this.clients) c.ws.close(1001, 'server shutting down');
    this.wss.close();
  }

  /** Drops every connection still open (a client that never answered the closing handshake). */
  terminate(): void {
    for (const c of this.clients) c.ws.terminate();
  }

  private connected(ws: WebSocket, user: User | undefined, key: string | undefined, counted: string, address: string | undefined): void {
    this.count(counted, 1);
    const rate = this.deps.frameRate ?? { rate: 5000, burst: 10_000 };
    const client: Client = {
      ws,
      user,
      key,
      trades: new Set(),
      books: new Map(),
      orders: false,
      corked: false,
      frames: new RateLimiter(rate.rate, rate.burst, undefined, 'connection'),
      authFailures: 0,
      frameCharge: 'connection',
      keyTaken: false,
      counted,
      address,
      alive: true,
    };
    this.clients.add(client);
    this.deps.metrics.wsConnections.inc();
    ws.on('pong', () => {
      client.alive = true;
    });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      client.alive = true;
      // A connection being closed (after 5 failed authentications, or by a shutdown) carries out
      // nothing more, though its client may go on sending until it answers the close.
      if (ws.readyState !== WebSocket.OPEN) return;
      this.inCount++;
      if (isBinary) {
        if (this.chargeFrame(client, undefined)) this.send(client, { error: new ApiError('UNSUPPORTED_MEDIA_TYPE', 'send text frames of JSON').toJSON().error });
        return;
      }
      this.onMessage(client, data);
    });
    ws.on('close', () => {
      this.clients.delete(client);
      this.count(client.counted, -1);
      this.dropBooks(client);
      this.deps.metrics.wsConnections.dec();
    });
    ws.on('error', (err) => {
      this.deps.logger.debug({ err }, 'websocket error');
    });
  }

  /**
   * Every frame costs one of the connection's own tokens, whatever it holds (malformed ones, unknown
   * ops and orders refused before the key's limit included): all are answered. False (answered
   * RATE_LIMITED, with the frame's id if it has one) when the connection has none left.
   */
  private chargeFrame(client: Client, id: unknown): boolean {
    try {
      this.frameLimit(client, 1);
      return true;
    } catch (err) {
      this.replyError(client, id, err);
      return false;
    }
  }

  private onMessage(client: Client, data: RawData): void {
    let msg: unknown;
    let text: string;
    try {
      text = textOf(data);
      msg = JSON.parse(text);
    } catch (err) {
      if (this.chargeFrame(client, undefined)) this.send(client, { error: { code: 'MALFORMED_JSON', message: `the frame is not valid JSON: ${(err as Error).message}` } });
      return;
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
      if (this.chargeFrame(client, undefined)) this.send(client, { error: { code: 'VALIDATION', message: 'a frame must be a JSON object with an op' } });
      return;
    }
    const m = msg as Record<string, unknown>;
    const id = m.id;
    if (id !== undefined && typeof id !== 'string' && !(typeof id === 'number' && Number.isFinite(id))) {
      if (this.chargeFrame(client, undefined)) this.send(client, { error: { code: 'VALIDATION', message: 'id: must be a string or a number' } });
      return;
    }
    // An order, cancel or amend of an authenticated connection is the key's to count (so that the
    // connection's own tokens, spent on market data, never hold a trader's orders or cancels back);
    // every other frame takes one of the connection's own.
    const keyOp = client.key !== undefined && (m.op === 'order' || m.op === 'cancel' || m.op === 'amend');
    client.frameCharge = keyOp ? 'key' : 'connection';
    client.keyTaken = false;
    if (!keyOp && !this.chargeFrame(client, id)) return;
    // A number JSON.parse reads as an integer although it is not one: the frame is refused whole
    // (which order of an array holds it cannot be told from the parsed frame), nothing in it taken
    // at a value the client did not send. (A request id need not be an integer.)
    const rounded = fractionalNumber(text, true, 'id');
    if (rounded !== undefined) {
      this.replyError(client, id, this.chargeRefusedKeyOp(client) ?? invalid(rounded.member === rounded.field ? rounded.field : `${rounded.field}.${rounded.member}`, roundedMessage(rounded.token)));
      return;
    }
    try {
      this.dispatch(client, m, id);
    } catch (err) {
      this.replyError(client, id, this.chargeRefusedKeyOp(client) ?? err);
    }
  }

  /**
   * An order, cancel or amend refused before it took the key's tokens still costs the key one: the
   * key's RATE_LIMITED (the answer instead of the refusal) when it has none left.
   */
  private chargeRefusedKeyOp(client: Client): unknown {
    if (client.frameCharge !== 'key' || client.keyTaken) return undefined;
    try {
      this.rateLimit(client, 1);
      return undefined;
    } catch (err) {
      return err;
    }
  }

  private dispatch(client: Client, m: Record<string, unknown>, id: unknown): void {
    const { gateway } = this.deps;
    switch (m.op) {
      case 'ping':
        onlyFields(m, ['op', 'id']);
        this.send(client, { id, pong: true });
        return;
      case 'auth': {
        onlyFields(m, ['op', 'id', 'key']);
        let user: User;
        try {
          user = this.deps.keys.authenticateFrom(m.key, client.address);
        } catch (err) {
          if (err instanceof ApiError && err.code === 'RATE_LIMITED') this.deps.metrics.rateLimited.inc();
          if (++client.authFailures >= MAX_AUTH_FAILURES) {
            this.replyError(client, id, err);
            client.ws.close(1008, 'too many failed authentications');
            return;
          }
          throw err;
        }
        // The connection now counts as one of the key's (refused if the key holds its limit already).
        const counted = `key:${m.key as string}`;
        if (counted !== client.counted) {
          if ((this.connections.get(counted) ?? 0) >= this.connectionLimit(counted)) throw tooManyConnections(counted);
          this.count(client.counted, -1);
          this.count(counted, 1);
          client.counted = counted;
        }
        client.user = user;
        client.key = m.key as string;
        this.send(client, { id, ok: true, user: user.name });
        return;
      }
      case 'order': {
        // A field beside the order (a misplaced stp or clientOrderId) would be dropped silently.
        onlyFields(m, ['op', 'id', 'order']);
        const user = this.requireUser(client);
        if (Array.isArray(m.order)) {
          const list = m.order as unknown[];
          if (list.length === 0 || list.length > MAX_ORDERS_PER_FRAME) throw invalid('order', `must hold 1..${MAX_ORDERS_PER_FRAME} orders`);
          this.rateLimit(client, list.length);
          // Each order's answer text goes in its slot as it settles; the last one sends the frame.
          const texts: string[] = new Array<string>(list.length);
          let left = list.length;
          const settled = (i: number, text: string): void => {
            texts[i] = text;
            if (--left === 0) this.sendRaw(client, `{${idMember(id)}"results":[${texts.join(',')}]}`);
          };
          for (let i = 0; i < list.length; i++) {
            let placed: Promise<OrderResult>;
            try {
              placed = gateway.place(user, parsePlaceOrder(list[i], gateway.instruments, `order[${i}].`));
            } catch (err) {
              this.logInternal(err);
              settled(i, errorText(err));
              continue;
            }
            placed.then(
              (r) => {
                settled(i, resultText(r));
              },
              (err: unknown) => {
                this.logInternal(err);
                settled(i, errorText(err));
              },
            );
          }
          return;
        }
        this.rateLimit(client, 1);
        this.answer(client, id, gateway.place(user, parsePlaceOrder(m.order, gateway.instruments, 'order.')));
        return;
      }
      case 'cancel': {
        const user = this.requireUser(client);
        this.rateLimit(client, 1);
        const { symbol, orderId } = target(m, ['op', 'id', 'symbol', 'orderId']);
        this.answer(client, id, gateway.cancel(user, symbol, orderId));
        return;
      }
      case 'amend': {
        const user = this.requireUser(client);
        this.rateLimit(client, 1);
        const { symbol, orderId } = target(m, ['op', 'id', 'symbol', 'orderId', 'qty', 'price']);
        const amend = parseAmendOrder({ ...(m.qty === undefined ? {} : { qty: m.qty }), ...(m.price === undefined ? {} : { price: m.price }) }, gateway.instrument(symbol));
        // A quantity alone may take two engine commands (a reduction, then a replace): once the
        // request is taken (valid), a second token, charged without refusing (a burst of 1 must
        // still allow it).
        if (m.price === undefined) this.deps.limiter.charge(client.key as string, 1);
        this.answer(client, id, gateway.amend(user, symbol, orderId, amend));
        return;
      }
      case 'subscribe':
      case 'unsubscribe':
        this.subscription(client, m, id, m.op === 'subscribe');
        return;
      default:
        throw invalid('op', 'must be one of ping, auth, order, cancel, amend, subscribe, unsubscribe');
    }
  }

  private subscription(client: Client, m: Record<string, unknown>, id: unknown, on: boolean): void {
    const { gateway } = this.deps;
    const channel = m.channel;
    onlyFields(m, channel === 'book' && on ? ['op', 'id', 'channel', 'symbol', 'depth'] : channel === 'orders' ? ['op', 'id', 'channel'] : ['op', 'id', 'channel', 'symbol']);
    if (channel === 'orders') {
      this.requireUser(client);
      client.orders = on;
      this.send(client, { id, ok: true, channel, subscribed: on });
      return;
    }
    if (channel !== 'trades' && channel !== 'book') throw invalid('channel', 'must be trades, book or orders');
    if (typeof m.symbol !== 'string') throw invalid('symbol', 'is required (a string)');
    const symbol = m.symbol;
    gateway.instrument(symbol);
    if (!on) {
      if (channel === 'trades') client.trades.delete(symbol);
      else this.dropBook(client, symbol);
      this.send(client, { id, ok: true, channel, symbol, subscribed: false });
      return;
    }
    if (channel === 'trades') {
      client.trades.add(symbol);
      this.send(client, { id, ok: true, channel, symbol, subscribed: true });
      return;
    }
    // The depth is checked before subscribing: a bad one must not leave a subscription without a snapshot.
    const depth = m.depth !== undefined ? positiveInt(m.depth, 'depth') : 1000;
    if (depth > MAX_BOOK_DEPTH) throw invalid('depth', `must be in 1..${MAX_BOOK_DEPTH}`);
    // A deep snapshot costs more: one more token per 1,000 levels (charged once the depth is known good).
    client.frames.charge('frames', Math.floor(depth / 1000));
    // A subscription at another depth replaces the symbol's first one.
    this.dropBook(client, symbol);
    client.books.set(symbol, depth);
    this.send(client, { id, ok: true, channel, symbol, subscribed: true });
    this.send(client, { type: 'book.snapshot', ...this.bookViews.snapshot(symbol, depth) });
  }

  private broadcast(u: FeedUpdate): void {
    if (this.clients.size === 0) return;
    let trades: string | undefined;
    for (const c of this.clients) {
      if (c.ws.readyState !== WebSocket.OPEN) continue;
      if (c.ws.bufferedAmount > SLOW_CONSUMER_BYTES && (c.trades.size > 0 || c.books.size > 0)) {
        // Market data only: its own order updates still reach it below.
        c.trades.clear();
        this.dropBooks(c);
        this.send(c, { error: { code: 'SLOW_CONSUMER', message: 'market data subscriptions dropped: the connection is not reading fast enough; resubscribe' } });
      }
      if (u.trades.length > 0 && c.trades.has(u.symbol)) {
        trades ??= JSON.stringify({
          type: 'trades',
          symbol: u.symbol,
          trades: u.trades.map((e) => ({ id: e.eventSeq, price: e.price, qty: e.qty, takerSide: e.takerSide, ts: e.ts })),
        });
        this.sendRaw(c, trades);
      }
      const depth = u.l2 === undefined ? undefined : c.books.get(u.symbol);
      if (u.l2 !== undefined && depth !== undefined) this.sendRaw(c, this.bookViews.update(u.symbol, depth, u.l2.seq));
      if (c.orders && c.user !== undefined) {
        const mine = u.orders.filter((o) => o.userId === c.user?.id);
        if (mine.length > 0) {
          this.send(c, { type: 'orders', symbol: u.symbol, orders: mine.map((o) => this.deps.gateway.view(u.symbol, o.orderId) ?? { orderId: o.orderId, status: o.status }) });
        }
      }
    }
    if (u.l2 !== undefined) this.bookViews.prune(u.symbol, u.l2.seq);
  }

  /** Ends the client's book subscription of `symbol`, if any (its depth's view is kept only while subscribed). */
  private dropBook(client: Client, symbol: string): void {
    const depth = client.books.get(symbol);
    if (depth === undefined) return;
    client.books.delete(symbol);
    this.bookViews.release(symbol, depth);
  }

  private dropBooks(client: Client): void {
    for (const symbol of [...client.books.keys()]) this.dropBook(client, symbol);
  }

  private requireUser(client: Client): User {
    if (client.user === undefined) throw new ApiError('UNAUTHORIZED', 'authenticate first: the x-api-key header, ?apiKey= or {"op":"auth","key":...}');
    return client.user;
  }

  /** Takes `n` of the connection's own tokens (RATE_LIMITED when it has too few). */
  private frameLimit(client: Client, n: number): void {
    try {
      client.frames.take('frames', n);
    } catch (err) {
      this.deps.metrics.rateLimited.inc();
      throw err;
    }
  }

  private rateLimit(client: Client, n: number): void {
    try {
      this.deps.limiter.take(client.key as string, n);
    } catch (err) {
      this.deps.metrics.rateLimited.inc();
      client.keyTaken = true; // refused by the key's limit: counted there, not charged again
      throw err;
    }
    client.keyTaken = true;
    // Counted by the key's limit: a token the frame took of the connection's own limit is given back.
    if (client.frameCharge === 'connection') client.frames.refund('frames', 1);
  }

  private answer(client: Client, id: unknown, result: Promise<OrderResult>): void {
    result.then(
      (r) => {
        this.sendRaw(client, `{${idMember(id)}"ok":true,${orderResultMembers(r)}}`);
      },
      (err: unknown) => {
        this.replyError(client, id, err);
      },
    );
  }

  private replyError(client: Client, id: unknown, err: unknown): void {
    const e = errorJson(err);
    this.logInternal(err);
    this.send(client, { id, ...e });
  }

  /** Logs what is not the API's own answer, or is an internal error (500): a bug, or an engine failure. */
  private logInternal(err: unknown): void {
    if (!(err instanceof ApiError) || err.status === 500) this.deps.logger.error({ err }, 'websocket request failed');
  }

  private send(client: Client, msg: Reply): void {
    this.sendRaw(client, JSON.stringify(msg));
  }

  private sendRaw(client: Client, text: string): void {
    if (client.ws.readyState !== WebSocket.OPEN) return;
    this.outCount++;
    // The answers of a batch of commands become durable together: cork the connection's socket
    // until the end of this tick, so that they leave in one write instead of one write each.
    if (!client.corked) {
      const socket = (client.ws as unknown as { _socket?: Duplex })._socket;
      if (socket !== undefined) {
        client.corked = true;
        socket.cork();
        process.nextTick(() => {
          client.corked = false;
          socket.uncork();
        });
      }
    }
    client.ws.send(text);
    if (client.ws.bufferedAmount > this.maxBuffered) {
      this.deps.logger.warn({ user: client.user?.name, bufferedBytes: client.ws.bufferedAmount }, 'websocket client dropped: it does not read its answers');
      client.ws.terminate();
    }
  }
}

function tooManyConnections(counted: string): ApiError {
  return new ApiError(
    'TOO_MANY_CONNECTIONS',
    counted.startsWith('key:') ? 'this API key holds as many WebSocket connections as it may' : 'this address holds as many anonymous WebSocket connections as it may',
  );
}

/**
 * Answers an upgrade that is refused and ends the connection. The HTTP server no longer watches a
 * socket it handed to its `upgrade` listeners: without a listener here, a client that resets the
 * connection before the answer is written would make an `error` event no one handles (a crash).
 */
function refuse(socket: Duplex, answer: string): void {
  socket.on('error', () => {
    socket.destroy();
  });
  // Closed once the answer is written: a client that never closes its side would otherwise keep
  // the connection (and a shutdown, which waits for every connection) open for ever.
  socket.end(answer, () => {
    socket.destroy();
  });
}

function textOf(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

/** VALIDATION naming the first field of `m` that is not one of `allowed`. */
function onlyFields(m: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(m)) if (!allowed.includes(k)) throw invalid(k, 'is not a field of this request');
}

function target(m: Record<string, unknown>, allowed: readonly string[]): { symbol: string; orderId: number } {
  onlyFields(m, allowed);
  if (typeof m.symbol !== 'string') throw invalid('symbol', 'is required (a string)');
  return { symbol: m.symbol, orderId: positiveInt(m.orderId, 'orderId') };
}

/** `"id":…,` (nothing when the request had no id, as JSON.stringify leaves out an undefined member). */
function idMember(id: unknown): string {
  return id === undefined ? '' : `"id":${JSON.stringify(id)},`;
}

/** One order's answer in a frame of several. */
function resultText(r: OrderResult): string {
  return `{"ok":true,${orderResultMembers(r)}}`;
}

function errorText(err: unknown): string {
  return JSON.stringify(errorJson(err));
}

function errorJson(err: unknown): Reply {
  // HTTP sends a wait as `Retry-After`; a WebSocket answer carries it in the error (seconds).
  if (err instanceof ApiError) return { ok: false, error: err.retryAfter === undefined ? err.toJSON().error : { ...err.toJSON().error, retryAfter: err.retryAfter } };
  return { ok: false, error: { code: 'INTERNAL', message: 'internal error' } };
}
