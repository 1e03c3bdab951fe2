/**
 * The GitOps repository as the rest of the service sees it. One implementation per backend
 * (`local/`, `github/`), identical method names; callers never know which one they hold.
 * Every write is idempotent when retried with the same arguments (the change worker is
 * at-least-once): a branch or pull request that already exists is adopted, not duplicated.
 */
export interface GitopsRepository {
  readonly driver: 'local' | 'github';
  readonly baseBranch: string;
  /** Readiness: the repository answers and its base branch exists. Throws otherwise. */
  ping(): Promise<void>;
  /** The commit a branch points at, or undefined when there is no such branch. */
  getBranch(branch: string): Promise<string | undefined>;
  /**
   * Writes a commit whose tree is `parent`'s tree with `changes` applied in order, and returns
   * its id. A delete removes a file or a whole directory (and what earlier changes wrote below
   * it); deleting a path `parent` lacks is not an error. Writes below a directory deleted
   * earlier in the list start from an empty directory: delete, then write, is a replace.
   * No ref moves. Cost grows with the changed paths, not with the repository.
   */
  createCommit(input: { parent: string; changes: FileChange[]; message: string }): Promise<string>;
  /** Creates `branch` at `sha`; if the branch already exists, returns the commit it points at. */
  createBranch(branch: string, sha: string): Promise<string>;
  /**
   * Moves `branch` from `expected` to `sha` (compare-and-swap; fast-forward only unless
   * `force`). Throws BranchMovedError when the branch is no longer at `expected`.
   */
  updateBranch(branch: string, sha: string, options: { expected: string; force?: boolean }): Promise<void>;
  /** Removes a branch; one that does not exist is not an error. */
  deleteBranch(branch: string): Promise<void>;
  /** Whether `ancestor` is reachable from `descendant` (or equal to it). */
  isAncestor(ancestor: string, descendant: string): Promise<boolean>;
  /** Opens a pull request from `branch` into the base branch, or returns the one already open for it. */
  openPullRequest(input: { branch: string; title: string; body: string }): Promise<PullRequest>;
  /** The pull request as the backend sees it now, or undefined when there is none (the PR reconciler polls this). */
  getPullRequest(number: number): Promise<PullRequest | undefined>;
  /**
   * Merges an open pull request as a reviewer would; returns it merged (a merged one as it is).
   * Throws PullRequestNotMergeableError when the backend will not merge it now. With
   * `onlyWhenReady` no merge is attempted while the backend says it would refuse (checks or
   * reviews outstanding), so a poller spends no write on it. `mergedBy` (one line: who asked
   * for the merge, e.g. "Ada Lovelace <ada@example.org> (subject)") becomes a `Merged-By`
   * trailer of the merge commit.
   */
  mergePullRequest(number: number, options?: { onlyWhenReady?: boolean; mergedBy?: string }): Promise<PullRequest>;
  /**
   * Withdraws an open pull request: posts `comment` on it (say which change superseded it),
   * then closes it unmerged. Idempotent: a retry after a partial run posts the comment at
   * most once, and a pull request that is already closed or merged is returned as it is,
   * without a comment (the caller decides what a merge it lost the race to means).
   */
  closePullRequest(number: number, comment: string): Promise<PullRequest>;
  /**
   * Commits on the base branch that touched `pathPrefix`, newest first, merge commits left out
   * (what a merge brings is listed as the commits it brings). `cursor` is the commit to start
   * from (a nextCursor, or any commit of the base branch the caller has checked is one).
   */
  history(input: { pathPrefix: string; limit: number; cursor?: string }): Promise<HistoryPage>;
  /**
   * How the base branch moved from `base` to `head`: the commits reachable from `head` and not
   * from `base`, oldest first, each with the paths it touched against its first parent. With
   * `base` undefined, only `head` itself (against its first parent). Convergence reads this
   * to learn which tenant paths moved and which commits nobody asked the service for.
   */
  compareCommits(base: string | undefined, head: string): Promise<CommitSummary[]>;
  /**
   * The files below each of `dirs` at `commit`, by full path (recursively). A directory that
   * does not exist at `commit` maps to an empty map. Content is UTF-8 text.
   */
  readDirectories(commit: string, dirs: string[]): Promise<Map<string, Map<string, string>>>;
}

/** One commit of the base branch, as convergence needs it. */
export interface CommitSummary {
  sha: string;
  message: string;
  author: { name: string; email: string };
  authoredAt: string;
  trailers: Record<string, string[]>;
  /** Paths of files the commit added, modified or removed (against its first parent). */
  paths: string[];
}

/** A file to commit: a path relative to the repository root and its full content. */
export interface RepositoryFile {
  path: string;
  content: string;
}

/**
 * One path a change writes (full content) or removes (a file or a whole directory). A delete
 * says `directory` when it names one: GitHub deletes files only, so the github driver lists a
 * directory's files first (and only then: a file delete costs no read).
 */
