import { instanceDir } from '../../src/gitops/tenant-paths.ts';
import { Webhooks } from '@octokit/webhooks';
import YAML from 'yaml';
import { QueryTypes, type Sequelize } from 'sequelize';
import { generateApiToken, upsertApiToken } from '../../src/db/api-tokens.ts';
import { meterUsage } from '../../src/domain/billing/metering.ts';
import { createConverger, type Converger } from '../../src/domain/convergence/converger.ts';
import { INSTANCE_SPEC_ANNOTATION, canonicalJson, readObservedDirectory } from '../../src/gitops/instance-spec.ts';
import type { LocalRepository } from '../../src/gitops/local/local-repository.ts';
import { BranchMovedError, type FileChange } from '../../src/gitops/repository.ts';
import { reconcilePullRequests } from '../../src/jobs/reconcilers.ts';
import { createLogger } from '../../src/logger.ts';
import type { ArgocdNotification } from '../../src/webhooks/argocd-notification.ts';
import { childNotice, freshNotices } from '../support/argocd-notices.ts';
import { pullRequestPayload, pushPayload } from '../support/webhook-fixtures.ts';
import { describeAction, generateSequence, SLOTS, type ModelAction } from './model-actions.ts';
import { seededRandom } from './seeded-random.ts';

const HOUR_MS = 3_600_000;

/** The service under test, however it runs; `restart` (SIGKILL, then start again) only when it is a process. */
export interface ModelService {
  url(): string;
  gitDir: string;
  restart?: () => Promise<void>;
}

export interface ModelWorld {
  service: ModelService;
  db: Sequelize;
  /** "A person" with write access to the repository and GitHub's UI (the local pull request rows). */
  person: LocalRepository;
  githubSecret: string;
  argocdToken: string;
  /** Platform admin token: tops up each run's wallet. */
  adminHeaders: Record<string, string>;
}

type Delivery =
  | { kind: 'github'; event: string; id: string; payload: unknown }
  | { kind: 'argocd'; notification: ArgocdNotification };

export interface RunReport {
  index: number;
  actions: ModelAction[];
  log: string[];
  problems: string[];
}

/**
 * One seeded sequence against a running service: a fresh workspace (own org, own instances),
 * random steps, then quiescence, then the invariants of issue 11 §5. Returns the problems found
 * (empty: the run holds) with the steps and what each did, for the failure report.
 *
 * Quiescence, as decided here: random steps stop; the worker drains; "the person" then resolves
 * every open pull request of the workspace's instances: the service's own proposals (requested by
 * control-plane, the restoring changes after a stale merge) are merged, as a reviewer accepting
 * them would; a user's pull request is merged or closed (seeded coin; closed when it conflicts).
 * Queued webhooks are delivered or lost (seeded), a reconciler pass and a push webhook read main
 * back, and this repeats until no change is pending or open. Then Argo CD says what it runs:
 * Synced+Healthy at main's head for every directory on main, the Application being deleted for
 * every instance whose directory went. Only then are the invariants checked.
 */
