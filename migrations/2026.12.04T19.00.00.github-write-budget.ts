import type { MigrationContext } from '../src/db/migrator.ts';

/**
 * The write budget the github driver spends from (issue 13: GitHub allows about 80
 * content-creating requests a minute and 500 an hour per installation, whatever the number of
 * replicas). A token bucket per GitHub identity, shared by every replica: `tokens` as of
 * `refilled_at_ms` (the budget's clock, milliseconds since the epoch).
 */
export async function up({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query(`
    CREATE TABLE github_write_budget (
      key text PRIMARY KEY,
      tokens double precision NOT NULL,
      refilled_at_ms double precision NOT NULL
    );
  `);
}

export async function down({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query('DROP TABLE github_write_budget');
}
