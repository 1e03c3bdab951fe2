import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { MEMBERSHIP_ROLES, type MembershipRole } from './organization-access.ts';

/**
 * The membership mirror's outbox (keycloak_membership_ops) and its cache of Keycloak group ids
 * (keycloak_groups): the only SQL that writes either table.
 *
 * What Keycloak holds for an org (see README "Keycloak groups"):
 * - `/orgs/<org>`: every member, directly. The tenant RoleBindings name this group
 *   (templates/tenant/role/rolebinding-members.yaml), and Keycloak's group membership mapper
 *   puts only a user's direct groups in the `groups` claim, so a member of a subgroup alone
 *   would not match them.
 * - `/orgs/<org>/<role>` (owner, member, viewer): the members of that role, for RBAC that tells
 *   roles apart; exactly one per member.
 * Keycloak ids users by the `sub` of its tokens, which is the membership's `subject`.
 */
export const MIRRORED_ROLES = MEMBERSHIP_ROLES;

export const ORGS_GROUP_PATH = '/orgs';
export const orgGroupPath = (orgSlug: string) => `${ORGS_GROUP_PATH}/${orgSlug}`;
export const roleGroupPath = (orgSlug: string, role: MembershipRole) => `${orgGroupPath(orgSlug)}/${role}`;

export interface MembershipOp {
  id: string;
  orgSlug: string;
  /** Undefined: the org's groups alone. */
  subject: string | undefined;
  /** The state to reach: a role, or undefined for "not a member". */
  role: MembershipRole | undefined;
  cause: string;
  attempts: number;
}

/**
 * Serialises membership changes of one (org, subject) with their outbox rows: taken before the
 * membership row is written, so operation ids follow commit order per member, and by the
 * reconciler before it reads what the database says.
 */
export async function lockMirroredMember(sequelize: Sequelize, tx: Transaction, orgSlug: string, subject: string): Promise<void> {
  await sequelize.query("SELECT pg_advisory_xact_lock(hashtextextended('keycloak-member:' || :org || '/' || :subject, 0))", {
    type: QueryTypes.SELECT,
    transaction: tx,
    replacements: { org: orgSlug, subject },
  });
}

/**
 * Queues "make Keycloak hold what the database now holds for (org, subject)", in `tx` (the
 * membership change's own transaction: committed together or not at all). The role is read in
 * the same statement. An earlier operation of the same member not yet claimed is superseded: the
 * later state is the one to reach, and a removed member is never let in again on the way.
 */
export async function enqueueMemberSync(sequelize: Sequelize, tx: Transaction, input: { orgSlug: string; subject: string; cause: string }): Promise<void> {
  await sequelize.query(
    `UPDATE keycloak_membership_ops SET status = 'superseded', finished_at = now(), result = 'superseded'
      WHERE org_slug = :org AND subject = :subject AND status = 'pending' AND (lease_expires_at IS NULL OR lease_expires_at < now());
     INSERT INTO keycloak_membership_ops (org_slug, subject, role, cause)
     SELECT :org, :subject, (SELECT m.role FROM memberships m JOIN organizations o ON o.id = m.organization_id
                             WHERE o.slug = :org AND m.subject = :subject), :cause`,
    { type: QueryTypes.INSERT, transaction: tx, replacements: { org: input.orgSlug, subject: input.subject, cause: input.cause } },
  );
}

/** Queues the creation of the org's groups (workspace creation), in `tx`. */
export async function enqueueGroupEnsure(sequelize: Sequelize, tx: Transaction, input: { orgSlug: string; cause: string }): Promise<void> {
  await sequelize.query('INSERT INTO keycloak_membership_ops (org_slug, subject, role, cause) VALUES (:org, NULL, NULL, :cause)', {
    type: QueryTypes.INSERT,
    transaction: tx,
    replacements: { org: input.orgSlug, cause: input.cause },
  });
}

interface OpRow {
  id: string;
  org_slug: string;
  subject: string | null;
  role: MembershipRole | null;
  cause: string;
  attempts: number;
}

/**
 * Claims the oldest due operation whose member has no earlier one pending (operations of one
 * member go in order, one at a time; other members are not held up by a failing one), under a
 * lease: a worker that dies leaves it to the next after leaseMs.
 */
