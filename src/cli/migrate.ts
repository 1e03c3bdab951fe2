// First: on a Node that is not the pinned one, say so before anything else loads.
import '../node-version.mjs';
import { loadConfig } from '../config.ts';
import { createLogger } from '../logger.ts';
import { createSequelize } from '../db/database.ts';
import { migrate } from '../db/migrator.ts';
import { startEmbeddedPostgres } from '../db/embedded-postgres.ts';

// `npm run migrate`: apply pending migrations and exit (the service also does this at start-up).
const config = loadConfig(process.env);
const logger = createLogger(config.logLevel);
const embedded = config.databaseUrl ? undefined : await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPostgresPort, logger });
const url = config.databaseUrl ?? embedded!.url;
const sequelize = createSequelize({ url, poolMax: 2, logger });
try {
  const applied = await migrate(url, sequelize, logger);
  process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'schema up to date\n');
} finally {
  await sequelize.close();
  await embedded?.stop();
}
