import { createGithubClient, GithubRepository } from '../../src/gitops/github/github-repository.ts';
import type { GithubDouble } from './github-double.ts';

/** The github driver pointed at a GitHub double: no retries, no throttling, so specs run in milliseconds. */
export async function connectGithubDriver(double: GithubDouble): Promise<GithubRepository> {
  const octokit = await createGithubClient({ auth: { token: 'test-token' }, baseUrl: double.url, retries: 0, throttle: false });
  return new GithubRepository({ octokit, owner: double.owner, repo: double.repo, baseBranch: 'main' });
}