export async function claimMembershipOp(sequelize: Sequelize, options: { workerId: string; leaseMs: number }): Promise<MembershipOp | undefined> {
  const [row] = await sequelize.query<OpRow>(
    `UPDATE keycloak_membership_ops SET lease_owner = :worker, attempts = attempts + 1,
       lease_expires_at = now() + make_interval(secs => :leaseMs / 1000.0)
     WHERE id = (
       SELECT o.id FROM keycloak_membership_ops o
        WHERE o.status = 'pending' AND o.next_attempt_at <= now() AND (o.lease_expires_at IS NULL OR o.lease_expires_at < now())
          AND NOT EXISTS (SELECT 1 FROM keycloak_membership_ops e WHERE e.status = 'pending' AND e.org_slug = o.org_slug
                            AND e.subject IS NOT DISTINCT FROM o.subject AND e.id < o.id)
        ORDER BY o.id LIMIT 1 FOR UPDATE SKIP LOCKED)
     RETURNING id, org_slug, subject, role, cause, attempts`,
    { type: QueryTypes.SELECT, replacements: { worker: options.workerId, leaseMs: options.leaseMs } },
  );
  if (!row) return undefined;
  return { id: String(row.id), orgSlug: row.org_slug, subject: row.subject ?? undefined, role: row.role ?? undefined, cause: row.cause, attempts: row.attempts };
}

export type MembershipOpResult = 'applied' | 'unknown-user';

/** The operation reached Keycloak ('applied'), or cannot ('unknown-user': the realm has no such user). */
export async function recordMembershipOpDone(sequelize: Sequelize, op: MembershipOp, workerId: string, result: MembershipOpResult): Promise<void> {
  await sequelize.query(
    `UPDATE keycloak_membership_ops SET status = CAST(:status AS keycloak_op_status), result = :result, finished_at = now(),
       lease_owner = NULL, lease_expires_at = NULL
     WHERE id = :id AND status = 'pending' AND lease_owner = :worker`,
    { type: QueryTypes.UPDATE, replacements: { id: op.id, worker: workerId, result, status: result === 'applied' ? 'done' : 'skipped' } },
  );
}

/** A transient failure: the operation is tried again after backoffMs; it is never given up. */
export async function recordMembershipOpRetry(sequelize: Sequelize, op: MembershipOp, workerId: string, reason: string, backoffMs: number): Promise<void> {
  await sequelize.query(
    `UPDATE keycloak_membership_ops SET last_error = :reason, lease_owner = NULL, lease_expires_at = NULL,
       next_attempt_at = now() + make_interval(secs => :backoffMs / 1000.0)
     WHERE id = :id AND status = 'pending' AND lease_owner = :worker`,
    { type: QueryTypes.UPDATE, replacements: { id: op.id, worker: workerId, reason: reason.slice(0, 2000), backoffMs } },
  );
}

export async function pendingMembershipOps(sequelize: Sequelize): Promise<number> {
  const [row] = await sequelize.query<{ count: number }>("SELECT count(*)::int AS count FROM keycloak_membership_ops WHERE status = 'pending'", { type: QueryTypes.SELECT });
  return row!.count;
}

/** Keycloak group ids by path, as last made or found. */
export async function cachedGroupIds(sequelize: Sequelize, paths: string[]): Promise<Map<string, string>> {
  if (paths.length === 0) return new Map();
  const rows = await sequelize.query<{ path: string; group_id: string }>('SELECT path, group_id FROM keycloak_groups WHERE path IN (:paths)', {
    type: QueryTypes.SELECT,
    replacements: { paths },
  });
  return new Map(rows.map((r) => [r.path, r.group_id]));
}

export async function rememberGroupId(sequelize: Sequelize, path: string, groupId: string): Promise<void> {
  await sequelize.query(
    `INSERT INTO keycloak_groups (path, group_id) VALUES (:path, :groupId)
     ON CONFLICT (path) DO UPDATE SET group_id = EXCLUDED.group_id, updated_at = now()`,
    { type: QueryTypes.INSERT, replacements: { path, groupId } },
  );
}

/** Forgets a group id Keycloak no longer knows, and every group under it. */
export async function forgetGroupId(sequelize: Sequelize, groupId: string): Promise<void> {
  await sequelize.query(
    `DELETE FROM keycloak_groups WHERE path IN (
       SELECT child.path FROM keycloak_groups gone JOIN keycloak_groups child ON child.path = gone.path OR child.path LIKE gone.path || '/%'
        WHERE gone.group_id = :groupId)`,
    { type: QueryTypes.DELETE, replacements: { groupId } },
  );
}

