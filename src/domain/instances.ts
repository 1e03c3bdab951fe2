import { randomUUID } from 'node:crypto';
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { ConflictError, NotFoundError, UnprocessableError, ValidationError } from '../errors.ts';
import { mergePolicyFor, type ChangeKind, type MergePolicies, type MergePolicy } from './changes/change-kinds.ts';
import { insertChangeRequest, lastMergedWriteOf, moveChanges, supersedableChangesOf } from './changes/change-requests.ts';
import type { NewChangeRequest } from './changes/change-requests.ts';
import { OFFERING_VERSIONS_JSON, pickOrderableVersion, resolveOrderableVersion, versionRowsFromJson, type ResolvedVersion } from './catalog.ts';
import { applyInstanceEvent } from './instance-events.ts';
import type { InstanceState } from './instance-state.ts';
import { instanceConditions, type InstanceCondition } from './instance-conditions.ts';
import { checkOrgAccess, requireOrgAccess, type MembershipRole } from './organization-access.ts';
import { decodePageCursor, encodePageCursor } from './page-cursor.ts';
import type { ParametersValidator } from './parameters-schema.ts';
import type { Principal } from './principal.ts';
import type { InstanceWrite } from '../gitops/render/change-payloads.ts';
import { holdSetupFee, holdVersionFee, type BillingSettings } from './billing/instance-billing.ts';

export interface InstanceDeps {
  sequelize: Sequelize;
  mergePolicy: MergePolicies;
  parameters: ParametersValidator;
  billing: BillingSettings;
  /**
   * Whether this build has templates at a version's template path. A new instance without a
   * version named takes the newest active version that it has: an unrenderable version is never
   * the default (the API refuses to publish one; this covers rows older than that, or a build
   * that dropped a folder). Absent: every version counts as renderable.
   */
  renders?: (templatePath: string) => boolean;
  /** GITOPS_REASON_REQUIRED_FOR: kinds of request refused without a reason. */
  reasonRequiredFor?: readonly ChangeKind[];
}

/**
 * The policy that some requests must say why (an auditor reads it as the commit's `Reason:`
 * trailer): checked before anything is read or written, so a refused request leaves no trace.
 */
function requireReason(deps: InstanceDeps, kind: ChangeKind, reason: string | undefined): void {
  if (!deps.reasonRequiredFor?.includes(kind) || (reason !== undefined && reason.trim() !== '')) return;
  const verb = { 'instance.create': 'create', 'instance.update': 'change', 'instance.delete': 'delete' }[kind as 'instance.create'] ?? kind;
  throw new UnprocessableError('reason-required', `This deployment requires a reason to ${verb} an instance (GITOPS_REASON_REQUIRED_FOR): say why in \`reason\`${kind === 'instance.delete' ? ' (a query parameter of DELETE)' : ''}.`, { extensions: { kind } });
}

export interface Instance {
  id: string;
  org: string;
  project: string;
  offering: string;
  version: string;
  name: string;
  parameters: Record<string, unknown>;
  state: InstanceState;
  desiredState: 'present' | 'absent';
  /** What the latest request asks for; version and parameters above are what the base branch holds. */
  desired: { version: string | null; parameters: Record<string, unknown> | null };
  /** Whether the base branch holds the instance's directory, and the commit that last changed it. */
  observed: { present: boolean; commitSha: string | null };
  /** Why desired and observed disagree after a merge; null when they agree. */
  drift: string | null;
  lastChangeId: string | null;
  lastError: string | null;
  /** Synced (main holds what was last asked) and Ready (Argo CD healthy at that spec), with why. */
  conditions: InstanceCondition[];
  createdBy: string;
  createdAt: string;
  updatedAt: string;
}

export interface InstanceEvent {
  id: number;
  fromState: InstanceState | null;
  toState: InstanceState;
  cause: string;
  actor: string;
  changeId: string | null;
  deliveryId: string | null;
  createdAt: string;
}

