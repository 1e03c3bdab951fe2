import fs from 'node:fs/promises';
import path from 'node:path';
import { freePort } from '../support/free-port.ts';
import { spawnService, type SpawnedService } from '../support/spawned-service.ts';
import { prepareInstanceCaller } from '../support/instance-caller.ts';
import type { Caller } from '../support/scratch-service.ts';
import type { Benchmark, BenchContext, Measurement } from './measurement.ts';

const TITLE = 'End-to-end latency (embedded default)';
const POLL_MS = 25;

interface InstanceView {
  state: string;
  changes: { id: string; kind: string; pullRequestNumber: number | null }[];
}

/**
 * What a newcomer sees after `npm start` with nothing configured (embedded PostgreSQL, local
 * repository, the development sync simulator playing Argo CD): request → pull request open,
 * and merge → ready, each the median over a few instances, observed by polling the API.
 */
export const endToEndLatency: Benchmark = {
  id: 'end-to-end',
  title: TITLE,
  async run(context: BenchContext): Promise<Measurement[]> {
    const samples = context.quick ? 3 : 7;
    const dataDir = path.join(context.workDir, 'end-to-end');
    await fs.mkdir(dataDir, { recursive: true });
    await fs.chmod(dataDir, 0o755);
    let service: SpawnedService | undefined;
    try {
      service = await spawnService({ env: { DATA_DIR: dataDir, EMBEDDED_POSTGRES_PORT: String(await freePort()) }, startTimeoutMs: 120_000 });
      await new Promise((resolve) => setTimeout(resolve, 200)); // the banner follows the listening log line
      const token = /(cpt_[A-Za-z0-9_-]{43})/.exec(service.output())?.[1];
      if (!token) throw new Error(`no development token in the output:\n${service.output()}`);
      const developer: Caller = { token, subject: 'development', headers: { authorization: `Bearer ${token}` } };
      const prepared = await prepareInstanceCaller(service.url, developer, developer, 10_000_000);
      const toPr: number[] = [];
      const toReady: number[] = [];
      for (let i = 0; i < samples; i++) {
        const started = performance.now();
        const response = await fetch(`${service.url}/instances`, {
          method: 'POST',
          headers: { ...developer.headers, 'content-type': 'application/json' },
          body: JSON.stringify({ org: prepared.org, offering: prepared.offering, name: `e2e-${i}` }),
        });
        if (response.status !== 202) throw new Error(`POST /instances answered ${response.status}: ${await response.text()}`);
        const { id } = (await response.json()) as { id: string };
        const open = await waitForInstance(service.url, developer, id, (v) => v.state === 'pending_review' && v.changes.some((c) => c.pullRequestNumber !== null), 120_000);
        toPr.push(performance.now() - started);
        const change = open.changes.find((c) => c.kind === 'instance.create')!;
        const merging = performance.now();
        const merged = await fetch(`${service.url}/changes/${change.id}/merge`, { method: 'POST', headers: developer.headers });
        if (!merged.ok) throw new Error(`merge answered ${merged.status}: ${await merged.text()}`);
        await waitForInstance(service.url, developer, id, (v) => v.state === 'ready', 120_000);
        toReady.push(performance.now() - merging);
      }
      const note = `median of ${samples}, polled every ${POLL_MS} ms`;
      return [
        { benchmark: TITLE, case: 'POST /instances → pull request open', value: median(toPr), unit: 'ms', note: `${note}; a lone change, so no batching window (GITOPS_BATCH_WINDOW_MS applies when others are queued)` },
        { benchmark: TITLE, case: 'merge → ready (sync simulator)', value: median(toReady), unit: 'ms', note },
      ];
    } finally {
      await service?.stop();
    }
  },
};

async function waitForInstance(url: string, caller: Caller, id: string, done: (view: InstanceView) => boolean, timeoutMs: number): Promise<InstanceView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await fetch(`${url}/instances/${id}`, { headers: caller.headers });
    const view = (await response.json()) as InstanceView;
    if (done(view)) return view;
    if (Date.now() > deadline) throw new Error(`instance ${id} still ${view.state} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}
