// A service stand-in for embedded-postgres-kill.spec.ts: starts the embedded PostgreSQL under
// argv[2] on port argv[3] as the service does, prints {"postmaster": <pid>} once it answers,
// and stops it on SIGTERM. Killed with SIGKILL, it leaves its PostgreSQL orphaned, as
// `kill -9` of `npm start` does.
import fs from 'node:fs/promises';
import path from 'node:path';
import { startEmbeddedPostgres } from '../../src/db/embedded-postgres.ts';
import { createLogger } from '../../src/logger.ts';

const [dataDir, port] = [process.argv[2]!, Number(process.argv[3])];
const database = await startEmbeddedPostgres({ dataDir, port, logger: createLogger('silent') });
const pid = Number((await fs.readFile(path.join(dataDir, 'postgres', 'postmaster.pid'), 'utf8')).split('\n')[0]);
process.stdout.write(`${JSON.stringify({ postmaster: pid })}\n`);
process.once('SIGTERM', () => {
  void database.stop().then(() => process.exit(0));
});
setInterval(() => undefined, 60_000);
