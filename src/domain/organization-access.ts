import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { ForbiddenError, NotFoundError } from '../errors.ts';
import type { Principal } from './principal.ts';

export type MembershipRole = 'owner' | 'member' | 'viewer';
export const MEMBERSHIP_ROLES = ['owner', 'member', 'viewer'] as const;

/** What the caller wants to do: read anything, change instances/projects, or administer the org. */
export type OrgAction = 'read' | 'write' | 'administer';

const ALLOWED: Record<OrgAction, readonly MembershipRole[]> = {
  read: ['owner', 'member', 'viewer'],
  write: ['owner', 'member'],
  administer: ['owner'],
};

export interface OrgAccess {
  organizationId: string;
  slug: string;
  role: MembershipRole;
}

/**
 * The caller's membership in `orgSlug`, checked for `action`. An org the caller is not a member
 * of is 404 (whether it exists is not the caller's business); a member without the right role
 * gets 403.
 */
export async function requireOrgAccess(sequelize: Sequelize, tx: Transaction | undefined, principal: Principal, orgSlug: string, action: OrgAction): Promise<OrgAccess> {
  const [row] = await sequelize.query<{ id: string; slug: string; role: MembershipRole }>(
    `SELECT o.id, o.slug, m.role FROM organizations o
     JOIN memberships m ON m.organization_id = o.id AND m.subject = :subject
     WHERE o.slug = :slug`,
    { type: QueryTypes.SELECT, transaction: tx ?? null, replacements: { subject: principal.subject, slug: orgSlug } },
  );
  return checkOrgAccess(orgSlug, row, action);
}

/**
 * requireOrgAccess's rule for a membership row a caller read itself (in a query that also
 * reads what its path needs): no row is 404, a role without `action` is 403.
 */
export function checkOrgAccess(orgSlug: string, row: { id: string; slug: string; role: MembershipRole } | undefined, action: OrgAction): OrgAccess {
  if (!row) throw new NotFoundError(`No organization ${orgSlug}.`);
  if (!ALLOWED[action].includes(row.role)) {
    throw new ForbiddenError(`Your role in ${orgSlug} (${row.role}) does not allow this.`);
  }
  return { organizationId: row.id, slug: row.slug, role: row.role };
}

/** Makes sure a users row exists for a subject (memberships reference it). */
export async function ensureUser(sequelize: Sequelize, tx: Transaction, user: { subject: string; username?: string; email?: string }): Promise<void> {
  await sequelize.query(
    `INSERT INTO users (subject, username, email) VALUES (:subject, :username, :email)
     ON CONFLICT (subject) DO UPDATE SET
       username = COALESCE(EXCLUDED.username, users.username),
       email = COALESCE(EXCLUDED.email, users.email),
       updated_at = CASE WHEN EXCLUDED.username IS DISTINCT FROM users.username OR EXCLUDED.email IS DISTINCT FROM users.email THEN now() ELSE users.updated_at END`,
    { type: QueryTypes.INSERT, transaction: tx, replacements: { subject: user.subject, username: user.username ?? null, email: user.email ?? null } },
  );
}
