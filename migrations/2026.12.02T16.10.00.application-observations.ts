import type { MigrationContext } from '../src/db/migrator.ts';

/**
 * Argo CD's last word on each of an instance's two Applications (issue 12): the parent
 * (apps-…, whose source is gsv-gitops and which applies the instance Application from main) and
 * the child (the instance Application, whose source is a Helm chart or another repository).
 * Readiness needs both; their notices arrive apart, in any order, so the latest of each is kept
 * and a late older one does not replace it (reported_at: when Argo CD assessed what it says).
 */
export async function up({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query(`
    CREATE TABLE application_observations (
      instance_id uuid NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
      tier text NOT NULL CHECK (tier IN ('parent', 'child')),
      application text NOT NULL,
      observation jsonb NOT NULL,
      reported_at timestamptz,
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (instance_id, tier)
    );
  `);
}

export async function down({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query('DROP TABLE application_observations');
}