/** Every org and its members with their roles: what Keycloak should hold. */
export async function mirroredMemberships(sequelize: Sequelize): Promise<Map<string, Map<string, MembershipRole>>> {
  const rows = await sequelize.query<{ slug: string; subject: string | null; role: MembershipRole | null }>(
    'SELECT o.slug, m.subject, m.role FROM organizations o LEFT JOIN memberships m ON m.organization_id = o.id ORDER BY o.slug',
    { type: QueryTypes.SELECT },
  );
  const orgs = new Map<string, Map<string, MembershipRole>>();
  for (const row of rows) {
    const members = orgs.get(row.slug) ?? new Map<string, MembershipRole>();
    orgs.set(row.slug, members);
    if (row.subject && row.role) members.set(row.subject, row.role);
  }
  return orgs;
}

/**
 * The reconciler's correction of one member, if it still applies: under the member's lock, with
 * nothing pending for them and nothing applied since Keycloak was read at `observedAt` (either
 * would make the observation stale), and the database's role (read now) still not what Keycloak
 * showed. Returns whether an operation was queued.
 */
export async function enqueueDriftCorrection(
  sequelize: Sequelize,
  input: { orgSlug: string; subject: string; observed: { member: boolean; roles: MembershipRole[] }; observedAt: Date },
): Promise<boolean> {
  return sequelize.transaction(async (tx) => {
    await lockMirroredMember(sequelize, tx, input.orgSlug, input.subject);
    const [busy] = await sequelize.query<{ busy: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM keycloak_membership_ops WHERE org_slug = :org AND subject = :subject
                        AND (status = 'pending' OR finished_at >= :observedAt)) AS busy`,
      { type: QueryTypes.SELECT, transaction: tx, replacements: { org: input.orgSlug, subject: input.subject, observedAt: input.observedAt } },
    );
    if (busy!.busy) return false;
    const [member] = await sequelize.query<{ role: MembershipRole }>(
      'SELECT m.role FROM memberships m JOIN organizations o ON o.id = m.organization_id WHERE o.slug = :org AND m.subject = :subject',
      { type: QueryTypes.SELECT, transaction: tx, replacements: { org: input.orgSlug, subject: input.subject } },
    );
    if (!isDrift(member?.role, input.observed)) return false;
    // The realm had no such user when this state was last sent (an API token's subject, say):
    // asking again every round would not change that; a new membership change does ask again.
    const [last] = await sequelize.query<{ status: string; role: MembershipRole | null }>(
      'SELECT status, role FROM keycloak_membership_ops WHERE org_slug = :org AND subject = :subject ORDER BY id DESC LIMIT 1',
      { type: QueryTypes.SELECT, transaction: tx, replacements: { org: input.orgSlug, subject: input.subject } },
    );
    if (last?.status === 'skipped' && (last.role ?? undefined) === member?.role) return false;
    await enqueueMemberSync(sequelize, tx, { orgSlug: input.orgSlug, subject: input.subject, cause: 'reconciler.drift' });
    return true;
  });
}

/** Whether what Keycloak shows for a member differs from the role the database gives them. */
export function isDrift(role: MembershipRole | undefined, observed: { member: boolean; roles: readonly MembershipRole[] }): boolean {
  if (role === undefined) return observed.member || observed.roles.length > 0;
  return !observed.member || observed.roles.length !== 1 || observed.roles[0] !== role;
}

export type MembershipStep = { action: 'join' | 'leave'; path: string };

/**
 * The requests that take a member's direct groups in the org (`direct`, by path) to `role`, in
 * order. Keycloak counts a member of a subgroup as a member of its parent when asked to join
 * (UserResource.joinGroup skips a user for whom isMemberOf is true, and RoleUtils.isMember
 * walks up from the user's groups), so the org group is joined before any role group, and a
 * member whose role group survived the loss of the org group leaves it first.
 */
export function planMembershipSteps(orgSlug: string, role: MembershipRole | undefined, direct: ReadonlySet<string>): MembershipStep[] {
  const orgPath = orgGroupPath(orgSlug);
  const heldRoles = MIRRORED_ROLES.filter((r) => direct.has(roleGroupPath(orgSlug, r)));
  const steps: MembershipStep[] = [];
  if (role === undefined) {
    for (const held of heldRoles) steps.push({ action: 'leave', path: roleGroupPath(orgSlug, held) });
    if (direct.has(orgPath)) steps.push({ action: 'leave', path: orgPath });
    return steps;
  }
  const rejoin = !direct.has(orgPath);
  if (rejoin) {
    for (const held of heldRoles) steps.push({ action: 'leave', path: roleGroupPath(orgSlug, held) });
    steps.push({ action: 'join', path: orgPath });
  }
  if (rejoin || !heldRoles.includes(role)) steps.push({ action: 'join', path: roleGroupPath(orgSlug, role) });
  if (!rejoin) for (const held of heldRoles) if (held !== role) steps.push({ action: 'leave', path: roleGroupPath(orgSlug, held) });
  return steps;
}
