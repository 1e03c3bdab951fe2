import type { MigrationContext } from '../src/db/migrator.ts';

/**
 * Git is the truth (issue 11): what the base branch holds for each instance (observed), the
 * facts its state is derived from, superseded changes, and how far the service has read main.
 */
export async function up({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query(`ALTER TYPE change_status ADD VALUE IF NOT EXISTS 'superseded'`);
  await sequelize.query(`
    ALTER TABLE change_requests
      ADD COLUMN superseded_by uuid REFERENCES change_requests(id),
      -- A superseded change whose pull request still has to be closed or trimmed (an outbox).
      ADD COLUMN supersede_pending boolean NOT NULL DEFAULT false,
      ADD COLUMN reason text;
    CREATE INDEX change_requests_supersede_pending ON change_requests (updated_at) WHERE supersede_pending;
    CREATE INDEX change_requests_pull_request ON change_requests (pull_request_number) WHERE pull_request_number IS NOT NULL;

    ALTER TABLE instances
      -- What the base branch holds for the instance: its directory, and the spec in it.
      ADD COLUMN observed_state text NOT NULL DEFAULT 'absent' CHECK (observed_state IN ('present', 'absent')),
      ADD COLUMN observed_offering_version_id uuid REFERENCES offering_versions(id),
      ADD COLUMN observed_parameters jsonb,
      -- The commit of the base branch that last changed the instance's directory.
      ADD COLUMN observed_commit_sha text,
      ADD COLUMN observed_at timestamptz,
      ADD COLUMN ever_present boolean NOT NULL DEFAULT false,
      -- What Argo CD last said about the observed spec: reset when the spec changes.
      ADD COLUMN health text NOT NULL DEFAULT 'unknown' CHECK (health IN ('unknown', 'healthy', 'degraded', 'failed', 'gone')),
      ADD COLUMN suspended boolean NOT NULL DEFAULT false,
      -- Set while desired and observed disagree after a merge; says why.
      ADD COLUMN drift text,
      -- The start of the current running period (first ready since the spec reached main): metering's clock.
      ADD COLUMN running_since timestamptz;

    -- Instances created before convergence existed: what their state says ran is what Git held.
    UPDATE instances SET observed_state = 'present', ever_present = true,
      observed_offering_version_id = offering_version_id, observed_parameters = parameters,
      health = CASE state WHEN 'ready' THEN 'healthy' WHEN 'degraded' THEN 'degraded' WHEN 'failed' THEN 'failed' ELSE 'unknown' END,
      suspended = (state = 'suspended'),
      running_since = CASE WHEN state IN ('ready', 'degraded', 'suspended', 'updating') THEN updated_at END
     WHERE state IN ('syncing', 'ready', 'degraded', 'updating', 'suspended') OR (state = 'deleting' AND desired_state = 'absent');
    CREATE INDEX instances_metered ON instances (id) WHERE observed_state = 'present' AND running_since IS NOT NULL;
    CREATE INDEX instances_drift ON instances (organization_id) WHERE drift IS NOT NULL;

    -- Instance events may record an observation that moved no state (from = to).
    CREATE TABLE base_branch_heads (
      branch text PRIMARY KEY,
      sha text NOT NULL,
      observed_at timestamptz NOT NULL DEFAULT now()
    );

    -- Directories under tenants/<org>/apps/ on the base branch that no instance of ours owns.
    CREATE TABLE unknown_tenant_paths (
      path text PRIMARY KEY,
      organization_id uuid REFERENCES organizations(id),
      commit_sha text NOT NULL,
      author text,
      first_seen_at timestamptz NOT NULL DEFAULT now(),
      resolved_at timestamptz
    );
  `);
}

export async function down({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query(`
    DROP TABLE unknown_tenant_paths;
    DROP TABLE base_branch_heads;
    ALTER TABLE instances DROP COLUMN observed_state, DROP COLUMN observed_offering_version_id, DROP COLUMN observed_parameters,
      DROP COLUMN observed_commit_sha, DROP COLUMN observed_at, DROP COLUMN ever_present, DROP COLUMN health,
      DROP COLUMN suspended, DROP COLUMN drift, DROP COLUMN running_since;
    ALTER TABLE change_requests DROP COLUMN superseded_by, DROP COLUMN supersede_pending, DROP COLUMN reason;
  `);
}
