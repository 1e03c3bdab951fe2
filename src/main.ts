// First: on a Node that is not the pinned one, say so before anything else loads.
import './node-version.mjs';
import { loadConfig } from './config.ts';
import { ConfigError } from './errors.ts';
import { createLogger } from './logger.ts';
import { startService } from './service.ts';

// Composition root: read the environment once, build the service, handle signals.
let config;
try {
  config = loadConfig(process.env);
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`control-plane: ${error.message}\n`);
    process.exit(78); // EX_CONFIG
  }
  throw error;
}

const logger = createLogger(config.logLevel);
const service = await startService(config, logger).catch((error: unknown) => {
  // A setting only start-up can check (a signing key ssh-keygen cannot use) is still a configuration error.
  if (error instanceof ConfigError) {
    process.stderr.write(`control-plane: ${error.message}\n`);
    process.exit(78);
  }
  logger.fatal({ err: error }, 'failed to start');
  process.exit(1);
});

logger.info({ url: service.url }, `control-plane listening on ${service.url}`);
if (service.developmentToken) {
  process.stdout.write(
    `\ncontrol-plane is listening on ${service.url}\n` +
      `Development API token (platform admin, embedded mode only):\n  ${service.developmentToken}\n` +
      `Try: curl -H "Authorization: Bearer ${service.developmentToken}" ${service.url}/readyz\n` +
      `API reference: ${service.url}/docs\n\n`,
  );
}

const shutdown = (signal: NodeJS.Signals) => {
  logger.info({ signal }, 'signal received');
  const timer = setTimeout(() => {
    logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timed out; exiting');
    process.exit(1);
  }, config.shutdownTimeoutMs);
  timer.unref();
  service.stop().then(
    () => process.exit(0),
    (error: unknown) => {
      logger.error({ err: error }, 'shutdown failed');
      process.exit(1);
    },
  );
};
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
