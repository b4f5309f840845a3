#!/usr/bin/env node
// A server for the load suite, in its own process: `gx3 DATA_DIR` (the gateway on its defaults
// with durability batch, load-test keys and no effective rate limit), `bare-http` or `bare-ws`.
// Prints `port N` on stdout once listening; exits on SIGTERM (gracefully, for the gateway).
import { resolveConfig, startServer } from '@gx3/server';
import { startBareHttp, startBareWs } from '../load/bare-servers.js';

import { LOAD_INSTRUMENT, LOAD_KEY } from '../load/orders.js';

async function main(): Promise<void> {
  const [kind, dataDir] = process.argv.slice(2);
  let close: () => Promise<void>;
  let port: number;
  if (kind === 'gx3') {
    if (dataDir === undefined) throw new Error('usage: load-server gx3 DATA_DIR');
    const config = resolveConfig({
      port: '0',
      dataDir,
      apiKeys: `load:${LOAD_KEY}`,
      rateLimit: '1000000000',
      rateBurst: '1000000000',
      instruments: [LOAD_INSTRUMENT],
      logLevel: 'warn',
    });
    const s = await startServer(config);
    port = s.port;
    close = () => s.close();
  } else if (kind === 'bare-http') {
    ({ port, close } = await startBareHttp());
  } else if (kind === 'bare-ws') {
    ({ port, close } = await startBareWs());
  } else {
    throw new Error(`unknown server kind ${String(kind)}: gx3, bare-http or bare-ws`);
  }
  process.stdout.write(`port ${port}\n`);
  process.on('SIGTERM', () => {
    close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`load-server: ${(err as Error).message}\n`);
  process.exit(1);
});
