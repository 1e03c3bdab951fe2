import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { QueryTypes } from 'sequelize';
import { createLogger } from '../../src/logger.ts';
import { createSequelize } from '../../src/db/database.ts';
import { createScratchDatabase } from '../support/database.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const ARGS = ['--image', 'ghcr.io/gsv/control-plane:0.1.0', '--host', 'cmp.example.org', '--notifications-url', 'http://cmp-control-plane.cmp.svc', '--secret-store', 'vault', '--sso-host', 'sso.example.org', '--without', 'cms,commerce'];
const GITHUB = ['--github-repository', 'gsv/gsv-gitops'];

/** `npm run bootstrap -- …` as an operator runs it: its own process, the service's environment. */
function bootstrap(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['src/cli/bootstrap.ts', ...args],
      { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env }, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('npm run bootstrap', () => {
  let database: { url: string; drop(): Promise<void> };
  before(async () => (database = await createScratchDatabase('bootstrap')));
  after(() => database.drop());

  /** The payload of the change a run printed. */
  async function proposedPayload(stdout: string): Promise<Record<string, unknown>> {
    const sequelize = createSequelize({ url: database.url, poolMax: 1, logger: createLogger('silent') });
    try {
      const [row] = await sequelize.query<{ payload: Record<string, unknown> }>(`SELECT payload FROM change_requests WHERE id = :id`, {
        type: QueryTypes.SELECT,
        replacements: { id: /change ([0-9a-f-]{36})/.exec(stdout)![1] },
      });
      return row!.payload;
    } finally {
      await sequelize.close();
    }
  }

  it('migrates an empty database, proposes the platform change once, and prints where to follow it', async () => {
    const env = { DATABASE_URL: database.url, GITOPS_MERGE_POLICY_BY_KIND: 'platform.bootstrap=pull-request', GITOPS_BASE_BRANCH: 'release' };
    const first = await bootstrap([...ARGS, ...GITHUB, '--gitops-repo-url', 'https://git.example.org/gsv/gsv-gitops.git', '--requested-by', 'ops@example.org'], env);
    assert.equal(first.code, 0, first.stderr);
    const [, changeId] = /^Proposed: platform\.bootstrap change ([0-9a-f-]{36})$/m.exec(first.stdout) ?? [];
    assert.ok(changeId, first.stdout);
    assert.match(first.stdout, new RegExp(`GET /changes/${changeId}`));
    assert.match(first.stderr, /applied migrations: /, 'the empty database was migrated');

    const again = await bootstrap([...ARGS, ...GITHUB, '--gitops-repo-url', 'https://git.example.org/gsv/gsv-gitops.git'], env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`^Already proposed \\(pending or open\\): platform\\.bootstrap change ${changeId}$`, 'm'));
    assert.doesNotMatch(again.stderr, /applied migrations/);

    const sequelize = createSequelize({ url: database.url, poolMax: 1, logger: createLogger('silent') });
    try {
      const rows = await sequelize.query<{ id: string; status: string; merge_policy: string; requested_by: string; payload: Record<string, unknown> }>(
        `SELECT id, status, merge_policy, requested_by, payload FROM change_requests WHERE kind = 'platform.bootstrap'`,
        { type: QueryTypes.SELECT },
      );
      assert.equal(rows.length, 1, 'one change, however often it runs');
      assert.deepEqual(rows[0], {
        id: changeId,
        status: 'pending',
        merge_policy: 'pull-request',
        requested_by: 'ops@example.org',
        payload: {
          image: 'ghcr.io/gsv/control-plane:0.1.0',
          host: 'cmp.example.org',
          gitopsRepoURL: 'https://git.example.org/gsv/gsv-gitops.git',
          baseBranch: 'release',
          notificationsUrl: 'http://cmp-control-plane.cmp.svc',
          secretStore: 'vault',
          github: { repository: 'gsv/gsv-gitops' },
          without: ['cms', 'commerce'],
          ssoHost: 'sso.example.org',
          oidc: { issuer: 'https://sso.example.org/realms/gsv', audience: 'control-plane', jwksUrl: 'https://sso.example.org/realms/gsv/protocol/openid-connect/certs' },
        },
      });
    } finally {
      await sequelize.close();
    }
  });

  it("derives the repository, its URL, the GitHub App and OIDC from the service's environment with the github driver", async () => {
    const env = {
      DATABASE_URL: database.url,
      GITOPS_DRIVER: 'github',
      GITHUB_REPOSITORY: 'gsv/gsv-gitops',
      GITHUB_APP_ID: '42',
      GITHUB_APP_INSTALLATION_ID: '7',
      GITHUB_APP_PRIVATE_KEY: 'not-used',
      OIDC_ISSUER: 'https://id.example.org/realms/staff',
      OIDC_AUDIENCE: 'cmp',
      OIDC_JWKS_URL: 'https://id.example.org/keys',
    };
    const result = await bootstrap(ARGS, env);
    assert.equal(result.code, 0, result.stderr);
    const payload = await proposedPayload(result.stdout);
    assert.equal(payload.gitopsRepoURL, 'https://github.com/gsv/gsv-gitops.git');
    assert.deepEqual(payload.github, { repository: 'gsv/gsv-gitops', app: { appId: '42', installationId: 7 } });
    assert.deepEqual(payload.oidc, { issuer: 'https://id.example.org/realms/staff', audience: 'cmp', jwksUrl: 'https://id.example.org/keys' });
  });

  it("points the membership mirror and Saleor top-ups at a site's own Keycloak and Saleor, and only with those roles left out", async function () {
    this.timeout(90_000);
    const site = ['--without', 'sso,cms,commerce', '--oidc-issuer', 'https://id.example.org/realms/staff'];
    const keycloak = ['--keycloak-url', 'https://id.example.org', '--keycloak-realm', 'staff', '--keycloak-client-id', 'cmp-mirror'];
    const saleor = ['--saleor-api-url', 'https://shop.example.org/graphql/'];
    const result = await bootstrap([...ARGS.slice(0, 8), ...GITHUB, '--gitops-repo-url', 'x', ...site, ...keycloak, ...saleor], { DATABASE_URL: database.url });
    assert.equal(result.code, 0, result.stderr);
    const payload = await proposedPayload(result.stdout);
    assert.deepEqual(payload.keycloak, { url: 'https://id.example.org', realm: 'staff', clientId: 'cmp-mirror' });
    assert.equal(payload.saleorApiUrl, 'https://shop.example.org/graphql/');

    const half = await bootstrap([...ARGS.slice(0, 8), ...GITHUB, '--gitops-repo-url', 'x', ...site, '--keycloak-url', 'https://id.example.org'], { DATABASE_URL: database.url });
    assert.equal(half.code, 64);
    assert.match(half.stderr, /--keycloak-url, --keycloak-realm and --keycloak-client-id go together/);
    // ARGS renders sso and leaves commerce out: the rendered realm defines the mirror's client.
    const withRenderedSso = await bootstrap([...ARGS, ...GITHUB, '--gitops-repo-url', 'x', ...keycloak], { DATABASE_URL: database.url });
    assert.equal(withRenderedSso.code, 64);
    assert.match(withRenderedSso.stderr, /--keycloak-url is for a site's own Keycloak \(--without sso\)/);
    const withRenderedCommerce = await bootstrap([...ARGS.slice(0, 10), '--without', 'cms', '--commerce-host', 'shop.example.org', ...GITHUB, '--gitops-repo-url', 'x', ...saleor], { DATABASE_URL: database.url });
    assert.equal(withRenderedCommerce.code, 64);
    assert.match(withRenderedCommerce.stderr, /--saleor-api-url is for a site's own Saleor \(--without commerce\)/);
    const badUrl = await bootstrap([...ARGS.slice(0, 8), ...GITHUB, '--gitops-repo-url', 'x', ...site, '--saleor-api-url', 'shop.example.org'], { DATABASE_URL: database.url });
    assert.equal(badUrl.code, 64);
    assert.match(badUrl.stderr, /platform\.bootstrap payload is invalid: \/saleorApiUrl/);
  });

  it('says what is missing: DATABASE_URL (78), options (64), an invalid value (64), an unreachable database (69, password masked)', async function () {
    // A dozen processes one after the other: seconds each on a busy machine.
    this.timeout(90_000);
    const noDatabase = await bootstrap(ARGS, {});
    assert.equal(noDatabase.code, 78);
    assert.match(noDatabase.stderr, /DATABASE_URL is not set: .*POST \/platform\/bootstrap/);

    const noOptions = await bootstrap(['--image', 'ghcr.io/gsv/control-plane:0.1.0'], { DATABASE_URL: database.url });
    const halfApp = await bootstrap([...ARGS, ...GITHUB, '--gitops-repo-url', 'x', '--github-app-id', '12'], { DATABASE_URL: database.url });
    assert.equal(halfApp.code, 64);
    assert.match(halfApp.stderr, /--github-app-id and --github-app-installation-id go together/);
    assert.equal(noOptions.code, 64);
    assert.match(noOptions.stderr, /missing --host, --notifications-url, --secret-store, --gitops-repo-url, --github-repository, --oidc-issuer/);
    const unrendered = await bootstrap([...ARGS.slice(0, 8), ...GITHUB, '--gitops-repo-url', 'x', '--oidc-issuer', 'https://id.example.org/realms/x', '--without', 'vault'], { DATABASE_URL: database.url });
    assert.equal(unrendered.code, 64);
    assert.match(unrendered.stderr, /sso is rendered: give --sso-host, or --without sso; cms is rendered: give --cms-host, or --without cms; cms is rendered: give --cms-image, or --without cms; commerce is rendered: give --commerce-host, or --without commerce/);
    const unknownRole = await bootstrap([...ARGS, ...GITHUB, '--gitops-repo-url', 'x', '--without', 'sso,mail'], { DATABASE_URL: database.url });
    assert.equal(unknownRole.code, 64);
    assert.match(unknownRole.stderr, /--without mail: the roles are sso, vault, cms, commerce/);
    assert.match(noOptions.stderr, /usage: npm run bootstrap/);

    const badHost = await bootstrap([...ARGS.slice(0, 2), '--host', 'Not A Host', ...ARGS.slice(4), ...GITHUB, '--gitops-repo-url', 'x'], { DATABASE_URL: database.url });
    assert.equal(badHost.code, 64);
    assert.match(badHost.stderr, /platform\.bootstrap payload is invalid: \/host/);

    const unknown = await bootstrap(['--colour', 'red'], { DATABASE_URL: database.url });
    assert.equal(unknown.code, 64);

    const down = await bootstrap([...ARGS, ...GITHUB, '--gitops-repo-url', 'x'], { DATABASE_URL: 'postgres://cp:hunter2@127.0.0.1:9/cp' });
    assert.equal(down.code, 69);
    assert.match(down.stderr, /cannot reach the database at postgres:\/\/cp:\*\*\*@127\.0\.0\.1:9\/cp/);
    assert.doesNotMatch(down.stderr, /hunter2/);

    const badConfig = await bootstrap(ARGS, { DATABASE_URL: database.url, GITOPS_MERGE_POLICY: 'sometimes' });
    assert.equal(badConfig.code, 78);
    assert.match(badConfig.stderr, /GITOPS_MERGE_POLICY="sometimes" is invalid/);
  });
});
