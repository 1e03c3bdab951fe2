import type { MigrationContext } from '../src/db/migrator.ts';

/**
 * A progress deadline (issue 20): how long a merged change may take to become ready before the
 * instance says so (offering versions may set their own), and when the reconciler found the
 * instance's latest change past it (compared with that change's updated_at, so a newer change
 * starts a new deadline without anything being reset).
 */
export async function up({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query(`
    ALTER TABLE offering_versions ADD COLUMN progress_deadline_seconds integer CHECK (progress_deadline_seconds BETWEEN 1 AND 604800);
    ALTER TABLE instances ADD COLUMN progress_deadline_exceeded_at timestamptz;
  `);
}

export async function down({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query(`
    ALTER TABLE instances DROP COLUMN progress_deadline_exceeded_at;
    ALTER TABLE offering_versions DROP COLUMN progress_deadline_seconds;
  `);
}
