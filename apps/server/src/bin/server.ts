#!/usr/bin/env node
// gx3-server [flags]: the exchange gateway. With no settings it runs on its embedded defaults: a
// data directory `./data`, the in-memory bus, BTCUSDT and ETHUSDT, and demo API keys it prints.
// SIGTERM or SIGINT shut it down gracefully (exit 0).
import { loadConfig, USAGE } from '../config.js';
import { ConfigError } from '../errors.js';
import { startServer } from '../server.js';

async function main(): Promise<void> {
  const config = loadConfig(process.argv.slice(2));
  if (config.help) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  const server = await startServer(config);
  const lines = [
    `gx3 exchange listening on ${server.url} (data ${config.dataDir}, durability ${config.durability}, codec ${config.codec}, bus ${config.bus})`,
    `instruments: ${config.instruments.map((i) => `${i.symbol} (price ${i.minPrice}..${i.maxPrice} ticks, qty <= ${i.maxQty})`).join(', ')}`,
    server.demo ? 'demo API keys (send one in the x-api-key header; set GX3_API_KEYS=user:key,... to use your own):' : `API keys configured for: ${server.apiKeys.map((k) => k.user).join(', ')}`,
    ...(server.demo ? server.apiKeys.map((k) => `  ${k.user}: ${k.key}`) : []),
    `try: curl -s -X POST ${server.url}/v1/orders -H 'content-type: application/json' -H 'x-api-key: ${server.apiKeys[0]?.key ?? 'KEY'}' -d '{"symbol":"${config.instruments[0]?.symbol ?? 'BTCUSDT'}","side":"buy","type":"limit","price":100,"qty":1}'`,
  ];
  process.stderr.write(lines.join('\n') + '\n');
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
  process.on('SIGTERM', () => {
    stop('SIGTERM');
  });
  process.on('SIGINT', () => {
    stop('SIGINT');
  });
}

main().catch((err: unknown) => {
  const e = err as Error & { code?: string };
  process.stderr.write(`error [${e.code ?? e.name}]: ${e.message}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});
