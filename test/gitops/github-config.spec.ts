import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config.ts';
import { ConfigError } from '../../src/errors.ts';

describe('config: the github driver', () => {
  it('takes a token or a complete GitHub App, and names what is missing', () => {
    const token = loadConfig({ GITOPS_DRIVER: 'github', GITHUB_REPOSITORY: 'gsv/gsv-gitops', GITHUB_TOKEN: 't' });
    assert.deepEqual(token.gitops.github, { owner: 'gsv', repo: 'gsv-gitops', apiUrl: 'https://api.github.com', auth: { token: 't' }, mergeMethods: ['merge', 'squash', 'rebase'], budget: { writesPerHour: 450, burst: 30, primaryReserve: 500 } });
    const app = loadConfig({ GITOPS_DRIVER: 'github', GITHUB_REPOSITORY: 'gsv/gsv-gitops', GITHUB_APP_ID: '12', GITHUB_APP_PRIVATE_KEY: 'a\\nb', GITHUB_APP_INSTALLATION_ID: '34' });
    assert.deepEqual(app.gitops.github!.auth, { appId: '12', privateKey: 'a\nb', installationId: 34 });
    assert.equal(loadConfig({}).gitops.github, undefined);
    assert.throws(() => loadConfig({ GITOPS_DRIVER: 'github', GITHUB_TOKEN: 't' }), (error: unknown) => error instanceof ConfigError && /GITHUB_REPOSITORY/.test(error.message));
    assert.throws(() => loadConfig({ GITOPS_DRIVER: 'github', GITHUB_REPOSITORY: 'a/b', GITHUB_APP_ID: '1' }), (error: unknown) => error instanceof ConfigError && /go together/.test(error.message));
    assert.throws(() => loadConfig({ GITOPS_DRIVER: 'github', GITHUB_REPOSITORY: 'a/b' }), ConfigError);
  });

  it('takes the merge methods in order of preference, and refuses one GitHub does not have', () => {
    const squashFirst = loadConfig({ GITOPS_DRIVER: 'github', GITHUB_REPOSITORY: 'a/b', GITHUB_TOKEN: 't', GITHUB_MERGE_METHODS: 'squash,merge,squash' });
    assert.deepEqual(squashFirst.gitops.github!.mergeMethods, ['squash', 'merge']);
    assert.throws(() => loadConfig({ GITOPS_DRIVER: 'github', GITHUB_REPOSITORY: 'a/b', GITHUB_TOKEN: 't', GITHUB_MERGE_METHODS: 'fast-forward' }), (error: unknown) => error instanceof ConfigError && /GITHUB_MERGE_METHODS/.test(error.message));
  });
  it("keeps the github write budget within GitHub's secondary limits (500 an hour, 80 a minute)", () => {
    const github = { GITOPS_DRIVER: 'github', GITHUB_REPOSITORY: 'gsv/gsv-gitops', GITHUB_TOKEN: 't' } as const;
        assert.throws(() => loadConfig({ ...github, GITHUB_WRITES_PER_HOUR: '501' }), /GITHUB_WRITES_PER_HOUR="501" is invalid/);
    assert.throws(() => loadConfig({ ...github, GITHUB_WRITES_PER_HOUR: '50', GITHUB_WRITE_BURST: '60' }), /GITHUB_WRITE_BURST \(60\) must be below GITHUB_WRITES_PER_HOUR/);
    // 79 at once plus (500 - 79) / 60 = 7 more within the minute: 86 > 80.
    assert.throws(() => loadConfig({ ...github, GITHUB_WRITES_PER_HOUR: '500', GITHUB_WRITE_BURST: '79' }), /passes GitHub's 80 content-creating requests a minute/);
    assert.equal(loadConfig({ ...github, GITHUB_WRITES_PER_HOUR: '500', GITHUB_WRITE_BURST: '72' }).gitops.github!.budget.burst, 72);
  });

});
