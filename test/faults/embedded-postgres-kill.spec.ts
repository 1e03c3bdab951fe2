import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../src/db/embedded-postgres.ts';
import { createLogger } from '../../src/logger.ts';
import { freePort } from '../support/free-port.ts';

const OWNER = path.join(import.meta.dirname, 'embedded-postgres-owner.ts');

/** Whether `pid` runs: a zombie (stopped, not yet reaped by whoever inherited it) does not. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return !['Z', 'X'].includes(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]!);
}

/** The embedded default's owner in a process of its own, and its postmaster's pid. */
async function startOwner(dataDir: string, port: number): Promise<{ child: ChildProcess; postmaster: number }> {
  const child = spawn(process.execPath, [OWNER, dataDir, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`the owner exited with ${code} before PostgreSQL answered`)));
  });
  return { child, postmaster: (JSON.parse(line) as { postmaster: number }).postmaster };
}

async function answers(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one;
  } finally {
    await client.end();
  }
}

/**
 * `kill -9` of the embedded default leaves its PostgreSQL running, orphaned, with the data
 * directory's pid file: the next start used to fail with "postmaster.pid already exists" until
 * someone killed it by hand (issue 14, part 4). Now the next start stops exactly that server
 * and starts its own, and touches nothing that is not an orphan of this data directory.
 */
describe('embedded PostgreSQL after kill -9 of its service', function () {
  this.timeout(180_000);
  let dir: string;
  const logger = createLogger('silent');
  const leftovers: number[] = [];

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cp-pg-kill-'));
    await fs.chmod(dir, 0o755); // as root, PostgreSQL runs as the postgres user
  });
  afterEach(async () => {
    for (const pid of leftovers.splice(0)) if (alive(pid)) process.kill(pid, 'SIGINT');
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('stops the orphaned PostgreSQL of its own data directory and starts', async () => {
    const port = await freePort();
    const first = await startOwner(dir, port);
    leftovers.push(first.postmaster);
    first.child.kill('SIGKILL');
    await new Promise((resolve) => first.child.once('exit', resolve));
    assert.ok(alive(first.postmaster), 'the orphan runs on after kill -9 (the case to recover from)');

    const database = await startEmbeddedPostgres({ dataDir: dir, port, logger });
    try {
      assert.equal(alive(first.postmaster), false, 'the orphan was stopped');
      assert.equal(await answers(database.url), 1);
    } finally {
      await database.stop();
    }
  });

  it('refuses, and leaves it alone, when the service that started it still runs', async () => {
    const port = await freePort();
    const owner = await startOwner(dir, port);
    leftovers.push(owner.postmaster);
    try {
      await assert.rejects(startEmbeddedPostgres({ dataDir: dir, port: await freePort(), logger }), /belongs to a running control-plane \(pid \d+\): one service per DATA_DIR/);
      assert.ok(alive(owner.postmaster));
    } finally {
      owner.child.kill('SIGTERM');
      assert.equal(await new Promise((resolve) => owner.child.once('exit', resolve)), 0, 'the owner stopped on SIGTERM');
    }
    assert.equal(alive(owner.postmaster), false, 'its owner stopped it');
  });

  it('never signals a process that is not its PostgreSQL: a pid file naming one is stale', async () => {
    const port = await freePort();
    await (await startEmbeddedPostgres({ dataDir: dir, port, logger })).stop();
    // A pid file left by a crash whose pid now belongs to someone else (here: a sleep).
    const stranger = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      const pidFile = path.join(dir, 'postgres', 'postmaster.pid');
      await fs.writeFile(pidFile, `${stranger.pid}\n${path.join(dir, 'postgres')}\n`);
      await fs.chown(pidFile, (await fs.stat(path.join(dir, 'postgres'))).uid, (await fs.stat(path.join(dir, 'postgres'))).gid);
      const database = await startEmbeddedPostgres({ dataDir: dir, port, logger });
      try {
        assert.equal(await answers(database.url), 1);
        assert.ok(alive(stranger.pid!), 'the stranger was not signalled');
      } finally {
        await database.stop();
      }
    } finally {
      stranger.kill();
    }
  });
});
