import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { CONFIG_VARIABLES, loadConfig, withoutCredentials } from '../src/config.ts';
import { ConfigError } from '../src/errors.ts';
import { mergePolicyFor } from '../src/domain/changes/change-kinds.ts';

/** The message of the ConfigError the environment causes. */
function problemsOf(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.message;
  }
  assert.fail(`no ConfigError for ${Object.keys(env).join(', ')}`);
}

describe('config', () => {
  it('applies defaults to an empty environment', () => {
    const config = loadConfig({}, '/srv');
    assert.equal(config.port, 8080);
    assert.equal(config.databaseUrl, undefined);
    assert.equal(config.dataDir, '/srv/.data');
    assert.equal(config.gitops.localPath, '/srv/.data/gsv-gitops.git');
    assert.equal(config.gitops.baseBranch, 'main');
  });

  it('coerces numbers and keeps given values', () => {
    const config = loadConfig({ PORT: '9090', DATABASE_URL: 'postgres://u@h/db', GITOPS_DRIVER: 'local', LOG_LEVEL: 'debug' }, '/srv');
    assert.equal(config.port, 9090);
    assert.equal(config.databaseUrl, 'postgres://u@h/db');
    assert.equal(config.logLevel, 'debug');
  });

  it('reads merge policy exceptions per change kind', () => {
    const config = loadConfig({ GITOPS_MERGE_POLICY: 'direct', GITOPS_MERGE_POLICY_BY_KIND: 'instance.delete=pull-request,instance.update=auto-merge' });
    assert.equal(config.gitops.mergePolicy, 'direct');
    assert.deepEqual(config.gitops.mergePolicyByKind, { 'instance.delete': 'pull-request', 'instance.update': 'auto-merge' });
    const policies = { default: config.gitops.mergePolicy, ...config.gitops.mergePolicyByKind };
    assert.equal(mergePolicyFor(policies, 'instance.delete'), 'pull-request');
    assert.equal(mergePolicyFor(policies, 'instance.update'), 'auto-merge');
    assert.equal(mergePolicyFor(policies, 'workspace.create'), 'direct');
    assert.equal(mergePolicyFor('auto-merge', 'instance.delete'), 'auto-merge');
    assert.deepEqual(loadConfig({}).gitops.mergePolicyByKind, {});
    assert.throws(() => loadConfig({ GITOPS_MERGE_POLICY_BY_KIND: 'instance.delete=yolo' }), /GITOPS_MERGE_POLICY_BY_KIND="instance.delete=yolo" is invalid/);
    assert.throws(() => loadConfig({ GITOPS_MERGE_POLICY_BY_KIND: 'tenant.nuke=direct' }), /GITOPS_MERGE_POLICY_BY_KIND/);
  });

  it('names every bad variable and what it expects', () => {
    assert.throws(
      () => loadConfig({ PORT: 'eighty', LOG_LEVEL: 'loud', DATABASE_URL: 'mysql://x' }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.equal(error.problems.length, 3);
        assert.match(error.message, /PORT="eighty" is invalid \(expected an integer >= 0 and <= 65535\)/);
        assert.match(error.message, /LOG_LEVEL="loud" is invalid \(expected one of "fatal"/);
        assert.match(error.message, /DATABASE_URL="mysql:\/\/x" is invalid/);
        return true;
      },
    );
  });

  it('never prints the value of a secret variable, nor the credentials in a URL, and states the real rule', () => {
    const secrets = {
      ARGOCD_WEBHOOK_TOKEN: 'short-secret',
      GITHUB_WEBHOOK_ADDITIONAL_SECRETS: 'rotated-secret,',
      DATABASE_URL: 'postgress://app:hunter2-db@db.example:5432/cp',
      GITOPS_LOCAL_PUSH_URL: '',
      GITHUB_WEBHOOK_SECRET: '',
    };
    const message = problemsOf({ ...secrets, GITOPS_DRIVER: 'github', GITHUB_REPOSITORY: 'gsv/gsv-gitops', GITHUB_TOKEN: 'ghp_token-value' });
    for (const value of ['short-secret', 'rotated-secret', 'hunter2-db', 'ghp_token-value']) assert.ok(!message.includes(value), `${value} is in: ${message}`);
    assert.match(message, /ARGOCD_WEBHOOK_TOKEN \(a secret, not shown; 12 characters\) is invalid \(expected at least 16 characters\)/);
    assert.match(message, /GITHUB_WEBHOOK_ADDITIONAL_SECRETS \(a secret, not shown; 15 characters\) is invalid \(expected comma-separated, non-empty values\)/);
    assert.match(message, /DATABASE_URL="postgress:\/\/app:\*\*\*@db\.example:5432\/cp" is invalid \(expected a URL starting postgres:\/\/ or postgresql:\/\/\)/);
    // An unescaped / or @ in the password: masked up to the last @ all the same.
    for (const url of ['postgress://app:pa/ss@db/cp', 'postgress://app:p@ss@db/cp', 'https://tok/en@git.example/x.git']) {
      assert.doesNotMatch(problemsOf({ DATABASE_URL: url }), /pa\/ss|p@ss|tok|en@/, url);
    }
    assert.equal(withoutCredentials('https://ghp_secret@git.example/gsv.git'), 'https://***@git.example/gsv.git');
    // A URL without the scheme still hides what stands before its @.
    assert.doesNotMatch(problemsOf({ GITOPS_LOCAL_PUSH_URL: 'x', DATABASE_URL: 'app:pw-no-scheme@db/cp' }), /pw-no-scheme/);
    const push = problemsOf({ GITOPS_DRIVER: 'github', GITOPS_LOCAL_PUSH_URL: 'https://bot:push-secret@git.example/gsv.git', GITHUB_REPOSITORY: 'a/b', GITHUB_TOKEN: 't' });
    assert.ok(!push.includes('push-secret'));
  });

  it('marks every variable holding a secret, and the README table says so', async () => {
    const readme = await fs.readFile(new URL('../README.md', import.meta.url), 'utf8');
    const secret = CONFIG_VARIABLES.filter((v) => 'secret' in v && v.secret !== undefined).map((v) => v.name);
    assert.deepEqual(secret.sort(), ['ARGOCD_WEBHOOK_TOKEN', 'DATABASE_URL', 'GITHUB_APP_PRIVATE_KEY', 'GITHUB_TOKEN', 'GITHUB_WEBHOOK_ADDITIONAL_SECRETS', 'GITHUB_WEBHOOK_SECRET', 'GITOPS_LOCAL_PUSH_URL', 'KEYCLOAK_CLIENT_SECRET', 'SALEOR_APP_TOKEN']);
    for (const name of secret) assert.match(readme, new RegExp(`^\\| \`${name}\` \\|.*\\*\\*Secret\\*\\*`, 'm'), `${name}: its README row does not say it is a secret`);
  });

  it('turns the Keycloak membership mirror on only with URL, realm, client id and secret', () => {
    assert.equal(loadConfig({}).keycloak, undefined);
    assert.throws(
      () => loadConfig({ KEYCLOAK_URL: 'https://sso.example' }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.deepEqual(error.problems, [
          'KEYCLOAK_REALM is required when KEYCLOAK_URL is set',
          'KEYCLOAK_CLIENT_ID is required when KEYCLOAK_URL is set',
          'KEYCLOAK_CLIENT_SECRET is required when KEYCLOAK_URL is set',
        ]);
        return true;
      },
    );
    const config = loadConfig({ KEYCLOAK_URL: 'https://sso.example', KEYCLOAK_REALM: 'gsv', KEYCLOAK_CLIENT_ID: 'cp', KEYCLOAK_CLIENT_SECRET: 'x' });
    assert.deepEqual(config.keycloak, { url: 'https://sso.example', realm: 'gsv', clientId: 'cp', clientSecret: 'x', timeoutMs: 10_000, reconcileIntervalMs: 300_000 });
    assert.throws(() => loadConfig({ KEYCLOAK_URL: 'sso.example' }), /KEYCLOAK_URL="sso.example" is invalid/);
  });

  it('turns OIDC on only with issuer, audience and JWKS URL, and pins the algorithms', () => {
    assert.equal(loadConfig({}).oidc, undefined);
    assert.throws(() => loadConfig({ OIDC_ISSUER: 'https://sso.example/realms/gsv' }), /OIDC_AUDIENCE is required when OIDC_ISSUER is set/);
    const config = loadConfig({ OIDC_ISSUER: 'https://sso.example/realms/gsv', OIDC_AUDIENCE: 'control-plane', OIDC_JWKS_URL: 'https://sso.example/certs' });
    assert.deepEqual(config.oidc, { issuer: 'https://sso.example/realms/gsv', audience: 'control-plane', jwksUrl: 'https://sso.example/certs', algorithms: ['RS256', 'ES256'], adminRole: 'platform-admin' });
    assert.throws(() => loadConfig({ OIDC_ALGORITHMS: 'HS256' }), /OIDC_ALGORITHMS="HS256" is invalid/);
    assert.throws(() => loadConfig({ OIDC_ALGORITHMS: 'none' }), /OIDC_ALGORITHMS="none" is invalid/);
  });

  it('is documented: the README table lists every variable', async () => {
    const readme = await fs.readFile(new URL('../README.md', import.meta.url), 'utf8');
    for (const variable of CONFIG_VARIABLES) {
      assert.match(readme, new RegExp(`\\| \`${variable.name}\` \\|`), `${variable.name} is missing from the README's table`);
    }
  });
});
