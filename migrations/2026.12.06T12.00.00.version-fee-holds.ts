import type { MigrationContext } from '../src/db/migrator.ts';

/**
 * A setup-fee hold names its purpose: the instance and the offering version whose fee it is
 * (an instance's create and each upgrade hold their version's fee). Capture transfers carry the
 * instance too. Pending setup-fee holds of before get theirs (resolved ones are history, and
 * the resolves-once trigger keeps them as they are).
 */
export async function up({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query(`
    ALTER TABLE billing_authorizations
      ADD COLUMN instance_id uuid REFERENCES instances(id),
      ADD COLUMN offering_version_id uuid REFERENCES offering_versions(id),
      ADD CONSTRAINT billing_authorizations_purpose CHECK ((instance_id IS NULL) = (offering_version_id IS NULL));
    CREATE INDEX billing_authorizations_instance ON billing_authorizations (instance_id, offering_version_id, created_at) WHERE instance_id IS NOT NULL;
    UPDATE billing_authorizations a SET instance_id = i.id, offering_version_id = i.offering_version_id
      FROM instances i
     WHERE a.status = 'pending' AND a.created_by = 'control-plane' AND a.reference = i.id::text;
  `);
}

export async function down({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query(`
    DROP INDEX billing_authorizations_instance;
    ALTER TABLE billing_authorizations DROP CONSTRAINT billing_authorizations_purpose, DROP COLUMN offering_version_id, DROP COLUMN instance_id;
  `);
}
