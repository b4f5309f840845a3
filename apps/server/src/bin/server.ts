#!/usr/bin/env node
// gx3-server [flags]: the exchange gateway. With no settings it runs on its embedded defaults: a
// data directory `./data`, the in-memory bus, BTCUSDT and ETHUSDT, and demo API keys it prints.
// SIGTERM or SIGINT shut it down gracefully (exit 0).
import { loadConfig, USAGE, withoutCredentials } from '../config.js';
import { ConfigError } from '../errors.js';
import { startServer } from '../server.js';

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  // Help first: a bad setting elsewhere (the environment, a config file) must not hide the usage.
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  const config = loadConfig(argv);
  // A signal that comes while the server is still starting (connecting to the bus, recovering)
  // stops it once it has started, as any other: exit 0, not a death by the signal.
  let signalled: string | undefined;
  const early = (signal: string): void => {
    signalled ??= signal;
  };
  process.on('SIGTERM', early);
  process.on('SIGINT', early);
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    server = await startServer(config);
  } catch (err) {
    // Asked to stop before it could start (the bus not answering, say): stopped as asked.
    if (signalled !== undefined) {
      process.stderr.write(`${signalled} during start-up: stopped (the start had failed: ${(err as Error).message})\n`);
      process.exit(0);
    }
    throw err;
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`${signal}: shutting down (draining, syncing)\n`);
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`error during shutdown: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  // The handlers of the running server first, then the start-up ones off: with no listener at all
  // in between, a signal would meet its default action and kill the process (one sent the moment
  // the banner below is read did).
  process.on('SIGTERM', () => {
    stop('SIGTERM');
  });
  process.on('SIGINT', () => {
    stop('SIGINT');
  });
  process.off('SIGTERM', early);
  process.off('SIGINT', early);
  const lines = [
    `gx3 exchange listening on ${server.url} (data ${config.dataDir}, durability ${config.durability}, codec ${config.codec}, bus ${withoutCredentials(config.bus)})`,
    `instruments: ${config.instruments.map((i) => `${i.symbol} (price ${i.minPrice}..${i.maxPrice} ticks, qty <= ${i.maxQty})`).join(', ')}`,
    server.demo ? 'demo API keys (send one in the x-api-key header; set GX3_API_KEYS=user:key,... to use your own):' : `API keys configured for: ${server.apiKeys.map((k) => k.user).join(', ')}`,
    ...(server.demo ? server.apiKeys.map((k) => `  ${k.user}: ${k.key}`) : []),
    // A configured key is a secret: only the demo keys are printed.
    `try: curl -s -X POST ${server.url}/v1/orders -H 'content-type: application/json' -H 'x-api-key: ${server.demo ? (server.apiKeys[0]?.key ?? 'KEY') : 'KEY'}' -d '{"symbol":"${config.instruments[0]?.symbol ?? 'BTCUSDT'}","side":"buy","type":"limit","price":${examplePrice(config.instruments[0])},"qty":1}'`,
  ];
  process.stderr.write(lines.join('\n') + '\n');
  if (signalled !== undefined) stop(signalled);
}

/** A price inside the instrument's band for the example order (100, or the nearest band edge). */
function examplePrice(i: { minPrice: number; maxPrice: number } | undefined): number {
  return i === undefined ? 100 : Math.min(Math.max(100, i.minPrice), i.maxPrice);
}

main().catch((err: unknown) => {
  const e = err as Error & { code?: string };
  process.stderr.write(`error [${e.code ?? e.name}]: ${e.message}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});
