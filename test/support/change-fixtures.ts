import { randomUUID } from 'node:crypto';
import { QueryTypes, type Sequelize } from 'sequelize';
import type { InstanceWrite, PlatformBootstrap } from '../../src/gitops/render/change-payloads.ts';

/** A platform.bootstrap payload as `npm run bootstrap` writes it. */
export const PLATFORM_BOOTSTRAP: PlatformBootstrap = {
  image: 'ghcr.io/gsv/control-plane:0.1.0',
  host: 'cmp.example.org',
  gitopsRepoURL: 'https://github.com/gsv/gsv-gitops.git',
  baseBranch: 'main',
  notificationsUrl: 'http://cmp-control-plane.cmp.svc',
  secretStore: 'vault',
  github: { repository: 'gsv/gsv-gitops' },
  oidc: { issuer: 'https://sso.example.org/realms/gsv', audience: 'control-plane', jwksUrl: 'https://sso.example.org/realms/gsv/protocol/openid-connect/certs' },
  ssoHost: 'sso.example.org',
  cmsHost: 'cms.example.org',
  cmsImage: 'ghcr.io/gsv/wagtail-site:1.0.0',
  commerceHost: 'shop.example.org',
};

/**
 * An instance.create / instance.update payload as the API writes it: a shipped offering (its
 * role is its slug) at `version`, in the org's default project.
 */
export function instanceWritePayload(
  org: string,
  instanceName: string,
  options: { offering?: string; version?: string; parameters?: Record<string, unknown> } = {},
): InstanceWrite {
  const offering = options.offering ?? 'studio';
  const version = options.version ?? '1.0.0';
  return { org, project: 'default', instanceName, offering, role: offering, version, templatePath: `templates/offerings/${offering}/${version}`, parameters: options.parameters ?? {} };
}

export interface FixtureInstance {
  orgId: string;
  orgSlug: string;
  projectId: string;
  instanceId: string;
  instanceName: string;
}

let counter = 0;
/** A short slug unique within this test run. */
export function uniqueSlug(prefix: string): string {
  counter += 1;
  return `${prefix}${Date.now().toString(36).slice(-5)}${counter}`;
}

async function one<T extends object>(sequelize: Sequelize, sql: string, replacements: Record<string, unknown>): Promise<T> {
  const rows = await sequelize.query<T>(sql, { type: QueryTypes.SELECT, replacements });
  return rows[0]!;
}

/** An organization with a default project and its owner (rows only, no change request). */
export async function insertOrganization(sequelize: Sequelize, slug = uniqueSlug('org'), owner = `user-${randomUUID()}`): Promise<{ orgId: string; orgSlug: string; projectId: string; owner: string }> {
  await sequelize.query('INSERT INTO users (subject, username) VALUES (:owner, :owner) ON CONFLICT DO NOTHING', { replacements: { owner } });
  const org = await one<{ id: string }>(sequelize, `INSERT INTO organizations (slug, name, keycloak_group) VALUES (:slug, :slug, :group) RETURNING id`, { slug, group: `/orgs/${slug}` });
  const project = await one<{ id: string }>(sequelize, `INSERT INTO projects (organization_id, slug, name) VALUES (:org, 'default', 'Default') RETURNING id`, { org: org.id });
  await sequelize.query(`INSERT INTO memberships (organization_id, subject, role) VALUES (:org, :owner, 'owner')`, { replacements: { org: org.id, owner } });
  return { orgId: org.id, orgSlug: slug, projectId: project.id, owner };
}

/**
 * An offering version row, created on first use. Fixtures use their own slug by default so the
 * shipped catalog (seeded by the service, never overwritten) stays as the files say.
 */
export async function ensureOfferingVersion(sequelize: Sequelize, slug: string, role: string, version: string): Promise<string> {
  await sequelize.query(
    `INSERT INTO offerings (slug, role, name, description) VALUES (:slug, :role, :slug, :slug) ON CONFLICT (slug) DO NOTHING`,
    { replacements: { slug, role } },
  );
  const offering = await one<{ id: string }>(sequelize, 'SELECT id FROM offerings WHERE slug = :slug', { slug });
  await sequelize.query(
    `INSERT INTO offering_versions (offering_id, version, template_path, parameters_schema, currency, setup_fee_minor, hourly_rate_minor)
     VALUES (:offering, :version, :path, '{}', 'EUR', 0, 0) ON CONFLICT (offering_id, version) DO NOTHING`,
    { replacements: { offering: offering.id, version, path: `templates/offerings/${slug}/${version}` } },
  );
  const row = await one<{ id: string }>(sequelize, 'SELECT id FROM offering_versions WHERE offering_id = :offering AND version = :version', { offering: offering.id, version });
  return row.id;
}