export interface InstanceChange {
  id: string;
  kind: string;
  status: string;
  mergePolicy: MergePolicies;
  branch: string | null;
  pullRequestNumber: number | null;
  pullRequestUrl: string | null;
  commitSha: string | null;
  mergeCommitSha: string | null;
  attempts: number;
  lastError: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface InstanceDetail extends Instance {
  events: InstanceEvent[];
  changes: InstanceChange[];
}

export interface NewInstance {
  org: string;
  project?: string;
  offering: string;
  version?: string;
  name: string;
  parameters?: Record<string, unknown>;
  /** Why it is asked for: a `Reason:` trailer on its commit, and in its pull request. */
  reason?: string;
}

/**
 * POST /instances: validates the request against the catalog and inserts the instance, its
 * first event (∅ → requested) and its instance.create change, all in `tx`, so that an accepted
 * request is durable and complete. Anything thrown rolls all of it back; a billing hold taken in
 * the same `tx` (after the instance row exists) is therefore all-or-nothing with it.
 */
export async function createInstance(deps: InstanceDeps, tx: Transaction, principal: Principal, input: NewInstance): Promise<Instance> {
  requireReason(deps, 'instance.create', input.reason);
  const { sequelize } = deps;
  const projectSlug = input.project ?? 'default';
  // One round trip: the caller's membership, the project and the offering's versions.
  const [context] = await sequelize.query<{
    id: string;
    slug: string;
    role: MembershipRole;
    project_id: string | null;
    versions: Parameters<typeof versionRowsFromJson>[0];
    limit_max: number | null;
    limit_why: string | null;
  }>(
    `SELECT o.id, o.slug, m.role, p.id AS project_id, ${OFFERING_VERSIONS_JSON} AS versions,
            f.instances_per_workspace AS limit_max, f.instances_per_workspace_reason AS limit_why
     FROM organizations o LEFT JOIN offerings f ON f.slug = :offering JOIN memberships m ON m.organization_id = o.id AND m.subject = :subject
     LEFT JOIN projects p ON p.organization_id = o.id AND p.slug = :project
     WHERE o.slug = :org`,
    { type: QueryTypes.SELECT, transaction: tx, replacements: { subject: principal.subject, org: input.org, project: projectSlug, offering: input.offering } },
  );
  const access = checkOrgAccess(input.org, context, 'write');
  const projectId = context!.project_id;
  if (!projectId) throw new ValidationError([{ in: 'body', pointer: '/project', message: `${input.org} has no project ${projectSlug}` }], 'Unknown project.', 422);
  const version = pickOrderableVersion(input.offering, input.version, versionRowsFromJson(context!.versions), deps.renders);
  const parameters = deps.parameters.validate(version, input.parameters);
  if (context!.limit_max !== null) await requireRoomFor(sequelize, tx, access.organizationId, input.offering, context!.limit_max, context!.limit_why ?? '');

  // The instance, its instance.create change and its first event (∅ → requested) in one
  // statement (the one INSERT into change_requests outside changes/change-requests.ts: fusing it
  // here is what keeps POST /instances at 7 round trips; it writes the same columns).
  // statement. Both ids are chosen here so each row can name the other (the foreign keys are
  // checked at the end of the statement); a taken name inserts nothing and returns no row.
  const instanceId = randomUUID();
  const changeId = randomUUID();
  const [row] = await sequelize.query<{ state: InstanceState; desired_state: 'present' | 'absent'; created_at: Date; updated_at: Date }>(
    `WITH instance AS (
       INSERT INTO instances (id, organization_id, project_id, offering_version_id, name, parameters, created_by, last_change_id)
       VALUES (:instanceId, :org, :project, :version, :name, :parameters, :subject, :changeId)
       ON CONFLICT (organization_id, name) WHERE state <> 'deleted' DO NOTHING
       RETURNING id, state, desired_state, created_at, updated_at
     ), change AS (
       INSERT INTO change_requests (id, kind, organization_id, instance_id, payload, requested_by, merge_policy, reason)
       SELECT :changeId, 'instance.create', :org, instance.id, :payload, :subject, :mergePolicy, :reason FROM instance
       RETURNING id, instance_id
     ), event AS (
       INSERT INTO instance_events (instance_id, from_state, to_state, cause, actor, change_id)
       SELECT change.instance_id, NULL, 'requested', 'instance.requested', :subject, change.id FROM change
     )
     SELECT state, desired_state, created_at, updated_at FROM instance`,
    {
      type: QueryTypes.SELECT,
      transaction: tx,
      replacements: {
        instanceId,
        changeId,
        org: access.organizationId,
        project: projectId,
        version: version.id,
        name: input.name,
        parameters: JSON.stringify(parameters),
        subject: principal.subject,
        payload: JSON.stringify(renderPayload(input.org, projectSlug, input.name, version, parameters)),
        mergePolicy: mergePolicyFor(deps.mergePolicy, 'instance.create'),
        reason: input.reason ?? null,
      },
    },
  );
  if (!row) throw new ConflictError('instance-name-taken', `${input.org} already has an instance named ${input.name}.`);
  // Last, so the wallet's row lock is held for as short a time as possible; a 402 here rolls
  // back the instance and its change: nothing is created that cannot be paid.
  await holdSetupFee({ sequelize, now: () => new Date() }, tx, {
    instanceId,
    organizationId: access.organizationId,
    offeringVersionId: version.id,
    pricing: version.pricing,
    expiresInSeconds: deps.billing.holdTtlSeconds,
  });
  return presentInstance({
    id: instanceId,
    organization_id: access.organizationId,
    org: access.slug,
    project: projectSlug,
    offering: version.offering,
    role: version.role,
    version: version.version,
    name: input.name,
    parameters,
    state: row.state,
    desired_state: row.desired_state,
    desired_payload: { version: version.version, parameters },
    latest_status: 'pending',
    latest_cancelled_by: null,
    observed_state: 'absent',
    ever_present: false,
    observed_commit_sha: null,
    drift: null,
    last_change_id: changeId,
    last_error: null,
    latest_pr_url: null,
    latest_error: null,
    latest_updated_at: row.created_at,
    state_changed_at: row.created_at,
    past_deadline_at: null,
    created_by: principal.subject,
    created_at: row.created_at,
    updated_at: row.updated_at,
  });
}

/**
 * An offering that runs at most `max` instances per workspace: the org's live ones (anything but
 * deleted or rejected: a failed or deleting instance may still have objects in the namespace)
 * are counted under a transaction-scoped advisory lock on (org, offering), so two concurrent
 * creates cannot both see room for one.
 */
async function requireRoomFor(sequelize: Sequelize, tx: Transaction, organizationId: string, offering: string, max: number, why: string): Promise<void> {
  // Two statements: under READ COMMITTED the count's snapshot must be taken after the lock is held.
  await sequelize.query('SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))', {
    type: QueryTypes.SELECT,
    transaction: tx,
    replacements: { key: `instances-per-workspace/${organizationId}/${offering}` },
  });
  const [row] = await sequelize.query<{ names: string[] }>(
    `SELECT coalesce(array_agg(i.name ORDER BY i.name), '{}') AS names
       FROM instances i JOIN offering_versions v ON v.id = i.offering_version_id JOIN offerings f ON f.id = v.offering_id
      WHERE i.organization_id = :organizationId AND f.slug = :offering AND i.state NOT IN ('deleted', 'rejected')`,
    { type: QueryTypes.SELECT, transaction: tx, replacements: { organizationId, offering } },
  );
  if (row!.names.length >= max) {
    throw new ConflictError('offering-limit-reached', `A workspace runs at most ${max} ${offering} instance${max === 1 ? '' : 's'} (this one has ${row!.names.join(', ')}): ${why} Delete one first.`, {
      extensions: { offering, max, instances: row!.names },
    });
  }
}

/**
 * PATCH /instances/:id: a new version and/or new parameters. Parameters not given are kept from
 * the latest request and re-validated against the (new) version's schema. The latest request
 * wins: a pending or open change of the instance is superseded by this one. The row keeps what
 * the base branch holds; `desired` shows what was asked.
 */
export async function updateInstance(
  deps: InstanceDeps,
  tx: Transaction,
  principal: Principal,
  id: string,
  input: { version?: string; parameters?: Record<string, unknown>; reason?: string },
): Promise<Instance> {
  requireReason(deps, 'instance.update', input.reason);
  const { sequelize } = deps;
  const current = await lockVisibleInstance(sequelize, tx, principal, id);
  await requireOrgAccess(sequelize, tx, principal, current.org, 'write');
  if (current.state === 'deleted' || current.state === 'rejected') {
    throw new ConflictError('instance-busy', `The instance is ${current.state}; it cannot be changed. Create a new instance (POST /instances) instead.`, { extensions: { state: current.state } });
  }
  if (current.desired_state === 'absent') {
    const inFlight = current.latest_status === 'pending' || current.latest_status === 'open';
    throw new ConflictError(
      'instance-busy',
      inFlight
        ? `The instance is being deleted; it cannot be changed. To keep it, cancel the delete (POST /changes/${current.last_change_id}/cancel), then PATCH it.`
        : 'The instance is being deleted; it cannot be changed. Create a new instance (POST /instances) instead.',
      { extensions: { state: current.state, ...(inFlight ? { deleteChangeId: current.last_change_id } : {}) } },
    );
  }
  const wanted = desiredOf(current);
  const version = await resolveOrderableVersion(sequelize, tx, current.offering, input.version ?? wanted.version ?? current.version);
  const parameters = deps.parameters.validate(version, input.parameters ?? wanted.parameters ?? current.parameters);
  if (version.version === (wanted.version ?? current.version) && JSON.stringify(sortKeys(parameters)) === JSON.stringify(sortKeys(wanted.parameters ?? current.parameters))) {
    throw new UnprocessableError('nothing-to-change', 'The instance already runs this version with these parameters.');
  }
  await requestChange(
    deps,
    tx,
    principal,
    current,
    {
      kind: 'instance.update',
      payload: {
        ...renderPayload(current.org, current.project, current.name, version, parameters),
        ...(await observedTemplatePath(sequelize, tx, id)),
        // What main holds now (the row's version and parameters), for the commit to say what changes.
        ...(current.observed_state === 'present' ? { previous: { version: current.version, parameters: current.parameters, sensitive: sensitiveParameters(version.parametersSchema) } } : {}),
      },
    },
    input.reason,
  );
  // An upgrade holds the new version's setup fee like a create (after the change above, which
  // released the hold of a version no longer asked for); 402 refuses the whole PATCH.
  await holdVersionFee({ sequelize, now: () => new Date() }, tx, { instanceId: id, offeringVersionId: version.id, expiresInSeconds: deps.billing.holdTtlSeconds });
  // Nothing on main yet: the row shows what is asked until main holds something.
  await sequelize.query(
    `UPDATE instances SET offering_version_id = :version, parameters = :parameters, desired_state = 'present' WHERE id = :id AND observed_state = 'absent' AND NOT ever_present`,
    { type: QueryTypes.UPDATE, transaction: tx, replacements: { id, version: version.id, parameters: JSON.stringify(parameters) } },
  );
  return findInstance(sequelize, tx, id);
}

/**
 * DELETE /instances/:id: desired state absent, in any state but deleted; it supersedes a pending
 * or open change of the instance. An instance main holds, or held, or whose change has merged,
 * leaves through an instance.delete change; one that never reached the base branch needs no
 * Git change at all: its changes on the way are cancelled (the outbox closes their pull
 * requests) and it is deleted at once, its setup-fee hold voided. A second DELETE while one is
 * on its way answers with the instance as it is.
 */
export async function deleteInstance(deps: InstanceDeps, tx: Transaction, principal: Principal, id: string, options: { reason?: string } = {}): Promise<Instance> {
  requireReason(deps, 'instance.delete', options.reason);
  const { sequelize } = deps;
  const current = await lockVisibleInstance(sequelize, tx, principal, id);
  await requireOrgAccess(sequelize, tx, principal, current.org, 'write');
  if (current.state === 'deleted') throw new ConflictError('instance-busy', 'The instance is deleted already.');
  if (current.desired_state === 'absent' && (current.latest_status === 'pending' || current.latest_status === 'open')) return findInstance(sequelize, tx, id);
  if (await neverOnMain(sequelize, tx, current)) {
    const cancelled = await moveChanges(sequelize, tx, await supersedableChangesOf(sequelize, tx, id), 'cancelled', { cancelledBy: principal.subject });
    await sequelize.query("UPDATE instances SET desired_state = 'absent' WHERE id = :id", { type: QueryTypes.UPDATE, transaction: tx, replacements: { id } });
    await applyInstanceEvent(sequelize, tx, id, 'change.cancelled', {
      cause: 'delete.requested',
      actor: principal.subject,
      recordUnchanged: true,
      detail: { withoutGitChange: true, cancelled: cancelled.map((m) => m.changeId), ...(options.reason ? { reason: options.reason } : {}) },
    });
    return findInstance(sequelize, tx, id);
  }
  await requestChange(
    deps,
    tx,
    principal,
    current,
    { kind: 'instance.delete', payload: { org: current.org, project: current.project, instanceName: current.name, offering: current.offering, role: current.role } },
    options.reason,
  );
  await sequelize.query("UPDATE instances SET desired_state = 'absent' WHERE id = :id", { type: QueryTypes.UPDATE, transaction: tx, replacements: { id } });
  return findInstance(sequelize, tx, id);
}

/**
 * Whether nothing of the instance can be on the base branch: main does not hold it, never did
 * (as far as the service has read), and none of its changes merged (a merge main has not been
 * read back after yet would be on it). Its changes' rows are locked by the caller's next step.
 */
async function neverOnMain(sequelize: Sequelize, tx: Transaction, current: InstanceRow): Promise<boolean> {
  if (current.observed_state === 'present' || current.ever_present) return false;
  const [merged] = await sequelize.query<{ id: string }>("SELECT id FROM change_requests WHERE instance_id = :id AND status = 'merged' LIMIT 1", {
    type: QueryTypes.SELECT,
    transaction: tx,
    replacements: { id: current.id },
  });
  return merged === undefined;
}

/**
 * Adds the instance's new latest change, supersedes its pending and open ones (the worker drops
 * a pending one from its batch; an open pull request is closed by the superseder), and derives
 * the instance's state again. The instance row is locked by the caller.
 */
async function requestChange(
  deps: InstanceDeps,
  tx: Transaction,
  principal: Principal,
  current: InstanceRow,
  change: Pick<Extract<NewChangeRequest, { kind: 'instance.update' | 'instance.delete' }>, 'kind' | 'payload'>,
  reason?: string,
): Promise<string> {
  return proposeInstanceChange(deps.sequelize, tx, {
    change: { ...change, organizationId: current.organization_id, instanceId: current.id, requestedBy: principal.subject, mergePolicy: deps.mergePolicy, ...(reason ? { reason } : {}) } as NewChangeRequest & { instanceId: string },
    cause: change.kind === 'instance.delete' ? 'delete.requested' : 'update.requested',
  });
}

/**
 * A new latest change of an instance (PATCH, DELETE, POST /changes/:id/retry): inserted, its
 * pending and open predecessors superseded by it (the worker drops a pending one from its batch;
 * the withdrawal outbox closes or trims an open one), made the instance's latest, and the
 * instance derived again, with `cause` and the superseded changes in its event. The instance
 * row is locked by the caller.
 */
export async function proposeInstanceChange(
  sequelize: Sequelize,
  tx: Transaction,
  input: { change: NewChangeRequest & { instanceId: string }; cause: string; detail?: Record<string, unknown>; recordUnchanged?: boolean },
): Promise<string> {
  const instanceId = input.change.instanceId;
  const earlier = await supersedableChangesOf(sequelize, tx, instanceId);
  const changeId = await insertChangeRequest(sequelize, tx, input.change);
  const superseded = await moveChanges(sequelize, tx, earlier, 'superseded', { supersededBy: changeId });
  await sequelize.query('UPDATE instances SET last_change_id = :changeId, drift = NULL WHERE id = :id', { type: QueryTypes.UPDATE, transaction: tx, replacements: { id: instanceId, changeId } });
  await applyInstanceEvent(sequelize, tx, instanceId, 'change.requested', {
    cause: input.cause,
    actor: input.change.requestedBy,
    changeId,
    ...(input.recordUnchanged ? { recordUnchanged: true } : {}),
    detail: { ...input.detail, ...(superseded.length > 0 ? { superseded: superseded.map((m) => m.changeId) } : {}) },
  });
  return changeId;
}

/** GET /instances/:id, with its events and changes; another org's instance is 404. */
export async function getInstance(sequelize: Sequelize, principal: Principal, id: string): Promise<InstanceDetail> {
  await lockVisibleInstance(sequelize, undefined, principal, id);
  const instance = await findInstance(sequelize, undefined, id);
  const events = await sequelize.query<{ id: string; from_state: InstanceState | null; to_state: InstanceState; cause: string; actor: string; change_id: string | null; delivery_id: string | null; created_at: Date }>(
    'SELECT id, from_state, to_state, cause, actor, change_id, delivery_id, created_at FROM instance_events WHERE instance_id = :id ORDER BY id',
    { type: QueryTypes.SELECT, replacements: { id } },
  );
  const changes = await sequelize.query<ChangeRow>(
    `SELECT id, kind, status, merge_policy, branch, pull_request_number, pull_request_url, commit_sha, merge_commit_sha, attempts, last_error, created_at, updated_at
     FROM change_requests WHERE instance_id = :id ORDER BY created_at, id`,
    { type: QueryTypes.SELECT, replacements: { id } },
  );
  return {
    ...instance,
    events: events.map((e) => ({
      id: Number(e.id),
      fromState: e.from_state,
      toState: e.to_state,
      cause: e.cause,
      actor: e.actor,
      changeId: e.change_id,
      deliveryId: e.delivery_id,
      createdAt: e.created_at.toISOString(),
    })),
    changes: changes.map((c) => ({
      id: c.id,
      kind: c.kind,
      status: c.status,
      mergePolicy: c.merge_policy,
      branch: c.branch,
      pullRequestNumber: c.pull_request_number,
      pullRequestUrl: c.pull_request_url,
      commitSha: c.commit_sha,
      mergeCommitSha: c.merge_commit_sha,
      attempts: c.attempts,
      lastError: c.last_error,
      createdAt: c.created_at.toISOString(),
      updatedAt: c.updated_at.toISOString(),
    })),
  };
}

export interface InstanceFilter {
  org?: string;
  project?: string;
  state?: InstanceState;
  limit: number;
  cursor?: string;
}

/**
 * GET /instances: the caller's orgs only, newest first. The cursor is opaque to clients:
 * the (created_at, id) of the last row served, at full timestamp precision.
 */
export async function listInstances(sequelize: Sequelize, principal: Principal, filter: InstanceFilter): Promise<{ items: Instance[]; nextCursor: string | null }> {
  // The page is cut from `instances` alone, in the order of instances_org_created, before any
  // join: with an org filter the index is walked newest first and stops after `limit` rows, so
  // the cost of a page does not grow with the number of instances the org has.
  const where = [
    filter.org === undefined
      ? 'i.organization_id IN (SELECT organization_id FROM memberships WHERE subject = :subject)'
      : `i.organization_id = (SELECT o.id FROM organizations o JOIN memberships m ON m.organization_id = o.id AND m.subject = :subject WHERE o.slug = :org)`,
  ];
  const replacements: Record<string, unknown> = { subject: principal.subject, limit: filter.limit + 1 };
  if (filter.org !== undefined) replacements.org = filter.org;
  if (filter.project !== undefined) {
    where.push('EXISTS (SELECT 1 FROM projects p WHERE p.id = i.project_id AND p.slug = :project)');
    replacements.project = filter.project;
  }
  if (filter.state !== undefined) {
    where.push('i.state = :state');
    replacements.state = filter.state;
  }
  if (filter.cursor !== undefined) {
    where.push('(i.created_at, i.id) < (CAST(:cursorAt AS timestamptz), CAST(:cursorId AS uuid))');
    Object.assign(replacements, decodePageCursor(filter.cursor));
  }
  const rows = await sequelize.query<InstanceRow & { cursor_at: string }>(
    `WITH page AS (
       SELECT i.* FROM instances i WHERE ${where.join(' AND ')} ORDER BY i.created_at DESC, i.id DESC LIMIT :limit
     )
     ${SELECT_INSTANCES.replace('SELECT ', 'SELECT i.created_at::text AS cursor_at, ').replace('FROM instances i', 'FROM page i')}
     ORDER BY i.created_at DESC, i.id DESC`,
    { type: QueryTypes.SELECT, replacements },
  );
  const page = rows.slice(0, filter.limit);
  const last = page.at(-1);
  return {
    items: page.map(presentInstance),
    nextCursor: rows.length > filter.limit && last ? encodePageCursor(last.cursor_at, last.id) : null,
  };
}

/** What the GitOps worker renders for a create or update: fixed when the change is accepted. */
function renderPayload(org: string, project: string, instanceName: string, version: ResolvedVersion, parameters: Record<string, unknown>): InstanceWrite {
  return { org, project, instanceName, offering: version.offering, role: version.role, version: version.version, templatePath: version.templatePath, parameters };
}

/**
 * The template path of the version the instance's directory on the base branch holds (observed),
 * or else of its last merged create or update. Nothing when main holds nothing of it; the
 * renderer then replaces the directory.
 */
async function observedTemplatePath(sequelize: Sequelize, tx: Transaction, instanceId: string): Promise<{ previousTemplatePath?: string }> {
  const [row] = await sequelize.query<{ template_path: string | null }>(
    `SELECT coalesce(
       (SELECT v.template_path FROM instances i JOIN offering_versions v ON v.id = i.observed_offering_version_id WHERE i.id = :instanceId AND i.observed_state = 'present'),
       (SELECT payload->>'templatePath' FROM (${lastMergedWriteOf(':instanceId')}) c)) AS template_path`,
    { type: QueryTypes.SELECT, transaction: tx, replacements: { instanceId } },
  );
  return row?.template_path ? { previousTemplatePath: row.template_path } : {};
}

/** What the latest request asks for (its change's payload), where that is a create or update. */
function desiredOf(row: Pick<InstanceRow, 'desired_payload'>): { version: string | null; parameters: Record<string, unknown> | null } {
  const payload = row.desired_payload;
  return { version: typeof payload?.version === 'string' ? payload.version : null, parameters: payload?.parameters ?? null };
}

/** Parameters whose values a commit message must not show: `writeOnly: true` in the version's schema. */
function sensitiveParameters(schema: Record<string, unknown>): string[] {
  const properties = (schema.properties ?? {}) as Record<string, { writeOnly?: unknown }>;
  return Object.entries(properties).flatMap(([name, property]) => (property?.writeOnly === true ? [name] : []));
}

function sortKeys(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

interface InstanceRow {
  id: string;
  organization_id: string;
  org: string;
  project: string;
  offering: string;
  role: string;
  version: string;
  name: string;
  parameters: Record<string, unknown>;
  state: InstanceState;
  desired_state: 'present' | 'absent';
  desired_payload: { version?: unknown; parameters?: Record<string, unknown> } | null;
  latest_status: string | null;
  latest_cancelled_by: string | null;
  observed_state: 'present' | 'absent';
  ever_present: boolean;
  observed_commit_sha: string | null;
  drift: string | null;
  last_change_id: string | null;
  last_error: string | null;
  latest_pr_url: string | null;
  latest_error: string | null;
  latest_updated_at: Date | null;
  state_changed_at: Date | null;
  past_deadline_at: Date | null;
  created_by: string;
  created_at: Date;
  updated_at: Date;
}

interface ChangeRow {
  id: string;
  kind: string;
  status: string;
  merge_policy: MergePolicy;
  branch: string | null;
  pull_request_number: number | null;
  pull_request_url: string | null;
  commit_sha: string | null;
  merge_commit_sha: string | null;
  attempts: number;
  last_error: string | null;
  created_at: Date;
  updated_at: Date;
}

const SELECT_INSTANCES = `SELECT i.id, i.organization_id, o.slug AS org, p.slug AS project, f.slug AS offering, f.role, v.version, i.name,
  i.parameters, i.state, i.desired_state, i.last_change_id, i.last_error, i.created_by, i.created_at, i.updated_at,
  i.observed_state, i.ever_present, i.observed_commit_sha, i.drift,
  CASE WHEN lc.kind IN ('instance.create', 'instance.update') AND lc.status <> 'cancelled' THEN lc.payload END AS desired_payload, lc.status AS latest_status, lc.cancelled_by AS latest_cancelled_by,
  lc.pull_request_url AS latest_pr_url, lc.last_error AS latest_error, lc.updated_at AS latest_updated_at,
  (SELECT max(e.created_at) FROM instance_events e WHERE e.instance_id = i.id AND e.from_state IS DISTINCT FROM e.to_state) AS state_changed_at,
  CASE WHEN i.progress_deadline_exceeded_at >= lc.updated_at THEN i.progress_deadline_exceeded_at END AS past_deadline_at
  FROM instances i JOIN organizations o ON o.id = i.organization_id JOIN projects p ON p.id = i.project_id
  JOIN offering_versions v ON v.id = i.offering_version_id JOIN offerings f ON f.id = v.offering_id
  LEFT JOIN change_requests lc ON lc.id = i.last_change_id`;

async function findInstance(sequelize: Sequelize, tx: Transaction | undefined, id: string): Promise<Instance> {
  const [row] = await sequelize.query<InstanceRow>(`${SELECT_INSTANCES} WHERE i.id = :id`, { type: QueryTypes.SELECT, transaction: tx ?? null, replacements: { id } });
  if (!row) throw new NotFoundError(`No instance ${id}.`);
  return presentInstance(row);
}

/**
 * The instance if the caller is a member of its org (404 otherwise, whether or not it exists);
 * with a transaction, its row is locked for the change that follows.
 */
async function lockVisibleInstance(sequelize: Sequelize, tx: Transaction | undefined, principal: Principal, id: string): Promise<InstanceRow> {
  const [row] = await sequelize.query<InstanceRow>(
    `${SELECT_INSTANCES} WHERE i.id = :id AND EXISTS (SELECT 1 FROM memberships m WHERE m.organization_id = i.organization_id AND m.subject = :subject)
     ${tx ? 'FOR UPDATE OF i' : ''}`,
    { type: QueryTypes.SELECT, transaction: tx ?? null, replacements: { id, subject: principal.subject } },
  );
  if (!row) throw new NotFoundError(`No instance ${id}.`);
  return row;
}

function presentInstance(row: InstanceRow): Instance {
  return {
    id: row.id,
    org: row.org,
    project: row.project,
    offering: row.offering,
    version: row.version,
    name: row.name,
    parameters: row.parameters,
    state: row.state,
    desiredState: row.desired_state,
    desired: row.desired_state === 'absent' ? { version: null, parameters: null } : { version: desiredOf(row).version ?? row.version, parameters: desiredOf(row).parameters ?? row.parameters },
    observed: { present: row.observed_state === 'present', commitSha: row.observed_commit_sha },
    drift: row.drift,
    lastChangeId: row.last_change_id,
    lastError: row.last_error,
    conditions: instanceConditions({
      state: row.state,
      desiredState: row.desired_state,
      observedPresent: row.observed_state === 'present',
      drift: row.drift,
      lastError: row.last_error,
      latest: row.latest_status
        ? { status: row.latest_status, pullRequestUrl: row.latest_pr_url, lastError: row.latest_error, updatedAt: row.latest_updated_at ?? row.updated_at, cancelledBy: row.latest_cancelled_by }
        : null,
      stateChangedAt: row.state_changed_at ?? row.created_at,
      pastDeadlineAt: row.past_deadline_at,
    }),
    createdBy: row.created_by,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}
