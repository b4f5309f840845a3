// A fault-injecting bus (after bus.ts's contract, over a MemoryBus): it fails chosen publishes,
// swallows some (never stored, never acknowledged), loses acknowledgements of stored messages,
// acknowledges late (after the publisher's timeout) and acknowledges out of order; and a bus that
// receives messages out of order. Whatever it does, the publisher loses nothing and keeps each
// symbol's order. The backoff is checked with fake timers (virtual time, not wall-clock).
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryBus, OutboxError, readCursor, type AckCallback, type Bus, type BusMessage, type EventOutbox } from '../src/index.js';
import { EventWriter, expectHeld, onCleanup, openOutbox, prng, publisher, range, removeTmpDirs, runCleanups, snapshot, strictPublish, tmpDir, until } from './helpers.js';

afterAll(removeTmpDirs);

afterEach(async () => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  await runCleanups();
});

type Fault = 'fail' | 'swallow' | 'lose-ack' | 'late-ack';

interface FaultBusOptions {
  /** The fault to inject at a publish (1-based call number), if any. */
  readonly faults: ReadonlyMap<number, Fault>;
  /** Acknowledgements of good publishes are delivered after a random 0..maxAckDelayMs (so out of order). */
  readonly maxAckDelayMs: number;
  /** How late a late acknowledgement comes. */
  readonly lateMs: number;
  readonly seed: number;
}

/** A bus over a retaining MemoryBus that injects faults and acknowledges out of order. */
class FaultBus implements Bus {
  readonly name = 'faulty';
  readonly inner = new MemoryBus({ retain: true });
  calls = 0;
  readonly injected = new Map<Fault, number>();
  /** Acknowledgements delivered in an order other than the publishes'. */
  reordered = 0;
  private lastAcked = 0;
  private readonly random: () => number;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly options: FaultBusOptions) {
    this.random = prng(options.seed);
  }

  publish(msg: BusMessage, done: AckCallback): void {
    const n = ++this.calls;
    const fault = this.options.faults.get(n);
    if (fault) this.injected.set(fault, (this.injected.get(fault) ?? 0) + 1);
    const copy = snapshot(msg);
    switch (fault) {
      case 'fail':
        this.later(0, () => {
          done(new OutboxError('BUS_ERROR', `injected failure of publish #${n} (${msg.id})`));
        });
        return;
      case 'swallow':
        return; // neither stored nor acknowledged
      case 'lose-ack':
        strictPublish(this.inner, copy, () => undefined); // stored, acknowledgement lost
        return;
      case 'late-ack':
        strictPublish(this.inner, copy, (err, ack) => {
          this.later(this.options.lateMs, () => {
            done(err, ack);
          });
        });
        return;
      case undefined:
        strictPublish(this.inner, copy, (err, ack) => {
          this.later(Math.floor(this.random() * (this.options.maxAckDelayMs + 1)), () => {
            if (n < this.lastAcked) this.reordered++;
            this.lastAcked = Math.max(this.lastAcked, n);
            done(err, ack);
          });
        });
        return;
    }
  }

  private later(ms: number, f: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      f();
    }, ms);
    this.timers.add(t);
  }

  close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    return this.inner.close();
  }
}

/** Writes `commands` commands over `symbols`, a seeded random number of events each (1..4). */
function writeMixed(w: EventWriter, symbols: readonly string[], commands: number, seed: number): void {
  const r = prng(seed);
  for (let c = 0; c < commands; c++) w.command(symbols[Math.floor(r() * symbols.length)] ?? 'AAA', 1 + Math.floor(r() * 4));
}

/** What each symbol's subscribers saw, in order. */
function recordDeliveries(bus: MemoryBus): Map<string, number[]> {
  const seen = new Map<string, number[]>();
  bus.subscribe('*', (e) => {
    let list = seen.get(e.symbol);
    if (!list) {
      list = [];
      seen.set(e.symbol, list);
    }
    list.push(e.eventSeq);
  });
  return seen;
}

