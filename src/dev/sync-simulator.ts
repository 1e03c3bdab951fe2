import { QueryTypes, type Sequelize } from 'sequelize';
import type { Logger } from '../logger.ts';
import { git } from '../gitops/local/git.ts';
import type { LocalRepository } from '../gitops/local/local-repository.ts';
import { parseManifest } from '../gitops/render/manifest-serialization.ts';
import { validateManifest } from '../gitops/render/manifest-validation.ts';
import { INSTANCE_SPEC_ANNOTATION } from '../gitops/instance-spec.ts';
import { APPLICATION_TIER_LABEL, INSTANCE_ID_LABEL, INSTANCE_NAME_LABEL, MANAGED_BY_LABELS, ORG_LABEL, PARENT_TIER } from '../gitops/labels.ts';
import { instanceApplicationName, instanceDir, parentApplicationName, tenantBaseDir, type TenantLayout } from '../gitops/tenant-paths.ts';
import type { BackgroundTask } from '../jobs/background-task.ts';
import { createPeriodicTask } from '../jobs/periodic-task.ts';
import type { ArgocdNotification } from '../webhooks/argocd-notification.ts';

/**
 * DEVELOPMENT ONLY. Plays Argo CD for the embedded default, where there is no cluster, as Argo CD
 * behaves for our app of apps: after an instance's change merges, and only once the tenant's base
 * is on main, it reads the instance's directory at the head of the base branch, validates every
 * rendered manifest, and posts the notifications Argo CD would send to this service's own
 * webhook: the parent apps-… Synced at the gsv-gitops head (or its sync failed, naming the
 * invalid file), then the instance Application, at its chart version and carrying the spec the
 * parent applied, Progressing and a second later Healthy; sometimes a notice twice or late; or
 * the instance Application's deletion. The service cannot tell these from real notifications and
 * applies the production readiness rule to them, so the webhook path is exercised end to end.
 */
export interface SyncSimulatorOptions {
  sequelize: Sequelize;
  repository: LocalRepository;
  /** The service's base URL (known once it listens). */
  serviceUrl: () => string;
  argocdToken: string;
  logger: Logger;
  intervalMs?: number;
  /** Draws for the duplicated and late notices (Math.random; a spec gives its own). */
  random?: () => number;
}

interface Candidate {
  id: string;
  name: string;
  state: 'syncing' | 'deleting';
  org: string;
  tenant_layout: TenantLayout;
  merge_commit_sha: string;
}

