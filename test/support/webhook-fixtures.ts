import { createRequire } from 'node:module';
import { QueryTypes, type Sequelize } from 'sequelize';
import type { InstanceSpec } from '../../src/gitops/instance-spec.ts';
import { insertChange, insertInstance, insertOrganization } from './change-fixtures.ts';

const require = createRequire(import.meta.url);

interface ExampleDefinition {
  name: string;
  examples: Array<Record<string, unknown>>;
}
const EXAMPLES = require('@octokit/webhooks-examples/api.github.com/index.json') as ExampleDefinition[];

type Json = Record<string, unknown>;

/** A real payload from @octokit/webhooks-examples (deep copy), picked by event and action. */
export function githubExample(event: string, action?: string): Json {
  const definition = EXAMPLES.find((d) => d.name === event);
  const example = definition?.examples.find((e) => action === undefined || e.action === action);
  if (!example) throw new Error(`no @octokit/webhooks-examples payload for ${event}${action ? `.${action}` : ''}`);
  return structuredClone(example);
}

/** The real `pull_request` example, adjusted to our repository: PR number, head branch, base, merge state. */
export function pullRequestPayload(input: { action: 'closed' | 'reopened' | 'opened'; number: number; branch: string; merged: boolean; mergeCommitSha: string | null; base?: string }): Json {
  const payload = githubExample('pull_request', input.action === 'opened' ? 'opened' : input.action === 'reopened' ? 'reopened' : 'closed');
  const pr = payload.pull_request as Json;
  payload.number = input.number;
  pr.number = input.number;
  pr.merged = input.merged;
  pr.merge_commit_sha = input.mergeCommitSha;
  pr.html_url = `https://github.com/gsv/gsv-gitops/pull/${input.number}`;
  (pr.head as Json).ref = input.branch;
  (pr.base as Json).ref = input.base ?? 'main';
  return payload;
}

/** The real `push` example, adjusted: a push of `shas` to `ref`. */
export function pushPayload(ref: string, shas: string[]): Json {
  const payload = githubExample('push');
  const template = ((payload.commits as Json[])[0] ?? {}) as Json;
  payload.ref = ref;
  payload.after = shas.at(-1);
  payload.commits = shas.map((id) => ({ ...template, id }));
  payload.head_commit = { ...template, id: shas.at(-1) };
  return payload;
}

export interface OpenChange {
  orgId: string;
  orgSlug: string;
  instanceId: string;
  instanceName: string;
  /** What main holds for it once merged (the fixture offering, no parameters). */
  spec: InstanceSpec;
  changeId: string;
  branch: string;
  pullRequestNumber: number;
  commitSha: string;
}

let prNumber = 1000 + (process.pid % 1000) * 100;

/** An instance whose create change is committed and its PR open, as the change worker leaves it. */
export async function insertOpenChange(
  sequelize: Sequelize,
  options: { commitSha: string; state?: string; desired?: 'present' | 'absent'; kind?: string; withNumber?: boolean; observedCommitSha?: string },
): Promise<OpenChange> {
  const org = await insertOrganization(sequelize);
  const { instanceId, instanceName } = await insertInstance(sequelize, org, {
    state: options.state ?? 'pending_review',
    desired: options.desired,
    ...(options.observedCommitSha ? { observedCommitSha: options.observedCommitSha } : {}),
  });
  const changeId = await insertChange(sequelize, { kind: options.kind ?? 'instance.create', payload: {}, orgId: org.orgId, instanceId });
  prNumber += 1;
  const branch = `control-plane/${changeId}`;
  await sequelize.query(
    `UPDATE change_requests SET status = 'open', branch = $branch, pull_request_number = $number, commit_sha = $sha WHERE id = $id`,
    { bind: { id: changeId, branch, number: options.withNumber === false ? null : prNumber, sha: options.commitSha } },
  );
  await sequelize.query('UPDATE instances SET last_change_id = $change WHERE id = $id', { bind: { id: instanceId, change: changeId } });
  return {
    orgId: org.orgId,
    orgSlug: org.orgSlug,
    instanceId,
    instanceName,
    spec: { offering: 'fixture-offering', version: '1.0.0', parameters: {} },
    changeId,
    branch,
    pullRequestNumber: prNumber,
    commitSha: options.commitSha,
  };
}

export async function instanceState(sequelize: Sequelize, instanceId: string): Promise<string> {
  const [row] = await sequelize.query<{ state: string }>('SELECT state FROM instances WHERE id = $id', { type: QueryTypes.SELECT, bind: { id: instanceId } });
  return row!.state;
}

export async function changeRow(sequelize: Sequelize, changeId: string): Promise<{ status: string; merge_commit_sha: string | null }> {
  const [row] = await sequelize.query<{ status: string; merge_commit_sha: string | null }>('SELECT status, merge_commit_sha FROM change_requests WHERE id = $id', {
    type: QueryTypes.SELECT,
    bind: { id: changeId },
  });
  return row!;
}

export async function instanceEvents(sequelize: Sequelize, instanceId: string): Promise<Array<{ from_state: string | null; to_state: string; cause: string; actor: string; change_id: string | null; delivery_id: string | null }>> {
  return sequelize.query('SELECT from_state, to_state, cause, actor, change_id, delivery_id FROM instance_events WHERE instance_id = $id ORDER BY id', {
    type: QueryTypes.SELECT,
    bind: { id: instanceId },
  });
}

/** An instance whose latest change is merged at `mergeCommitSha` (as after the GitHub webhook). */
export async function insertMergedChange(
  sequelize: Sequelize,
  options: { mergeCommitSha: string; state?: string; desired?: 'present' | 'absent'; kind?: string },
): Promise<OpenChange> {
  // Merged: main holds the instance since that commit, as convergence records it.
  const change = await insertOpenChange(sequelize, { commitSha: options.mergeCommitSha, state: options.state ?? 'syncing', desired: options.desired, kind: options.kind, observedCommitSha: options.mergeCommitSha });
  await sequelize.query(`UPDATE change_requests SET status = 'merged', merge_commit_sha = $sha WHERE id = $id`, { bind: { id: change.changeId, sha: options.mergeCommitSha } });
  return change;
}
