import pg from 'pg';
import type { Sequelize } from 'sequelize';
import { createLogger } from '../../src/logger.ts';
import { createSequelize } from '../../src/db/database.ts';

/** The migrated database of this test run (created by global-database.ts). */
export function testDatabaseUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error('TEST_DATABASE_URL is not set: run specs through mocha (npm test), which creates the test database');
  return url;
}

export function createTestSequelize(poolMax = 5): Sequelize {
  return createSequelize({ url: testDatabaseUrl(), poolMax, logger: createLogger('silent') });
}

/**
 * Creates an empty extra database on the test server for a test that needs one of its own
 * (migrations, several replicas); returns its URL and a function that drops it.
 */
export async function createScratchDatabase(label: string): Promise<{ url: string; drop(): Promise<void> }> {
  const adminUrl = process.env.TEST_ADMIN_DATABASE_URL!;
  const name = `cp_scratch_${label}_${Date.now().toString(36)}_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(name)}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`);
      await client.end();
    },
  };
}
