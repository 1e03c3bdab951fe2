import type { MigrationContext } from '../src/db/migrator.ts';

/**
 * Webhook deliveries, one row per (source, delivery key): GitHub's X-GitHub-Delivery, or for
 * Argo CD (which sends no id) the application, revision, phase, finishedAt and health it reports.
 * `processed_at` is set in the same transaction as the delivery's effect, so a redelivery after
 * a failure is processed again and a redelivery after success is not.
 */
export async function up({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query(`
    CREATE TABLE webhook_deliveries (
      source text NOT NULL CHECK (source IN ('github', 'argocd')),
      delivery_key text NOT NULL,
      event text NOT NULL,
      attempts integer NOT NULL DEFAULT 1,
      processed_at timestamptz,
      outcome jsonb,
      last_error text,
      received_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (source, delivery_key)
    );
    CREATE INDEX webhook_deliveries_failed ON webhook_deliveries (updated_at) WHERE processed_at IS NULL;
  `);
}

export async function down({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query('DROP TABLE webhook_deliveries;');
}
