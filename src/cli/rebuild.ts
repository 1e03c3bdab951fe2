import { EX_CONFIG, EX_UNAVAILABLE, EX_USAGE, failer, readCliOptions, readConfig, shown } from './cli-support.ts';
import { createLogger } from '../logger.ts';
import { createSequelize } from '../db/database.ts';
import { migrate } from '../db/migrator.ts';
import { LocalRepository } from '../gitops/local/local-repository.ts';
import { rebuildFromGit, type RebuildFinding, type RebuildReport } from '../domain/rebuild/rebuild.ts';

// `npm run rebuild -- [--repository PATH] [--apply] [--json]`: the service's view of tenants
// from the GitOps repository alone, compared with the database (README "Recovery").

const USAGE = `usage: npm run rebuild -- [--repository PATH] [--apply] [--json]

  --repository  a bare or mirror clone of gsv-gitops (default: GITOPS_LOCAL_PATH, the local
                driver's repository). For GitHub: git clone --mirror https://github.com/OWNER/gsv-gitops.git
  --apply       restore what the database lacks (instances, their change history, tenant
                paths), then read main back in full; without it, only report (dry run)
  --json        the report as JSON on stdout

It connects to DATABASE_URL (the service's environment), applies pending migrations, reads the
repository's base branch (GITOPS_BASE_BRANCH) and its history, and reports every difference.
Exit 0: the database agrees with Git (after --apply: nothing left to repair); 2: differences
remain; 64 bad options; 69 database unreachable; 78 bad configuration.
`;

const fail: (code: number, message: string, withUsage?: boolean) => never = failer('rebuild', USAGE);

const options = readCliOptions({ repository: { type: 'string' }, apply: { type: 'boolean' }, json: { type: 'boolean' } }, USAGE, fail);
const config = readConfig(fail);
if (!config.databaseUrl) fail(EX_CONFIG, 'DATABASE_URL is not set: rebuild compares the repository with the database of the service (stop the embedded default and point DATABASE_URL at its PostgreSQL, or restore into one).');
const repository = new LocalRepository({ gitDir: options.repository ?? config.gitops.localPath, baseBranch: config.gitops.baseBranch });
try {
  await repository.ping();
} catch {
  fail(EX_USAGE, `${options.repository ?? config.gitops.localPath} is not a repository with a branch ${config.gitops.baseBranch}`);
}

const logger = createLogger(process.env.LOG_LEVEL ?? 'warn');
const sequelize = createSequelize({ url: config.databaseUrl, poolMax: 2, logger });
try {
  await sequelize.authenticate();
} catch {
  fail(EX_UNAVAILABLE, `cannot reach the database at ${shown(config.databaseUrl)}`);
}
try {
  await migrate(config.databaseUrl, sequelize, logger);
  const deps = { sequelize, repository, mergePolicy: config.gitops.mergePolicy };
  const first = await rebuildFromGit(deps, { apply: options.apply === true });
  // After an apply, the report that matters is what is left: a second, read-only comparison.
  const report = options.apply ? { ...(await rebuildFromGit(deps, { apply: false })), applied: first.applied } : first;
  process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : describe(report, options.apply === true));
  process.exitCode = report.findings.length === 0 ? 0 : 2;
} finally {
  await sequelize.close();
}

function describe(report: RebuildReport, applied: boolean): string {
  const lines = [
    `main at ${report.head}: ${report.counts.orgs} workspaces, ${report.counts.instances} instances (${report.counts.present} present), ${report.counts.changes} changes`,
    ...(report.applied ? [`applied: ${report.applied.instances} instances, ${report.applied.changes} changes, ${report.applied.projects} projects, ${report.applied.organizationsRelaid} tenant paths`] : []),
    report.findings.length === 0 ? 'the database agrees with Git' : `${report.findings.length} difference${report.findings.length === 1 ? '' : 's'}${applied ? ' left' : ' (dry run; --apply restores what can be)'}:`,
    ...report.findings.map((f) => `  - ${line(f)}`),
  ];
  return `${lines.join('\n')}\n`;
}

function line(f: RebuildFinding): string {
  switch (f.kind) {
    case 'org-missing':
      return `workspace ${f.org}: on main, not in the database. ${f.detail}`;
    case 'org-layout':
      return `workspace ${f.org}: the database says ${f.database}, main holds it ${f.git}`;
    case 'instance-missing':
      return `instance ${f.org}/${f.name} (${f.instanceId}, ${f.present ? 'present' : 'deleted'}): not in the database${f.repairable ? '' : `, and cannot be restored: ${f.detail}`}`;
    case 'instance-differs':
      return `instance ${f.org}/${f.name} (${f.instanceId}): ${Object.entries(f.fields).map(([k, v]) => `${k} ${JSON.stringify(v.database)} in the database, ${JSON.stringify(v.git)} on main`).join('; ')}`;
    case 'instance-not-in-git':
      return `instance ${f.org}/${f.name} (${f.instanceId}): ${f.detail}`;
    case 'change-missing':
      return `change ${f.changeId} (${f.changeKind}, ${f.org}, commit ${f.commitSha.slice(0, 12)}): on main, not in the database`;
    case 'change-not-merged':
      return `change ${f.changeId}: main holds it, the database says ${f.status}`;
    case 'ledger-orphan':
      return f.inGit
        ? `the ledger (${f.table}, ${f.rows} rows) names instance ${f.instanceId}, which the database lacks and Git holds: --apply restores it`
        : `the ledger (${f.table}, ${f.rows} rows) names instance ${f.instanceId}, which neither the database nor main holds (a request that never reached main, or a row from another database): restore the instances table from the backup the ledger came from`;
    case 'unresolved':
      return `instance ${f.instanceId}: ${f.detail}`;
  }
}
