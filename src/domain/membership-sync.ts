import type { Sequelize } from 'sequelize';
import { KeycloakGroupGoneError, KeycloakUnavailableError, type KeycloakDirectory } from '../keycloak/keycloak-directory.ts';
import {
  cachedGroupIds,
  enqueueDriftCorrection,
  forgetGroupId,
  isDrift,
  MIRRORED_ROLES,
  mirroredMemberships,
  ORGS_GROUP_PATH,
  orgGroupPath,
  planMembershipSteps,
  rememberGroupId,
  roleGroupPath,
  type MembershipOp,
  type MembershipOpResult,
} from './membership-mirror.ts';
import type { MembershipRole } from './organization-access.ts';

export interface MembershipSyncDeps {
  sequelize: Sequelize;
  directory: KeycloakDirectory;
}

/**
 * Takes Keycloak to the state an operation names. Every request is idempotent and the member's
 * direct groups are read first, so a retry after a request that landed but was never answered
 * (a timeout) sends only what is still missing: each membership change reaches Keycloak once.
 */
export async function applyMembershipOp(deps: MembershipSyncDeps, op: MembershipOp): Promise<MembershipOpResult> {
  try {
    const ids = await ensureOrgGroups(deps, op.orgSlug);
    if (op.subject === undefined) return 'applied';
    const direct = await deps.directory.directGroupsOf(op.subject);
    if (!direct) return 'unknown-user';
    const pathOf = new Map([...ids].map(([path, id]) => [id, path]));
    const held = new Set([...direct].flatMap((id) => (pathOf.has(id) ? [pathOf.get(id)!] : [])));
    for (const step of planMembershipSteps(op.orgSlug, op.role, held)) {
      const groupId = ids.get(step.path)!;
      if (step.action === 'join') await deps.directory.joinGroup(op.subject, groupId);
      else await deps.directory.leaveGroup(op.subject, groupId);
    }
    return 'applied';
  } catch (error) {
    if (error instanceof KeycloakGroupGoneError) await forgetGroupId(deps.sequelize, error.groupId);
    throw error;
  }
}

/** The org's group paths, parents first. */
const orgPaths = (orgSlug: string) => [ORGS_GROUP_PATH, orgGroupPath(orgSlug), ...MIRRORED_ROLES.map((role) => roleGroupPath(orgSlug, role))];

/**
 * Ids of `/orgs`, `/orgs/<org>` and its role groups, each made when missing: create first, and
 * on 409 (made meanwhile, by another replica or in the console) look it up by name.
 */
export async function ensureOrgGroups(deps: MembershipSyncDeps, orgSlug: string): Promise<Map<string, string>> {
  const paths = orgPaths(orgSlug);
  const ids = await cachedGroupIds(deps.sequelize, paths);
  for (const path of paths) {
    if (ids.has(path)) continue;
    const slash = path.lastIndexOf('/');
    const parentPath = path.slice(0, slash);
    const name = path.slice(slash + 1);
    const parentId = parentPath === '' ? undefined : ids.get(parentPath)!;
    const created = await deps.directory.createGroup(name, parentId);
    const id = created === 'exists' ? await deps.directory.findGroup(name, parentId) : created.id;
    // 409, yet not found: deleted between the two requests. The next attempt creates it.
    if (!id) throw new KeycloakUnavailableError(`Keycloak said group ${path} exists, then did not find it`);
    await rememberGroupId(deps.sequelize, path, id);
    ids.set(path, id);
  }
  return ids;
}

export interface MembershipReconcileResult {
  orgs: number;
  /** Members whose Keycloak groups differed from the database: an operation was queued for each. */
  corrected: { org: string; subject: string }[];
  /** Orgs Keycloak could not be read for this round (logged; next round tries again). */
  failed: { org: string; error: string }[];
}

/**
 * Corrects drift made in Keycloak's console: reads each org's groups' direct members and queues
 * an operation for every member whose groups differ from the database (the source of
 * membership truth here), whichever way: added, removed or moved between role groups by hand.
 */
export async function reconcileMemberships(deps: MembershipSyncDeps): Promise<MembershipReconcileResult> {
  const desired = await mirroredMemberships(deps.sequelize);
  const result: MembershipReconcileResult = { orgs: desired.size, corrected: [], failed: [] };
  for (const [orgSlug, members] of desired) {
    const observedAt = new Date();
    let observed: Map<string, { member: boolean; roles: MembershipRole[] }>;
    try {
      observed = await observeOrg(deps, orgSlug);
    } catch (error) {
      if (error instanceof KeycloakGroupGoneError) await forgetGroupId(deps.sequelize, error.groupId);
      result.failed.push({ org: orgSlug, error: (error as Error).message });
      if (error instanceof KeycloakUnavailableError) break; // The rest would fail alike.
      continue;
    }
    for (const subject of new Set([...members.keys(), ...observed.keys()])) {
      const seen = observed.get(subject) ?? { member: false, roles: [] };
      if (!isDrift(members.get(subject), seen)) continue;
      if (await enqueueDriftCorrection(deps.sequelize, { orgSlug, subject, observed: seen, observedAt })) result.corrected.push({ org: orgSlug, subject });
    }
  }
  return result;
}

async function observeOrg(deps: MembershipSyncDeps, orgSlug: string): Promise<Map<string, { member: boolean; roles: MembershipRole[] }>> {
  const ids = await ensureOrgGroups(deps, orgSlug);
  const observed = new Map<string, { member: boolean; roles: MembershipRole[] }>();
  const entry = (subject: string) => observed.get(subject) ?? observed.set(subject, { member: false, roles: [] }).get(subject)!;
  for (const subject of await deps.directory.membersOf(ids.get(orgGroupPath(orgSlug))!)) entry(subject).member = true;
  for (const role of MIRRORED_ROLES) {
    for (const subject of await deps.directory.membersOf(ids.get(roleGroupPath(orgSlug, role))!)) entry(subject).roles.push(role);
  }
  return observed;
}