describe('a fault-injecting bus', () => {
  it('failing the k-th publish, swallowing, losing and delaying acknowledgements, acknowledging out of order: nothing lost, per-symbol order kept', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    const symbols = ['AAA', 'BBB', 'CCC'];
    writeMixed(w, symbols, 1200, 7);
    await outbox.sync();
    const r = prng(99);
    const faults = new Map<number, Fault>();
    const plan: [Fault, number][] = [
      ['fail', 10],
      ['swallow', 3],
      ['lose-ack', 3],
      ['late-ack', 3],
    ];
    // Spread the faults over the first publishes (a rewind republishes, so there are more calls than events).
    for (const [fault, count] of plan) {
      for (let i = 0; i < count; i++) {
        let at = 1 + Math.floor(r() * (w.events - 1));
        while (faults.has(at)) at++;
        faults.set(at, fault);
      }
    }
    faults.set(1, 'fail'); // the very first publish
    const bus = new FaultBus({ faults, maxAckDelayMs: 3, lateMs: 250, seed: 5 });
    onCleanup(() => bus.close());
    const seen = recordDeliveries(bus.inner);
    const errors: Error[] = [];
    const p = publisher({ dir, bus, outbox, window: 64, ackTimeoutMs: 100, commitIntervalMs: 2, backoff: { initialMs: 1, maxMs: 20 }, onError: (e) => errors.push(e) });
    p.start();
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 60_000, 'everything acknowledged', () => ({ ...p.stats(), calls: bus.calls }));
    await p.stop();

    const last = new Map(symbols.map((s) => [s, w.lastEventSeq(s)]));
    expectHeld(bus.inner, last);
    for (const s of symbols) expect(seen.get(s), `deliveries of ${s}`).toEqual(range(1, w.lastEventSeq(s)));
    expect(readCursor(dir).offset).toBe(outbox.durableOffset);

    // The faults did happen, and were noticed.
    for (const [fault] of plan) expect(bus.injected.get(fault), `${fault} injected`).toBeGreaterThanOrEqual(1);
    expect(bus.calls).toBeGreaterThan(w.events);
    expect(bus.reordered).toBeGreaterThan(0);
    const s = p.stats();
    expect(s.failures).toBeGreaterThanOrEqual(2);
    expect(s.failures).toBe(errors.length);
    expect(s.duplicates).toBeGreaterThan(0);
    expect(errors.some((e) => e instanceof OutboxError && e.code === 'BUS_ERROR')).toBe(true);
  });

  for (const fault of ['lose-ack', 'late-ack', 'swallow'] as const) {
    it(`${fault} of an event: the publisher times out (PUBLISH_TIMEOUT), republishes, and the bus holds every event once`, async () => {
      const dir = tmpDir();
      const outbox = openOutbox(dir);
      new EventWriter(outbox).commands('AAA', 10, () => 2);
      await outbox.sync();
      // The fault hits the last event (call 20), so that nothing after it fails first.
      const bus = new FaultBus({ faults: new Map([[20, fault]]), maxAckDelayMs: 2, lateMs: 400, seed: 1 });
      onCleanup(() => bus.close());
      let lateAcks = 0;
      const p = publisher({ dir, bus, outbox, ackTimeoutMs: 100, backoff: { initialMs: 1, maxMs: 5 } });
      const done = bus.publish.bind(bus);
      bus.publish = (msg, cb) => {
        const call = bus.calls + 1;
        done(msg, (err, ack) => {
          if (call === 20) lateAcks++;
          cb(err, ack);
        });
      };
      p.start();
      await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 20_000, 'everything acknowledged', () => p.stats());
      const s = p.stats();
      expect(s.failures).toBe(1);
      expect(s.lastError).toBeInstanceOf(OutboxError);
      expect((s.lastError as OutboxError).code).toBe('PUBLISH_TIMEOUT');
      expect(bus.injected.get(fault)).toBe(1);
      expectHeld(bus.inner, { AAA: 20 });
      if (fault === 'swallow') {
        expect(s.duplicates).toBe(1); // event 19 (same command) was stored; event 20 was not
      } else {
        expect(s.duplicates).toBe(2); // events 19 and 20 were stored before the rewind
      }
      if (fault === 'late-ack') {
        // The late acknowledgement of the abandoned publish arrives, and is ignored.
        await until(() => lateAcks === 1, 20_000, 'the late acknowledgement');
        expect(p.stats()).toMatchObject({ acknowledged: s.acknowledged, duplicates: s.duplicates, failures: 1 });
      }
    });
  }

  it('a bus that receives messages out of order (random delays) refuses them, and the publisher still delivers each symbol in order', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    writeMixed(w, ['AAA', 'BBB'], 80, 11);
    await outbox.sync();
    const inner = new MemoryBus({ retain: true });
    const seen = recordDeliveries(inner);
    const r = prng(3);
    let refused = 0;
    const timers = new Set<NodeJS.Timeout>();
    const bus: Bus = {
      name: 'reordering',
      publish(msg, done) {
        const copy = snapshot(msg);
        const t = setTimeout(() => {
          timers.delete(t);
          strictPublish(inner, copy, (err, ack) => {
            if (err instanceof OutboxError && err.code === 'OUT_OF_ORDER') refused++;
            done(err, ack);
          });
        }, Math.floor(r() * 3));
        timers.add(t);
      },
      close: () => {
        for (const t of timers) clearTimeout(t);
        return inner.close();
      },
    };
    onCleanup(() => bus.close());
    const p = publisher({ dir, bus, outbox, window: 4, ackTimeoutMs: 1000, backoff: { initialMs: 1, maxMs: 4 } });
    p.start();
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 60_000, 'everything acknowledged', () => ({ ...p.stats(), refused }));
    await p.stop();
    expect(refused).toBeGreaterThan(0);
    expect(p.stats().failures).toBeGreaterThan(0);
    expectHeld(inner, { AAA: w.lastEventSeq('AAA'), BBB: w.lastEventSeq('BBB') });
    expect(seen.get('AAA')).toEqual(range(1, w.lastEventSeq('AAA')));
    expect(seen.get('BBB')).toEqual(range(1, w.lastEventSeq('BBB')));
  });

  it('a bus that stores but never acknowledges anything: the publisher keeps retrying and never commits past what was acknowledged', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    new EventWriter(outbox).commands('AAA', 5);
    await outbox.sync();
    const inner = new MemoryBus({ retain: true });
    let calls = 0;
    const bus: Bus = {
      name: 'mute',
      publish(msg) {
        calls++;
        inner.publish(msg, () => undefined);
      },
      close: () => inner.close(),
    };
    const p = publisher({ dir, bus, outbox, ackTimeoutMs: 50, commitIntervalMs: 1, backoff: { initialMs: 1, maxMs: 5 } });
    p.start();
    await until(() => p.stats().failures >= 3, 20_000, 'three timeouts', () => p.stats());
    expect(calls).toBeGreaterThan(10);
    expect(p.stats().acknowledgedOffset).toBe(0);
    expect(p.stats().lastError).toBeInstanceOf(OutboxError);
    expect((p.stats().lastError as OutboxError).code).toBe('PUBLISH_TIMEOUT');
    await p.stop();
    expect(readCursor(dir).offset).toBe(0);
    expect(inner.messages('AAA').map((m) => m.eventSeq)).toEqual(range(1, 10));
  });
});

