import type { MigrationContext } from '../src/db/migrator.ts';

/**
 * Cancel and retry (issue 20): a change withdrawn by the person who asked for it (or an owner of
 * its org) is `cancelled`, with who did it; a retry is a new change naming the failed one it
 * re-proposes, at most one per failed change (so retrying twice answers the same retry).
 */
export async function up({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query(`ALTER TYPE change_status ADD VALUE IF NOT EXISTS 'cancelled'`);
  await sequelize.query(`
    ALTER TABLE change_requests
      ADD COLUMN cancelled_by text,
      ADD COLUMN retry_of uuid REFERENCES change_requests(id);
    CREATE UNIQUE INDEX change_requests_retry_of ON change_requests (retry_of) WHERE retry_of IS NOT NULL;
  `);
}

export async function down({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  // PostgreSQL cannot drop an enum value; 'cancelled' stays in change_status, unused.
  await sequelize.query(`
    DROP INDEX change_requests_retry_of;
    ALTER TABLE change_requests DROP COLUMN retry_of, DROP COLUMN cancelled_by;
  `);
}
