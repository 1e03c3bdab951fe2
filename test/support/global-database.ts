import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs/promises';
import pg from 'pg';
import { createLogger } from '../../src/logger.ts';
import { createSequelize } from '../../src/db/database.ts';
import { migrate } from '../../src/db/migrator.ts';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/db/embedded-postgres.ts';
import { releaseSpareDatabase } from './database.ts';
import { freePort } from './free-port.ts';

/**
 * Mocha global fixture: every test run migrates a template database once, here, on the server
 * named by DATABASE_URL or, without it, on an embedded PostgreSQL. Specs never use it directly:
 * `useSpecDatabase()` (test/support/database.ts) clones it for each spec, so no spec sees
 * another's rows. The teardown drops the template and whatever a spec left behind.
 */
let embedded: EmbeddedDatabase | undefined;
let embeddedDir: string | undefined;
let adminUrl: string;
let runPrefix: string;

export async function mochaGlobalSetup(): Promise<void> {
  const logger = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
  if (process.env.DATABASE_URL) {
    adminUrl = process.env.DATABASE_URL;
  } else {
    embeddedDir = await fs.mkdtemp(path.join(os.tmpdir(), 'control-plane-test-'));
    await fs.chmod(embeddedDir, 0o755);
    embedded = await startEmbeddedPostgres({ dataDir: embeddedDir, port: await freePort(), logger });
    adminUrl = embedded.url;
  }
  runPrefix = `cp_test_${Date.now().toString(36)}_${process.pid}`;
  const template = `${runPrefix}_template`;
  await onAdmin((admin) => admin.query(`CREATE DATABASE ${admin.escapeIdentifier(template)}`));

  const url = new URL(adminUrl);
  url.pathname = `/${template}`;
  const sequelize = createSequelize({ url: url.toString(), poolMax: 2, logger });
  await migrate(url.toString(), sequelize, logger);
  await sequelize.close();
  // CREATE DATABASE ... TEMPLATE fails while anyone is connected to the template: let no one.
  await onAdmin((admin) => admin.query(`ALTER DATABASE ${admin.escapeIdentifier(template)} ALLOW_CONNECTIONS false`));

  process.env.TEST_ADMIN_DATABASE_URL = adminUrl;
  process.env.TEST_TEMPLATE_DATABASE = template;
  process.env.TEST_DATABASE_PREFIX = runPrefix;
}

export async function mochaGlobalTeardown(): Promise<void> {
  await releaseSpareDatabase();
  await onAdmin(async (admin) => {
    const left = 'SELECT datname FROM pg_database WHERE starts_with(datname, $1)';
    const { rows } = await admin.query<{ datname: string }>(left, [runPrefix]);
    for (const { datname } of rows) {
      await admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(datname)} WITH (FORCE)`);
    }
  });
  if (embedded) await embedded.stop();
  if (embeddedDir) await fs.rm(embeddedDir, { recursive: true, force: true });
}

async function onAdmin<T>(work: (admin: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    return await work(admin);
  } finally {
    await admin.end();
  }
}
