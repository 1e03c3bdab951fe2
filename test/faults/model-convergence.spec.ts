import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Sequelize } from 'sequelize';
import { createSequelize } from '../../src/db/database.ts';
import { LocalPullRequests } from '../../src/gitops/local/local-pull-requests.ts';
import { LocalRepository } from '../../src/gitops/local/local-repository.ts';
import { createLogger } from '../../src/logger.ts';
import { createScratchDatabase, useSpecDatabase } from '../support/database.ts';
import { startInProcessService, type InProcessService } from '../support/in-process-service.ts';
import { createCaller, newServiceSetup, startReplica, type ServiceSetup } from '../support/scratch-service.ts';
import type { SpawnedService } from '../support/spawned-service.ts';
import { describeAction, generateSequence } from './model-actions.ts';
import { formatReport, runModelSequence, type ModelWorld, type RunReport } from './model-convergence.ts';

const SEED = Number(process.env.FAULTS_SEED ?? 20261128);
const RUNS = Number(process.env.FAULTS_MODEL_RUNS ?? 20);
const KILL_RUNS = Number(process.env.FAULTS_MODEL_KILL_RUNS ?? Math.max(2, Math.ceil(RUNS / 10)));
// Runs at once against the one service (each in its own workspace); kills always run alone.
const CONCURRENCY = Math.max(1, Number(process.env.FAULTS_MODEL_CONCURRENCY ?? 1));
const ONLY = process.env.FAULTS_MODEL_ONLY === undefined ? undefined : Number(process.env.FAULTS_MODEL_ONLY);
// A fresh service (database and repository) every this many in-process runs: a sequence's cost
// grows with what earlier runs left behind (about 2 s at first, 3.5 s after 300 runs), and a
// long run should measure the model, not a database no tenant would ever reach.
const WORLD_RUNS = Math.max(1, Number(process.env.FAULTS_MODEL_WORLD_RUNS ?? 200));
const GITHUB_SECRET = 'model-convergence-webhook-secret';
const ARGOCD_TOKEN = 'model-convergence-argocd-token';
const SERVICE_ENV = {
  GITHUB_WEBHOOK_SECRET: GITHUB_SECRET,
  ARGOCD_WEBHOOK_TOKEN: ARGOCD_TOKEN,
  SYNC_SIMULATOR: 'false',
  // Reconciler passes are steps of the model, not the clock's.
  RECONCILE_INTERVAL_MS: '3600000',
  GITOPS_BATCH_WINDOW_MS: '0',
  // One change per pull request: a person's merge then concerns one run's workspace only.
  GITOPS_BATCH_MAX: '1',
  GITOPS_MERGE_POLICY: 'pull-request',
};

/**
 * Sequelize replaces a query error's stack with the caller's, whose first line is a bare
 * "Error": the message and PostgreSQL's detail must be printed apart or they are lost.
 */
function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const parent = (error as Error & { parent?: { detail?: string; constraint?: string } }).parent;
  const detail = [parent?.constraint && `constraint ${parent.constraint}`, parent?.detail].filter(Boolean).join('; ');
  return `${error.name}: ${error.message}${detail ? ` (${detail})` : ''}\n${error.stack ?? ''}`;
}

function indices(count: number, offset: number): number[] {
  return ONLY !== undefined ? [ONLY] : Array.from({ length: count }, (_, i) => offset + i);
}

async function runAll(world: ModelWorld, runs: number[], options: { kills: boolean }, variant: string): Promise<RunReport[]> {
  const failures: RunReport[] = [];
  const started = Date.now();
  const queue = [...runs];
  let done = 0;
  const lane = async () => {
    for (let index = queue.shift(); index !== undefined; index = queue.shift()) await one(index);
  };
  const one = async (index: number) => {
    // An exception (a refused connection, a 5xx) fails this run, not the whole batch.
    const report = await runModelSequence(world, SEED, index, { ...options, concurrent: CONCURRENCY > 1 && !options.kills }).catch(
      (error: unknown): RunReport => ({ index, actions: [], log: generateSequence(SEED, index, options).map((a, i) => `${i} ${describeAction(a)} (planned)`), problems: [`the run threw: ${describeError(error)}`] }),
    );
    done += 1;
    if (done % 100 === 0) console.log(`      model (${variant}): ${done}/${runs.length} after ${((Date.now() - started) / 1000).toFixed(0)} s, ${failures.length} failing`);
    if (process.env.FAULTS_MODEL_VERBOSE) console.log(formatReport(SEED, report, variant));
    if (report.problems.length > 0) {
      failures.push(report);
      console.log(formatReport(SEED, report, variant));
    }
  };
  await Promise.all(Array.from({ length: options.kills ? 1 : CONCURRENCY }, lane));
  const seconds = (Date.now() - started) / 1000;
  console.log(`      model (${variant}): ${runs.length} sequences, seed ${SEED}, ${seconds.toFixed(1)} s, ${failures.length} failing`);
  return failures;
}

