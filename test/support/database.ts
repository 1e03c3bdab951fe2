import type { Sequelize } from 'sequelize';
import { createLogger } from '../../src/logger.ts';
import { createSequelize } from '../../src/db/database.ts';
import { createDatabaseOn } from './scratch-service.ts';

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
export function createScratchDatabase(label: string): Promise<{ url: string; drop(): Promise<void> }> {
  return createDatabaseOn(process.env.TEST_ADMIN_DATABASE_URL!, `scratch_${label}`);
}

/**
 * Specs share one database: a spec whose worker claims pending changes first fails the ones
 * other specs left pending (and, with `open`, closes their open ones, whose pull request
 * numbers may collide with its backend's), so it only ever works on its own.
 */
export async function settleOtherSpecsChanges(sequelize: Sequelize, options: { open?: boolean } = {}): Promise<void> {
  await sequelize.query(`UPDATE change_requests SET status = 'failed', last_error = 'left by another spec' WHERE status = 'pending'`);
  if (options.open) await sequelize.query(`UPDATE change_requests SET status = 'closed', last_error = 'left by another spec' WHERE status = 'open'`);
}
