import type { MigrationContext } from '../src/db/migrator.ts';

/** A statement finds each usage entry's hour through its transfer (statement.ts). */
export async function up({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query('CREATE INDEX metered_hours_transfer ON metered_hours (transfer_id) WHERE transfer_id IS NOT NULL');
}

export async function down({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query('DROP INDEX metered_hours_transfer');
}