export async function runModelSequence(world: ModelWorld, seed: number, index: number, options: { kills: boolean; concurrent?: boolean }): Promise<RunReport> {
  const actions = generateSequence(seed, index, options);
  const random = seededRandom((seed * 31 + index * 7 + 1) >>> 0);
  const log: string[] = [];
  const problems: string[] = [];
  const { db, person } = world;
  const signer = new Webhooks({ secret: world.githubSecret });
  const network: Delivery[] = [];
  const names = Array.from({ length: SLOTS }, (_, i) => `model-${i}`);
  const idsOf = new Map<number, string[]>();
  const everOnMain = new Set<string>();
  const converger: Converger = createConverger({ sequelize: db, repository: person, mergePolicy: { default: 'pull-request' } });

  // A workspace of its own: the caller, its org, credit enough that no wallet ever runs dry.
  const subject = `model-${seed}-${index}-${Date.now().toString(36)}`;
  const token = generateApiToken();
  await upsertApiToken(db, token, { name: subject, subject, username: subject, email: `${subject}@example.test`, platformAdmin: false });
  const headers = { authorization: `Bearer ${token}` };
  const api = async (method: string, path: string, body?: unknown, as: Record<string, string> = headers) => {
    const response = await fetch(`${world.service.url()}${path}`, {
      method,
      headers: { ...as, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await response.text();
    // Whatever the order of requests, the API answers them: a 5xx is a fault, never an answer.
    if (response.status >= 500) problems.push(`${method} ${path.split('?')[0]} answered ${response.status}: ${text.slice(0, 300)}`);
    return { status: response.status, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
  };
  const workspace = await api('POST', '/orgs/auto', {});
  if (workspace.status >= 300) throw new Error(`POST /orgs/auto answered ${workspace.status}: ${JSON.stringify(workspace.body)}`);
  const org = String(workspace.body.slug);
  const [orgRow] = await db.query<{ id: string }>('SELECT id FROM organizations WHERE slug = $org', { type: QueryTypes.SELECT, bind: { org } });
  const orgId = orgRow!.id;
  const wallets = await db.query<{ id: string }>(`SELECT id FROM ledger_accounts WHERE organization_id = $orgId AND kind = 'wallet'`, { type: QueryTypes.SELECT, bind: { orgId } });
  for (const wallet of wallets) {
    const credit = await api('POST', `/billing/wallets/${wallet.id}/credits`, { amount: 100_000_000, reason: 'model run' }, world.adminHeaders);
    if (credit.status >= 300) throw new Error(`credit answered ${credit.status}: ${JSON.stringify(credit.body)}`);
  }

  const dirOf = (slot: number) => `${instanceDir(org, names[slot]!, 'bucketed')}`;
  const head = async () => (await person.getBranch('main'))!;
  /** The instance whose directory main holds at `slot`'s name, with its files. */
  const onMain = async (slot: number, at?: string) => {
    const dir = dirOf(slot);
    const files = (await person.readDirectories(at ?? (await head()), [dir])).get(dir) ?? new Map<string, string>();
    if (files.size === 0) return undefined;
    return { files, ...readObservedDirectory(files) };
  };
  const noteMain = async () => {
    for (let slot = 0; slot < SLOTS; slot += 1) {
      const seen = await onMain(slot);
      if (seen?.instanceId) everOnMain.add(seen.instanceId);
    }
  };
  const latestId = (slot: number) => idsOf.get(slot)?.at(-1);

  const sendGithub = async (delivery: Extract<Delivery, { kind: 'github' }>) => {
    const body = JSON.stringify(delivery.payload);
    const response = await fetch(`${world.service.url()}/webhooks/github`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-github-event': delivery.event, 'x-github-delivery': delivery.id, 'x-hub-signature-256': await signer.sign(body) },
      body,
    });
    return response.status;
  };
  const sendArgocd = async (notification: ArgocdNotification) => {
    const response = await fetch(`${world.service.url()}/webhooks/argocd`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${world.argocdToken}` },
      body: JSON.stringify(notification),
    });
    return response.status;
  };
  const send = async (delivery: Delivery) => {
    const status = delivery.kind === 'github' ? await sendGithub(delivery) : await sendArgocd(delivery.notification);
    if (status >= 300) problems.push(`a ${delivery.kind} delivery answered ${status}`);
    return status;
  };
  const github = (event: string, payload: unknown) => network.push({ kind: 'github', event, id: crypto.randomUUID(), payload });
  const pushed = (sha: string) => github('push', { ...pushPayload('refs/heads/main', [sha]), before: '0'.repeat(40) });

  /** Pull requests of this workspace's instances in `state`, by number. */
  const pullRequests = (state: 'open' | 'closed') =>
    db.query<{ number: number; branch: string; service: boolean }>(
      `SELECT p.number, p.branch, bool_and(c.requested_by = 'control-plane') AS service
         FROM local_pull_requests p JOIN change_requests c ON c.pull_request_number = p.number
        WHERE c.organization_id = $orgId AND c.instance_id IS NOT NULL AND p.state = $state
        GROUP BY p.number, p.branch ORDER BY p.number`,
      { type: QueryTypes.SELECT, bind: { orgId, state } },
    );

  const merge = async (pr: { number: number; branch: string }, lose = false): Promise<boolean> => {
    try {
      const merged = await person.mergePullRequest(pr.number);
      const payload = pullRequestPayload({ action: 'closed', number: pr.number, branch: pr.branch, merged: true, mergeCommitSha: merged.mergeCommitSha! });
      if (!lose) {
        github('pull_request', payload);
        pushed(merged.mergeCommitSha!);
      }
      await noteMain();
      return true;
    } catch (error) {
      log.push(`    merge of #${pr.number} refused: ${(error as Error).message.split('\n')[0]}`);
      return false;
    }
  };
  const setState = async (pr: { number: number; branch: string }, state: 'open' | 'closed', lose = false) => {
    await db.query('UPDATE local_pull_requests SET state = $state WHERE number = $number', { bind: { state, number: pr.number } });
    if (!lose) github('pull_request', pullRequestPayload({ action: state === 'closed' ? 'closed' : 'reopened', number: pr.number, branch: pr.branch, merged: false, mergeCommitSha: null }));
  };

  const drain = async (timeoutMs = 8_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const [row] = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM change_requests WHERE organization_id = $orgId AND status = 'pending'`, {
        type: QueryTypes.SELECT,
        bind: { orgId },
      });
      if (row!.n === 0) return true;
      if (Date.now() > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 40));
    }
  };
  // One round of the PR reconciler across passes, as the leader's periodic task keeps it.
  const pullRequestCursor = { after: 0 };
  const reconcile = async () => {
    // The leader's pass, without the leader lock: concurrent runs would otherwise skip theirs.
    await reconcilePullRequests({
      sequelize: db,
      pullRequestCursor,
      repository: { getPullRequest: (n) => person.getPullRequest(n), mergePullRequest: (n) => person.mergePullRequest(n), isAncestor: (a, d) => person.isAncestor(a, d) },
      applications: undefined,
      logger: createLogger('silent'),
    });
    await converger.converge();
  };

  /**
   * What Argo CD sends about an instance: once main holds it, its parent's sync at main's head
   * and the instance Application's word on main's spec (two notices, lost, duplicated and
   * reordered apart on the network); once main no longer holds it, the instance Application's
   * deletion.
   */
  const argocdSays = async (id: string, health: 'Healthy' | 'Degraded'): Promise<ArgocdNotification[]> => {
    const sha = await head();
    for (let slot = 0; slot < SLOTS; slot += 1) {
      const seen = await onMain(slot, sha);
      if (seen?.instanceId === id && seen.spec) return freshNotices({ instanceId: id, orgSlug: org, instanceName: names[slot]!, spec: seen.spec }, sha, (n) => (n.health.status = health));
    }
    if (!everOnMain.has(id)) return [];
    const [row] = await db.query<{ name: string }>('SELECT name FROM instances WHERE id = $id', { type: QueryTypes.SELECT, bind: { id } });
    const gone = { offering: 'studio', version: '1.0.0', parameters: {} };
    return [childNotice({ instanceId: id, orgSlug: org, instanceName: row!.name, spec: gone }, (n) => (n.app.deletionTimestamp = new Date().toISOString()))];
  };

  const engineer = async (slot: number, what: 'remove' | 'edit' | 'touch', logLevel: string): Promise<string> => {
    // Other runs move main too: commit again on the new head, as `git pull --rebase && git push` would.
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await engineerOnce(slot, what, logLevel);
      } catch (error) {
        if (!(error instanceof BranchMovedError) || attempt >= 10) throw error;
      }
    }
  };
  const engineerOnce = async (slot: number, what: 'remove' | 'edit' | 'touch', logLevel: string): Promise<string> => {
    const parent = await head();
    const seen = await onMain(slot, parent);
    if (!seen) return 'nothing of it on main';
    const changes = [...seen.files].flatMap(([path, content]): FileChange[] => {
      if (what === 'remove') return [{ path, delete: true as const }];
      if (what === 'touch') return path.endsWith('kustomization.yaml') ? [{ path, content: `${content}# reviewed by an engineer\n` }] : [];
      if (!/\.ya?ml$/.test(path)) return [];
      const docs = YAML.parseAllDocuments(content, { version: '1.1' }) as YAML.Document[];
      let edited = false;
      for (const doc of docs) {
        const value = doc.getIn(['metadata', 'annotations', INSTANCE_SPEC_ANNOTATION]);
        if (typeof value !== 'string') continue;
        const spec = JSON.parse(value) as { parameters: Record<string, unknown> };
        spec.parameters = { ...spec.parameters, logLevel };
        doc.setIn(['metadata', 'annotations', INSTANCE_SPEC_ANNOTATION], canonicalJson(spec));
        edited = true;
      }
      return edited ? [{ path, content: docs.map((d) => d.toString()).join('') }] : [];
    });
    if (changes.length === 0) return 'no file to change';
    const sha = await person.createCommit({ parent, changes, message: `Engineer: ${what} ${dirOf(slot)} by hand\n` });
    await person.updateBranch('main', sha, { expected: parent });
    pushed(sha);
    await noteMain();
    return `committed ${sha.slice(0, 8)}`;
  };

  const readyWithoutMerge = async (when: string) => {
    const rows = await db.query<{ id: string }>(
      `SELECT i.id FROM instances i WHERE i.organization_id = $orgId AND i.state = 'ready'
          AND NOT EXISTS (SELECT 1 FROM change_requests c WHERE c.instance_id = i.id AND c.status = 'merged')`,
      { type: QueryTypes.SELECT, bind: { orgId } },
    );
    for (const row of rows) problems.push(`${when}: instance ${row.id} is ready without a merged change`);
  };

  const step = async (action: ModelAction): Promise<string> => {
    switch (action.t) {
      case 'create': {
        const response = await api('POST', '/instances', { org, offering: 'studio', name: names[action.slot] });
        if (response.status === 202) idsOf.set(action.slot, [...(idsOf.get(action.slot) ?? []), String(response.body.id)]);
        return `${response.status}${response.status === 202 ? ` ${String(response.body.id).slice(0, 8)}` : ''}`;
      }
      case 'update': {
        const id = latestId(action.slot);
        if (!id) return 'no instance';
        return String((await api('PATCH', `/instances/${id}`, { parameters: { size: action.size, storageSize: action.storageSize } })).status);
      }
      case 'upgrade': {
        const id = latestId(action.slot);
        if (!id) return 'no instance';
        const response = await api('PATCH', `/instances/${id}`, { version: action.version });
        return `${response.status}${response.status >= 400 ? ` ${String(response.body.code)}` : ''}`;
      }
      case 'delete': {
        const id = latestId(action.slot);
        if (!id) return 'no instance';
        return String((await api('DELETE', `/instances/${id}`)).status);
      }
      case 'cancel':
      case 'retry': {
        const id = latestId(action.slot);
        if (!id) return 'no instance';
        const change = (await api('GET', `/instances/${id}`)).body.lastChangeId;
        if (typeof change !== 'string') return 'no change';
        const response = await api('POST', `/changes/${change}/${action.t}`);
        return `${response.status}${response.status >= 400 ? ` ${String(response.body.code)}` : ''}`;
      }
      case 'merge':
      case 'close':
      case 'reopen': {
        const list = await pullRequests(action.t === 'reopen' ? 'closed' : 'open');
        const pr = list[action.pick % Math.max(list.length, 1)];
        if (!pr) return 'no pull request';
        if (action.t === 'merge') return `#${pr.number} ${(await merge(pr)) ? 'merged' : 'not merged'}`;
        await setState(pr, action.t === 'close' ? 'closed' : 'open');
        return `#${pr.number}`;
      }
      case 'deliver': {
        const delivery = network[action.pick % Math.max(network.length, 1)];
        if (!delivery) return 'nothing queued';
        if (!action.duplicate) network.splice(network.indexOf(delivery), 1);
        const status = await send(delivery);
        return `${delivery.kind === 'github' ? delivery.event : 'argocd'} → ${status}`;
      }
      case 'lose': {
        const lost = network.splice(action.pick % Math.max(network.length, 1), 1)[0];
        return lost ? `lost ${lost.kind === 'github' ? lost.event : 'argocd'}` : 'nothing queued';
      }
      case 'argocd': {
        const id = latestId(action.slot);
        const notices = id ? await argocdSays(id, action.health) : [];
        if (notices.length === 0) return 'no Application';
        for (const notification of notices) network.push({ kind: 'argocd', notification });
        return notices[0]!.app.deletionTimestamp ? 'queued deletion' : `queued parent and ${action.health}`;
      }
      case 'reconcile':
        await reconcile();
        return 'done';
      case 'drain':
        return (await drain()) ? 'drained' : 'still pending';
      case 'engineer':
        return engineer(action.slot, action.what, action.logLevel);
      case 'kill': {
        if (!world.service.restart) return 'not a process';
        await new Promise((resolve) => setTimeout(resolve, action.delayMs));
        await world.service.restart();
        return 'killed and restarted';
      }
    }
  };

  for (const [i, action] of actions.entries()) {
    const outcome = await step(action);
    log.push(`${String(i).padStart(2)} ${describeAction(action)} → ${outcome}`);
    await readyWithoutMerge(`after step ${i}`);
  }

  // Quiescence (see above).
  log.push('-- quiescence');
  let settled = false;
  for (let round = 0; round < 8 && !settled; round += 1) {
    if (!(await drain(15_000))) log.push(`   round ${round}: changes still pending after 15 s`);
    for (const pr of await pullRequests('open')) {
      const lose = random() < 0.3;
      if (pr.service || random() < 0.5) {
        if (await merge(pr, lose)) {
          log.push(`   merged #${pr.number}${pr.service ? ' (service proposal)' : ''}${lose ? ', webhooks lost' : ''}`);
          continue;
        }
      }
      await setState(pr, 'closed', lose);
      log.push(`   closed #${pr.number}${lose ? ', webhook lost' : ''}`);
    }
    while (network.length > 0) {
      const delivery = network.splice(Math.floor(random() * network.length), 1)[0]!;
      if (random() < 0.3) continue;
      await send(delivery);
    }
    await reconcile();
    await sendGithub({ kind: 'github', event: 'push', id: crypto.randomUUID(), payload: pushPayload('refs/heads/main', [await head()]) });
    await drain(15_000);
    const [row] = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM change_requests WHERE organization_id = $orgId AND instance_id IS NOT NULL AND status IN ('pending', 'open')`,
      { type: QueryTypes.SELECT, bind: { orgId } },
    );
    const [open] = await pullRequests('open').then((l) => [l.length]);
    settled = row!.n === 0 && open === 0;
    if (!settled) {
      const stuck = await db.query<{ kind: string; status: string; number: number | null; pr: string | null; error: string | null }>(
        `SELECT c.kind, c.status, c.pull_request_number AS number, p.state AS pr, left(c.last_error, 160) AS error
           FROM change_requests c LEFT JOIN local_pull_requests p ON p.number = c.pull_request_number
          WHERE c.organization_id = $orgId AND c.instance_id IS NOT NULL AND c.status IN ('pending', 'open')`,
        { type: QueryTypes.SELECT, bind: { orgId } },
      );
      log.push(`   round ${round}: ${row!.n} changes pending or open, ${open} pull requests open: ${JSON.stringify(stuck)}`);
    }
  }
  if (!settled) problems.push('the workspace did not quiesce: changes still pending or open after 8 rounds');

  // Argo CD says what it runs, for everything main holds or no longer holds.
  const instances = await db.query<{ id: string }>('SELECT id FROM instances WHERE organization_id = $orgId ORDER BY created_at', { type: QueryTypes.SELECT, bind: { orgId } });
  for (const { id } of instances) {
    for (const notification of await argocdSays(id, 'Healthy')) {
      await send({ kind: 'argocd', notification });
      if (random() < 0.3) await send({ kind: 'argocd', notification });
    }
  }

  await checkInvariants(world, { orgId, org, names, onMain, problems, log, concurrent: options.concurrent ?? false });
  for (const row of await db.query<{ id: string; name: string; state: string; observed_state: string }>(
    'SELECT id, name, state::text, observed_state FROM instances WHERE organization_id = $orgId ORDER BY created_at',
    { type: QueryTypes.SELECT, bind: { orgId } },
  )) {
    log.push(`   end: ${row.name} ${row.id.slice(0, 8)} ${row.state}, observed ${row.observed_state}`);
  }
  await readyWithoutMerge('at quiescence');
  return { index, actions, log, problems };
}

interface InstanceRow {
  id: string;
  name: string;
  state: string;
  observed_state: string;
  metered: boolean;
  same_version: boolean;
  version: string;
  parameters: Record<string, unknown>;
  observed_parameters: Record<string, unknown> | null;
  ever_ready: boolean;
  merged_changes: number;
}

async function checkInvariants(
  world: ModelWorld,
  input: {
    orgId: string;
    org: string;
    names: string[];
    onMain: (slot: number) => Promise<{ instanceId: string | undefined; spec: { offering: string; version: string; parameters: Record<string, unknown> } | undefined } | undefined>;
    problems: string[];
    log: string[];
    /** Other runs meter with a future clock too: a charge of an hour while it still ran is theirs, not a fault. */
    concurrent: boolean;
  },
): Promise<void> {
  const { db } = world;
  const { orgId, problems } = input;
  const present = new Map<string, { version: string; parameters: Record<string, unknown> } | undefined>();
  for (let slot = 0; slot < input.names.length; slot += 1) {
    const seen = await input.onMain(slot);
    if (!seen) continue;
    if (!seen.instanceId) problems.push(`main holds ${input.names[slot]} with no instance id`);
    else present.set(seen.instanceId, seen.spec);
  }

  // Metering an hour and more later charges exactly what main holds and has been ready.
  const future = new Date(Date.now() + 2 * HOUR_MS);
  const lastHour = new Date(Math.floor(future.getTime() / HOUR_MS) * HOUR_MS - HOUR_MS);
  await meterUsage({ sequelize: db, now: () => future });

  const rows = await db.query<InstanceRow>(
    `SELECT i.id, i.name, i.state::text, i.observed_state,
            (i.observed_state = 'present' AND i.running_since IS NOT NULL AND NOT i.suspended) AS metered,
            (i.offering_version_id IS NOT DISTINCT FROM i.observed_offering_version_id) AS same_version,
            v.version, i.parameters, i.observed_parameters,
            EXISTS (SELECT 1 FROM instance_events e WHERE e.instance_id = i.id AND e.to_state = 'ready') AS ever_ready,
            (SELECT count(*)::int FROM change_requests c WHERE c.instance_id = i.id AND c.status = 'merged') AS merged_changes
       FROM instances i JOIN offering_versions v ON v.id = i.offering_version_id
      WHERE i.organization_id = $orgId ORDER BY i.created_at`,
    { type: QueryTypes.SELECT, bind: { orgId } },
  );
  const charged = new Set(
    (
      await db.query<{ instance_id: string }>(
        'SELECT m.instance_id FROM metered_hours m JOIN instances i ON i.id = m.instance_id WHERE i.organization_id = $orgId AND m.hour = $hour',
        { type: QueryTypes.SELECT, bind: { orgId, hour: lastHour } },
      )
    ).map((r) => r.instance_id),
  );
  for (const row of rows) {
    const who = `instance ${row.name} (${row.id.slice(0, 8)}, ${row.state})`;
    const onMain = present.has(row.id);
    const deployed = !['deleted', 'rejected', 'failed'].includes(row.state);
    if (row.state === 'failed') problems.push(`${who} failed (a change of valid input could not be committed)`);
    if (onMain !== deployed) problems.push(`${who}: its directory is ${onMain ? '' : 'not '}on main, yet it is ${row.state}`);
    if (onMain && row.state !== 'ready') problems.push(`${who}: main holds it and Argo CD reported it Synced+Healthy at main's head, yet it is not ready`);
    if (row.state === 'deleted' && onMain) problems.push(`${who}: deleted while its directory is on main`);
    if ((row.observed_state === 'present') !== onMain) problems.push(`${who}: observed_state ${row.observed_state}, main ${onMain ? 'holds' : 'does not hold'} it`);
    if (row.metered !== onMain) problems.push(`${who}: ${row.metered ? 'metered' : 'not metered'} though main ${onMain ? 'holds' : 'does not hold'} it`);
    if (charged.has(row.id) !== onMain && (onMain || !input.concurrent)) problems.push(`${who}: metering ${charged.has(row.id) ? 'charged' : 'did not charge'} the hour from ${lastHour.toISOString()}`);
    if (row.state === 'ready' && row.merged_changes === 0) problems.push(`${who}: ready without a merged change`);
    if (onMain) {
      const spec = present.get(row.id);
      if (!row.same_version) problems.push(`${who}: its version is not the one main holds`);
      if (!spec) problems.push(`${who}: main's files carry no readable spec`);
      else {
        if (spec.version !== row.version) problems.push(`${who}: version ${row.version}, main holds ${spec.version}`);
        if (canonicalJson(spec.parameters) !== canonicalJson(row.parameters)) {
          problems.push(`${who}: parameters ${canonicalJson(row.parameters)}, main holds ${canonicalJson(spec.parameters)}`);
        }
        if (canonicalJson(row.observed_parameters) !== canonicalJson(spec.parameters)) problems.push(`${who}: observed parameters differ from main's`);
      }
    }
  }

  // Every hold resolved once: none pending, one capture when settled and none otherwise, and no
  // more setup fees of a version captured than requests for it merged (a released fee may be held
  // again, when a closed pull request is reopened or a hold lapsed, and is then charged once).
  const holds = await db.query<{ id: string; reference: string; version: string | null; status: string; captures: number; name: string; state: string; ever_ready: boolean; merged_for_version: number }>(
    `SELECT a.id, a.reference, a.offering_version_id AS version, a.status, i.name, i.state::text,
            (SELECT count(*)::int FROM change_requests c JOIN offering_versions v ON v.id = a.offering_version_id
              WHERE c.instance_id = i.id AND c.status = 'merged' AND c.kind IN ('instance.create', 'instance.update')
                AND c.payload->>'version' = v.version) AS merged_for_version,
            EXISTS (SELECT 1 FROM instance_events e WHERE e.instance_id = i.id AND e.to_state = 'ready') AS ever_ready,
            (SELECT count(*)::int FROM ledger_transfers t WHERE t.authorization_id = a.id) AS captures
       FROM billing_authorizations a JOIN instances i ON i.id::text = a.reference
      WHERE i.organization_id = $orgId`,
    { type: QueryTypes.SELECT, bind: { orgId } },
  );
  const perInstance = new Map<string, number>();
  const settledPerVersion = new Map<string, { settled: number; merged: number }>();
  for (const hold of holds) {
    const who = `hold of ${hold.name} (${hold.reference.slice(0, 8)}, ${hold.state})`;
    perInstance.set(hold.reference, (perInstance.get(hold.reference) ?? 0) + 1);
    if (hold.status === 'settled') {
      const key = `${hold.reference} ${hold.version}`;
      settledPerVersion.set(key, { settled: (settledPerVersion.get(key)?.settled ?? 0) + 1, merged: hold.merged_for_version });
    }
    if (hold.status === 'pending') problems.push(`${who} is still pending at quiescence`);
    if (hold.status === 'settled' && hold.captures !== 1) problems.push(`${who} settled with ${hold.captures} captures`);
    if (hold.status !== 'settled' && hold.captures !== 0) problems.push(`${who} ${hold.status} yet captured ${hold.captures} times`);
    if (hold.status === 'settled' && !hold.ever_ready) problems.push(`${who} settled though the instance was never ready`);
  }
  for (const [key, { settled, merged }] of settledPerVersion) {
    if (settled > merged) problems.push(`instance and version ${key}: setup fee captured ${settled} times for ${merged} merged requests of it`);
  }
  const missing = rows.filter((r) => !perInstance.has(r.id));
  for (const row of missing) problems.push(`instance ${row.name} (${row.id.slice(0, 8)}) has no setup-fee hold`);

  // The ledger balances: every transfer's entries, all entries, and each wallet's cached balance.
  const [total] = await db.query<{ total: string | null; unbalanced: number }>(
    `SELECT (SELECT sum(amount)::text FROM ledger_entries) AS total,
            (SELECT count(*)::int FROM (SELECT transfer_id FROM ledger_entries GROUP BY transfer_id HAVING sum(amount) <> 0) t) AS unbalanced`,
    { type: QueryTypes.SELECT },
  );
  if (BigInt(total!.total ?? '0') !== 0n) problems.push(`ledger entries sum to ${total!.total}`);
  if (total!.unbalanced > 0) problems.push(`${total!.unbalanced} ledger transfers do not balance`);
  const wallets = await db.query<{ id: string; balance: string; entries: string }>(
    `SELECT a.id, a.balance::text, coalesce((SELECT sum(e.amount) FROM ledger_entries e WHERE e.account_id = a.id), 0)::text AS entries
       FROM ledger_accounts a WHERE a.kind = 'wallet' AND a.organization_id = $orgId`,
    { type: QueryTypes.SELECT, bind: { orgId } },
  );
  for (const wallet of wallets) if (wallet.balance !== wallet.entries) problems.push(`wallet ${wallet.id} balance ${wallet.balance} ≠ its entries ${wallet.entries}`);
}

/** The failure report: seed, run, how to replay it, the steps and what each did, the problems. */
export function formatReport(seed: number, report: RunReport, variant: string): string {
  return [
    `model run ${report.index} (${variant}) under FAULTS_SEED=${seed}: ${report.problems.length} invariant(s) broken`,
    ...report.problems.map((p) => `  ✗ ${p}`),
    `replay: FAULTS_SEED=${seed} FAULTS_MODEL_ONLY=${report.index} npm run test:faults -- --grep model`,
    'steps:',
    ...report.log.map((l) => `  ${l}`),
  ].join('\n');
}
