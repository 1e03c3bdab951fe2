import type { MigrationContext } from '../src/db/migrator.ts';

/**
 * Workspaces, catalog, instances and the change requests (the outbox the GitOps worker drains).
 * Written as SQL: constraints, partial indexes and enums read best in their own language.
 */
export async function up({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query(`
    CREATE TYPE membership_role AS ENUM ('owner', 'member', 'viewer');
    CREATE TYPE offering_version_status AS ENUM ('active', 'deprecated', 'retired');
    CREATE TYPE instance_state AS ENUM (
      'requested', 'pending_review', 'syncing', 'ready', 'rejected', 'degraded', 'failed',
      'updating', 'deleting', 'deleted', 'suspended');
    CREATE TYPE change_kind AS ENUM ('workspace.create', 'instance.create', 'instance.update', 'instance.delete', 'platform.bootstrap');
    CREATE TYPE change_status AS ENUM ('pending', 'open', 'merged', 'closed', 'failed');
    CREATE TYPE merge_policy AS ENUM ('pull-request', 'auto-merge', 'direct');

    CREATE TABLE users (
      subject text PRIMARY KEY,
      username text,
      email text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE organizations (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$'),
      name text NOT NULL,
      -- Set for workspaces made by POST /orgs/auto: one per user, whatever the concurrency.
      auto_owner_subject text UNIQUE REFERENCES users(subject),
      keycloak_group text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE projects (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      organization_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
      slug text NOT NULL CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$'),
      name text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (organization_id, slug)
    );

    CREATE TABLE teams (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      organization_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
      slug text NOT NULL CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$'),
      name text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (organization_id, slug)
    );

    CREATE TABLE memberships (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      organization_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
      subject text NOT NULL REFERENCES users(subject),
      role membership_role NOT NULL,
      team_id uuid REFERENCES teams(id) ON DELETE SET NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (organization_id, subject)
    );
    CREATE INDEX memberships_subject ON memberships (subject);

    CREATE TABLE offerings (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?$'),
      role text NOT NULL CHECK (role ~ '^[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?$'),
      name text NOT NULL,
      description text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE offering_versions (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      offering_id uuid NOT NULL REFERENCES offerings(id) ON DELETE CASCADE,
      version text NOT NULL,
      template_path text NOT NULL,
      parameters_schema jsonb NOT NULL,
      currency char(3) NOT NULL,
      setup_fee_minor bigint NOT NULL CHECK (setup_fee_minor >= 0),
      hourly_rate_minor bigint NOT NULL CHECK (hourly_rate_minor >= 0),
      status offering_version_status NOT NULL DEFAULT 'active',
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (offering_id, version)
    );

    CREATE TABLE instances (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      organization_id uuid NOT NULL REFERENCES organizations(id),
      project_id uuid NOT NULL REFERENCES projects(id),
      offering_version_id uuid NOT NULL REFERENCES offering_versions(id),
      name text NOT NULL CHECK (name ~ '^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$'),
      parameters jsonb NOT NULL DEFAULT '{}',
      state instance_state NOT NULL DEFAULT 'requested',
      desired_state text NOT NULL DEFAULT 'present' CHECK (desired_state IN ('present', 'absent')),
      last_change_id uuid,
      last_error text,
      created_by text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    -- A name is taken while its instance exists; a deleted instance frees it.
    CREATE UNIQUE INDEX instances_org_name_live ON instances (organization_id, name) WHERE state <> 'deleted';
    CREATE INDEX instances_org_created ON instances (organization_id, created_at DESC, id DESC);
    CREATE INDEX instances_state ON instances (state);

    CREATE TABLE instance_events (
      id bigserial PRIMARY KEY,
      instance_id uuid NOT NULL REFERENCES instances(id),
      from_state instance_state,
      to_state instance_state NOT NULL,
      cause text NOT NULL,
      actor text NOT NULL,
      change_id uuid,
      delivery_id text,
      detail jsonb NOT NULL DEFAULT '{}',
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX instance_events_instance ON instance_events (instance_id, id);

    CREATE TABLE change_requests (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      kind change_kind NOT NULL,
      status change_status NOT NULL DEFAULT 'pending',
      organization_id uuid REFERENCES organizations(id),
      instance_id uuid REFERENCES instances(id),
      -- What to render, fixed when the change is accepted (version, parameters, ...).
      payload jsonb NOT NULL DEFAULT '{}',
      requested_by text NOT NULL,
      merge_policy merge_policy NOT NULL,
      -- Filled by the worker.
      batch_id uuid,
      branch text,
      pull_request_number integer,
      pull_request_url text,
      commit_sha text,
      merge_commit_sha text,
      files jsonb,
      attempts integer NOT NULL DEFAULT 0,
      next_attempt_at timestamptz NOT NULL DEFAULT now(),
      lease_owner text,
      lease_expires_at timestamptz,
      last_error text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX change_requests_pending ON change_requests (next_attempt_at, created_at) WHERE status = 'pending';
    CREATE INDEX change_requests_org ON change_requests (organization_id, created_at DESC);
    CREATE INDEX change_requests_instance ON change_requests (instance_id, created_at);
    CREATE INDEX change_requests_branch ON change_requests (branch) WHERE branch IS NOT NULL;

    ALTER TABLE instances ADD CONSTRAINT instances_last_change FOREIGN KEY (last_change_id) REFERENCES change_requests(id);
    ALTER TABLE instance_events ADD CONSTRAINT instance_events_change FOREIGN KEY (change_id) REFERENCES change_requests(id);

    CREATE TABLE idempotency_keys (
      principal text NOT NULL,
      key text NOT NULL,
      method text NOT NULL,
      path text NOT NULL,
      request_hash char(64) NOT NULL,
      response_status integer,
      response_body jsonb,
      created_at timestamptz NOT NULL DEFAULT now(),
      completed_at timestamptz,
      PRIMARY KEY (principal, key)
    );
  `);
}

export async function down({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query(`
    DROP TABLE idempotency_keys;
    ALTER TABLE instances DROP CONSTRAINT instances_last_change;
    DROP TABLE instance_events;
    DROP TABLE change_requests;
    DROP TABLE instances;
    DROP TABLE offering_versions;
    DROP TABLE offerings;
    DROP TABLE memberships;
    DROP TABLE teams;
    DROP TABLE projects;
    DROP TABLE organizations;
    DROP TABLE users;
    DROP TYPE merge_policy; DROP TYPE change_status; DROP TYPE change_kind;
    DROP TYPE instance_state; DROP TYPE offering_version_status; DROP TYPE membership_role;
  `);
}
