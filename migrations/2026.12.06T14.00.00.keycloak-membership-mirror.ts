import type { MigrationContext } from '../src/db/migrator.ts';

/**
 * The membership mirror (src/domain/membership-mirror.ts owns both tables): an outbox of
 * Keycloak membership operations, written in the transaction of the membership change, and the
 * Keycloak ids of the groups it made or found.
 * An operation names the state (org, subject) must reach in Keycloak: `role` is the membership
 * role, NULL means "not a member". A NULL subject is the org's groups alone (workspace creation).
 * Operations of one (org, subject) are applied in id order, one at a time.
 */
export async function up({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query(`
    CREATE TYPE keycloak_op_status AS ENUM ('pending', 'done', 'superseded', 'skipped');
    CREATE TABLE keycloak_membership_ops (
      id bigserial PRIMARY KEY,
      org_slug text NOT NULL CHECK (org_slug ~ '^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$'),
      subject text CHECK (length(subject) BETWEEN 1 AND 255),
      role membership_role,
      CHECK (subject IS NOT NULL OR role IS NULL),
      cause text NOT NULL,
      status keycloak_op_status NOT NULL DEFAULT 'pending',
      attempts integer NOT NULL DEFAULT 0,
      next_attempt_at timestamptz NOT NULL DEFAULT now(),
      lease_owner text,
      lease_expires_at timestamptz,
      last_error text,
      result text,
      created_at timestamptz NOT NULL DEFAULT now(),
      finished_at timestamptz
    );
    CREATE INDEX keycloak_membership_ops_pending ON keycloak_membership_ops (org_slug, subject, id) WHERE status = 'pending';
    CREATE INDEX keycloak_membership_ops_finished ON keycloak_membership_ops (org_slug, subject, finished_at) WHERE status <> 'pending';

    CREATE TABLE keycloak_groups (
      path text PRIMARY KEY CHECK (path ~ '^(/[a-z0-9-]+)+$'),
      group_id text NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now()
    );
  `);
}

export async function down({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query('DROP TABLE keycloak_groups; DROP TABLE keycloak_membership_ops; DROP TYPE keycloak_op_status;');
}
