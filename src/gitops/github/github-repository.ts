import { createHash } from 'node:crypto';
import { App, Octokit } from 'octokit';
import {
  BackendRateLimitedError,
  BranchMovedError,
  mergedByTrailer,
  parseTrailers,
  PullRequestNotMergeableError,
  RepositoryRejectedError,
  type CommitSummary,
  type FileChange,
  type GitopsRepository,
  type HistoryPage,
  type PullRequest,
} from '../repository.ts';
import { compareRange } from './commit-range.ts';
import type { GithubBudget } from './github-budget.ts';
import { readDirectoriesAt } from './directory-read.ts';
import { planTreeChanges } from './tree-changes.ts';

export type GithubAuth = { token: string } | { appId: string; privateKey: string; installationId: number };

export interface GithubClientOptions {
  auth: GithubAuth;
  /** https://api.github.com, or a GitHub Enterprise / test double URL. */
  baseUrl: string;
  /** Retries of the retry plugin for 5xx and network errors (0 in tests). */
  retries?: number;
  /** Test seam: the HTTP layer. */
  fetch?: typeof fetch;
  /** Each request is aborted after this long (default 30 s): a hung connection must not hold a worker's lease. */
  timeoutMs?: number;
  /**
   * Throttling spaces content-creating requests about a second apart, as GitHub asks of
   * integrations. Only tests against the double turn it off, to run in milliseconds.
   */
  throttle?: boolean;
  /**
   * The write and request budget (github-budget.ts): every answer's rate-limit headers are
   * recorded, and every request passes it before it is sent. Unset only in tests of the driver's
   * calls themselves.
   */
  budget?: GithubBudget;
}

/**
 * Builds the Octokit the driver uses, once, with throttling (waits out primary and secondary
 * rate limits, a few times) and retry (5xx, network) as octokit bundles them.
 */
export async function createGithubClient(options: GithubClientOptions): Promise<Octokit> {
  const send = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 30_000;
  // Octokit sets no timeout of its own; an aborted request is a network error (transient).
  const timed: typeof fetch = async (input, init) => {
    const timeout = AbortSignal.timeout(timeoutMs);
    const response = await send(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, timeout]) : timeout });
    options.budget?.recordHeaders(response.headers);
    return response;
  };
  const common = {
    baseUrl: options.baseUrl,
    request: { fetch: timed },
    // plugin-retry's defaults retry 405 and 409 (three times, ~21 s a merge attempt): a merge
    // GitHub will not do yet is the PR reconciler's to try again on its next pass.
    retry: { retries: options.retries ?? 3, doNotRetry: [400, 401, 403, 404, 405, 409, 410, 422, 429, 451] },
    throttle: {
      enabled: options.throttle ?? true,
      // Waited out in place only when short: a longer wait would outlast the worker's lease
      // (60 s), so the call fails with BackendRateLimitedError and the batch waits in the queue.
      onRateLimit: (after: number, _request: unknown, _octokit: unknown, retryCount: number) => retryCount < 2 && after <= 30,
      onSecondaryRateLimit: (after: number, _request: unknown, _octokit: unknown, retryCount: number) => retryCount < 1 && after <= 30,
    },
  };
  const octokit =
    'token' in options.auth
      ? new Octokit({ ...common, auth: options.auth.token })
      : await new App({ appId: options.auth.appId, privateKey: options.auth.privateKey, Octokit: Octokit.defaults(common) }).getInstallationOctokit(options.auth.installationId);
  if (options.budget) spendFrom(octokit, options.budget);
  return octokit;
}

/**
 * Every request passes the budget before it is sent. Registered after the plugins, the hook
 * wraps them: a request the budget refuses (BackendRateLimitedError) is not retried by
 * plugin-retry or throttling, and the retries they make of a write (a 502, a short secondary
 * limit) go through a counting fetch and are spent after the fact.
 */
function spendFrom(octokit: Octokit, budget: GithubBudget): void {
  octokit.hook.wrap('request', async (request, options) => {
    if (!(await budget.beforeRequest(String(options.method), String(options.url)))) return request(options);
    let sent = 0;
    const inner = options.request?.fetch as typeof fetch | undefined;
    const counting: typeof fetch = (input, init) => {
      sent += 1;
      return (inner ?? fetch)(input, init);
    };
    try {
      return await request({ ...options, request: { ...options.request, fetch: counting } });
    } finally {
      await budget.spentExtra(sent - 1);
    }
  });
}

