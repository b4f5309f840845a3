// The mailbox's copy of each command, taken when the command is logged: its fields in typed arrays
// (one slot per ring position), not an object per command. A caller that changes or submits its
// object again before it is applied cannot make the live book differ from what a replay of the log
// rebuilds, and the copy allocates nothing. The actor applies a command through one reused object
// per type (`load`), which keeps one shape per type whatever shapes its callers build.

import type { AmendCommand, CancelCommand, Command, LimitCommand, MarketCommand, SelfTradePrevention, Side, TimeInForce } from '@gx3/codecs';

const LIMIT = 0;
const MARKET = 1;
const CANCEL = 2;
const AMEND = 3;

export class MailboxSlots {
  private readonly type: Uint8Array;
  private readonly seq: Float64Array;
  private readonly reqId: Float64Array;
  private readonly orderId: Float64Array;
  private readonly userId: Float64Array;
  private readonly ts: Float64Array;
  private readonly price: Float64Array;
  private readonly qty: Float64Array;
  // Strings the codec found valid when it logged the command (strings are immutable: kept as given).
  private readonly side: Side[];
  private readonly tif: TimeInForce[];
  private readonly stp: SelfTradePrevention[];
  private readonly clientOrderId: (string | undefined)[];

  private readonly limit: LimitCommand;
  private readonly market: MarketCommand;
  private readonly cancel: CancelCommand;
  private readonly amend: AmendCommand;

  constructor(
    size: number,
    readonly symbol: string,
  ) {
    this.type = new Uint8Array(size);
    this.seq = new Float64Array(size);
    this.reqId = new Float64Array(size);
    this.orderId = new Float64Array(size);
    this.userId = new Float64Array(size);
    this.ts = new Float64Array(size);
    this.price = new Float64Array(size);
    this.qty = new Float64Array(size);
    this.side = new Array<Side>(size).fill('buy');
    this.tif = new Array<TimeInForce>(size).fill('GTC');
    this.stp = new Array<SelfTradePrevention>(size).fill('NONE');
    this.clientOrderId = new Array<string | undefined>(size).fill(undefined);
    const base = { symbol, seq: 0, reqId: 0, orderId: 0, userId: 0, ts: 0 };
    this.limit = { type: 'limit', ...base, side: 'buy', price: 0, qty: 0, tif: 'GTC', stp: 'NONE', clientOrderId: undefined };
    this.market = { type: 'market', ...base, side: 'buy', qty: 0, stp: 'NONE', clientOrderId: undefined };
    this.cancel = { type: 'cancel', ...base };
    this.amend = { type: 'amend', ...base, price: 0, qty: 0 };
  }

  /** Copies a command (as logged: valid, with its seq and ts) into slot `i`. */
  store(i: number, c: Command): void {
    this.seq[i] = c.seq;
    this.reqId[i] = c.reqId;
    this.orderId[i] = c.orderId;
    this.userId[i] = c.userId;
    this.ts[i] = c.ts;
    switch (c.type) {
      case 'limit':
        this.type[i] = LIMIT;
        this.side[i] = c.side;
        this.price[i] = c.price;
        this.qty[i] = c.qty;
        this.tif[i] = c.tif;
        this.stp[i] = c.stp;
        this.clientOrderId[i] = c.clientOrderId;
        break;
      case 'market':
        this.type[i] = MARKET;
        this.side[i] = c.side;
        this.qty[i] = c.qty;
        this.stp[i] = c.stp;
        this.clientOrderId[i] = c.clientOrderId;
        break;
      case 'cancel':
        this.type[i] = CANCEL;
        break;
      case 'amend':
        this.type[i] = AMEND;
        this.price[i] = c.price;
        this.qty[i] = c.qty;
        break;
    }
  }

  /**
   * The command of slot `i`, in the reused object of its type: valid until the next `load`. Clears
   * the slot's client order id (the slot keeps no string alive once its command is applied).
   */
  load(i: number): Command {
    let c: Command;
    switch (this.type[i]) {
      case LIMIT: {
        const l = this.limit;
        l.side = this.side[i] as Side;
        l.price = this.price[i] as number;
        l.qty = this.qty[i] as number;
        l.tif = this.tif[i] as TimeInForce;
        l.stp = this.stp[i] as SelfTradePrevention;
        l.clientOrderId = this.clientOrderId[i];
        this.clientOrderId[i] = undefined;
        c = l;
        break;
      }
      case MARKET: {
        const m = this.market;
        m.side = this.side[i] as Side;
        m.qty = this.qty[i] as number;
        m.stp = this.stp[i] as SelfTradePrevention;
        m.clientOrderId = this.clientOrderId[i];
        this.clientOrderId[i] = undefined;
        c = m;
        break;
      }
      case CANCEL:
        c = this.cancel;
        break;
      default: {
        const a = this.amend;
        a.price = this.price[i] as number;
        a.qty = this.qty[i] as number;
        c = a;
        break;
      }
    }
    c.seq = this.seq[i] as number;
    c.reqId = this.reqId[i] as number;
    c.orderId = this.orderId[i] as number;
    c.userId = this.userId[i] as number;
    c.ts = this.ts[i] as number;
    return c;
  }

  /** Forgets slot `i` (a command dropped by a halt). */
  clear(i: number): void {
    this.clientOrderId[i] = undefined;
  }
}