function assertNoFailures(failures: RunReport[]): void {
  assert.deepEqual(
    failures.map((f) => f.index),
    [],
    `model runs broke invariants under FAULTS_SEED=${SEED} (reports above): ${failures.map((f) => `#${f.index}: ${f.problems[0]}`).join('; ')}`,
  );
}

/**
 * Issue 11 §5, checked by a seeded model run: random interleavings of requests, a person's
 * merges/closes/reopens, lost/duplicated/reordered GitHub and Argo CD deliveries, reconciler
 * passes and engineers' direct commits, against the whole service on PostgreSQL and a real bare
 * repository; after quiescence, the invariants of model-convergence.ts. One service serves many
 * runs, each in a workspace of its own.
 */
describe('model: the database converges to main whatever happens, in any order', function () {
  useSpecDatabase();
  this.timeout(0);

  /** One service with its own database and repository, and the person and database handles on it. */
  async function newWorld(): Promise<{ world: ModelWorld; close(): Promise<void> }> {
    const app: InProcessService = await startInProcessService('model', SERVICE_ENV);
    const db: Sequelize = createSequelize({ url: app.databaseUrl, poolMax: 4, logger: createLogger('silent') });
    const admin = await createCaller(app.databaseUrl, 'model-admin', true);
    const world: ModelWorld = {
      service: { url: () => app.url, gitDir: app.gitDir },
      db,
      person: new LocalRepository({ gitDir: app.gitDir, baseBranch: 'main', pullRequests: new LocalPullRequests({ sequelize: db, repository: app.gitDir }) }),
      githubSecret: GITHUB_SECRET,
      argocdToken: ARGOCD_TOKEN,
      adminHeaders: admin.headers,
    };
    return {
      world,
      close: async () => {
        await db.close();
        await app.close();
      },
    };
  }

  it(`holds the invariants over ${ONLY !== undefined ? `run ${ONLY}` : `${RUNS} seeded sequences`} (FAULTS_SEED=${SEED}, FAULTS_MODEL_RUNS raises it)`, async () => {
    const all = indices(RUNS, 0);
    const failures: RunReport[] = [];
    const started = Date.now();
    for (let offset = 0; offset < all.length; offset += WORLD_RUNS) {
      const { world, close } = await newWorld();
      try {
        failures.push(...(await runAll(world, all.slice(offset, offset + WORLD_RUNS), { kills: false }, 'in-process')));
      } finally {
        await close();
      }
    }
    if (all.length > WORLD_RUNS) {
      const seconds = (Date.now() - started) / 1000;
      console.log(`      model (in-process): ${all.length} sequences in all, ${Math.ceil(all.length / WORLD_RUNS)} services, ${seconds.toFixed(1)} s, ${failures.length} failing`);
    }
    assertNoFailures(failures);
  });
});

/** The same model with one more step: SIGKILL of the service (a separate process), then a restart. */
describe('model: ... and when the service is SIGKILLed at random steps', function () {
  useSpecDatabase();
  this.timeout(0);
  let dir: string;
  let database: { url: string; drop(): Promise<void> };
  let setup: ServiceSetup;
  let service: SpawnedService | undefined;
  let db: Sequelize;
  let world: ModelWorld;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cp-model-kill-'));
    database = await createScratchDatabase('model_kill');
    setup = await newServiceSetup(database.url, dir, { ...SERVICE_ENV, GITOPS_WORKER_LEASE_MS: '1000' });
    service = await startReplica(setup);
    db = createSequelize({ url: database.url, poolMax: 4, logger: createLogger('silent') });
    const admin = await createCaller(database.url, 'model-kill-admin', true);
    world = {
      service: {
        url: () => service!.url,
        gitDir: setup.gitDir,
        restart: async () => {
          await service!.kill();
          service = await startReplica(setup);
        },
      },
      db,
      person: new LocalRepository({ gitDir: setup.gitDir, baseBranch: 'main', pullRequests: new LocalPullRequests({ sequelize: db, repository: setup.gitDir }) }),
      githubSecret: GITHUB_SECRET,
      argocdToken: ARGOCD_TOKEN,
      adminHeaders: admin.headers,
    };
  });
  after(async () => {
    await service?.kill();
    await db?.close();
    await database?.drop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it(`holds the invariants over ${ONLY !== undefined ? `run ${ONLY}` : `${KILL_RUNS} seeded sequences with kills`} (FAULTS_MODEL_KILL_RUNS raises it)`, async () => {
    // Indices apart from the in-process runs', so the two variants play different sequences.
    assertNoFailures(await runAll(world, ONLY !== undefined ? [ONLY] : indices(KILL_RUNS, 1_000_000), { kills: true }, 'SIGKILL'));
  });
});
