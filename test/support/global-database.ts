import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs/promises';
import pg from 'pg';
import { createLogger } from '../../src/logger.ts';
import { createSequelize } from '../../src/db/database.ts';
import { migrate } from '../../src/db/migrator.ts';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/db/embedded-postgres.ts';
import { freePort } from './free-port.ts';

/**
 * Mocha global fixture: every test run gets a database of its own, created here and dropped
 * at the end, on the server named by DATABASE_URL or, without it, on an embedded PostgreSQL.
 * Specs read the URL from TEST_DATABASE_URL (see test/support/database.ts).
 */
let embedded: EmbeddedDatabase | undefined;
let embeddedDir: string | undefined;
let adminUrl: string;
let databaseName: string;

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
  databaseName = `cp_test_${Date.now().toString(36)}_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(databaseName)}`);
  await admin.end();

  const url = new URL(adminUrl);
  url.pathname = `/${databaseName}`;
  process.env.TEST_DATABASE_URL = url.toString();
  process.env.TEST_ADMIN_DATABASE_URL = adminUrl;

  const sequelize = createSequelize({ url: url.toString(), poolMax: 2, logger });
  await migrate(url.toString(), sequelize, logger);
  await sequelize.close();
}

export async function mochaGlobalTeardown(): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(databaseName)} WITH (FORCE)`);
  await admin.end();
  if (embedded) await embedded.stop();
  if (embeddedDir) await fs.rm(embeddedDir, { recursive: true, force: true });
}
