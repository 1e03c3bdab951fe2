import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { RECONCILE_LOCK_KEY } from '../../src/jobs/reconcilers.ts';
import { METERING_LOCK_KEY } from '../../src/jobs/metering-task.ts';
import { createScratchDatabase } from '../support/database.ts';
import { createCaller, newServiceSetup, startReplica, type Caller, type ServiceSetup } from '../support/scratch-service.ts';
import { prepareInstanceCaller, type PreparedCaller } from '../support/instance-caller.ts';
import type { SpawnedService } from '../support/spawned-service.ts';
import { auditExactlyOnce, waitForDrainedQueue } from './exactly-once-audit.ts';

const REQUESTS = Number(process.env.FAULTS_REPLICA_REQUESTS ?? 60);
const run = promisify(execFile);

/**
 * Three replicas (separate processes) on one database and one repository, requests spread
 * round-robin over them: no duplicate instance, branch, commit or pull request; the
 * single-leader duties (reconcilers, metering) are held by one replica at a time, and when
 * that replica is killed another one takes them over.
 */
describe('three replicas on one database and one repository', function () {
  this.timeout(600_000);
  let dir: string;
  let database: { url: string; drop(): Promise<void> };
  let setup: ServiceSetup;
  let replicas: SpawnedService[] = [];
  let caller: Caller;
  let prepared: PreparedCaller;
  let sampler: LeaderSampler;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cp-replicas-'));
    database = await createScratchDatabase('replicas');
    setup = await newServiceSetup(database.url, dir, {
      SYNC_SIMULATOR: 'false',
      GITOPS_WORKER_LEASE_MS: '3000',
      GITOPS_BATCH_WINDOW_MS: '200',
      GITOPS_BATCH_MAX: '10',
      RECONCILE_INTERVAL_MS: '50',
      METERING_INTERVAL_MS: '50',
    });
    // The first replica migrates; the others find nothing to do (the advisory migration lock).
    replicas = await Promise.all([startReplica(setup), startReplica(setup), startReplica(setup)]);
    const admin = await createCaller(database.url, 'replicas-admin', true);
    caller = await createCaller(database.url, 'replicas-user');
    prepared = await prepareInstanceCaller(replicas[0]!.url, caller, admin, 10_000_000);
    sampler = await startLeaderSampler(database.url);
  });

  after(async () => {
    await sampler?.stop();
    await Promise.all(replicas.map((r) => r.kill()));
    await database?.drop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it(`commits ${REQUESTS} requests spread over the replicas exactly once`, async () => {
    const accepted: string[] = [];
    const failures: string[] = [];
    await Promise.all(
      Array.from({ length: REQUESTS }, async (_, i) => {
        const replica = replicas[i % replicas.length]!;
        const name = `replica-${i}`;
        const response = await fetch(`${replica.url}/instances`, {
          method: 'POST',
          headers: { ...caller.headers, 'content-type': 'application/json', 'idempotency-key': randomUUID() },
          body: JSON.stringify({ org: prepared.org, offering: prepared.offering, name }),
        });
        if (response.status === 202) accepted.push(name);
        else failures.push(`${name}: ${response.status} ${await response.text()}`);
      }),
    );
    assert.deepEqual(failures, []);
    const pending = await waitForDrainedQueue(database.url, 120_000);
    assert.equal(pending, 0, 'changes still pending after 120 s');
    const audit = await auditExactlyOnce({ databaseUrl: database.url, gitDir: setup.gitDir, accepted, uncertain: [], org: prepared.org });
    process.stdout.write(`      ${accepted.length} accepted over ${replicas.length} replicas; ${audit.commits} commits, ${audit.pullRequests} pull requests\n`);
    assert.deepEqual(audit.problems, []);
  });

  it('runs reconcilers and metering on one replica at a time, and another takes over when it is killed', async () => {
    const owners = async () => ownerPids(await sampler.holders(), replicas);
    await waitFor(async () => (await owners()).size > 0, 20_000, 'no replica was ever seen holding a leader lock');
    assert.equal(sampler.overlaps(), 0, 'two sessions held the same leader lock at once');
    const leaders = await owners();
    const leader = replicas.find((r) => leaders.has(r.pid))!;
    await leader.kill();
    replicas = replicas.filter((r) => r !== leader);
    sampler.reset();
    await waitFor(
      async () => [...(await owners())].some((pid) => replicas.some((r) => r.pid === pid)),
      20_000,
      'no surviving replica took the leader locks over',
    );
    assert.equal(sampler.overlaps(), 0, 'two sessions held the same leader lock at once');
    process.stdout.write(`      leader pid ${leader.pid} killed; now held by pid(s) ${[...(await owners())].join(', ')}\n`);
  });
});

interface LeaderSampler {
  /** Client ports of sessions seen holding a leader lock since the last reset. */
  holders(): Promise<Set<number>>;
  /** Samples in which two sessions held the same key. */
  overlaps(): number;
  reset(): void;
  stop(): Promise<void>;
}

/** Polls pg_locks for the leader keys every few milliseconds from a connection of its own. */
async function startLeaderSampler(databaseUrl: string): Promise<LeaderSampler> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  let ports = new Set<number>();
  let overlaps = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const { rows } = await client.query<{ objid: number; client_port: number }>(
        `SELECT l.objid::bigint::int AS objid, a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted AND l.objid::text::bigint = ANY($1::bigint[]) AND a.datname = current_database()`,
        [[RECONCILE_LOCK_KEY, METERING_LOCK_KEY]],
      );
      const perKey = new Map<number, number>();
      for (const row of rows) {
        ports.add(row.client_port);
        perKey.set(row.objid, (perKey.get(row.objid) ?? 0) + 1);
      }
      if ([...perKey.values()].some((n) => n > 1)) overlaps += 1;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  return {
    holders: () => Promise.resolve(new Set(ports)),
    overlaps: () => overlaps,
    reset: () => {
      ports = new Set();
    },
    stop: async () => {
      stopped = true;
      await loop.catch(() => undefined);
      await client.end();
    },
  };
}

/** Which of the replicas own the client ports (their pool connections), through `ss -tnp`. */
async function ownerPids(ports: Set<number>, replicas: SpawnedService[]): Promise<Set<number>> {
  const { stdout } = await run('ss', ['-tnpH']);
  const pids = new Set<number>();
  for (const line of stdout.split('\n')) {
    const local = /127\.0\.0\.1:(\d+)\s+127\.0\.0\.1:\d+/.exec(line);
    const pid = /pid=(\d+)/.exec(line);
    if (!local || !pid) continue;
    if (ports.has(Number(local[1])) && replicas.some((r) => r.pid === Number(pid[1]))) pids.add(Number(pid[1]));
  }
  return pids;
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, message: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(message);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
