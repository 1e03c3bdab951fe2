import type { MigrationContext } from '../src/db/migrator.ts';

/**
 * Branches of merged changes are deleted (issue 13: GitHub advises at most about 5,000 branches,
 * and every batch left one behind). When the service deleted a change's branch.
 */
export async function up({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query(`
    ALTER TABLE change_requests ADD COLUMN branch_deleted_at timestamptz;
    CREATE INDEX change_requests_branch_to_delete ON change_requests (branch) WHERE status = 'merged' AND branch IS NOT NULL AND branch_deleted_at IS NULL;
  `);
}

export async function down({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query('DROP INDEX change_requests_branch_to_delete; ALTER TABLE change_requests DROP COLUMN branch_deleted_at');
}