export interface GithubRepositoryOptions {
  octokit: Octokit;
  owner: string;
  repo: string;
  baseBranch: string;
  /** compareCommits refuses longer ranges (each commit costs a call) with ComparisonTooLargeError. */
  maxCompareCommits?: number;
  /**
   * Merge methods to use, in order of preference (default merge, squash, rebase). A method the
   * repository does not allow (405 "… are not allowed on this repository.") is skipped, and the
   * one that worked is used first from then on.
   */
  mergeMethods?: MergeMethod[];
}

export type MergeMethod = 'merge' | 'squash' | 'rebase';
/** How long a successful ping stands for the next ones. */
export const PING_TTL_MS = 60_000;
export const MERGE_METHODS: readonly MergeMethod[] = ['merge', 'squash', 'rebase'];

type PullData = Awaited<ReturnType<Octokit['rest']['pulls']['get']>>['data'];

/** mergeable_state values for which pulls.merge refuses: reviews or checks outstanding, branch out of date, draft. */
const NOT_READY_STATES = new Set(['blocked', 'behind', 'draft', 'unknown']);

interface HttpError {
  status: number;
  message: string;
  response?: { data?: { message?: string; errors?: { message?: string }[] }; headers?: Record<string, string | number | undefined> };
}

/**
 * When GitHub says a request may be sent again, if it refused it for a rate limit
 * (docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api): a 403 or 429
 * with `retry-after` (seconds; secondary limits), or with x-ratelimit-remaining 0 and
 * x-ratelimit-reset (epoch seconds; primary); a secondary limit without headers waits a
 * minute, as those docs advise. Undefined for any other answer.
 */
function rateLimitRetryAt(error: HttpError, now = Date.now()): Date | undefined {
  if (error.status !== 403 && error.status !== 429) return undefined;
  const headers = error.response?.headers ?? {};
  const retryAfter = Number(headers['retry-after']);
  if (Number.isFinite(retryAfter) && retryAfter >= 0 && headers['retry-after'] !== undefined) return new Date(now + retryAfter * 1000);
  if (String(headers['x-ratelimit-remaining']) === '0') {
    const reset = Number(headers['x-ratelimit-reset']);
    return new Date(Number.isFinite(reset) && reset * 1000 > now ? reset * 1000 : now + 60_000);
  }
  if (says(error, 'secondary rate limit') || error.status === 429) return new Date(now + 60_000);
  return undefined;
}

function httpError(error: unknown): HttpError | undefined {
  const status = (error as { status?: unknown }).status;
  return typeof status === 'number' ? (error as HttpError) : undefined;
}

/** GitHub's validation messages live in errors[].message as often as in message. */
function says(error: HttpError, text: string): boolean {
  const data = error.response?.data;
  return [error.message, data?.message, ...(data?.errors ?? []).map((e) => e.message)].some((m) => typeof m === 'string' && m.includes(text));
}

/**
 * The github backend: the Git Data API with inline file content on a base tree (no blob per
 * file), one commit, one ref, one pull request. A fresh change costs five REST calls: read the
 * base branch, create tree, create commit, create ref, create pull request. Deletes go in the
 * same create-tree call, file by file (GitHub deletes no directory); what a delete or a replace
 * names is listed first by one GraphQL query. Retried creates
 * that GitHub answers with 422 "already exists" adopt the existing ref or pull request.
 * 4xx answers that retrying cannot fix become RepositoryRejectedError (terminal); the rest
 * (5xx, network) stay transient.
 */
export class GithubRepository implements GitopsRepository {
  readonly driver = 'github' as const;
  readonly baseBranch: string;
  readonly owner: string;
  readonly repo: string;
  readonly #octokit: Octokit;
  /** Commit → tree, learned from branch reads, so a commit on it needs no extra call. */
  readonly #trees = new Map<string, string>();
  readonly #maxCompareCommits: number;
  /** Preference order; the method the repository took last goes first. */
  #mergeMethods: MergeMethod[];
  /** When ping last found the base branch. */
  #pingedAt: number | undefined;
  /** The last answer of pulls.get per pull request, with its ETag (conditional requests). */
  readonly #pulls = new Map<number, { etag: string; data: PullData }>();

