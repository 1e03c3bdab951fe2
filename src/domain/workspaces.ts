import { randomBytes } from 'node:crypto';
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { ForbiddenError, NotFoundError } from '../errors.ts';
import type { MergePolicies } from './changes/change-kinds.ts';
import { insertChangeRequest } from './changes/change-requests.ts';
import { ensureUser, requireOrgAccess, type MembershipRole } from './organization-access.ts';
import type { Principal } from './principal.ts';
import { grantTrialCredit } from './billing/credits.ts';
import type { BillingSettings } from './billing/instance-billing.ts';
import { listOrganizationWallets } from './billing/wallets.ts';
import { SLUG_MAX } from '../gitops/tenant-paths.ts';
import { enqueueGroupEnsure, enqueueMemberSync } from './membership-mirror.ts';

export interface WorkspaceDeps {
  sequelize: Sequelize;
  mergePolicy: MergePolicies;
  billing: BillingSettings;
  /** KEYCLOAK_URL set: the org's groups and membership changes are queued for Keycloak (membership-mirror.ts). */
  mirrorToKeycloak: boolean;
}

export interface Workspace {
  id: string;
  slug: string;
  name: string;
  keycloakGroup: string;
  /** The caller's role in it. */
  role: MembershipRole | null;
  projects: { id: string; slug: string; name: string }[];
  /** The org's wallets, one per currency (GET /billing/wallets/:id). */
  wallets: { id: string; currency: string }[];
  createdAt: string;
}

/** The uniqueness suffix: `-2` … `-99`, then `-` and 6 hex digits. */
const SLUG_SUFFIX_MAX = 7;
/** Longest base this service derives: with any suffix the slug stays within SLUG_MAX.org. */
const SLUG_BASE_MAX = SLUG_MAX.org - SLUG_SUFFIX_MAX;

/**
 * A slug (tenant-paths.ts SLUG_PATTERN) derived from the caller's preferred username, else
 * email local part. Every run of other characters becomes one `-`, so the result never holds
 * `--`, which generated names use as their separator.
 */
export function orgSlugBase(principal: Pick<Principal, 'subject' | 'username' | 'email'>): string {
  const source = principal.username ?? principal.email?.split('@')[0] ?? '';
  const slug = source
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+/, '')
    .slice(0, SLUG_BASE_MAX)
    .replace(/-+$/, '');
  return slug === '' ? 'org' : slug;
}

/** The slugs tried in turn for a base, each a valid org slug. */
export function* orgSlugCandidates(base: string): Generator<string> {
  yield base;
  for (let n = 2; n < 100; n++) yield `${base}-${n}`;
  for (;;) yield `${base}-${randomBytes(3).toString('hex')}`;
}

/**
 * POST /orgs/auto: the caller's own workspace, created on the first call with its default
 * project, owners team, owner membership and a workspace.create change, all in `tx`.
 * A transaction-scoped advisory lock per subject makes concurrent first calls queue up: the
 * first creates, the others find it (and organizations.auto_owner_subject is UNIQUE besides).
 */
