// Deployments that share a NATS server keep apart by their stream and subject prefixes
// (natsStreamPrefix, natsSubjectPrefix): each publishes the same symbol into its own stream. A
// prefix no stream or subject can have stops the server at start (INVALID_CONFIG naming the
// setting), and the bus refuses it before connecting (INVALID_OPTIONS). The end-to-end test needs
// NATS JetStream (NATS_URL): skipped with a warning without it, a failure under CI.
import { NatsJetStreamBus, OutboxError, streamName } from '@gx3/outbox-publisher';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, resolveConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import { ALICE, Client, natsProblem, removeTmpDirs, start, until } from './helpers.js';

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const IN_CI = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';

afterAll(removeTmpDirs);

describe('the prefix settings', () => {
  it('come from the file, the environment and flags, GX3 and gx3.events by default', () => {
    expect(resolveConfig({})).toMatchObject({ natsStreamPrefix: 'GX3', natsSubjectPrefix: 'gx3.events' });
    expect(loadConfig([], { GX3_NATS_STREAM_PREFIX: 'STAGING', GX3_NATS_SUBJECT_PREFIX: 'staging.gx3' })).toMatchObject({
      natsStreamPrefix: 'STAGING',
      natsSubjectPrefix: 'staging.gx3',
    });
    expect(loadConfig(['--nats-stream-prefix', 'VENUE-2', '--nats-subject-prefix', 'venue-2.events'], { GX3_NATS_STREAM_PREFIX: 'STAGING' })).toMatchObject({
      natsStreamPrefix: 'VENUE-2',
      natsSubjectPrefix: 'venue-2.events',
    });
  });

  it.each([
    ['natsStreamPrefix', 'A.B', /natsStreamPrefix \(GX3_NATS_STREAM_PREFIX \/ --nats-stream-prefix\): a stream prefix must be 1-32 characters/],
    ['natsStreamPrefix', 'with space', /natsStreamPrefix.*"with space"/],
    ['natsStreamPrefix', 'X'.repeat(33), /natsStreamPrefix/],
    ['natsStreamPrefix', 'a/b', /natsStreamPrefix/],
    ['natsSubjectPrefix', 'gx3.*', /natsSubjectPrefix \(GX3_NATS_SUBJECT_PREFIX \/ --nats-subject-prefix\): a subject prefix must be tokens/],
    ['natsSubjectPrefix', 'gx3.>', /natsSubjectPrefix/],
    ['natsSubjectPrefix', 'gx3..events', /natsSubjectPrefix/],
    ['natsSubjectPrefix', '.gx3', /natsSubjectPrefix/],
    ['natsSubjectPrefix', 'gx3.', /natsSubjectPrefix/],
    ['natsSubjectPrefix', `${'a.'.repeat(64)}b`, /natsSubjectPrefix/],
  ])('refuses %s %j with INVALID_CONFIG naming it', (name, value, message) => {
    let caught: unknown;
    try {
      resolveConfig({ [name]: value });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).code).toBe('INVALID_CONFIG');
    expect((caught as ConfigError).message).toMatch(message);
  });

  it('refuses a prefix of the wrong type in the config file', () => {
    expect(() => resolveConfig({ natsStreamPrefix: 7 })).toThrow(/natsStreamPrefix.*got 7/);
    expect(() => resolveConfig({ natsSubjectPrefix: ['gx3'] })).toThrow(/natsSubjectPrefix/);
  });

  it('the bus refuses such a prefix before it connects (INVALID_OPTIONS, even with no server to connect to)', async () => {
    for (const options of [{ streamPrefix: 'A.B' }, { subjectPrefix: 'gx3.*' }, { streamPrefix: '' }, { subjectPrefix: '' }]) {
      const err: unknown = await NatsJetStreamBus.connect({ servers: 'nats://127.0.0.1:1', connectTimeoutMs: 200, ...options }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OutboxError);
      expect((err as OutboxError).code).toBe('INVALID_OPTIONS');
    }
  });
});


const problem = await natsProblem(NATS_URL);
if (problem !== undefined && !IN_CI) console.warn(`SKIPPED: NATS prefix tests: NATS JetStream at ${NATS_URL} is unavailable: ${problem} (under CI this is a failure)`);
if (problem !== undefined && IN_CI) {
  it('has a NATS JetStream server (required under CI)', () => {
    expect.fail(`NATS JetStream at ${NATS_URL} is required under CI but unavailable: ${problem}`);
  });
}

describe.skipIf(problem !== undefined)(`two deployments on one NATS server (${NATS_URL})`, () => {
  it('publish the same symbol into their own streams and subjects, each its own events only', async () => {
    const tag = `${Date.now().toString(36)}${process.pid.toString(36)}`.toUpperCase();
    const SYMBOL = `P${tag}`;
    const instruments = [{ symbol: SYMBOL, minPrice: 1, maxPrice: 100_000, maxQty: 1_000_000 }];
    const deployments = [
      { stream: `PA${tag}`, subject: `pa${tag.toLowerCase()}.events`, orders: 2 },
      { stream: `PB${tag}`, subject: `pb${tag.toLowerCase()}.events`, orders: 3 },
    ];
    const reader = await NatsJetStreamBus.connect({ servers: NATS_URL });
    const streams = deployments.map((d) => streamName(d.stream, SYMBOL));
    try {
      // Both at once, on data directories of their own: the same event ids (SYMBOL:1, ...) in both.
      const servers = await Promise.all(deployments.map((d) => start({ bus: NATS_URL, instruments, natsStreamPrefix: d.stream, natsSubjectPrefix: d.subject })));
      try {
        for (const [k, d] of deployments.entries()) {
          const client = new Client((servers[k] as { url: string }).url, ALICE);
          for (let i = 0; i < d.orders; i++) await client.place({ symbol: SYMBOL, side: 'buy', price: 100 + i + 10 * k, qty: 1 });
        }
        // Each order: accepted and added.
        for (const [k, d] of deployments.entries()) {
          const stream = streams[k] as string;
          await until(async () => (await reader.jsm.streams.info(stream).catch(() => undefined))?.state.messages === 2 * d.orders, `${2 * d.orders} messages in ${stream}`);
        }
      } finally {
        await Promise.all(servers.map((s) => s.close()));
      }
      for (const [k, d] of deployments.entries()) {
        const stream = streams[k] as string;
        const info = await reader.jsm.streams.info(stream);
        expect(info.config.subjects).toEqual([`${d.subject}.${SYMBOL}`]);
        expect(info.state.messages).toBe(2 * d.orders);
        // The last added event is this deployment's last order (its own price).
        const last = await reader.jsm.streams.getMessage(stream, { last_by_subj: `${d.subject}.${SYMBOL}` });
        expect(last?.header.get('Nats-Msg-Id')).toBe(`${SYMBOL}:${2 * d.orders}`);
      }
      // Nothing under the default prefixes.
      expect(await reader.jsm.streams.info(streamName('GX3', SYMBOL)).catch(() => undefined)).toBeUndefined();
    } finally {
      for (const s of streams) await reader.jsm.streams.delete(s).catch(() => undefined);
      await reader.close();
    }
  });
});
