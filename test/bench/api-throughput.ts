import path from 'node:path';
import { spawnService, type SpawnedService } from '../support/spawned-service.ts';
import { createDatabaseOn, createCaller, newServiceSetup, startReplica, type Caller } from '../support/scratch-service.ts';
import { fetchOpenApi, findOperation } from '../support/openapi-operations.ts';
import { runLoad, describeFailures, type LoadResult } from './http-load.ts';
import { notMeasured, type Benchmark, type BenchContext, type Measurement } from './measurement.ts';
import { prepareInstanceCaller, type PreparedCaller } from '../support/instance-caller.ts';

const TITLE = 'API throughput';
const CONNECTIONS = 20;
/** Tenants the creates are spread over. */
const ORGS = 20;
/**
 * Sequential PostgreSQL round trips of one POST /instances: authenticate the token, BEGIN, org
 * access + project + offering versions, the instance + change + event statement, lock the
 * wallet, place the hold, COMMIT. test/api/instance-round-trips.spec.ts holds the service to it.
 */
export const CREATE_ROUND_TRIPS = 7;

/**
 * req/s and p99 of the real service (`node src/main.ts`, separate process, the machine's
 * PostgreSQL) next to a Koa hello-world measured in the same run on the same machine.
 */
export const apiThroughput: Benchmark = {
  id: 'api-throughput',
  title: TITLE,
  async run(context: BenchContext): Promise<Measurement[]> {
    const seconds = context.quick ? 3 : 10;
    const rows: Measurement[] = [];

    // Baselines, each in its own process like the service: a Koa hello-world, and the same app
    // making as many sequential PostgreSQL round trips as one POST /instances makes.
    const hello = await spawnService({ script: 'test/bench/hello-world-server.ts', env: { DATABASE_URL: context.adminDatabaseUrl } });
    let baseline: LoadResult;
    let roundTrips: LoadResult;
    try {
      await runLoad({ url: `${hello.url}/healthz`, connections: CONNECTIONS, durationSeconds: 1 }); // warm-up
      baseline = await runLoad({ url: `${hello.url}/healthz`, connections: CONNECTIONS, durationSeconds: seconds });
      roundTrips = await runLoad({ url: `${hello.url}/round-trips/${CREATE_ROUND_TRIPS}`, connections: CONNECTIONS, durationSeconds: seconds });
    } finally {
      await hello.stop();
    }
    rows.push(throughputRow('Koa hello-world (baseline)', baseline, undefined));
    rows.push(latencyRow('Koa hello-world (baseline)', baseline, undefined));
    const tripsLabel = `Koa + ${CREATE_ROUND_TRIPS} PostgreSQL round trips (SELECT 1)`;
    const tripsBaseline = { label: `${CREATE_ROUND_TRIPS} round trips`, result: roundTrips };
    rows.push(throughputRow(tripsLabel, roundTrips, helloBaseline(baseline)));
    rows.push(latencyRow(tripsLabel, roundTrips, helloBaseline(baseline)));

    const database = await createDatabaseOn(context.adminDatabaseUrl, 'bench_api');
    let service: SpawnedService | undefined;
    try {
      const setup = await newServiceSetup(database.url, path.join(context.workDir, 'api-throughput'));
      service = await startReplica(setup);
      context.log(`service up at ${service.url}`);

      await runLoad({ url: `${service.url}/healthz`, connections: CONNECTIONS, durationSeconds: 1 });
      const health = await runLoad({ url: `${service.url}/healthz`, connections: CONNECTIONS, durationSeconds: seconds });
      rows.push(throughputRow('GET /healthz', health, helloBaseline(baseline)));
      rows.push(latencyRow('GET /healthz', health, helloBaseline(baseline)));

      const document = await fetchOpenApi(service.url);
      const post = findOperation(document, 'post', '/instances');
      const list = findOperation(document, 'get', '/instances');
      if (!post || !list) {
        const missing = [post ? undefined : 'POST /instances', list ? undefined : 'GET /instances'].filter(Boolean).join(' and ');
        rows.push(...notMeasured(TITLE, ['POST /instances req/s', 'POST /instances p99', 'GET /instances req/s', 'GET /instances p99'], `${missing} not in /openapi.json yet`));
        return rows;
      }
      // Tenants' creates are spread over their own orgs: each org's holds serialise on its
      // wallet row (a lock held to the commit), so one org alone is measured separately.
      const admin = await createCaller(database.url, 'bench-admin', true);
      const tenants: { caller: Caller; prepared: PreparedCaller }[] = [];
      for (let i = 0; i < ORGS; i += 1) {
        const caller = await createCaller(database.url, `bench-user-${i}`);
        tenants.push({ caller, prepared: await prepareInstanceCaller(service.url, caller, admin, 1_000_000_000) });
      }
      const tenantOf = (n: number) => tenants[n % tenants.length]!;
      const creates = await runLoad({
        url: `${service.url}/instances`,
        method: 'POST',
        headersFor: (n) => tenantOf(n).caller.headers,
        body: (n) => JSON.stringify({ org: tenantOf(n).prepared.org, offering: tenantOf(n).prepared.offering, name: `bench-${n.toString(36)}` }),
        connections: CONNECTIONS,
        durationSeconds: seconds,
      });
      const spread = `${ORGS} orgs`;
      rows.push(throughputRow(`POST /instances (${spread})`, creates, tripsBaseline, { target: '≥ 1,000 req/s', threshold: (v) => v >= 1000 }));
      rows.push(latencyRow(`POST /instances (${spread})`, creates, tripsBaseline, { target: 'p99 < 50 ms', threshold: (v) => v < 50 }));

      const single = tenants[0]!;
      const oneOrg = await runLoad({
        url: `${service.url}/instances`,
        method: 'POST',
        headers: single.caller.headers,
        body: (n) => JSON.stringify({ org: single.prepared.org, offering: single.prepared.offering, name: `one-${n.toString(36)}` }),
        connections: CONNECTIONS,
        durationSeconds: seconds,
      });
      rows.push(throughputRow('POST /instances (one org)', oneOrg, tripsBaseline));
      rows.push(latencyRow('POST /instances (one org)', oneOrg, tripsBaseline));

      const reads = await runLoad({ url: `${service.url}/instances?org=${single.prepared.org}`, headers: single.caller.headers, connections: CONNECTIONS, durationSeconds: seconds });
      const listed = `GET /instances (first page, org of ${Math.round(oneOrg.ok + creates.ok / ORGS)} instances)`;
      rows.push(throughputRow(listed, reads, helloBaseline(baseline)));
      rows.push(latencyRow(listed, reads, helloBaseline(baseline)));
      return rows;
    } finally {
      await service?.stop();
      await database.drop();
    }
  },
};