export async function ensureAutoWorkspace(deps: WorkspaceDeps, tx: Transaction, principal: Principal): Promise<{ workspace: Workspace; created: boolean }> {
  // An org token acts in its organization only; a workspace of its own would be a second one.
  if (principal.organizationId !== undefined) throw new ForbiddenError('An org token has no workspace of its own; it acts in the organization that minted it.');
  const { sequelize } = deps;
  await sequelize.query("SELECT pg_advisory_xact_lock(hashtextextended('orgs/auto:' || :subject, 0))", {
    type: QueryTypes.SELECT,
    transaction: tx,
    replacements: { subject: principal.subject },
  });
  const [existing] = await sequelize.query<{ id: string }>('SELECT id FROM organizations WHERE auto_owner_subject = :subject', {
    type: QueryTypes.SELECT,
    transaction: tx,
    replacements: { subject: principal.subject },
  });
  if (existing) return { workspace: await workspaceById(sequelize, tx, existing.id, principal), created: false };

  await ensureUser(sequelize, tx, principal);
  const name = principal.username ?? principal.email ?? principal.subject;
  let organizationId: string | undefined;
  let slug = '';
  for (const candidate of orgSlugCandidates(orgSlugBase(principal))) {
    // DO NOTHING on a taken slug: no exception, so the transaction stays usable for the next try.
    const [row] = await sequelize.query<{ id: string }>(
      `INSERT INTO organizations (slug, name, auto_owner_subject, keycloak_group)
       VALUES (:slug, :name, :subject, :group) ON CONFLICT (slug) DO NOTHING RETURNING id`,
      { type: QueryTypes.SELECT, transaction: tx, replacements: { slug: candidate, name, subject: principal.subject, group: keycloakGroupOf(candidate) } },
    );
    if (row) {
      organizationId = row.id;
      slug = candidate;
      break;
    }
  }
  const orgId = organizationId!;
  await sequelize.query(
    `INSERT INTO projects (organization_id, slug, name) VALUES (:orgId, 'default', 'Default');
     WITH team AS (INSERT INTO teams (organization_id, slug, name) VALUES (:orgId, 'owners', 'Owners') RETURNING id)
     INSERT INTO memberships (organization_id, subject, role, team_id) SELECT :orgId, :subject, 'owner', id FROM team;`,
    { type: QueryTypes.INSERT, transaction: tx, replacements: { orgId, subject: principal.subject } },
  );
  await grantTrialCredit({ sequelize, now: () => new Date() }, tx, {
    organizationId: orgId,
    currency: deps.billing.trialCurrency,
    amount: BigInt(deps.billing.trialCreditMinor),
    actor: principal.subject,
  });
  await insertChangeRequest(sequelize, tx, {
    kind: 'workspace.create',
    organizationId: orgId,
    payload: { org: slug, orgName: name, keycloakGroup: keycloakGroupOf(slug) },
    requestedBy: principal.subject,
    mergePolicy: deps.mergePolicy,
    // The request had no reason of its own: the audit says what it was.
    reason: 'The first workspace of its owner (POST /orgs/auto)',
  });
  if (deps.mirrorToKeycloak) {
    // A new org: nobody else can hold its members' locks yet.
    await enqueueGroupEnsure(sequelize, tx, { orgSlug: slug, cause: 'workspace.create' });
    await enqueueMemberSync(sequelize, tx, { orgSlug: slug, subject: principal.subject, cause: 'workspace.create' });
  }
  return { workspace: await workspaceById(sequelize, tx, orgId, principal), created: true };
}

/** GET /orgs/:org for a member. */
export async function getWorkspace(sequelize: Sequelize, tx: Transaction | undefined, principal: Principal, orgSlug: string): Promise<Workspace> {
  const access = await requireOrgAccess(sequelize, tx, principal, orgSlug, 'read');
  return workspaceById(sequelize, tx, access.organizationId, principal);
}

export function keycloakGroupOf(orgSlug: string): string {
  return `/orgs/${orgSlug}`;
}

async function workspaceById(sequelize: Sequelize, tx: Transaction | undefined, id: string, principal: Principal): Promise<Workspace> {
  const [org] = await sequelize.query<{ id: string; slug: string; name: string; keycloak_group: string; role: MembershipRole | null; created_at: Date }>(
    `SELECT o.id, o.slug, o.name, o.keycloak_group, m.role, o.created_at FROM organizations o
     LEFT JOIN memberships m ON m.organization_id = o.id AND m.subject = :subject WHERE o.id = :id`,
    { type: QueryTypes.SELECT, transaction: tx ?? null, replacements: { id, subject: principal.subject } },
  );
  if (!org) throw new NotFoundError('No such organization.');
  const projects = await sequelize.query<{ id: string; slug: string; name: string }>(
    'SELECT id, slug, name FROM projects WHERE organization_id = :id ORDER BY created_at, slug',
    { type: QueryTypes.SELECT, transaction: tx ?? null, replacements: { id } },
  );
  const wallets = await listOrganizationWallets({ sequelize, now: () => new Date() }, tx, id);
  return {
    id: org.id,
    slug: org.slug,
    name: org.name,
    keycloakGroup: org.keycloak_group,
    role: org.role,
    projects,
    wallets,
    createdAt: org.created_at.toISOString(),
  };
}
