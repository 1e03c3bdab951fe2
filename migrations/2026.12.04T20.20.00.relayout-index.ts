import type { MigrationContext } from '../src/db/migrator.ts';

/**
 * Relayouts in flight, for the claim's barrier (change-queue.ts): every claimed change looks
 * for one, and there is almost never one. Its own migration: an enum value added in a
 * transaction cannot be used in that transaction (2026.12.04T20.10.00 adds it).
 */
export async function up({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query(`CREATE INDEX change_requests_relayout_in_flight ON change_requests (created_at, id) WHERE kind = 'tenants.relayout' AND status IN ('pending', 'open')`);
}

export async function down({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query('DROP INDEX change_requests_relayout_in_flight');
}
