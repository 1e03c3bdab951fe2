import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { startService, type RunningService } from '../../src/service.ts';
import { createScratchDatabase } from './database.ts';

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
