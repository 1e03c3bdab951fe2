import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import type { InstanceSpec } from '../gitops/instance-spec.ts';
import { applyInstanceEvent } from './instance-events.ts';
import type { InstanceState } from './instance-state.ts';
import { judgeApplications, reportedAt, type ApplicationObservation, type ApplicationPair } from './application-status.ts';
import { isSlug } from '../gitops/tenant-paths.ts';
import { APPLICATION_TIER_LABEL, INSTANCE_ID_LABEL, INSTANCE_NAME_LABEL, ORG_LABEL, PARENT_TIER } from '../gitops/labels.ts';

export interface ApplicationSyncDeps {
  sequelize: Sequelize;
  /**
   * The GitOps repository's ancestry check (GitopsRepository.isAncestor). Give it cached
   * (cacheAncestry): each observation asks the same question more than once.
   */
  repository: { isAncestor(ancestor: string, descendant: string): Promise<boolean> };
}

export interface ObservationCause {
  cause: string;
  actor: string;
  deliveryId?: string;
}

export interface ObservationOutcome {
  instanceId: string | undefined;
  event: string | null;
  reason: string;
  from?: InstanceState;
  to?: InstanceState | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Whom an Application speaks for, from its labels: the instance id on an instance Application;
 * org and instance name on its parent (the tenant-apps ApplicationSet labels it from the path).
 * Labels that are not well-formed name nobody (a hand-made Application, a hostile one).
 */
export function subjectOf(labels: Record<string, string> | null | undefined): ApplicationObservation['subject'] {
  const instanceId = labels?.[INSTANCE_ID_LABEL];
  if (instanceId !== undefined) return UUID.test(instanceId) ? { tier: 'child', instanceId } : undefined;
  const org = labels?.[ORG_LABEL];
  const instanceName = labels?.[INSTANCE_NAME_LABEL];
  if (labels?.[APPLICATION_TIER_LABEL] === PARENT_TIER && org && instanceName && isSlug(org, 'org') && isSlug(instanceName, 'instanceName')) return { tier: 'parent', org, instanceName };
  return undefined;
}

interface Target {
  id: string;
  change_id: string | null;
  observed_state: 'present' | 'absent';
  observed_commit_sha: string | null;
  spec: InstanceSpec | null;
}

/**
 * The instance the subject names: by id for an instance Application; for a parent, the one
 * main holds at tenants/<org>/apps/<name> (one path, one instance), with what main holds for it.
 */
function targetQuery(subject: NonNullable<ApplicationObservation['subject']>): { where: string; bind: Record<string, string> } {
  return subject.tier === 'child'
    ? { where: 'i.id = $id', bind: { id: subject.instanceId } }
    : { where: "o.slug = $org AND i.name = $name AND i.observed_state = 'present'", bind: { org: subject.org, name: subject.instanceName } };
}

const TARGET_COLUMNS = `i.id, i.last_change_id AS change_id, i.observed_state, i.observed_commit_sha,
  CASE WHEN i.observed_state = 'present' AND ov.id IS NOT NULL
       THEN jsonb_build_object('offering', f.slug, 'version', ov.version, 'parameters', coalesce(i.observed_parameters, '{}'::jsonb)) END AS spec`;
const TARGET_FROM = `instances i JOIN organizations o ON o.id = i.organization_id
  LEFT JOIN offering_versions ov ON ov.id = i.observed_offering_version_id LEFT JOIN offerings f ON f.id = ov.offering_id`;

/**
 * Asks the repository the ancestry questions an observation will raise (the parent's revisions
 * against the instance's merge commit), outside any transaction, so that with a caching
 * repository (cacheAncestry) the transaction that applies it holds its connection and the
 * instance's row lock only for database work. Best effort: errors surface again, in the
 * transaction, when the question is asked for real.
 */
export async function prefetchAncestry(deps: ApplicationSyncDeps, observation: ApplicationObservation): Promise<void> {
  if (!observation.subject) return;
  const { where, bind } = targetQuery(observation.subject);
  const [row] = await deps.sequelize.query<{ merge: string | null; parent: ApplicationObservation | null }>(
    `SELECT i.observed_commit_sha AS merge, (SELECT observation FROM application_observations a WHERE a.instance_id = i.id AND a.tier = 'parent') AS parent
       FROM ${TARGET_FROM} WHERE ${where} AND i.observed_state = 'present'`,
    { type: QueryTypes.SELECT, bind },
  );
  const merge = row?.merge;
  if (!merge) return;
  const parent = observation.subject.tier === 'parent' ? observation : row.parent;
  const revisions = new Set([parent?.syncRevision, parent?.operation?.revision].filter((r): r is string => Boolean(r)));
  await Promise.all([...revisions].map((revision) => deps.repository.isAncestor(merge, revision).catch(() => undefined)));
}

/**
 * Applies what Argo CD reports about one of an instance's Applications, in the caller's
 * transaction: keeps it as that Application's latest word (unless a later one is kept
 * already: notices come late and out of order), judges the pair against what main holds
 * (ancestry checked in the GitOps repository), and moves the instance through the state
 * machine with an event naming the cause and the change.
 */
export async function applyApplicationObservation(
  deps: ApplicationSyncDeps,
  tx: Transaction,
  observation: ApplicationObservation,
  cause: ObservationCause,
): Promise<ObservationOutcome> {
  const subject = observation.subject;
  if (!subject) return { instanceId: undefined, event: null, reason: `neither an instance Application (${INSTANCE_ID_LABEL}) nor its parent (${APPLICATION_TIER_LABEL}=${PARENT_TIER})` };
  const { sequelize } = deps;
  const { where, bind } = targetQuery(subject);
  // Locked as read: convergence must not move what main holds for it between here and the judgement.
  const [target] = await sequelize.query<Target>(`SELECT ${TARGET_COLUMNS} FROM ${TARGET_FROM} WHERE ${where} FOR UPDATE OF i`, { type: QueryTypes.SELECT, bind, transaction: tx });
  if (!target) {
    return {
      instanceId: subject.tier === 'child' ? subject.instanceId : undefined,
      event: null,
      reason: subject.tier === 'child' ? 'no such instance' : `main holds no instance ${subject.instanceName} of ${subject.org} (apps/${subject.instanceName} under its directory)`,
    };
  }
  const instanceId = target.id;
  const pair = await keepLatest(sequelize, tx, instanceId, subject.tier, observation);

  // Argo CD speaks about what main holds: the commit that last changed the instance's directory
  // there (observed by convergence), whichever change or person put it there. Only the parent's
  // revisions are gsv-gitops commits.
  const merge = target.observed_state === 'present' ? target.observed_commit_sha : null;
  const contains = (revision: string | null | undefined): Promise<boolean> => (merge && revision ? deps.repository.isAncestor(merge, revision) : Promise.resolve(false));
  const verdict = judgeApplications(pair, {
    mergeCommitSha: merge,
    spec: target.spec,
    parentSyncContainsMerge: await contains(pair.parent?.syncRevision),
    parentOperationContainsMerge: await contains(pair.parent?.operation?.revision),
  });
  if (!verdict.event) return { instanceId, event: null, reason: verdict.reason };

  const failing = verdict.event === 'sync.failed' || verdict.event === 'sync.degraded';
  const applied = await applyInstanceEvent(sequelize, tx, instanceId, verdict.event, {
    cause: cause.cause,
    actor: cause.actor,
    changeId: target.change_id ?? undefined,
    deliveryId: cause.deliveryId,
    lastError: failing ? verdict.reason : verdict.event === 'sync.healthy' ? null : undefined,
    detail: {
      application: observation.application,
      tier: subject.tier,
      parentRevision: pair.parent?.syncRevision ?? null,
      parentOperationFinishedAt: pair.parent?.operation?.finishedAt ?? null,
      childRevision: pair.child?.syncRevision ?? null,
      health: pair.child?.healthStatus ?? null,
      healthObservedAt: pair.child?.healthObservedAt ?? null,
      operationFinishedAt: pair.child?.operation?.finishedAt ?? null,
      reason: verdict.reason,
    },
  });
  return applied.ok
    ? { instanceId, event: verdict.event, reason: verdict.reason, from: applied.from, to: applied.to }
    : { instanceId, event: verdict.event, reason: `${verdict.reason}; ${applied.detail}`, from: applied.from, to: null };
}

/**
 * Keeps `observation` as the tier's latest word unless a later one (by reportedAt) is kept, and
 * returns the pair as kept, in one statement.
 */
async function keepLatest(sequelize: Sequelize, tx: Transaction, instanceId: string, tier: 'parent' | 'child', observation: ApplicationObservation): Promise<ApplicationPair> {
  const [row] = await sequelize.query<{ mine: ApplicationObservation; other: ApplicationObservation | null }>(
    `WITH kept AS (
       INSERT INTO application_observations AS a (instance_id, tier, application, observation, reported_at)
       VALUES ($id, $tier, $application, $observation::jsonb, $reportedAt::timestamptz)
       ON CONFLICT (instance_id, tier) DO UPDATE
         SET application = EXCLUDED.application, observation = EXCLUDED.observation, reported_at = EXCLUDED.reported_at, updated_at = now()
         -- A deletion is kept whatever its timestamps: nothing the Application says after it matters.
         WHERE a.reported_at IS NULL OR EXCLUDED.reported_at >= a.reported_at OR $deleting
       RETURNING observation)
     SELECT coalesce((SELECT observation FROM kept), (SELECT observation FROM application_observations WHERE instance_id = $id AND tier = $tier)) AS mine,
            (SELECT observation FROM application_observations WHERE instance_id = $id AND tier <> $tier) AS other`,
    {
      type: QueryTypes.SELECT,
      bind: { id: instanceId, tier, application: observation.application, observation: JSON.stringify(observation), reportedAt: reportedAt(observation), deleting: observation.deleting },
      transaction: tx,
    },
  );
  const mine = row!.mine;
  const other = row!.other ?? undefined;
  return tier === 'parent' ? { parent: mine, child: other } : { parent: other, child: mine };
}
