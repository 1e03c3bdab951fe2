import type { MigrationContext } from '../src/db/migrator.ts';

/** The change that moves flat orgs to the bucketed layout (issue 13). */
export async function up({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query(`ALTER TYPE change_kind ADD VALUE IF NOT EXISTS 'tenants.relayout'`);
}

export async function down(): Promise<void> {
  // PostgreSQL cannot drop an enum value; 'tenants.relayout' stays in change_kind, unused.
}
