import { randomUUID } from 'node:crypto';
import type { Sequelize } from 'sequelize';
import { createLogger } from '../../src/logger.ts';
import { createSequelize } from '../../src/db/database.ts';
import { createNamedDatabase, type ScratchDatabase } from './scratch-service.ts';

/**
 * Gives the enclosing describe a migrated database of its own, a copy of the run's template
 * (global-database.ts), so no spec sees, claims or has to clean up another spec's rows.
 * Call it first in the describe body: its `before` then runs ahead of the spec's, which find
 * the URL in testDatabaseUrl(), createTestSequelize() and, for processes they spawn with
 * `...process.env`, TEST_DATABASE_URL. The database is dropped after the spec's own `after`
 * hooks, once they have closed their connections.
 */
export function useSpecDatabase(): void {
  before('a database of its own', async function () {
    const suite = this.test?.parent;
    if (!suite || suite.root) throw new Error('useSpecDatabase() belongs inside a describe, as its first line');
    const database = await takeSpecDatabase();
    const outer = process.env.TEST_DATABASE_URL;
    process.env.TEST_DATABASE_URL = database.url;
    // Added now, so it runs after every `after` hook the spec registered.
    suite.afterAll('drop its database', async () => {
      if (outer === undefined) delete process.env.TEST_DATABASE_URL;
      else process.env.TEST_DATABASE_URL = outer;
      await database.drop();
    });
  });
}

/** The database of the running spec (see useSpecDatabase). */
export function testDatabaseUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) {
    throw new Error(
      'This spec has no database: call useSpecDatabase() first in its describe, and run specs through mocha ' +
        '(npm test), whose global setup migrates the template it copies',
    );
  }
  return url;
}

export function createTestSequelize(poolMax = 5): Sequelize {
  return createSequelize({ url: testDatabaseUrl(), poolMax, logger: createLogger('silent') });
}

/**
 * Creates an empty extra database on the test server for a test that needs one of its own
 * (migrations, services that migrate on start); returns its URL and a function that drops it.
 */
export function createScratchDatabase(label: string): Promise<ScratchDatabase> {
  const name = `${testDatabasePrefix()}_scratch_${label}_${randomUUID().slice(0, 8)}`;
  return createNamedDatabase(testServerUrl(), name);
}

// Mocha runs specs one at a time: while one runs, the next one's copy is made, so a spec waits
// for CREATE DATABASE only when the spec before it was quicker. State of the whole run, hence
// module-level; the global teardown drops the copy nobody took (releaseSpareDatabase).
let spare: Promise<ScratchDatabase> | undefined;

function takeSpecDatabase(): Promise<ScratchDatabase> {
  const database = spare ?? createSpecDatabase();
  spare = createSpecDatabase();
  // Its failure, if any, is the next spec's to report, when it takes it.
  spare.catch(() => undefined);
  return database;
}

/** Drops the database made ahead for a spec that never came; for the global teardown. */
export async function releaseSpareDatabase(): Promise<void> {
  const database = await spare?.catch(() => undefined);
  spare = undefined;
  await database?.drop();
}

function createSpecDatabase(): Promise<ScratchDatabase> {
  const template = process.env.TEST_TEMPLATE_DATABASE;
  if (!template) {
    return Promise.reject(new Error('TEST_TEMPLATE_DATABASE is not set: run specs through mocha (npm test)'));
  }
  return createNamedDatabase(testServerUrl(), `${testDatabasePrefix()}_${randomUUID().slice(0, 8)}`, template);
}

function testServerUrl(): string {
  const url = process.env.TEST_ADMIN_DATABASE_URL;
  if (!url) throw new Error('TEST_ADMIN_DATABASE_URL is not set: run specs through mocha (npm test), which sets it');
  return url;
}

function testDatabasePrefix(): string {
  return process.env.TEST_DATABASE_PREFIX ?? 'cp_test';
}
