import { createHmac, randomUUID } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { createSequelize } from '../../src/db/database.ts';
import { LocalPullRequests } from '../../src/gitops/local/local-pull-requests.ts';
import { LocalRepository } from '../../src/gitops/local/local-repository.ts';
import { createLogger } from '../../src/logger.ts';
import { freshNotices } from '../support/argocd-notices.ts';
import { pullRequestPayload } from '../support/webhook-fixtures.ts';
import { createDatabaseOn, createCaller, newServiceSetup, startReplica } from '../support/scratch-service.ts';
import { prepareInstanceCaller } from '../support/instance-caller.ts';
import type { SpawnedService } from '../support/spawned-service.ts';
import { waitForDrainedQueue } from '../faults/exactly-once-audit.ts';
import { runLoad } from './http-load.ts';
import type { Benchmark, BenchContext, Measurement } from './measurement.ts';

const TITLE = 'Webhook ingest';
const SECRET = 'bench-github-secret';
const TOKEN = 'bench-argocd-token-0123456789';
const CONCURRENCY = 20;

/**
 * Deliveries per second through the real service process: GitHub (HMAC verified on the raw
 * body, recorded by delivery id, main read back, the instances moved to syncing) and Argo CD
 * (bearer checked, validated, deduped, instance moved to ready). Two kinds of rows: with a
 * state change for every delivery (each of N open pull requests merged once), and the
 * verify-and-record path alone under autocannon (deliveries that match no change).
 */
