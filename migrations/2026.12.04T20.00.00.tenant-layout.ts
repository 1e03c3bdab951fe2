import type { MigrationContext } from '../src/db/migrator.ts';

/**
 * Where each org's directory sits in gsv-gitops (issue 13, src/gitops/tenant-paths.ts):
 * `bucketed` (tenants/_<2 hex>/<org>/) for orgs created from now on, `flat` (tenants/<org>/) for
 * those that exist, which stay where they are until the layout migration moves them.
 */
export async function up({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query(`
    ALTER TABLE organizations ADD COLUMN tenant_layout text NOT NULL DEFAULT 'flat' CHECK (tenant_layout IN ('flat', 'bucketed'));
    ALTER TABLE organizations ALTER COLUMN tenant_layout SET DEFAULT 'bucketed';
  `);
}

export async function down({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query('ALTER TABLE organizations DROP COLUMN tenant_layout');
}