describe('backoff (fake timers: virtual time)', () => {
  /** A bus that fails (synchronously) the publishes for which `failing(call)` holds, and records the virtual time of each. */
  function scriptedBus(failing: (call: number) => boolean): { bus: Bus; times: number[]; inner: MemoryBus } {
    const inner = new MemoryBus({ retain: true });
    const times: number[] = [];
    const bus: Bus = {
      name: 'scripted',
      publish(msg, done) {
        times.push(Date.now());
        if (failing(times.length)) {
          done(new OutboxError('BUS_ERROR', `injected failure of publish #${times.length}`));
          return;
        }
        inner.publish(msg, done);
      },
      close: () => inner.close(),
    };
    return { bus, times, inner };
  }

  async function setup(events: number): Promise<{ dir: string; outbox: EventOutbox }> {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    new EventWriter(outbox).commands('AAA', events, () => 1);
    await outbox.sync();
    return { dir, outbox };
  }

  function fakeTimers(): void {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'clearImmediate', 'Date'] });
  }

  it('doubles the delay after each failure, up to the cap, without jitter', async () => {
    const { dir, outbox } = await setup(2);
    const { bus, times, inner } = scriptedBus((n) => n <= 6);
    fakeTimers();
    const t0 = Date.now();
    const p = publisher({ dir, bus, outbox, backoff: { initialMs: 10, maxMs: 50, jitter: 0 } });
    p.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(times).toHaveLength(1);
    // Retries after 10, 20, 40, 50 (capped), 50, 50 ms of virtual time.
    const gaps = [10, 20, 40, 50, 50, 50];
    let now = t0;
    for (const [i, gap] of gaps.entries()) {
      await vi.advanceTimersByTimeAsync(gap - 1);
      expect(times, `no retry ${i + 1} before ${gap} ms`).toHaveLength(i + 1);
      await vi.advanceTimersByTimeAsync(1);
      expect(times.length, `retry ${i + 1} after ${gap} ms`).toBeGreaterThanOrEqual(i + 2);
      now += gap;
      expect(times[i + 1]).toBe(now);
    }
    expect(p.stats().failures).toBe(6);
    expect(inner.messages('AAA').map((m) => m.eventSeq)).toEqual([1, 2]);
    vi.useRealTimers();
  });

  it('applies jitter as a random fraction of the delay, and starts again from the first delay after a success', async () => {
    const { dir, outbox } = await setup(3);
    // Fail publishes 1 and 2; then event 1 succeeds (call 3) and event 2 fails (call 4) once more.
    const { bus, times } = scriptedBus((n) => n === 1 || n === 2 || n === 4);
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    fakeTimers();
    const t0 = Date.now();
    const p = publisher({ dir, bus, outbox, backoff: { initialMs: 40, maxMs: 1000, jitter: 0.5 } });
    p.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(times).toEqual([t0]);
    // delay = initial * 2^attempt * (1 - jitter * random) = 40 * 0.75 = 30, then 80 * 0.75 = 60.
    await vi.advanceTimersByTimeAsync(29);
    expect(times).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(times).toEqual([t0, t0 + 30]);
    await vi.advanceTimersByTimeAsync(59);
    expect(times).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    // Call 3 (event 1) succeeds, call 4 (event 2) fails at the same moment: the success reset the backoff.
    expect(times).toEqual([t0, t0 + 30, t0 + 90, t0 + 90]);
    await vi.advanceTimersByTimeAsync(29);
    expect(times).toHaveLength(4);
    await vi.advanceTimersByTimeAsync(1);
    expect(times.length).toBeGreaterThanOrEqual(5);
    expect(times[4]).toBe(t0 + 120);
    await vi.advanceTimersByTimeAsync(10);
    expect(p.stats().failures).toBe(3);
    expect(p.stats().acknowledgedOffset).toBe(outbox.durableOffset);
    vi.useRealTimers();
  });
});
