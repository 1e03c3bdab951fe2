// First: on a Node that is not the pinned one, say so before anything else loads.
import '../node-version.mjs';
import { parseArgs } from 'node:util';
import { createLogger } from '../logger.ts';
import { createSequelize } from '../db/database.ts';
import { migrate } from '../db/migrator.ts';
import { issueApiToken } from '../db/api-tokens.ts';
import { EX_CONFIG, EX_UNAVAILABLE, EX_USAGE, failer, readConfig, shown } from './cli-support.ts';

// `npm run token -- --subject ops --name ci [--admin] [--days 90]`: an API token for a machine,
// or the first token of a deployment (before anyone can call POST /me/tokens).

const USAGE = `usage: npm run token -- --subject SUBJECT --name NAME [--admin] [--days DAYS]

  --subject  who the token acts as (an OIDC subject, or a name for a machine)
  --name     unique among that subject's live tokens, e.g. ci-deploy
  --admin    a platform admin's token
  --days     days until it expires (1-365, default 90)

It connects to the service's database (DATABASE_URL, as the service has it), applies pending
migrations, and prints the token once on stdout; only its SHA-256 is stored.
`;

const fail: (code: number, message: string, withUsage?: boolean) => never = failer('token', USAGE);

function readOptions() {
  try {
    return parseArgs({
      options: { subject: { type: 'string' }, name: { type: 'string' }, admin: { type: 'boolean' }, days: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    return fail(EX_USAGE, (error as Error).message, true);
  }
}

const options = readOptions();
if (options.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
if (!options.subject || !/^[^\s/]{1,200}$/.test(options.subject)) fail(EX_USAGE, '--subject is required: no spaces or slashes, at most 200 characters', true);
if (!options.name || !/^[a-z0-9][a-z0-9._-]{0,62}$/.test(options.name)) fail(EX_USAGE, '--name is required: lower-case letters, digits, . _ -, at most 63', true);
const days = options.days === undefined ? 90 : Number(options.days);
if (!Number.isInteger(days) || days < 1 || days > 365) fail(EX_USAGE, '--days must be an integer from 1 to 365', true);
const config = readConfig(fail);
if (!config.databaseUrl) fail(EX_CONFIG, 'DATABASE_URL is not set: the token is written to the database of the service that checks it.');

const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, process.stderr);
const sequelize = createSequelize({ url: config.databaseUrl, poolMax: 1, logger });
try {
  try {
    await sequelize.authenticate();
  } catch (error) {
    fail(EX_UNAVAILABLE, `cannot reach the database at ${shown(config.databaseUrl)}: ${(error as Error).message}`);
  }
  await migrate(config.databaseUrl, sequelize, logger);
  await sequelize.query('INSERT INTO users (subject) VALUES (:subject) ON CONFLICT DO NOTHING', { replacements: { subject: options.subject } });
  const issued = await issueApiToken(sequelize, { name: options.name, subject: options.subject, platformAdmin: options.admin === true }, days);
  if (!issued) fail(EX_USAGE, `${options.subject} has a live token named ${options.name}: revoke it (DELETE /me/tokens/:id) or choose another name`);
  process.stderr.write(`token: ${issued.platformAdmin ? 'platform admin ' : ''}token ${issued.name} for ${options.subject}, id ${issued.id}, expires ${issued.expiresAt.toISOString()}\n`);
  process.stdout.write(`${issued.token}\n`);
} finally {
  await sequelize.close();
}