export type FileChange = { path: string; content: string } | { path: string; delete: true; directory?: true };

/** Neutral view of a pull request (or, for the local driver, a reviewed branch). */
export interface PullRequest {
  number: number;
  url: string;
  branch: string;
  state: 'open' | 'merged' | 'closed';
  headSha: string;
  mergeCommitSha: string | undefined;
}

export interface HistoryCommit {
  sha: string;
  message: string;
  author: { name: string; email: string };
  authoredAt: string;
  /** Parsed `Key: value` trailers, each key with every value it has (in order). */
  trailers: Record<string, string[]>;
}

export interface HistoryPage {
  commits: HistoryCommit[];
  /** Pass back as `cursor` for the next (older) page; undefined on the last page. */
  nextCursor: string | undefined;
}

/** The branch moved under us (another writer won the race); re-read and retry. */
export class BranchMovedError extends Error {
  readonly branch: string;
  constructor(branch: string, detail: string) {
    super(`branch ${branch} moved: ${detail}`);
    this.name = 'BranchMovedError';
    this.branch = branch;
  }
}

/**
 * The backend refused the change for a reason retrying cannot fix (a protected branch, a
 * pre-receive hook, a validation error); the change is marked failed with this reason.
 */
export class RepositoryRejectedError extends Error {
  constructor(detail: string, options: { cause?: unknown } = {}) {
    super(detail, options);
    this.name = 'RepositoryRejectedError';
  }
}

/**
 * The backend refused the call for its rate limit: nothing is wrong with the change, which waits
 * until `retryAt` (the backend's reset or retry-after) and is not failed however long it waits.
 */
export class BackendRateLimitedError extends Error {
  readonly retryAt: Date;
  constructor(detail: string, retryAt: Date, options: { cause?: unknown } = {}) {
    super(detail, options);
    this.name = 'BackendRateLimitedError';
    this.retryAt = retryAt;
  }
}

/**
 * The backend will not merge the pull request now. `waiting`: retrying later can help
 * (mergeability still being computed, required checks or reviews pending, the head moved
 * under the merge). `conflict`: it conflicts with the base branch, and only a person
 * (a rebase, a fix on the branch) can make it mergeable.
 */
export class PullRequestNotMergeableError extends Error {
  readonly number: number;
  readonly reason: 'waiting' | 'conflict';
  constructor(number: number, reason: 'waiting' | 'conflict', detail: string, options: { cause?: unknown } = {}) {
    super(`pull request #${number} ${reason === 'conflict' ? 'conflicts with the base branch' : 'is not mergeable yet'}: ${detail}`, options);
    this.name = 'PullRequestNotMergeableError';
    this.number = number;
    this.reason = reason;
  }
}

/** How an attempt to merge ended, for metrics and for what the service records. */
export type MergeAttemptOutcome = 'merged' | 'waiting' | 'conflict' | 'error';

export function mergeFailureOutcome(error: unknown): Exclude<MergeAttemptOutcome, 'merged'> {
  return error instanceof PullRequestNotMergeableError ? error.reason : 'error';
}

/**
 * The merge commit trailer naming who asked for a merge (mergePullRequest's `mergedBy`), kept to
 * one line so a name cannot add a trailer of its own.
 */
export function mergedByTrailer(mergedBy: string): string {
  return `Merged-By: ${mergedBy.replace(/[\r\n]+/g, ' ')}`;
}

/** Parses trailers from the last paragraph of a commit message (`Key: value` lines). */
export function parseTrailers(message: string): Record<string, string[]> {
  const paragraphs = message.trimEnd().split(/\n\s*\n/);
  const last = paragraphs.length > 1 ? paragraphs[paragraphs.length - 1]! : '';
  const trailers: Record<string, string[]> = {};
  for (const line of last.split('\n')) {
    const match = /^([A-Za-z0-9-]+): (.*)$/.exec(line);
    if (!match) return {};
    (trailers[match[1]!] ??= []).push(match[2]!);
  }
  return trailers;
}

/**
 * The trailer block split into one group per change: the service writes `Batch-Id` once, then
 * for each change `Change-Id` first and that change's own trailers after it (commitMessage in
 * change-publisher.ts). Trailers before the first `Change-Id` are not in any group.
 */
export function changeTrailerGroups(message: string): Record<string, string>[] {
  const paragraphs = message.trimEnd().split(/\n\s*\n/);
  const last = paragraphs.length > 1 ? paragraphs[paragraphs.length - 1]! : '';
  const groups: Record<string, string>[] = [];
  for (const line of last.split('\n')) {
    const match = /^([A-Za-z0-9-]+): (.*)$/.exec(line);
    if (!match) return [];
    if (match[1] === 'Change-Id') groups.push({});
    const group = groups.at(-1);
    if (group && group[match[1]!] === undefined) group[match[1]!] = match[2]!;
  }
  return groups;
}