export const webhookIngest: Benchmark = {
  id: 'webhook-ingest',
  title: TITLE,
  async run(context: BenchContext): Promise<Measurement[]> {
    const n = context.quick ? 30 : 100;
    const seconds = context.quick ? 3 : 10;
    const database = await createDatabaseOn(context.adminDatabaseUrl, 'bench_hooks');
    let service: SpawnedService | undefined;
    const client = new pg.Client({ connectionString: database.url });
    try {
      const setup = await newServiceSetup(database.url, path.join(context.workDir, 'webhook-ingest'), {
        GITHUB_WEBHOOK_SECRET: SECRET,
        ARGOCD_WEBHOOK_TOKEN: TOKEN,
        SYNC_SIMULATOR: 'false',
        GITOPS_BATCH_MAX: '1',
        GITOPS_BATCH_WINDOW_MS: '0',
        RECONCILE_INTERVAL_MS: '3600000',
      });
      service = await startReplica(setup);
      const url = service.url;
      const admin = await createCaller(database.url, 'hooks-admin', true);
      const caller = await createCaller(database.url, 'hooks-user');
      const prepared = await prepareInstanceCaller(url, caller, admin, 10_000_000);
      await runConcurrently(n, CONCURRENCY, async (i) => {
        const response = await fetch(`${url}/instances`, {
          method: 'POST',
          headers: { ...caller.headers, 'content-type': 'application/json' },
          body: JSON.stringify({ org: prepared.org, offering: prepared.offering, name: `hook-${i}` }),
        });
        if (response.status !== 202) throw new Error(`POST /instances answered ${response.status}: ${await response.text()}`);
      });
      const pending = await waitForDrainedQueue(database.url, 300_000);
      if (pending > 0) throw new Error(`${pending} changes still pending after 300 s`);
      await client.connect();
      const { rows: prs } = await client.query<{ instance_id: string; pull_request_number: number; branch: string; commit_sha: string }>(
        `SELECT instance_id, pull_request_number, branch, commit_sha FROM change_requests
         WHERE kind = 'instance.create' AND pull_request_number IS NOT NULL`,
      );
      context.log(`${prs.length} open pull requests to merge`);

      const github = (payload: unknown, delivery: string) => {
        const body = JSON.stringify(payload);
        return {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-github-event': 'pull_request',
            'x-github-delivery': delivery,
            'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`,
          },
          body,
        };
      };
      // A reviewer merges every pull request first (as on GitHub, where the webhook follows the
      // merge): the service reads main back on each delivery, so main must hold what it says.
      const sequelize = createSequelize({ url: database.url, poolMax: 2, logger: createLogger('silent') });
      const reviewer = new LocalRepository({ gitDir: setup.gitDir, baseBranch: 'main', pullRequests: new LocalPullRequests({ sequelize, repository: setup.gitDir }) });
      const merges = new Map<number, string>();
      try {
        for (const pr of prs) merges.set(pr.pull_request_number, (await reviewer.mergePullRequest(pr.pull_request_number)).mergeCommitSha!);
      } finally {
        await sequelize.close();
      }
      const head = [...merges.values()].at(-1)!;
      const githubStarted = performance.now();
      await runConcurrently(prs.length, CONCURRENCY, async (i) => {
        const pr = prs[i]!;
        const payload = pullRequestPayload({ action: 'closed', number: pr.pull_request_number, branch: pr.branch, merged: true, mergeCommitSha: merges.get(pr.pull_request_number)! });
        const response = await fetch(`${url}/webhooks/github`, github(payload, randomUUID()));
        if (!response.ok) throw new Error(`GitHub delivery answered ${response.status}: ${await response.text()}`);
      });
      const githubSeconds = (performance.now() - githubStarted) / 1000;
      const syncing = await countState(client, 'syncing');

      // What main holds for each instance: the instance Application carries it (gsv.io/spec).
      const { rows: targets } = await client.query<{ id: string; org: string; name: string; offering: string; version: string; parameters: Record<string, unknown> }>(
        `SELECT i.id, o.slug AS org, i.name, f.slug AS offering, v.version, i.observed_parameters AS parameters
           FROM instances i JOIN organizations o ON o.id = i.organization_id
           JOIN offering_versions v ON v.id = i.observed_offering_version_id JOIN offerings f ON f.id = v.offering_id
          WHERE i.observed_state = 'present'`,
      );
      const byId = new Map(targets.map((t) => [t.id, t]));
      const argocdStarted = performance.now();
      // Two notices per instance, as Argo CD sends them: the parent's sync at the gsv-gitops head,
      // then the instance Application Healthy on main's spec.
      await runConcurrently(prs.length, CONCURRENCY, async (i) => {
        const target = byId.get(prs[i]!.instance_id);
        if (!target) throw new Error(`main does not hold instance ${prs[i]!.instance_id}`);
        const notices = freshNotices({ instanceId: target.id, orgSlug: target.org, instanceName: target.name, spec: { offering: target.offering, version: target.version, parameters: target.parameters } }, head);
        for (const notice of notices) {
          const response = await fetch(`${url}/webhooks/argocd`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: JSON.stringify(notice) });
          if (!response.ok) throw new Error(`Argo CD notice answered ${response.status}: ${await response.text()}`);
        }
      });
      const argocdSeconds = (performance.now() - argocdStarted) / 1000;
      const ready = await countState(client, 'ready');

      // The verify-and-record path alone: every delivery new, none matching a change.
      const noMatch = pullRequestPayload({ action: 'closed', number: 987_654, branch: 'no-such-branch', merged: true, mergeCommitSha: 'f'.repeat(40) });
      const signed = github(noMatch, 'x');
      let counter = 0;
      const githubLoad = await runLoadWithHeaders(`${url}/webhooks/github`, signed.body, () => ({ ...signed.headers, 'x-github-delivery': `bench-${counter++}` }), seconds);
      const argocdLoad = await runLoad({
        url: `${url}/webhooks/argocd`,
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}` },
        body: (i) => argocd(randomUUID(), 'e'.repeat(40), new Date(Date.UTC(2026, 0, 1) + i * 1000)).body,
        connections: CONCURRENCY,
        durationSeconds: seconds,
      });
      return [
        {
          benchmark: TITLE,
          case: 'GitHub pull_request merged → syncing',
          value: prs.length / githubSeconds,
          unit: 'deliveries/s',
          note: `${prs.length} deliveries, ${CONCURRENCY} at a time; ${syncing} instances now syncing`,
        },
        {
          benchmark: TITLE,
          case: 'Argo CD parent Synced + instance Healthy → ready',
          value: prs.length / argocdSeconds,
          unit: 'instances/s',
          note: `${prs.length} instances, two notices each; ${ready} instances now ready`,
        },
        {
          benchmark: TITLE,
          case: 'GitHub verify + record (no matching change)',
          value: githubLoad.okPerSecond,
          unit: 'deliveries/s',
          note: `autocannon, p99 ${githubLoad.p99Ms} ms, ${githubLoad.non2xx} non-2xx`,
        },
        {
          benchmark: TITLE,
          case: 'Argo CD validate + dedupe (unknown instance)',
          value: argocdLoad.okPerSecond,
          unit: 'notices/s',
          note: `autocannon, p99 ${argocdLoad.p99Ms} ms, ${argocdLoad.non2xx} non-2xx`,
        },
      ];
    } finally {
      await client.end().catch(() => undefined);
      await service?.stop();
      await database.drop();
    }
  },
};

function argocd(instanceId: string, revision: string, finishedAt: Date): { method: string; headers: Record<string, string>; body: string } {
  const observedAt = new Date(finishedAt.getTime() + 1000);
  return {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({
      app: { name: `bench-${instanceId.slice(0, 8)}`, namespace: 'argocd', labels: { 'gsv.io/instance-id': instanceId, 'app.kubernetes.io/managed-by': 'control-plane' } },
      sync: { status: 'Synced', revision },
      operation: { phase: 'Succeeded', startedAt: finishedAt.toISOString(), finishedAt: finishedAt.toISOString(), syncResultRevision: revision },
      health: { status: 'Healthy', observedAt: observedAt.toISOString() },
      trigger: 'on-deployed',
    }),
  };
}

async function countState(client: pg.Client, state: string): Promise<number> {
  const { rows } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM instances WHERE state = $1', [state]);
  return rows[0]!.n;
}

async function runConcurrently(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

async function runLoadWithHeaders(url: string, body: string, headers: () => Record<string, string>, seconds: number) {
  return runLoad({ url, method: 'POST', body: () => body, headersFor: headers, connections: CONCURRENCY, durationSeconds: seconds });
}
