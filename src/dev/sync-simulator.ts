import { QueryTypes, type Sequelize } from 'sequelize';
import type { Logger } from '../logger.ts';
import { git } from '../gitops/local/git.ts';
import type { LocalRepository } from '../gitops/local/local-repository.ts';
import { parseManifest } from '../gitops/render/manifest-serialization.ts';
import { validateManifest } from '../gitops/render/manifest-validation.ts';
import { INSTANCE_ID_LABEL, MANAGED_BY_LABELS } from '../gitops/labels.ts';
import { instanceApplicationName, instanceDir } from '../gitops/tenant-paths.ts';
import type { BackgroundTask } from '../jobs/background-task.ts';
import { createPeriodicTask } from '../jobs/periodic-task.ts';
import type { ArgocdNotification } from '../webhooks/argocd-notification.ts';

/**
 * DEVELOPMENT ONLY. Plays Argo CD for the embedded default, where there is no cluster: after an
 * instance's change merges, it reads the instance's directory at the head of the base branch,
 * validates every rendered manifest, and posts the notifications Argo CD would send to this
 * service's own webhook (sync succeeded, then Healthy assessed a second later; or a failed
 * sync naming the invalid file; or the Application's deletion). The service cannot tell these
 * from real notifications, so the webhook path is exercised end to end.
 */
export interface SyncSimulatorOptions {
  sequelize: Sequelize;
  repository: LocalRepository;
  /** The service's base URL (known once it listens). */
  serviceUrl: () => string;
  argocdToken: string;
  logger: Logger;
  intervalMs?: number;
}

interface Candidate {
  id: string;
  name: string;
  state: 'syncing' | 'deleting';
  org: string;
  merge_commit_sha: string;
}

export function createSyncSimulator(options: SyncSimulatorOptions): BackgroundTask & { runOnce(): Promise<number> } {
  // What was already reported, so each merge is played once per process; the webhook dedupes too.
  const reported = new Set<string>();

  async function runOnce(): Promise<number> {
    const candidates = await options.sequelize.query<Candidate>(
      `SELECT i.id, i.name, i.state, o.slug AS org, c.merge_commit_sha
         FROM instances i
         JOIN organizations o ON o.id = i.organization_id
         JOIN change_requests c ON c.id = i.last_change_id
        WHERE c.status = 'merged' AND c.merge_commit_sha IS NOT NULL AND i.state IN ('syncing', 'deleting')
        ORDER BY i.updated_at LIMIT 50`,
      { type: QueryTypes.SELECT },
    );
    let posted = 0;
    for (const candidate of candidates) {
      const key = `${candidate.id}:${candidate.merge_commit_sha}:${candidate.state}`;
      if (reported.has(key)) continue;
      const head = await options.repository.getBranch(options.repository.baseBranch);
      if (!head) continue;
      for (const notification of await simulate(candidate, head)) await post(notification);
      reported.add(key);
      posted += 1;
    }
    return posted;
  }

  async function simulate(candidate: Candidate, head: string): Promise<ArgocdNotification[]> {
    const dir = instanceDir(candidate.org, candidate.name);
    const files = (await readGit(['ls-tree', '-r', '--name-only', head, '--', `${dir}/`])).split('\n').filter(Boolean);
    const base = { namespace: 'argocd', labels: { ...MANAGED_BY_LABELS, [INSTANCE_ID_LABEL]: candidate.id } };
    const finished = new Date(Math.floor(Date.now() / 1000) * 1000);
    const at = (offsetSeconds: number) => new Date(finished.getTime() + offsetSeconds * 1000).toISOString().replace('.000Z', 'Z');

    if (candidate.state === 'deleting') {
      if (files.length > 0) return [];
      return [
        {
          trigger: 'simulator.deleted',
          app: { ...base, name: instanceApplicationName(candidate.org, candidate.name), deletionTimestamp: at(0) },
          sync: { status: 'Synced', revision: head },
          operation: null,
          health: { status: 'Missing', message: null, observedAt: at(0) },
        },
      ];
    }

    let name = instanceApplicationName(candidate.org, candidate.name);
    let invalid: string | undefined;
    if (files.length === 0) invalid = `${dir}/ does not exist at ${head}`;
    for (const file of files) {
      if (file.endsWith('/kustomization.yaml')) continue;
      try {
        const object = parseManifest(await readGit(['cat-file', 'blob', `${head}:${file}`]));
        validateManifest(object, file);
        const manifest = object as { kind?: string; metadata?: { name?: string } };
        if (manifest.kind === 'Application' && manifest.metadata?.name) name = manifest.metadata.name;
      } catch (error) {
        invalid = error instanceof Error ? error.message : String(error);
        break;
      }
    }
    const operation = (phase: 'Succeeded' | 'Failed', message: string) => ({ phase, startedAt: at(-2), finishedAt: at(0), syncResultRevision: head, message });
    if (invalid) {
      return [{ trigger: 'simulator.sync-failed', app: { ...base, name }, sync: { status: 'OutOfSync', revision: head }, operation: operation('Failed', invalid), health: { status: 'Missing', message: null, observedAt: at(1) } }];
    }
    return [
      { trigger: 'simulator.sync-succeeded', app: { ...base, name }, sync: { status: 'Synced', revision: head }, operation: operation('Succeeded', 'successfully synced (all tasks run)'), health: { status: 'Progressing', message: null, observedAt: at(0) } },
      { trigger: 'simulator.deployed', app: { ...base, name }, sync: { status: 'Synced', revision: head }, operation: operation('Succeeded', 'successfully synced (all tasks run)'), health: { status: 'Healthy', message: null, observedAt: at(1) } },
    ];
  }

  async function post(notification: ArgocdNotification): Promise<void> {
    const response = await fetch(`${options.serviceUrl()}/webhooks/argocd`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${options.argocdToken}` },
      body: JSON.stringify(notification),
    });
    if (!response.ok) throw new Error(`the Argo CD webhook answered ${response.status}: ${await response.text()}`);
    options.logger.info({ application: notification.app.name, trigger: notification.trigger, status: response.status }, 'sync simulator posted a notification');
  }

  function readGit(args: string[]): Promise<string> {
    return git(args, { gitDir: options.repository.gitDir });
  }

  const task = createPeriodicTask({
    name: 'sync-simulator',
    intervalMs: options.intervalMs ?? 1000,
    logger: options.logger,
    run: async () => {
      await runOnce();
    },
  });
  return { ...task, runOnce };
}
