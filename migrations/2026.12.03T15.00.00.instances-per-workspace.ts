import type { MigrationContext } from '../src/db/migrator.ts';

/**
 * An offering may run a limited number of instances per workspace (issue 12): RAGFlow's chart
 * writes some objects under the same name for every release, so two of its instances in one
 * tenant namespace would share them, and deleting either would prune them from both. The limit
 * and why are the offering's (offering.yaml, upserted at every start), not a version's.
 */
export async function up({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query(`
    ALTER TABLE offerings
      ADD COLUMN instances_per_workspace integer CHECK (instances_per_workspace >= 1),
      ADD COLUMN instances_per_workspace_reason text CHECK (length(instances_per_workspace_reason) BETWEEN 1 AND 1000),
      ADD CONSTRAINT offerings_limit_has_reason CHECK ((instances_per_workspace IS NULL) = (instances_per_workspace_reason IS NULL));
  `);
}

export async function down({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query(`ALTER TABLE offerings DROP CONSTRAINT offerings_limit_has_reason, DROP COLUMN instances_per_workspace_reason, DROP COLUMN instances_per_workspace`);
}
