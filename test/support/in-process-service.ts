import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { startService, type RunningService } from '../../src/service.ts';
import { createScratchDatabase } from './database.ts';
import { prepareInstanceCaller } from './instance-caller.ts';
import { createCaller, type Caller } from './scratch-service.ts';

export interface InProcessService {
  service: RunningService;
  url: string;
  databaseUrl: string;
  gitDir: string;
  close(): Promise<void>;
}

/**
 * The whole service (every route, worker and webhook receiver, as `startService` wires them)
 * in this process, on a scratch database of the test server and a fresh local repository.
 */
export async function startInProcessService(label: string, env: Record<string, string> = {}): Promise<InProcessService> {
  const database = await createScratchDatabase(label);
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), `cp-${label}-`));
  const config = loadConfig({ DATABASE_URL: database.url, DATA_DIR: dataDir, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'silent', ...env });
  const service = await startService(config, createLogger(process.env.TEST_LOG_LEVEL ?? 'silent'));
  return {
    service,
    url: service.url,
    databaseUrl: database.url,
    gitDir: config.gitops.localPath,
    close: async () => {
      await service.stop();
      await database.drop();
      await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * The whole service in this process, without a cluster or GitHub (Argo CD only through its
 * webhook, the reconciler as slow as `env` says), and a workspace of its own: an owner, credit
 * on its wallets (added by a platform admin), and the workspace's slug.
 */
export async function startServiceWithWorkspace(label: string, env: Record<string, string>): Promise<{ app: InProcessService; caller: Caller; org: string }> {
  const app = await startInProcessService(label, { SYNC_SIMULATOR: 'false', GITOPS_BATCH_WINDOW_MS: '0', RECONCILE_INTERVAL_MS: '3600000', ...env });
  const caller = await createCaller(app.databaseUrl, `${label}-owner`);
  const admin = await createCaller(app.databaseUrl, `${label}-admin`, true);
  const { org } = await prepareInstanceCaller(app.url, caller, admin, 1_000_000);
  return { app, caller, org };
}