export async function insertInstance(
  sequelize: Sequelize,
  org: { orgId: string; projectId: string; owner: string },
  options: { name?: string; offering?: string; role?: string; version?: string; state?: string; desired?: 'present' | 'absent'; observedCommitSha?: string } = {},
): Promise<{ instanceId: string; instanceName: string }> {
  const versionId = await ensureOfferingVersion(sequelize, options.offering ?? 'fixture-offering', options.role ?? 'studio', options.version ?? '1.0.0');
  const name = options.name ?? uniqueSlug('inst');
  const row = await one<{ id: string }>(
    sequelize,
    `INSERT INTO instances (organization_id, project_id, offering_version_id, name, state, desired_state, created_by,
       observed_state, ever_present, observed_offering_version_id, observed_parameters, observed_commit_sha, health, running_since)
     VALUES (:org, :project, :version, :name, :state, :desired, :owner,
       :observed, :ever, CASE WHEN :observed = 'present' THEN :version::uuid END, CASE WHEN :observed = 'present' THEN '{}'::jsonb END,
       :commit, :health, CASE WHEN :health IN ('healthy', 'degraded') THEN now() END) RETURNING id`,
    { org: org.orgId, project: org.projectId, version: versionId, name, state: options.state ?? 'requested', desired: options.desired ?? 'present', owner: org.owner, ...factsOf(options.state ?? 'requested', options.desired ?? 'present'), commit: options.observedCommitSha ?? null },
  );
  return { instanceId: row.id, instanceName: name };
}

/** Inserts a pending change request as the API does (the outbox row). */
export async function insertChange(
  sequelize: Sequelize,
  change: { kind: string; payload: unknown; orgId?: string; instanceId?: string; mergePolicy?: string; requestedBy?: string; createdAt?: Date },
): Promise<string> {
  const row = await one<{ id: string }>(
    sequelize,
    `INSERT INTO change_requests (kind, organization_id, instance_id, payload, requested_by, merge_policy, created_at, next_attempt_at)
     VALUES (:kind, :org, :instance, :payload, :by, :policy, :created, :created) RETURNING id`,
    {
      kind: change.kind,
      org: change.orgId ?? null,
      instance: change.instanceId ?? null,
      payload: JSON.stringify(change.payload),
      by: change.requestedBy ?? 'tester',
      policy: change.mergePolicy ?? 'pull-request',
      created: change.createdAt ?? new Date(Date.now() - 60_000),
    },
  );
  // The latest request is the instance's latest change, as the API records it.
  if (change.instanceId) await sequelize.query('UPDATE instances SET last_change_id = :change WHERE id = :id', { replacements: { id: change.instanceId, change: row.id } });
  return row.id;
}

/**
 * The facts an instance in `state` has (its state is derived from them): whether main holds it,
 * and what Argo CD said. Fixtures that start an instance in a given state write these too.
 */
function factsOf(state: string, desired: 'present' | 'absent'): { observed: 'present' | 'absent'; ever: boolean; health: string } {
  switch (state) {
    case 'syncing':
    case 'updating':
      return { observed: 'present', ever: true, health: 'unknown' };
    case 'ready':
    case 'suspended':
      return { observed: 'present', ever: true, health: 'healthy' };
    case 'degraded':
      return { observed: 'present', ever: true, health: 'degraded' };
    case 'failed':
      return { observed: 'present', ever: true, health: 'failed' };
    case 'deleting':
      return desired === 'absent' ? { observed: 'absent', ever: true, health: 'unknown' } : { observed: 'present', ever: true, health: 'unknown' };
    case 'deleted':
      return { observed: 'absent', ever: true, health: 'gone' };
    default:
      return { observed: 'absent', ever: false, health: 'unknown' };
  }
}
