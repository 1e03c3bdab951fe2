import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createLogger } from '../../src/logger.ts';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/db/embedded-postgres.ts';
import { freePort } from '../support/free-port.ts';
import { describeMachine, machineLine } from './machine.ts';
import { renderTable } from './results-table.ts';
import { updateReadmePerformance } from './readme-performance.ts';
import type { Benchmark, BenchContext, Measurement } from './measurement.ts';
import { githubApiCost } from './github-api-cost.ts';
import { commitCost } from './commit-cost.ts';
import { apiThroughput } from './api-throughput.ts';
import { webhookIngest } from './webhook-ingest.ts';
import { endToEndLatency } from './end-to-end-latency.ts';
import { sustainedLoad } from './sustained-load.ts';

const BENCHMARKS: Benchmark[] = [githubApiCost, sustainedLoad, commitCost, apiThroughput, webhookIngest, endToEndLatency];
const ROOT = path.resolve(import.meta.dirname, '../..');

const USAGE = `npm run bench -- [--quick] [--only id,id] [--json file] [--update-readme]

  --quick          smaller counts and shorter load runs (a smoke run, not for the README)
  --only           run only these benchmarks: ${BENCHMARKS.map((b) => b.id).join(', ')}
  --json           where to write the results (default test/bench/last-run.json)
  --update-readme  rewrite the README's Performance table with this run's numbers

Uses the PostgreSQL server of DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres)
to create scratch databases, dropped at the end; starts an embedded one when that does not answer.`;

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    json: { type: 'string', default: path.join(ROOT, 'test/bench/last-run.json') },
    'update-readme': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const selected = values.only ? values.only.split(',').map((s) => s.trim()) : BENCHMARKS.map((b) => b.id);
const unknown = selected.filter((id) => !BENCHMARKS.some((b) => b.id === id));
if (unknown.length) {
  process.stderr.write(`unknown benchmark(s): ${unknown.join(', ')}\n\n${USAGE}\n`);
  process.exit(2);
}

const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);
const workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'control-plane-bench-'));
await fs.chmod(workDir, 0o755);
let embedded: EmbeddedDatabase | undefined;
const started = new Date();
const rows: Measurement[] = [];
try {
  const adminDatabaseUrl = await adminDatabase();
  const context: BenchContext = { adminDatabaseUrl, quick: values.quick, workDir, log };
  for (const benchmark of BENCHMARKS.filter((b) => selected.includes(b.id))) {
    log(`${benchmark.title}…`);
    const t0 = performance.now();
    try {
      rows.push(...(await benchmark.run(context)));
    } catch (error) {
      // A benchmark that breaks says so in the table instead of hiding the row.
      log(`${benchmark.title} failed: ${(error as Error).stack ?? String(error)}`);
      rows.push({ benchmark: benchmark.title, case: '(all)', notMeasured: `run failed: ${firstLine(error)}` });
    }
    log(`${benchmark.title} took ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
} finally {
  if (embedded) await embedded.stop();
  await fs.rm(workDir, { recursive: true, force: true });
}

const machine = describeMachine();
const table = renderTable(rows);
process.stdout.write(`\n${table}\n\nMachine: ${machineLine(machine)}. Run ${started.toISOString()}${values.quick ? ' (--quick)' : ''}.\n`);
await fs.writeFile(values.json, `${JSON.stringify({ startedAt: started.toISOString(), quick: values.quick, machine, rows }, null, 2)}\n`);
log(`results written to ${path.relative(process.cwd(), values.json)}`);
if (values['update-readme']) {
  await updateReadmePerformance(path.join(ROOT, 'README.md'), { table, machine, startedAt: started, quick: values.quick });
  log('README Performance section updated');
}

async function adminDatabase(): Promise<string> {
  const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.end();
    return url;
  } catch (error) {
    log(`${url} does not answer (${firstLine(error)}); starting an embedded PostgreSQL`);
    embedded = await startEmbeddedPostgres({ dataDir: path.join(workDir, 'postgres'), port: await freePort(), logger: createLogger('silent') });
    return embedded.url;
  }
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!.slice(0, 160);
}