export function createSyncSimulator(options: SyncSimulatorOptions): BackgroundTask & { runOnce(): Promise<number> } {
  // What was already reported, so each merge is played once per process; the webhook dedupes too.
  const reported = new Set<string>();
  const random = options.random ?? Math.random;

  async function runOnce(): Promise<number> {
    const candidates = await options.sequelize.query<Candidate>(
      `SELECT i.id, i.name, i.state, o.slug AS org, o.tenant_layout, c.merge_commit_sha
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
      const notices = await simulate(candidate, head);
      if (!notices) continue;
      let ignored = false;
      for (const notification of notices) ignored = (await post(notification)) === 202 || ignored;
      // Ignored (202): the service had not yet read main since the merge, so it did not know main
      // holds the instance. Argo CD would notify again as it reconciles; so does this stand-in.
      if (!ignored) reported.add(key);
      posted += 1;
    }
    return posted;
  }

  /** The notices Argo CD would send now; undefined while it would not sync the instance yet. */
  async function simulate(candidate: Candidate, head: string): Promise<ArgocdNotification[] | undefined> {
    const dir = instanceDir(candidate.org, candidate.name, candidate.tenant_layout);
    const files = (await readGit(['ls-tree', '-r', '--name-only', head, '--', `${dir}/`])).split('\n').filter(Boolean);
    const child = { namespace: 'argocd', labels: { ...MANAGED_BY_LABELS, [ORG_LABEL]: candidate.org, [INSTANCE_ID_LABEL]: candidate.id } };
    // The parent as the tenant-apps ApplicationSet labels it (templates/platform/argocd-tenants/).
    const parent = {
      namespace: 'argocd',
      name: parentApplicationName(candidate.org, candidate.name),
      labels: { ...MANAGED_BY_LABELS, [ORG_LABEL]: candidate.org, [INSTANCE_NAME_LABEL]: candidate.name, [APPLICATION_TIER_LABEL]: PARENT_TIER },
    };
    const now = new Date(Math.floor(Date.now() / 1000) * 1000);
    const at = (offsetSeconds: number) => new Date(now.getTime() + offsetSeconds * 1000).toISOString().replace('.000Z', 'Z');

    if (candidate.state === 'deleting') {
      if (files.length > 0) return [];
      // The parent pruned the instance Application; its resources finalizer removes what it deployed.
      return [
        {
          trigger: 'simulator.deleted',
          app: { ...child, name: instanceApplicationName(candidate.org, candidate.name), deletionTimestamp: at(0) },
          sync: { status: 'Synced', revision: null },
          operation: null,
          health: { status: 'Missing', message: null, observedAt: at(0) },
        },
      ];
    }
    // Nothing of a tenant syncs before its base (AppProject, namespaces) is on main: the
    // instance Application's project would not exist. Not played yet; tried again next pass.
    const base = (await readGit(['ls-tree', '--name-only', head, '--', `${tenantBaseDir(candidate.org, candidate.tenant_layout)}/`])).trim();
    if (!base) return undefined;

    let name = instanceApplicationName(candidate.org, candidate.name);
    let chartVersion: string | null = null;
    let instanceSpec: string | null = null;
    let invalid: string | undefined;
    if (files.length === 0) invalid = `${dir}/ does not exist at ${head}`;
    for (const file of files) {
      if (file.endsWith('/kustomization.yaml')) continue;
      try {
        const object = parseManifest(await readGit(['cat-file', 'blob', `${head}:${file}`]));
        validateManifest(object, file);
        const manifest = object as { kind?: string; metadata?: { name?: string; annotations?: Record<string, string> }; spec?: { source?: { targetRevision?: string } } };
        if (manifest.kind === 'Application' && manifest.metadata?.name) {
          name = manifest.metadata.name;
          instanceSpec = manifest.metadata.annotations?.[INSTANCE_SPEC_ANNOTATION] ?? null;
          chartVersion = manifest.spec?.source?.targetRevision ?? null;
        }
      } catch (error) {
        invalid = error instanceof Error ? error.message : String(error);
        break;
      }
    }
    const succeeded = 'successfully synced (all tasks run)';
    // The parent applies the directory at the gsv-gitops head: an invalid manifest fails its sync.
    const parentSync = (phase: 'Succeeded' | 'Failed', message: string): ArgocdNotification => ({
      trigger: phase === 'Succeeded' ? 'simulator.parent-synced' : 'simulator.parent-sync-failed',
      app: { ...parent, instanceSpec: null },
      sync: { status: phase === 'Succeeded' ? 'Synced' : 'OutOfSync', revision: head },
      operation: { phase, startedAt: at(-4), finishedAt: at(-3), syncResultRevision: head, message },
      health: { status: 'Healthy', message: null, observedAt: at(-2) },
    });
    if (invalid) return [parentSync('Failed', invalid)];
    // The instance Application's revision is its chart version, never a gsv-gitops commit; its
    // health lags its sync (Progressing first, Healthy assessed a second later).
    const childSync = (trigger: string, health: string, observedAt: string): ArgocdNotification => ({
      trigger,
      app: { ...child, name, instanceSpec },
      sync: { status: 'Synced', revision: chartVersion },
      operation: { phase: 'Succeeded', startedAt: at(-2), finishedAt: at(0), syncResultRevision: chartVersion, message: succeeded },
      health: { status: health, message: null, observedAt },
    });
    const progressing = childSync('simulator.sync-succeeded', 'Progressing', at(0));
    const healthy = childSync('simulator.deployed', 'Healthy', at(1));
    const notices = [parentSync('Succeeded', succeeded), progressing, healthy];
    // As Argo CD's notifications do now and then: a notice sent twice, or one arriving late.
    if (random() < 0.2) notices.push(healthy);
    if (random() < 0.2) {
      notices.splice(notices.indexOf(progressing), 1);
      notices.push(progressing);
    }
    return notices;
  }

  async function post(notification: ArgocdNotification): Promise<number> {
    const response = await fetch(`${options.serviceUrl()}/webhooks/argocd`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${options.argocdToken}` },
      body: JSON.stringify(notification),
    });
    if (!response.ok) throw new Error(`the Argo CD webhook answered ${response.status}: ${await response.text()}`);
    options.logger.info({ application: notification.app.name, trigger: notification.trigger, status: response.status }, 'sync simulator posted a notification');
    return response.status;
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
