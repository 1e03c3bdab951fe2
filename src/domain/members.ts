import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { NotFoundError, UnprocessableError } from '../errors.ts';
import { releaseHoldsOf } from './billing/authorizations.ts';
import { ensureUser, requireOrgAccess, type MembershipRole } from './organization-access.ts';
import type { Principal } from './principal.ts';
import { enqueueMemberSync, lockMirroredMember } from './membership-mirror.ts';

/** Whether membership changes are mirrored to Keycloak (KEYCLOAK_URL set): they are queued in the change's transaction. */
export interface MemberOptions {
  mirrorToKeycloak: boolean;
}

export interface Member {
  subject: string;
  username: string | null;
  email: string | null;
  role: MembershipRole;
  team: string | null;
  createdAt: string;
}

interface MemberRow { subject: string; username: string | null; email: string | null; role: MembershipRole; team: string | null; created_at: Date }

const present = (row: MemberRow): Member => ({
  subject: row.subject,
  username: row.username,
  email: row.email,
  role: row.role,
  team: row.team,
  createdAt: row.created_at.toISOString(),
});

const SELECT_MEMBERS = `SELECT m.subject, u.username, u.email, m.role, t.slug AS team, m.created_at
  FROM memberships m JOIN users u ON u.subject = m.subject LEFT JOIN teams t ON t.id = m.team_id`;

export async function listMembers(sequelize: Sequelize, principal: Principal, orgSlug: string): Promise<Member[]> {
  const access = await requireOrgAccess(sequelize, undefined, principal, orgSlug, 'read');
  const rows = await sequelize.query<MemberRow>(`${SELECT_MEMBERS} WHERE m.organization_id = :org AND m.api_token_id IS NULL ORDER BY m.created_at, m.subject`, {
    type: QueryTypes.SELECT,
    replacements: { org: access.organizationId },
  });
  return rows.map(present);
}

/**
 * Owners add a member (by OIDC subject) or change an existing member's role and team.
 * Returns the member and whether it is new. The last owner cannot be demoted.
 */
export async function putMember(
  sequelize: Sequelize,
  tx: Transaction,
  principal: Principal,
  orgSlug: string,
  input: { subject: string; role: MembershipRole; team?: string },
  options: MemberOptions,
): Promise<{ member: Member; created: boolean }> {
  const access = await requireOrgAccess(sequelize, tx, principal, orgSlug, 'administer');
  let teamId: string | null = null;
  if (input.team !== undefined) {
    const [team] = await sequelize.query<{ id: string }>('SELECT id FROM teams WHERE organization_id = :org AND slug = :slug', {
      type: QueryTypes.SELECT,
      transaction: tx,
      replacements: { org: access.organizationId, slug: input.team },
    });
    if (!team) throw new UnprocessableError('unknown-team', `No team ${input.team} in ${orgSlug}.`, { extensions: { errors: [{ in: 'body', pointer: '/team', message: 'is not a team of this organization' }] } });
    teamId = team.id;
  }
  await refuseOrgTokenSubject(sequelize, tx, input.subject);
  await ensureUser(sequelize, tx, { subject: input.subject });
  if (options.mirrorToKeycloak) await lockMirroredMember(sequelize, tx, access.slug, input.subject);
  if (input.role !== 'owner') await requireAnotherOwner(sequelize, tx, access.organizationId, orgSlug, input.subject);
  const [row] = await sequelize.query<{ inserted: boolean }>(
    `INSERT INTO memberships (organization_id, subject, role, team_id) VALUES (:org, :subject, :role, :team)
     ON CONFLICT (organization_id, subject) DO UPDATE SET role = EXCLUDED.role,
       team_id = COALESCE(EXCLUDED.team_id, memberships.team_id), updated_at = now()
     RETURNING (xmax = 0) AS inserted`,
    { type: QueryTypes.SELECT, transaction: tx, replacements: { org: access.organizationId, subject: input.subject, role: input.role, team: teamId } },
  );
  // A viewer can neither place nor resolve holds: theirs have no purpose left.
  if (input.role === 'viewer') await releaseHoldsOf({ sequelize, now: () => new Date() }, tx, access.organizationId, input.subject);
  const [member] = await sequelize.query<MemberRow>(`${SELECT_MEMBERS} WHERE m.organization_id = :org AND m.subject = :subject`, {
    type: QueryTypes.SELECT,
    transaction: tx,
    replacements: { org: access.organizationId, subject: input.subject },
  });
  if (options.mirrorToKeycloak) await enqueueMemberSync(sequelize, tx, { orgSlug: access.slug, subject: input.subject, cause: row!.inserted ? 'member.added' : 'member.changed' });
  return { member: present(member!), created: row!.inserted };
}

/**
 * An org token's subject is a member of its own org only, through its own membership: made a
 * member elsewhere, it would act in an org that never minted it.
 */
async function refuseOrgTokenSubject(sequelize: Sequelize, tx: Transaction, subject: string): Promise<void> {
  const [token] = await sequelize.query<{ one: number }>('SELECT 1 AS one FROM api_tokens WHERE subject = :subject AND organization_id IS NOT NULL', {
    type: QueryTypes.SELECT,
    transaction: tx,
    replacements: { subject },
  });
  if (token) {
    throw new UnprocessableError('org-token-subject', `${subject} is an org token; org tokens are managed under /orgs/:org/tokens.`, {
      extensions: { errors: [{ in: 'body', pointer: '/subject', message: 'is an org token' }] },
    });
  }
}

/** Owners remove a member; the last owner cannot be removed. */
export async function removeMember(sequelize: Sequelize, tx: Transaction, principal: Principal, orgSlug: string, subject: string, options: MemberOptions): Promise<void> {
  const access = await requireOrgAccess(sequelize, tx, principal, orgSlug, 'administer');
  if (options.mirrorToKeycloak) await lockMirroredMember(sequelize, tx, access.slug, subject);
  await requireAnotherOwner(sequelize, tx, access.organizationId, orgSlug, subject);
  const removed = await sequelize.query('DELETE FROM memberships WHERE organization_id = :org AND subject = :subject AND api_token_id IS NULL RETURNING id', {
    type: QueryTypes.SELECT,
    transaction: tx,
    replacements: { org: access.organizationId, subject },
  });
  if (removed.length === 0) throw new NotFoundError(`${subject} is not a member of ${orgSlug}.`);
  await releaseHoldsOf({ sequelize, now: () => new Date() }, tx, access.organizationId, subject);
  if (options.mirrorToKeycloak) await enqueueMemberSync(sequelize, tx, { orgSlug: access.slug, subject, cause: 'member.removed' });
}

/**
 * Refuses a change that would leave the org without an owner other than `subject`. Locks the
 * org row first, so two owners demoting or removing each other at once cannot leave none.
 */
async function requireAnotherOwner(sequelize: Sequelize, tx: Transaction, organizationId: string, orgSlug: string, subject: string): Promise<void> {
  await sequelize.query('SELECT id FROM organizations WHERE id = :org FOR UPDATE', { type: QueryTypes.SELECT, transaction: tx, replacements: { org: organizationId } });
  const [owners] = await sequelize.query<{ others: number }>(
    "SELECT count(*)::int AS others FROM memberships WHERE organization_id = :org AND role = 'owner' AND subject <> :subject AND api_token_id IS NULL",
    { type: QueryTypes.SELECT, transaction: tx, replacements: { org: organizationId, subject } },
  );
  if (owners!.others === 0) throw new UnprocessableError('last-owner', `${orgSlug} must keep at least one owner.`);
}
