import type { MigrationContext } from '../src/db/migrator.ts';

/**
 * Org-scoped API tokens (POST /orgs/:org/tokens): a token belongs to one organization and acts
 * there with one role, through a membership row of its own (subject `org-token:<id>`), so every
 * query that scopes by membership scopes it too, and it is a member of no other org.
 * Names are unique per subject among personal tokens (`<subject>/<name>`, as before) and per
 * organization among org tokens: two partial unique indexes instead of one.
 */
export async function up({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query(`
    ALTER TABLE api_tokens
      ADD COLUMN organization_id uuid REFERENCES organizations(id) ON DELETE CASCADE,
      ADD COLUMN role text CHECK (role IN ('owner', 'member', 'viewer')),
      ADD COLUMN created_by text,
      ADD CONSTRAINT api_tokens_org_role CHECK ((organization_id IS NULL) = (role IS NULL)),
      ADD CONSTRAINT api_tokens_org_not_admin CHECK (organization_id IS NULL OR NOT platform_admin);
    DROP INDEX api_tokens_name_unique;
    CREATE UNIQUE INDEX api_tokens_name_unique ON api_tokens (name) WHERE organization_id IS NULL;
    CREATE UNIQUE INDEX api_tokens_org_name_unique ON api_tokens (organization_id, name) WHERE organization_id IS NOT NULL;
    ALTER TABLE memberships ADD COLUMN api_token_id uuid UNIQUE REFERENCES api_tokens(id) ON DELETE CASCADE;
  `);
}

export async function down({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query(`
    ALTER TABLE memberships DROP COLUMN api_token_id;
    DELETE FROM api_tokens WHERE organization_id IS NOT NULL;
    DROP INDEX api_tokens_org_name_unique;
    DROP INDEX api_tokens_name_unique;
    CREATE UNIQUE INDEX api_tokens_name_unique ON api_tokens (name);
    ALTER TABLE api_tokens DROP COLUMN organization_id, DROP COLUMN role, DROP COLUMN created_by;
  `);
}
