import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config.ts';
import { ConfigError } from '../../src/errors.ts';

describe('config: the github driver', () => {
  it('takes a token or a complete GitHub App, and names what is missing', () => {
    const token = loadConfig({ GITOPS_DRIVER: 'github', GITHUB_REPOSITORY: 'gsv/gsv-gitops', GITHUB_TOKEN: 't' });
    assert.deepEqual(token.gitops.github, { owner: 'gsv', repo: 'gsv-gitops', apiUrl: 'https://api.github.com', auth: { token: 't' }, mergeMethods: ['merge', 'squash', 'rebase'] });
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
});