interface Goal {
  target: string;
  threshold(value: number): boolean;
}

interface Baseline {
  label: string;
  result: LoadResult;
}

function helloBaseline(result: LoadResult): Baseline {
  return { label: 'hello-world', result };
}

function throughputRow(label: string, result: LoadResult, baseline: Baseline | undefined, goal?: Goal): Measurement {
  const failures = describeFailures(result);
  return {
    benchmark: TITLE,
    case: `${label} req/s`,
    value: result.okPerSecond,
    unit: 'req/s',
    ...(baseline ? { baseline: { label: baseline.label, value: baseline.result.okPerSecond } } : {}),
    ...(goal ? { target: goal.target, met: goal.threshold(result.okPerSecond) } : {}),
    note: `${CONNECTIONS} connections, 2xx only${failures ? `; also ${failures}` : ''}`,
  };
}

function latencyRow(label: string, result: LoadResult, baseline: Baseline | undefined, goal?: Goal): Measurement {
  return {
    benchmark: TITLE,
    case: `${label} p99`,
    value: result.p99Ms,
    unit: 'ms',
    ...(baseline ? { baseline: { label: baseline.label, value: baseline.result.p99Ms } } : {}),
    ...(goal ? { target: goal.target, met: goal.threshold(result.p99Ms) } : {}),
    note: `p50 ${result.p50Ms} ms`,
  };
}
