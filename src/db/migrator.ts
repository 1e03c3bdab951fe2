import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { Umzug, SequelizeStorage } from 'umzug';
import type { QueryInterface, Sequelize } from 'sequelize';
import type { Logger } from '../logger.ts';

export interface MigrationContext {
  queryInterface: QueryInterface;
  sequelize: Sequelize;
}

export interface MigrationModule {
  up(params: { context: MigrationContext }): Promise<void>;
  down?(params: { context: MigrationContext }): Promise<void>;
}

const MIGRATIONS_DIR = path.resolve(import.meta.dirname, '../../migrations');

/** Arbitrary but fixed: every replica contends for the same advisory lock while migrating. */
const MIGRATION_LOCK_KEY = 0x6370_6d69; // "cpmi"

export function createMigrator(sequelize: Sequelize, logger: Logger): Umzug<MigrationContext> {
  return new Umzug<MigrationContext>({
    migrations: {
      glob: ['*.ts', { cwd: MIGRATIONS_DIR, ignore: ['*.d.ts'] }],
      // Migrations are TypeScript modules run by Node's type stripping, so load them with import().
      resolve: ({ name, path: file, context }) => ({
        name,
        up: async () => ((await import(pathToFileURL(file!).href)) as MigrationModule).up({ context }),
        down: async () => {
          const migration = (await import(pathToFileURL(file!).href)) as MigrationModule;
          if (!migration.down) throw new Error(`migration ${name} cannot be reverted`);
          await migration.down({ context });
        },
      }),
    },
    context: { queryInterface: sequelize.getQueryInterface(), sequelize },
    storage: new SequelizeStorage({ sequelize, tableName: 'schema_migrations' }),
    logger: {
      info: (event) => logger.info(event, 'migration'),
      warn: (event) => logger.warn(event, 'migration'),
      error: (event) => logger.error(event, 'migration'),
      debug: (event) => logger.debug(event, 'migration'),
    },
  });
}

/**
 * Runs pending migrations while holding a session-level advisory lock on a dedicated
 * connection, so several replicas starting together migrate once and the others wait,
 * then find nothing left to do.
 */
export async function migrate(databaseUrl: string, sequelize: Sequelize, logger: Logger): Promise<string[]> {
  const lockClient = new pg.Client({ connectionString: databaseUrl, application_name: 'control-plane-migrate' });
  await lockClient.connect();
  try {
    await lockClient.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      const applied = await createMigrator(sequelize, logger).up();
      return applied.map((m) => m.name);
    } finally {
      await lockClient.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    await lockClient.end();
  }
}