  constructor(options: GithubRepositoryOptions) {
    this.#octokit = options.octokit;
    this.#mergeMethods = [...(options.mergeMethods ?? MERGE_METHODS)];
    this.#maxCompareCommits = options.maxCompareCommits ?? 1000;
    this.owner = options.owner;
    this.repo = options.repo;
    this.baseBranch = options.baseBranch;
  }

  /**
   * Reads the base branch at most once per PING_TTL_MS: /readyz is probed every few seconds by
   * every replica (two replicas every 5 s spent 1,440 of the 5,000 requests an hour).
   */
  async ping(): Promise<void> {
    if (this.#pingedAt !== undefined && Date.now() - this.#pingedAt < PING_TTL_MS) return;
    if (!(await this.getBranch(this.baseBranch))) throw new Error(`${this.owner}/${this.repo} has no branch ${this.baseBranch}`);
    this.#pingedAt = Date.now();
  }

  async getBranch(branch: string): Promise<string | undefined> {
    try {
      const { data } = await this.#octokit.rest.repos.getBranch({ owner: this.owner, repo: this.repo, branch });
      this.remember(data.commit.sha, data.commit.commit.tree.sha);
      return data.commit.sha;
    } catch (error) {
      if (httpError(error)?.status === 404) return undefined;
      throw this.classify(error);
    }
  }

  async createCommit(input: { parent: string; changes: FileChange[]; message: string }): Promise<string> {
    try {
      let baseTree = this.#trees.get(input.parent);
      if (!baseTree) {
        const { data } = await this.#octokit.rest.git.getCommit({ owner: this.owner, repo: this.repo, commit_sha: input.parent });
        baseTree = data.tree.sha;
      }
      const plan = planTreeChanges(input.changes);
      // GitHub deletes files only ("If the value is null then the file will be deleted"; a
      // directory path answers 422 GitRPC::BadObjectState, google/go-github#2418): what a delete
      // of a directory or a replace names is listed at the parent, in one GraphQL query, and
      // deleted file by file. Other deletes name files (or nothing: see the fallback below).
      const targets = [...plan.directories, ...plan.replaced];
      const below = targets.length > 0 ? await readDirectoriesAt({ octokit: this.#octokit, owner: this.owner, repo: this.repo }, input.parent, targets) : new Map<string, Map<string, string>>();
      const cleared: string[] = [];
      const requested: string[] = [];
      for (const path of plan.deletes) {
        const files = [...(below.get(path)?.keys() ?? [])];
        if (files.length > 0) cleared.push(...files);
        else requested.push(path);
      }
      for (const dir of plan.replaced) for (const path of below.get(dir)?.keys() ?? []) if (!plan.writes.has(path)) cleared.push(path);
      const tree = await this.createTree(baseTree, plan.writes, [...requested, ...cleared]).catch(async (error: unknown) => {
        // GitHub refuses (422) to delete a path that does not exist, which happens when the base
        // already lacks it (a retry on a newer base, a version that never reached Git), and a
        // directory a change did not say was one. Drop the absent deletes, list such
        // directories, and try once more; if neither was the case, the 422 was about something else.
        if (httpError(error)?.status !== 422 || requested.length === 0) throw error;
        const { files, directories } = await this.existing(input.parent, requested);
        if (files.length === requested.length) throw error;
        const listed = directories.length > 0 ? await readDirectoriesAt({ octokit: this.#octokit, owner: this.owner, repo: this.repo }, input.parent, directories) : new Map<string, Map<string, string>>();
        return this.createTree(baseTree, plan.writes, [...files, ...[...listed.values()].flatMap((m) => [...m.keys()]), ...cleared]);
      });
      const { data: commit } = await this.#octokit.rest.git.createCommit({ owner: this.owner, repo: this.repo, message: input.message, tree, parents: [input.parent] });
      this.remember(commit.sha, tree);
      return commit.sha;
    } catch (error) {
      throw this.classify(error);
    }
  }

  /** One create-tree call on `baseTree`; no call when there is nothing to change. */
  private async createTree(baseTree: string, writes: Map<string, string>, deletes: string[]): Promise<string> {
    const tree = [
      ...[...writes].map(([path, content]) => ({ path, mode: '100644' as const, type: 'blob' as const, content })),
      ...deletes.map((path) => ({ path, mode: '100644' as const, type: 'blob' as const, sha: null })),
    ].sort((a, b) => (a.path < b.path ? -1 : 1));
    if (tree.length === 0) return baseTree;
    const { data } = await this.#octokit.rest.git.createTree({ owner: this.owner, repo: this.repo, base_tree: baseTree, tree });
    return data.sha;
  }

  /** Which of `paths` are files and which directories at commit `ref`; the rest do not exist (one call each, one after another, as GitHub asks of integrations). */
  private async existing(ref: string, paths: string[]): Promise<{ files: string[]; directories: string[] }> {
    const found = { files: [] as string[], directories: [] as string[] };
    for (const path of paths) {
      const entry = await this.contents(ref, path);
      if (Array.isArray(entry)) found.directories.push(path);
      else if (entry !== undefined) found.files.push(path);
    }
    return found;
  }

  /** GET contents: a directory's entries (an array), a file's description, or undefined for 404. */
  private async contents(ref: string, path: string): Promise<unknown> {
    try {
      const { data } = await this.#octokit.rest.repos.getContent({ owner: this.owner, repo: this.repo, path, ref });
      return data;
    } catch (error) {
      if (httpError(error)?.status === 404) return undefined;
      throw error;
    }
  }

  async createBranch(branch: string, sha: string): Promise<string> {
    try {
      await this.#octokit.rest.git.createRef({ owner: this.owner, repo: this.repo, ref: `refs/heads/${branch}`, sha });
      return sha;
    } catch (error) {
      const http = httpError(error);
      if (http?.status === 422 && says(http, 'Reference already exists')) {
        const existing = await this.getBranch(branch);
        if (existing) return existing;
      }
      throw this.classify(error);
    }
  }

  async updateBranch(branch: string, sha: string, options: { expected: string; force?: boolean }): Promise<void> {
    try {
      await this.#octokit.rest.git.updateRef({ owner: this.owner, repo: this.repo, ref: `heads/${branch}`, sha, force: options.force ?? false });
    } catch (error) {
      const http = httpError(error);
      // GitHub has no compare-and-swap on refs; a fast-forward-only update that is refused
      // means the branch moved past what we built on.
      if (http?.status === 422 && says(http, 'not a fast forward')) throw new BranchMovedError(branch, http.message);
      throw this.classify(error);
    }
  }

  async deleteBranch(branch: string): Promise<void> {
    try {
      await this.#octokit.rest.git.deleteRef({ owner: this.owner, repo: this.repo, ref: `heads/${branch}` });
    } catch (error) {
      // delete-a-reference answers 422 "Reference does not exist" for a branch already gone.
      const http = httpError(error);
      if (http?.status === 404 || (http?.status === 422 && says(http, 'Reference does not exist'))) return;
      throw this.classify(error);
    }
  }

  async isAncestor(ancestor: string, descendant: string): Promise<boolean> {
    try {
      const { data } = await this.#octokit.rest.repos.compareCommitsWithBasehead({ owner: this.owner, repo: this.repo, basehead: `${ancestor}...${descendant}`, per_page: 1 });
      return data.status === 'ahead' || data.status === 'identical';
    } catch (error) {
      if (httpError(error)?.status === 404) return false;
      throw this.classify(error);
    }
  }

  async openPullRequest(input: { branch: string; title: string; body: string }): Promise<PullRequest> {
    try {
      const { data } = await this.#octokit.rest.pulls.create({ owner: this.owner, repo: this.repo, head: input.branch, base: this.baseBranch, title: input.title, body: input.body });
      return this.toPullRequest(data);
    } catch (error) {
      const http = httpError(error);
      if (http?.status === 422 && says(http, 'A pull request already exists')) {
        const { data } = await this.#octokit.rest.pulls.list({ owner: this.owner, repo: this.repo, head: `${this.owner}:${input.branch}`, state: 'all', per_page: 10 });
        const existing = data.find((pr) => pr.head.ref === input.branch);
        if (existing) return this.toPullRequest(existing);
      }
      throw this.classify(error);
    }
  }

  async getPullRequest(number: number): Promise<PullRequest | undefined> {
    try {
      return this.toPullRequest(await this.readPull(number));
    } catch (error) {
      if (httpError(error)?.status === 404) return undefined;
      throw this.classify(error);
    }
  }

  /**
   * pulls.get as a conditional request: the PR reconciler polls every open pull request each
   * pass, and an unchanged one answers 304, which costs no primary rate limit (GitHub's REST
   * best practices). The last answer of each pull request is kept for that.
   */
  private async readPull(number: number): Promise<PullData> {
    const cached = this.#pulls.get(number);
    try {
      const response = await this.#octokit.rest.pulls.get({ owner: this.owner, repo: this.repo, pull_number: number, ...(cached ? { headers: { 'if-none-match': cached.etag } } : {}) });
      const etag = response.headers.etag;
      if (this.#pulls.size > 1000) this.#pulls.clear();
      if (etag) this.#pulls.set(number, { etag, data: response.data });
      return response.data;
    } catch (error) {
      if (cached && httpError(error)?.status === 304) return cached.data;
      throw error;
    }
  }

  /**
   * pulls.get first: `mergeable` is null while GitHub computes it, false with mergeable_state
   * `dirty` on a conflict; `blocked` (required reviews or checks), `behind` and `draft` are
   * refused by pulls.merge too. A conflict is never sent to pulls.merge; with onlyWhenReady
   * nothing that GitHub would refuse is. pulls.merge answers 405 when it will not merge (yet)
   * and 409 when the head moved past the sha we read: both are worth another try later.
   */
  async mergePullRequest(number: number, options: { onlyWhenReady?: boolean; mergedBy?: string } = {}): Promise<PullRequest> {
    let pr;
    try {
      pr = await this.readPull(number);
    } catch (error) {
      throw this.classify(error);
    }
    if (pr.merged_at) return this.toPullRequest(pr);
    if (pr.state !== 'open') throw new RepositoryRejectedError(`pull request #${number} of ${this.owner}/${this.repo} is closed`);
    if (pr.mergeable === false && pr.mergeable_state === 'dirty') {
      throw new PullRequestNotMergeableError(number, 'conflict', `GitHub reports merge conflicts of ${pr.head.ref} with ${this.baseBranch} (mergeable_state dirty)`);
    }
    if (pr.mergeable === true && pr.mergeable_state === 'behind') {
      // A protected base that requires branches to be up to date refuses it until then, for ever
      // if nobody acts: bring the branch up to date (GitHub merges the base into it) and wait for
      // its checks; a later pass merges it. A head that moved meanwhile is left for that pass.
      await this.#octokit.rest.pulls.updateBranch({ owner: this.owner, repo: this.repo, pull_number: number, expected_head_sha: pr.head.sha }).catch((error: unknown) => {
        if (httpError(error)?.status !== 422) throw this.classify(error);
      });
      throw new PullRequestNotMergeableError(number, 'waiting', `GitHub reports ${pr.head.ref} behind ${this.baseBranch} (mergeable_state behind); the service brought it up to date, and merges it once its checks pass`);
    }
    if (options.onlyWhenReady && (pr.mergeable !== true || NOT_READY_STATES.has(pr.mergeable_state))) {
      throw new PullRequestNotMergeableError(number, 'waiting', `GitHub reports mergeable ${String(pr.mergeable)}, mergeable_state ${pr.mergeable_state}`);
    }
    const refused: string[] = [];
    for (const method of [...this.#mergeMethods]) {
      try {
        const { data } = await this.#octokit.rest.pulls.merge({
          owner: this.owner,
          repo: this.repo,
          pull_number: number,
          merge_method: method,
          sha: pr.head.sha,
          ...(await this.mergeMessage(method, pr, options.mergedBy)),
        });
        this.#mergeMethods = [method, ...this.#mergeMethods.filter((m) => m !== method)];
        return { ...this.toPullRequest(pr), state: 'merged', mergeCommitSha: data.sha };
      } catch (error) {
        const http = httpError(error);
        // A method the repository's settings do not allow: not "not mergeable yet", the next method.
        if (http?.status === 405 && says(http, 'are not allowed on this repository')) {
          refused.push(`${method} (${http.response?.data?.message ?? http.message})`);
          continue;
        }
        if (http?.status === 405 || http?.status === 409) {
          throw new PullRequestNotMergeableError(number, 'waiting', `GitHub answered ${http.status} (${http.response?.data?.message ?? http.message}; mergeable_state ${pr.mergeable_state})`, { cause: error });
        }
        throw this.classify(error);
      }
    }
    throw new PullRequestNotMergeableError(
      number,
      'conflict',
      `${this.owner}/${this.repo} allows none of the merge methods the service may use: ${refused.join('; ')}. Allow one in the repository's settings (Pull Requests), or set GITHUB_MERGE_METHODS`,
    );
  }

  /**
   * Who asked for the merge, as a trailer (merge-a-pull-request: `commit_message` is "extra detail
   * to append to automatic commit message"). A merge commit's message is then GitHub's title and
   * the trailer; a squash commit's body is `commit_message` alone, so it repeats the head
   * commit's message (its Change-Id trailers) before the trailer; a rebase keeps each commit's
   * own message, and nothing is added.
   */
  private async mergeMessage(method: MergeMethod, pr: PullData, mergedBy: string | undefined): Promise<{ commit_message?: string }> {
    if (!mergedBy || method === 'rebase') return {};
    const trailer = mergedByTrailer(mergedBy);
    if (method === 'merge') return { commit_message: `${pr.title}\n\n${trailer}` };
    const { data } = await this.#octokit.rest.git.getCommit({ owner: this.owner, repo: this.repo, commit_sha: pr.head.sha });
    return { commit_message: `${data.message.trimEnd()}\n${trailer}` };
  }

  /**
   * pulls.get; when open, the comments listed (100 a page) unless a comment with this
   * comment's marker is already there, issues.createComment, then pulls.update with state
   * closed: four calls, three on a retry whose comment was posted, one for a pull request
   * already closed or merged. The comment carries a hidden marker (an HTML comment naming a
   * digest of its text), and the listing looks for the marker rather than an equal body: it
   * does not depend on GitHub giving the body back byte for byte, and a person's comment with
   * the same words does not stand in for ours. A 422 from the close (GitHub refuses to change a
   * pull request merged meanwhile) is answered by reading it again.
   */
  async closePullRequest(number: number, comment: string): Promise<PullRequest> {
    const target = { owner: this.owner, repo: this.repo };
    try {
      const { data: pr } = await this.#octokit.rest.pulls.get({ ...target, pull_number: number });
      if (pr.state !== 'open') return this.toPullRequest(pr);
      const marker = closingMarker(comment);
      if (!(await this.hasCommentWith(number, marker))) {
        const body = `${comment}\n\n${marker}`;
        await this.#octokit.rest.issues.createComment({ ...target, issue_number: number, body });
      }
      try {
        const { data } = await this.#octokit.rest.pulls.update({ ...target, pull_number: number, state: 'closed' });
        return this.toPullRequest(data);
      } catch (error) {
        if (httpError(error)?.status !== 422) throw error;
        const { data: now } = await this.#octokit.rest.pulls.get({ ...target, pull_number: number });
        if (now.state !== 'open') return this.toPullRequest(now);
        throw error;
      }
    } catch (error) {
      throw this.classify(error);
    }
  }

  /** Whether a comment on the pull request holds `marker`; stops at the page that has it. */
  private async hasCommentWith(number: number, marker: string): Promise<boolean> {
    const pages = this.#octokit.paginate.iterator(this.#octokit.rest.issues.listComments, {
      owner: this.owner,
      repo: this.repo,
      issue_number: number,
      per_page: 100,
    });
    for await (const { data } of pages) if (data.some((c) => c.body?.includes(marker))) return true;
    return false;
  }

  async history(input: { pathPrefix: string; limit: number; cursor?: string }): Promise<HistoryPage> {
    try {
      const { data } = await this.#octokit.rest.repos.listCommits({
        owner: this.owner,
        repo: this.repo,
        sha: input.cursor ?? this.baseBranch,
        path: input.pathPrefix.replace(/\/$/, ''),
        per_page: Math.min(100, input.limit + 1),
      });
      const commits = data
        .filter((c) => c.parents.length < 2)
        .map((c) => ({
          sha: c.sha,
          message: c.commit.message,
          author: { name: c.commit.author?.name ?? '', email: c.commit.author?.email ?? '' },
          authoredAt: c.commit.author?.date ?? '',
          trailers: parseTrailers(c.commit.message),
        }));
      return { commits: commits.slice(0, input.limit), nextCursor: data.length > input.limit ? data[input.limit]!.sha : undefined };
    } catch (error) {
      throw this.classify(error);
    }
  }

  /** See compareRange: one compare, then one call per commit for its paths (none for a single commit on `base`). */
  async compareCommits(base: string | undefined, head: string): Promise<CommitSummary[]> {
    try {
      return await compareRange({ octokit: this.#octokit, owner: this.owner, repo: this.repo, maxCommits: this.#maxCompareCommits }, base, head);
    } catch (error) {
      throw this.classify(error);
    }
  }

  /** See readDirectoriesAt: one GraphQL query for up to 50 directories of ordinary depth. */
  async readDirectories(commit: string, dirs: string[]): Promise<Map<string, Map<string, string>>> {
    if (dirs.length === 0) return new Map();
    try {
      return await readDirectoriesAt({ octokit: this.#octokit, owner: this.owner, repo: this.repo }, commit, dirs);
    } catch (error) {
      throw this.classify(error);
    }
  }

  private toPullRequest(pr: { number: number; html_url: string; head: { ref: string; sha: string }; state: string; merged_at?: string | null; merge_commit_sha?: string | null }): PullRequest {
    const merged = Boolean(pr.merged_at);
    return {
      number: pr.number,
      url: pr.html_url,
      branch: pr.head.ref,
      state: merged ? 'merged' : pr.state === 'open' ? 'open' : 'closed',
      headSha: pr.head.sha,
      mergeCommitSha: merged ? (pr.merge_commit_sha ?? undefined) : undefined,
    };
  }

  private remember(commit: string, tree: string): void {
    if (this.#trees.size > 1000) this.#trees.clear();
    this.#trees.set(commit, tree);
  }

  /**
   * 4xx that retrying cannot fix are terminal; 5xx, 429 and network errors are transient.
   * GraphQL answers 200 with `errors`: RATE_LIMITED is transient (the throttling plugin
   * waits it out first), any other type (NOT_FOUND, a query GitHub refuses) is terminal.
   */
  private classify(error: unknown): Error {
    if (error instanceof RepositoryRejectedError) return error;
    const graphqlErrors = (error as { name?: unknown; errors?: { type?: string; message?: string }[] }).errors;
    if ((error as { name?: unknown }).name === 'GraphqlResponseError' && Array.isArray(graphqlErrors) && !graphqlErrors.some((e) => e.type === 'RATE_LIMITED')) {
      return new RepositoryRejectedError(`GitHub GraphQL refused a read of ${this.owner}/${this.repo}: ${graphqlErrors.map((e) => e.message).join('; ')}`, { cause: error });
    }
    const http = httpError(error);
    const limited = http ? rateLimitRetryAt(http) : undefined;
    if (limited) {
      return new BackendRateLimitedError(`GitHub's rate limit for ${this.owner}/${this.repo}: ${http!.response?.data?.message ?? http!.message}; waiting until ${limited.toISOString()}`, limited, { cause: error });
    }
    // GitHub's transient ref race ("Reference update failed", also on a 422): another try helps.
    if (http?.status === 422 && says(http, 'Reference update failed')) return error instanceof Error ? error : new Error(String(error));
    if (http && http.status >= 400 && http.status < 500 && http.status !== 429 && http.status !== 409) {
      return new RepositoryRejectedError(`GitHub answered ${http.status} for ${this.owner}/${this.repo}: ${http.response?.data?.message ?? http.message}`, { cause: error });
    }
    return error instanceof Error ? error : new Error(String(error));
  }
}

/** Hidden in rendered Markdown; names the comment's text, so a different reason is a new comment. */
function closingMarker(comment: string): string {
  return `<!-- control-plane:closing-comment ${createHash('sha256').update(comment).digest('hex').slice(0, 16)} -->`;
}
