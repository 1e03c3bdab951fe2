import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { executeGraphql, GraphqlRefusal } from './github-graphql-double.ts';
import { RateLimitEnforcer, type GithubLimits } from './github-rate-limits.ts';
import { serveOnLoopback } from './http.ts';

/**
 * A stand-in for api.github.com on a loopback port, holding one repository in memory with
 * git-like semantics (trees, commits, refs, pull requests, merges, compare, path history,
 * contents listings).
 * Every request is checked against GitHub's published OpenAPI description
 * (@octokit/openapi): the method and path must be an operation, query names must be declared,
 * and a JSON body must match the operation's request schema. Violations are recorded (and
 * answered 404/422) so a spec can assert there were none. Every call is counted.
 * Where GitHub documents a limit, the double enforces it (each rule cites where it is
 * written); where GitHub leaves a behaviour undocumented, the double answers something a
 * driver must not rely on. POST /graphql is served by github-graphql-double.ts.
 */
const SPEC_FILE = path.resolve(import.meta.dirname, '../../node_modules/@octokit/openapi/generated/api.github.com.json');

interface Operation {
  method: string;
  template: string;
  regex: RegExp;
  literals: number;
  queryNames: Set<string>;
  validateBody: ValidateFunction | undefined;
}

interface OpenApiDocument {
  paths: Record<string, Record<string, { parameters?: ({ $ref?: string; name?: string; in?: string })[]; requestBody?: { content?: Record<string, unknown> } }>>;
  components: { parameters: Record<string, { name: string; in: string }> };
}

let operationsCache: Operation[] | undefined;

function loadOperations(): Operation[] {
  if (operationsCache) return operationsCache;
  const document = JSON.parse(fs.readFileSync(SPEC_FILE, 'utf8')) as OpenApiDocument;
  const ajv = new Ajv({ strict: false, validateFormats: false, validateSchema: false, allErrors: true });
  ajv.addSchema(document as unknown as object, 'github');
  const operations: Operation[] = [];
  for (const [template, item] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
      const queryNames = new Set<string>();
      for (const parameter of operation.parameters ?? []) {
        const resolved = parameter.$ref ? document.components.parameters[parameter.$ref.split('/').pop()!]! : parameter;
        if (resolved.in === 'query' && resolved.name) queryNames.add(resolved.name);
      }
      const hasJsonBody = Boolean(operation.requestBody?.content?.['application/json']);
      const pointer = `github#/paths/${template.replace(/~/g, '~0').replace(/\//g, '~1')}/${method}/requestBody/content/application~1json/schema`;
      let compiled: ValidateFunction | undefined;
      operations.push({
        method: method.toUpperCase(),
        template,
        regex: new RegExp(`^${template.replace(/\{[^}]+\}/g, '([^/]+)')}$`),
        literals: template.split('/').filter((s) => s && !s.startsWith('{')).length,
        queryNames,
        // Compiled on first use: the document has hundreds of operations.
        get validateBody() {
          if (!hasJsonBody) return undefined;
          return (compiled ??= ajv.compile({ $ref: pointer }));
        },
      });
    }
  }
  operations.sort((a, b) => b.literals - a.literals);
  return (operationsCache = operations);
}

type Tree = Map<string, string>;
interface Commit {
  sha: string;
  tree: string;
  parents: string[];
  message: string;
  order: number;
  date: string;
  author: { name: string; email: string };
}
interface Pull {
  number: number;
  head: string;
  base: string;
  title: string;
  body: string;
  state: 'open' | 'closed';
  mergedAt: string | null;
  mergeCommitSha: string | null;
  /** The head when it was closed or merged: GitHub keeps reporting it, and reopens only from it. */
  closedHeadSha: string | null;
  /** Reads of this pull that still answer mergeable null, as GitHub does while it computes. */
  pendingPolls: number;
}

export interface IssueComment {
  id: number;
  body: string;
  createdAt: string;
}

export interface RecordedCall {
  method: string;
  route: string;
  status: number;
}

export interface GithubDouble {
  url: string;
  owner: string;
  repo: string;
  calls: RecordedCall[];
  violations: string[];
  pulls: Pull[];
  /** The issue comments on pull request `number`, oldest first. */
  comments(number: number): IssueComment[];
  branch(name: string): string | undefined;
  /**
   * A person deletes `name` (the branch's "Delete" button, or `git push --delete`). GitHub then
   * closes the open pull requests whose head it was ("if we force delete it the PR gets
   * closed", comit-network/comit-rs#3102).
   */
  deleteBranch(name: string): void;
  files(ref: string): Map<string, string>;
  commit(sha: string): Commit | undefined;
  /** Commits `tree` on top of `parents` as `author` (an engineer's push or a merge made outside the driver). */
  addCommit(input: { parents: string[]; files: Map<string, string>; message: string; author?: { name: string; email: string } }): string;
  /** A person's push: moves (or creates) branch `name` to `sha`, outside any rate limit of ours. */
  pushBranch(name: string, sha: string): void;
  /** Answers the next `times` calls of `method route` with `status` (a GitHub error body). */
  failNext(method: string, route: string, status: number, times?: number, message?: string): void;
  /**
   * Answers the next `times` calls of `method route` as GitHub answers a request past a rate
   * limit (docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api): primary,
   * 403 with x-ratelimit-remaining 0 and x-ratelimit-reset (epoch seconds) `seconds` from now;
   * secondary, 403 with retry-after `seconds` and "You have exceeded a secondary rate limit".
   */
  rateLimitNext(method: string, route: string, kind: 'primary' | 'secondary', seconds: number, times?: number): void;
  /**
   * Pull requests opened from now on answer `mergeable: null, mergeable_state: "unknown"` to
   * their first `polls` reads (GET of the pull), and pulls.merge refuses them with 405 until then.
   */
  mergeableAfterPolls(polls: number): void;
  resetCalls(): void;
  /** The rate limits' bookkeeping: what was refused, what ignored a retry-after, writes spent (undefined with `limits: false`). */
  limits: RateLimitEnforcer | undefined;
  close(): Promise<void>;
}

/** The `query` of a GraphQL request body, '' when it has none. */
function graphqlQuery(chunks: Buffer[]): string {
  try {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { query?: unknown };
    return typeof body.query === 'string' ? body.query : '';
  } catch {
    return '';
  }
}

const hash = (value: unknown) => createHash('sha1').update(JSON.stringify(value)).digest('hex');

/** Who commits when a request names nobody: the token's user, as GitHub does. */
const TOKEN_USER = { name: 'control-plane', email: 'control-plane@users.noreply.github.com' };

export async function startGithubDouble(
  options: {
    owner?: string;
    repo?: string;
    initialFiles?: Record<string, string>;
    graphqlTextLimit?: number;
    /**
     * GitHub's primary and secondary rate limits (github-rate-limits.ts), enforced by default
     * with GitHub's numbers; `false` only where a spec counts calls of a client that has no
     * pacing of its own to compare (and says so).
     */
    limits?: Partial<GithubLimits> | false;
    /** The clock the limits count on (ms): a benchmark compresses time through it. */
    clock?: () => number;
    /** The repository's allowed merge methods (Settings → Pull Requests; allow_merge_commit, allow_squash_merge, allow_rebase_merge). */
    mergeMethods?: ('merge' | 'squash' | 'rebase')[];
    /** Branch protection "Require branches to be up to date before merging" on the base branch. */
    requireUpToDate?: boolean;
  } = {},
): Promise<GithubDouble> {
  const owner = options.owner ?? 'gsv';
  const repo = options.repo ?? 'gsv-gitops';
  const operations = loadOperations();
  const trees = new Map<string, Tree>();
  const commits = new Map<string, Commit>();
  const refs = new Map<string, string>();
  const pulls: Pull[] = [];
  const comments = new Map<number, IssueComment[]>();
  let commentIds = 0;
  const calls: RecordedCall[] = [];
  const violations: string[] = [];
  const failures: { method: string; route: string; status: number; times: number; headers?: Record<string, string>; message?: string }[] = [];
  let order = 0;
  let pendingPollsOfNewPulls = 0;
  const enforcer = options.limits === false ? undefined : new RateLimitEnforcer(options.limits, options.clock);

  const blobs = new Map<string, string>();
  let listeningUrl = '';
  const putTree = (tree: Tree) => {
    for (const content of tree.values()) blobs.set(hash(content), content);
    const sha = hash([...tree].sort());
    trees.set(sha, tree);
    return sha;
  };
  const putCommit = (tree: string, parents: string[], message: string, author = TOKEN_USER) => {
    order += 1;
    const sha = hash({ tree, parents, message, order });
    commits.set(sha, { sha, tree, parents, message, order, author, date: new Date(Date.UTC(2026, 0, 1, 0, 0, order)).toISOString() });
    return sha;
  };
  const ancestors = (sha: string): Set<string> => {
    const seen = new Set<string>();
    const stack = [sha];
    while (stack.length) {
      const next = stack.pop()!;
      if (seen.has(next) || !commits.has(next)) continue;
      seen.add(next);
      stack.push(...commits.get(next)!.parents);
    }
    return seen;
  };
  const treeOf = (commit: string) => trees.get(commits.get(commit)!.tree)!;
  /** The files of a flat tree at `path` or below it. */
  const filesBelow = (tree: Tree, path: string) => [...tree.keys()].filter((key) => key === path || key.startsWith(`${path}/`));
  refs.set('heads/main', putCommit(putTree(new Map(Object.entries(options.initialFiles ?? { 'README.md': '# gsv-gitops\n' }))), [], 'Initialize'));

  const resolve = (ref: string) => refs.get(ref) ?? (commits.has(ref) ? ref : undefined);
  const newestFirst = (shas: Iterable<string>) => [...shas].sort((x, y) => commits.get(y)!.order - commits.get(x)!.order);
  const mergeBaseOf = (a: string, b: string) => {
    const of = ancestors(b);
    return newestFirst([...ancestors(a)].filter((c) => of.has(c)))[0];
  };
  /**
   * Changed files from one flat tree to another, as GitHub lists them. GitHub detects renames
   * ("files with a renamed status have a previous_filename field", compare-commits in
   * @octokit/openapi), so a removed and an added path with the same content are one entry.
   */
  const diffFiles = (from: Tree, to: Tree) => {
    const removed = [...from.keys()].filter((k) => !to.has(k));
    const files: { filename: string; status: string; previous_filename?: string; sha: string; additions: number; deletions: number; changes: number }[] = [];
    for (const key of [...new Set([...from.keys(), ...to.keys()])].sort()) {
      if (from.get(key) === to.get(key) || !to.has(key)) continue;
      const renamedFrom = from.has(key) ? undefined : removed.find((r) => from.get(r) === to.get(key));
      if (renamedFrom !== undefined) removed.splice(removed.indexOf(renamedFrom), 1);
      const status = renamedFrom !== undefined ? 'renamed' : from.has(key) ? 'modified' : 'added';
      files.push({ filename: key, status, ...(renamedFrom !== undefined ? { previous_filename: renamedFrom } : {}), sha: hash(to.get(key)), additions: 0, deletions: 0, changes: 0 });
    }
    for (const key of removed) files.push({ filename: key, status: 'removed', sha: hash(from.get(key)), additions: 0, deletions: 0, changes: 0 });
    return files.sort((a, b) => (a.filename < b.filename ? -1 : 1));
  };
  const commitJson = (commit: Commit) => {
    const url = `https://api.github.com/repos/${owner}/${repo}/commits/${commit.sha}`;
    const who = { ...commit.author, date: commit.date };
    return {
      sha: commit.sha,
      node_id: `C_${commit.sha.slice(0, 12)}`,
      url,
      html_url: `https://github.com/${owner}/${repo}/commit/${commit.sha}`,
      comments_url: `${url}/comments`,
      commit: { url, message: commit.message, author: who, committer: who, tree: { sha: commit.tree, url }, comment_count: 0 },
      author: null,
      committer: null,
      parents: commit.parents.map((p) => ({ sha: p, url: `https://api.github.com/repos/${owner}/${repo}/commits/${p}` })),
    };
  };
  /** per_page as GitHub's parameter declares it: "The number of results per page (max 100)", default 30. */
  const perPage = (query: URLSearchParams, route: string) => {
    const value = Number(query.get('per_page') ?? 30);
    if (!Number.isInteger(value) || value < 1 || value > 100) violations.push(`${route}: per_page ${query.get('per_page')} is outside 1..100`);
    return Math.min(100, Math.max(1, value));
  };
  /** The tree of merging the pull's head into its base, or undefined when they conflict. */
  const mergeTree = (pull: Pull): Tree | undefined => {
    const base = refs.get(`heads/${pull.base}`)!;
    const head = refs.get(`heads/${pull.head}`)!;
    // Three-way merge of flat trees: take the head's side of every path the head changed.
    const headAncestors = ancestors(head);
    const mergeBase = [...ancestors(base)].filter((c) => headAncestors.has(c)).sort((x, y) => commits.get(y)!.order - commits.get(x)!.order)[0]!;
    const [b, h, m] = [treeOf(base), treeOf(head), treeOf(mergeBase)];
    const merged = new Map(b);
    for (const key of new Set([...h.keys(), ...m.keys()])) {
      if (h.get(key) === m.get(key)) continue;
      if (b.get(key) !== m.get(key) && b.get(key) !== h.get(key)) return undefined;
      if (h.has(key)) merged.set(key, h.get(key)!);
      else merged.delete(key);
    }
    return merged;
  };
  const mergeability = (pull: Pull) => {
    if (pull.state !== 'open') return { mergeable: null, mergeable_state: 'unknown' };
    if (pull.pendingPolls > 0) return { mergeable: null, mergeable_state: 'unknown' };
    if (!mergeTree(pull)) return { mergeable: false, mergeable_state: 'dirty' };
    // "behind": "the merge is blocked due to the head branch being out of date" (GitHub's
    // mergeable_state values): only where the base requires branches to be up to date.
    return { mergeable: true, mergeable_state: options.requireUpToDate && behind(pull) ? 'behind' : 'clean' };
  };
  const pullJson = (pull: Pull) => ({
    ...mergeability(pull),
    number: pull.number,
    html_url: `https://github.com/${owner}/${repo}/pull/${pull.number}`,
    state: pull.state,
    title: pull.title,
    body: pull.body,
    head: {
      ref: pull.head,
      sha: (pull.state === 'open' ? undefined : pull.closedHeadSha) ?? refs.get(`heads/${pull.head}`) ?? '',
    },
    base: { ref: pull.base, sha: refs.get(`heads/${pull.base}`) ?? '' },
    merged_at: pull.mergedAt,
    merge_commit_sha: pull.mergeCommitSha,
  });
  const behind = (pull: Pull) => !ancestors(refs.get(`heads/${pull.head}`)!).has(refs.get(`heads/${pull.base}`)!);
  const closePull = (pull: Pull) => {
    pull.state = 'closed';
    pull.closedHeadSha = refs.get(`heads/${pull.head}`) ?? pull.closedHeadSha;
  };
  const commentJson = (number: number, comment: IssueComment) => {
    const api = `https://api.github.com/repos/${owner}/${repo}`;
    return {
      id: comment.id,
      node_id: `IC_${comment.id}`,
      url: `${api}/issues/comments/${comment.id}`,
      html_url: `https://github.com/${owner}/${repo}/pull/${number}#issuecomment-${comment.id}`,
      issue_url: `${api}/issues/${number}`,
      body: comment.body,
      user: { login: TOKEN_USER.name, id: 1, type: 'Bot' },
      created_at: comment.createdAt,
      updated_at: comment.createdAt,
      author_association: 'NONE',
    };
  };
  const error = (status: number, message: string, errors?: { message: string }[]) => ({ status, body: { message, ...(errors ? { errors } : {}), documentation_url: 'https://docs.github.com/rest' } });

  type Body = Record<string, unknown>;
  type Answer = { status: number; body: unknown; headers?: Record<string, string> };
  /**
   * Pull request and comment bodies: GitHub refuses more than 65,536 characters with 422
   * "body is too long (maximum is 65536 characters)" (renovatebot/renovate#2032,
   * sorenlouv/backport#521). Counted in UTF-16 units, which is never fewer than GitHub's count.
   */
  const BODY_MAX = 65_536;
  const tooLong = (text: unknown): Answer | undefined =>
    typeof text === 'string' && text.length > BODY_MAX
      ? error(422, 'Validation Failed', [{ message: `body is too long (maximum is ${BODY_MAX} characters)` }])
      : undefined;
  const handlers: Record<string, (params: string[], query: URLSearchParams, body: Body) => Answer> = {
    'GET /repos/{owner}/{repo}/branches/{branch}': ([, , branch]) => {
      const sha = refs.get(`heads/${branch}`);
      if (!sha) return error(404, 'Branch not found');
      return { status: 200, body: { name: branch, commit: { sha, commit: { tree: { sha: commits.get(sha)!.tree }, message: commits.get(sha)!.message } }, protected: false } };
    },
    'GET /repos/{owner}/{repo}/git/ref/{ref}': ([, , ref]) => {
      const sha = refs.get(ref!);
      return sha ? { status: 200, body: { ref: `refs/${ref}`, object: { sha, type: 'commit' } } } : error(404, 'Not Found');
    },
    'GET /repos/{owner}/{repo}/git/commits/{commit_sha}': ([, , sha]) => {
      const commit = commits.get(sha!);
      return commit ? { status: 200, body: { sha, tree: { sha: commit.tree }, parents: commit.parents.map((p) => ({ sha: p })), message: commit.message } } : error(404, 'Not Found');
    },
    'POST /repos/{owner}/{repo}/git/trees': (_, __, body) => {
      const base = body.base_tree ? trees.get(String(body.base_tree)) : new Map<string, string>();
      if (!base) return error(422, 'base_tree is not a tree');
      const entries = body.tree as { path: string; sha?: string | null; content?: string }[];
      const deleted = entries.filter((entry) => entry.sha === null).map((entry) => entry.path);
      // GitHub documents that `sha: null` deletes a path and that deleting one that does not
      // exist is an error; what deleting D and writing below D in one call yields it does not
      // document, so a driver must not ask for it.
      for (const entry of entries) {
        const dir = deleted.find((path) => entry.path.startsWith(`${path}/`));
        if (dir !== undefined && entry.sha !== null) {
          violations.push(`POST /repos/{owner}/{repo}/git/trees: deletes ${dir} and writes ${entry.path} in one call (undocumented)`);
          return error(422, 'The double refuses an undocumented combination');
        }
      }
      // "If the value is null then the file will be deleted" (create-a-tree, `sha`): files only.
      // A directory path with `sha: null` is answered 422 GitRPC::BadObjectState on GitHub
      // (google/go-github#2418), as is a path that does not exist.
      for (const path of deleted) {
        if (!base.has(path)) {
          if (filesBelow(base, path).length > 0) violations.push(`POST /repos/{owner}/{repo}/git/trees: sha null on the directory ${path} (GitHub deletes files only)`);
          return error(422, 'GitRPC::BadObjectState');
        }
      }
      const tree = new Map(base);
      for (const entry of entries) {
        if (entry.content !== undefined) tree.set(entry.path, entry.content);
        else if (entry.sha === null) tree.delete(entry.path);
      }
      return { status: 201, body: { sha: putTree(tree), tree: [] } };
    },
    'GET /repos/{owner}/{repo}/contents/{path}': ([, , path], query) => {
      const ref = query.get('ref') ?? 'main';
      const commit = resolve(ref) ?? resolve(`heads/${ref}`);
      if (!commit) return error(404, `No commit found for the ref ${ref}`);
      const tree = treeOf(commit);
      const item = (itemPath: string, type: 'file' | 'dir') => {
        const url = `https://api.github.com/repos/${owner}/${repo}/contents/${itemPath}?ref=${ref}`;
        const content = tree.get(itemPath) ?? '';
        const sha = type === 'file' ? hash(content) : hash([...tree].filter(([key]) => key.startsWith(`${itemPath}/`)));
        const html = `https://github.com/${owner}/${repo}/${type === 'file' ? 'blob' : 'tree'}/${ref}/${itemPath}`;
        const git = `https://api.github.com/repos/${owner}/${repo}/git/${type === 'file' ? 'blobs' : 'trees'}/${sha}`;
        return { type, size: type === 'file' ? Buffer.byteLength(content) : 0, name: itemPath.split('/').pop()!, path: itemPath, sha, url, git_url: git, html_url: html, download_url: null, _links: { self: url, git, html } };
      };
      if (tree.has(path!)) return { status: 200, body: { ...item(path!, 'file'), encoding: 'base64', content: Buffer.from(tree.get(path!)!).toString('base64') } };
      const below = filesBelow(tree, path!);
      if (below.length === 0) return error(404, 'Not Found');
      const children = new Map<string, 'file' | 'dir'>();
      for (const key of below) {
        const [name, ...rest] = key.slice(path!.length + 1).split('/');
        children.set(`${path}/${name}`, rest.length ? 'dir' : 'file');
      }
      return { status: 200, body: [...children].sort(([a], [b]) => (a < b ? -1 : 1)).map(([childPath, type]) => item(childPath, type)) };
    },
    'POST /repos/{owner}/{repo}/git/commits': (_, __, body) => {
      if (!trees.has(String(body.tree))) return error(422, 'Tree SHA does not exist');
      const parents = (body.parents as string[]) ?? [];
      if (parents.some((p) => !commits.has(p))) return error(422, 'Parent SHA does not exist or is not a commit object');
      const sha = putCommit(String(body.tree), parents, String(body.message));
      return { status: 201, body: { sha, tree: { sha: body.tree }, parents: parents.map((p) => ({ sha: p })), message: body.message } };
    },
    'POST /repos/{owner}/{repo}/git/refs': (_, __, body) => {
      const ref = String(body.ref).replace(/^refs\//, '');
      if (refs.has(ref)) return error(422, 'Reference already exists');
      if (!commits.has(String(body.sha))) return error(422, 'Object does not exist');
      refs.set(ref, String(body.sha));
      return { status: 201, body: { ref: `refs/${ref}`, object: { sha: body.sha, type: 'commit' } } };
    },
    /**
     * delete-a-reference: 204; 422 "Reference does not exist" for one that does not. Deleting the
     * head branch of an open pull request closes it on GitHub: the driver must never do that,
     * so the double records it as a violation.
     */
    'DELETE /repos/{owner}/{repo}/git/refs/{ref}': ([, , ref]) => {
      if (!refs.has(ref!)) return error(422, 'Reference does not exist');
      const open = pulls.find((p) => p.state === 'open' && `heads/${p.head}` === ref);
      if (open) {
        violations.push(`DELETE /repos/{owner}/{repo}/git/refs/${ref}: the head of open pull request #${open.number} (GitHub closes it)`);
        closePull(open);
      }
      refs.delete(ref!);
      return { status: 204, body: '' };
    },
    'PATCH /repos/{owner}/{repo}/git/refs/{ref}': ([, , ref], __, body) => {
      const current = refs.get(ref!);
      if (!current) return error(422, 'Reference does not exist');
      if (!body.force && !ancestors(String(body.sha)).has(current)) return error(422, 'Update is not a fast forward');
      refs.set(ref!, String(body.sha));
      return { status: 200, body: { ref: `refs/${ref}`, object: { sha: body.sha, type: 'commit' } } };
    },
    /**
     * compare-commits (@octokit/openapi): commits reachable from head and not base, in
     * chronological order. "When calling this endpoint without any paging parameter
     * (per_page or page), the returned list is limited to 250 commits, and the last commit in
     * the list is the most recent"; with them it pages, and "the list of changed files is only
     * shown on the first page of results, and it includes up to 300 changed files for the
     * entire comparison". Files are the changes from the merge base to head.
     */
    'GET /repos/{owner}/{repo}/compare/{basehead}': ([, , basehead], query) => {
      const [a, b] = basehead!.split('...').map((r) => resolve(r!) ?? resolve(`heads/${r}`));
      if (!a || !b) return error(404, 'Not Found');
      const status = a === b ? 'identical' : ancestors(b).has(a) ? 'ahead' : ancestors(a).has(b) ? 'behind' : 'diverged';
      const [fromA, fromB] = [ancestors(a), ancestors(b)];
      const range = newestFirst([...fromB].filter((c) => !fromA.has(c))).reverse().map((c) => commits.get(c)!);
      const paged = query.has('per_page') || query.has('page');
      const page = Number(query.get('page') ?? 1);
      const size = paged ? perPage(query, 'GET /repos/{owner}/{repo}/compare/{basehead}') : 250;
      const listed = paged ? range.slice((page - 1) * size, page * size) : range.slice(-250);
      const mergeBase = mergeBaseOf(a, b);
      const files = page === 1 && mergeBase ? diffFiles(treeOf(mergeBase), treeOf(b)).slice(0, 300) : [];
      const behind = [...fromA].filter((c) => !fromB.has(c)).length;
      const compareUrl = `https://github.com/${owner}/${repo}/compare/${basehead}`;
      return {
        status: 200,
        body: {
          url: `https://api.github.com/repos/${owner}/${repo}/compare/${basehead}`,
          html_url: compareUrl,
          permalink_url: compareUrl,
          diff_url: `${compareUrl}.diff`,
          patch_url: `${compareUrl}.patch`,
          base_commit: commitJson(commits.get(a)!),
          merge_base_commit: commitJson(commits.get(mergeBase ?? a)!),
          status,
          ahead_by: range.length,
          behind_by: behind,
          total_commits: range.length,
          commits: listed.map(commitJson),
          files,
        },
      };
    },
    /**
     * get-commit (@octokit/openapi): "If there are more than 300 files in the commit diff ...
     * the response will include pagination link headers for the remaining files, up to a
     * limit of 3000 files." Files are against the only parent. What GitHub lists for a merge
     * commit it does not document, so the double lists none: a driver must not read them.
     */
    'GET /repos/{owner}/{repo}/commits/{ref}': ([, , ref], query) => {
      const sha = resolve(ref!) ?? resolve(`heads/${ref}`);
      if (!sha) return error(422, `No commit found for SHA: ${ref}`);
      const commit = commits.get(sha)!;
      const all = commit.parents.length > 1 ? [] : diffFiles(commit.parents[0] ? treeOf(commit.parents[0]) : new Map(), treeOf(sha)).slice(0, 3000);
      const page = Number(query.get('page') ?? 1);
      const files = all.slice((page - 1) * 300, page * 300);
      const headers: Record<string, string> = {};
      if (page * 300 < all.length) headers.link = `<${listeningUrl}/repos/${owner}/${repo}/commits/${sha}?page=${page + 1}>; rel="next"`;
      return { status: 200, body: { ...commitJson(commit), stats: { total: 0, additions: 0, deletions: 0 }, files }, headers };
    },
    'GET /repos/{owner}/{repo}/git/blobs/{file_sha}': ([, , sha]) => {
      const content = blobs.get(sha!);
      if (content === undefined) return error(404, 'Not Found');
      const url = `https://api.github.com/repos/${owner}/${repo}/git/blobs/${sha}`;
      return { status: 200, body: { sha, node_id: `B_${sha!.slice(0, 12)}`, size: Buffer.byteLength(content), url, content: Buffer.from(content).toString('base64'), encoding: 'base64' } };
    },
    'POST /repos/{owner}/{repo}/pulls': (_, __, body) => {
      const refused = tooLong(body.body);
      if (refused) return refused;
      const head = String(body.head);
      if (!refs.has(`heads/${head}`)) return error(422, 'Validation Failed', [{ message: `No commits between ${String(body.base)} and ${head}` }]);
      if (pulls.some((p) => p.head === head && p.state === 'open')) return error(422, 'Validation Failed', [{ message: `A pull request already exists for ${owner}:${head}.` }]);
      const pull: Pull = {
        number: pulls.length + 1,
        head,
        base: String(body.base),
        title: String(body.title),
        body: String(body.body ?? ''),
        state: 'open',
        mergedAt: null,
        mergeCommitSha: null,
        closedHeadSha: null,
        pendingPolls: pendingPollsOfNewPulls,
      };
      pulls.push(pull);
      return { status: 201, body: pullJson(pull) };
    },
    'GET /repos/{owner}/{repo}/pulls': (_, query) => {
      const head = query.get('head')?.split(':')[1];
      const state = query.get('state') ?? 'open';
      return { status: 200, body: pulls.filter((p) => (!head || p.head === head) && (state === 'all' || p.state === state)).map(pullJson) };
    },
    'GET /repos/{owner}/{repo}/pulls/{pull_number}': ([, , number]) => {
      const pull = pulls[Number(number) - 1];
      if (!pull) return error(404, 'Not Found');
      const body = pullJson(pull);
      pull.pendingPolls = Math.max(0, pull.pendingPolls - 1);
      return { status: 200, body };
    },
    /**
     * update-pull-request: `state` open or closed, title and body. Closing a closed one changes
     * nothing. GitHub refuses to reopen (422, errors[].field "state", "state cannot be
     * changed. …") a merged one (waffleio/waffle.io#2194), one whose head branch was deleted
     * ("The <branch> branch has been deleted.", pytorch/pytorch#114423) and one whose branch
     * was force-pushed or recreated since it was closed (cilium/cilium#47088); the double
     * also refuses a second open pull request for one head, as create-pull-request does. What
     * closing a merged one answers GitHub does not document: the double refuses it (422).
     */
    'PATCH /repos/{owner}/{repo}/pulls/{pull_number}': ([, , number], __, body) => {
      const pull = pulls[Number(number) - 1];
      if (!pull) return error(404, 'Not Found');
      const refused = tooLong(body.body);
      if (refused) return refused;
      const refuse = (reason: string) =>
        error(422, 'Validation Failed', [{ message: `state cannot be changed. ${reason}` }]);
      if (body.state === 'closed' && pull.mergedAt) return refuse('The pull request is merged.');
      if (body.state === 'open' && pull.state === 'closed') {
        const head = refs.get(`heads/${pull.head}`);
        if (pull.mergedAt) return refuse('The pull request is merged.');
        if (!head) return refuse(`The ${pull.head} branch has been deleted.`);
        if (pull.closedHeadSha && !ancestors(head).has(pull.closedHeadSha)) {
          return refuse(`The ${pull.head} branch was force-pushed or recreated.`);
        }
        if (pulls.some((p) => p !== pull && p.head === pull.head && p.state === 'open')) {
          const message = `A pull request already exists for ${owner}:${pull.head}.`;
          return error(422, 'Validation Failed', [{ message }]);
        }
        pull.state = 'open';
      }
      if (body.state === 'closed' && pull.state === 'open') closePull(pull);
      if (typeof body.title === 'string') pull.title = body.title;
      if (typeof body.body === 'string') pull.body = body.body;
      return { status: 200, body: pullJson(pull) };
    },
    /** create-an-issue-comment: every pull request is an issue, so its number takes comments. */
    'POST /repos/{owner}/{repo}/issues/{issue_number}/comments': ([, , number], __, body) => {
      const pull = pulls[Number(number) - 1];
      if (!pull) return error(404, 'Not Found');
      const refused = tooLong(body.body);
      if (refused) return refused;
      commentIds += 1;
      const createdAt = new Date(Date.UTC(2026, 0, 2, 0, 0, commentIds)).toISOString();
      const comment = { id: commentIds, body: String(body.body), createdAt };
      comments.set(pull.number, [...(comments.get(pull.number) ?? []), comment]);
      return { status: 201, body: commentJson(pull.number, comment) };
    },
    /**
     * list-issue-comments: "Issue comments are ordered by ascending ID", per_page (max 100,
     * default 30) and page, the next page named in a `link` header as GitHub pages.
     */
    'GET /repos/{owner}/{repo}/issues/{issue_number}/comments': ([, , number], query) => {
      const pull = pulls[Number(number) - 1];
      if (!pull) return error(404, 'Not Found');
      const size = perPage(query, 'GET /repos/{owner}/{repo}/issues/{issue_number}/comments');
      const page = Number(query.get('page') ?? 1);
      const all = comments.get(pull.number) ?? [];
      const headers: Record<string, string> = {};
      if (page * size < all.length) {
        const path = `/repos/${owner}/${repo}/issues/${pull.number}/comments`;
        const next = `${listeningUrl}${path}?per_page=${size}&page=${page + 1}`;
        headers.link = `<${next}>; rel="next"`;
      }
      const listed = all.slice((page - 1) * size, page * size).map((c) => commentJson(pull.number, c));
      return { status: 200, body: listed, headers };
    },
    'PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge': ([, , number], __, body) => {
      const pull = pulls[Number(number) - 1];
      if (!pull) return error(404, 'Not Found');
      if (pull.mergedAt) return error(405, 'Pull Request is not mergeable');
      // merge-a-pull-request: 405 "Method Not Allowed if merge cannot be performed"; a closed one cannot be.
      if (pull.state !== 'open') return error(405, 'Pull Request is not mergeable');
      if (pull.pendingPolls > 0) return error(405, 'Pull Request is not mergeable');
      const base = refs.get(`heads/${pull.base}`)!;
      const head = refs.get(`heads/${pull.head}`)!;
      if (body.sha !== undefined && body.sha !== head) return error(409, 'Head branch was modified. Review and try the merge again.');
      // A method the repository does not allow is 405 with GitHub's own wording (e.g.
      // "Merge commits are not allowed on this repository.", cli/cli#1290 and peter-evans/
      // enable-pull-request-automerge reports); merge_method defaults to "merge".
      const method = (body.merge_method as 'merge' | 'squash' | 'rebase' | undefined) ?? 'merge';
      const allowed = options.mergeMethods ?? ['merge', 'squash', 'rebase'];
      if (!allowed.includes(method)) {
        return error(405, `${{ merge: 'Merge commits', squash: 'Squash merges', rebase: 'Rebase merges' }[method]} are not allowed on this repository.`);
      }
      const merged = mergeTree(pull);
      if (!merged) return error(405, 'Pull Request is not mergeable');
      if (options.requireUpToDate && behind(pull)) return error(405, 'Head branch is not up to date with the base branch');
      const own = [...ancestors(head)].filter((c) => !ancestors(base).has(c)).sort((a, b) => commits.get(a)!.order - commits.get(b)!.order);
      let sha: string;
      // merge-a-pull-request: `commit_title` "Title for the automatic commit message",
      // `commit_message` "Extra detail to append to automatic commit message". GitHub's defaults:
      // a merge commit's body is the pull request's title; a squash's title is the pull
      // request's with its number, its body the commits' messages.
      const title = typeof body.commit_title === 'string' ? body.commit_title : undefined;
      const detail = typeof body.commit_message === 'string' ? body.commit_message : undefined;
      if (method === 'merge') sha = putCommit(putTree(merged), [base, head], `${title ?? `Merge pull request #${pull.number} from ${owner}/${pull.head}`}\n\n${detail ?? pull.title}`);
      // A squash is one commit on the base: the title and number, then the commits' messages.
      else if (method === 'squash') sha = putCommit(putTree(merged), [base], `${title ?? `${pull.title} (#${pull.number})`}\n\n${detail ?? own.map((c) => commits.get(c)!.message).join('\n\n')}`);
      else {
        // A rebase replays each commit of the branch on the base (the double gives each the final tree: only the last is read).
        sha = base;
        for (const c of own) sha = putCommit(putTree(merged), [sha], commits.get(c)!.message);
      }
      refs.set(`heads/${pull.base}`, sha);
      closePull(pull);
      pull.mergedAt = new Date().toISOString();
      pull.mergeCommitSha = sha;
      return { status: 200, body: { sha, merged: true, message: 'Pull Request successfully merged' } };
    },
    /**
     * update-a-pull-request-branch: merges the base into the head branch (202 "Updating pull
     * request branch."); 422 when expected_head_sha is not the head any more or the two conflict.
     */
    'PUT /repos/{owner}/{repo}/pulls/{pull_number}/update-branch': ([, , number], __, body) => {
      const pull = pulls[Number(number) - 1];
      if (!pull || pull.state !== 'open') return error(422, 'Validation Failed', [{ message: 'Pull request is not open' }]);
      const head = refs.get(`heads/${pull.head}`)!;
      if (body.expected_head_sha !== undefined && body.expected_head_sha !== head) return error(422, "expected head sha didn't match current head ref.");
      const merged = mergeTree(pull);
      if (!merged) return error(422, 'merge conflict between base and head');
      if (behind(pull)) refs.set(`heads/${pull.head}`, putCommit(putTree(merged), [head, refs.get(`heads/${pull.base}`)!], `Merge branch '${pull.base}' into ${pull.head}`));
      return { status: 202, body: { message: 'Updating pull request branch.', url: `https://github.com/${owner}/${repo}/pull/${pull.number}` } };
    },
    'GET /repos/{owner}/{repo}/commits': (_, query) => {
      const start = resolve(query.get('sha') ?? 'heads/main') ?? resolve(`heads/${query.get('sha')}`);
      if (!start) return error(404, 'Not Found');
      const prefix = query.get('path');
      const perPage = Number(query.get('per_page') ?? 30);
      const touches = (commit: Commit) => {
        if (!prefix) return true;
        const mine = trees.get(commit.tree)!;
        const parent = commit.parents[0] ? treeOf(commit.parents[0]) : new Map<string, string>();
        const keys = new Set([...mine.keys(), ...parent.keys()].filter((k) => k === prefix || k.startsWith(`${prefix}/`)));
        return [...keys].some((k) => mine.get(k) !== parent.get(k));
      };
      const list = [...ancestors(start)].map((s) => commits.get(s)!).sort((x, y) => y.order - x.order).filter(touches).slice(0, perPage);
      return {
        status: 200,
        // Each item as GitHub's commit object: the Git author (name, email, date) under `commit`.
        body: list.map((c) => ({ sha: c.sha, parents: c.parents.map((p) => ({ sha: p })), commit: { message: c.message, author: { ...c.author, date: c.date } } })),
      };
    },
  };

  /** GraphQL answers 200 with `errors` for a query it refuses, as GitHub does. */
  const answerGraphql = (chunks: Buffer[], answer: (status: number, body: unknown, route: string) => void) => {
    const route = 'POST /graphql';
    if (failures.some((f) => f.method === 'POST' && f.route === '/graphql' && f.times > 0)) {
      const failure = failures.find((f) => f.method === 'POST' && f.route === '/graphql' && f.times > 0)!;
      failure.times -= 1;
      return answer(failure.status, { message: 'Injected failure' }, route);
    }
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { query?: unknown; variables?: unknown };
      const store = {
        owner,
        repo,
        hash,
        textLimit: options.graphqlTextLimit ?? 512 * 1024,
        treeAt: (rev: string) => {
          const sha = /^[0-9a-f]{40}$/.test(rev) ? (commits.has(rev) ? rev : undefined) : refs.get(`heads/${rev}`);
          return sha ? { sha, files: treeOf(sha) } : undefined;
        },
      };
      answer(200, executeGraphql(store, body), route);
    } catch (refusal) {
      if (!(refusal instanceof GraphqlRefusal) && !(refusal instanceof SyntaxError)) throw refusal;
      violations.push(`${route}: ${refusal.message}`);
      answer(200, { data: null, errors: [{ type: 'INVALID', message: refusal.message }] }, route);
    }
  };
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    enforcer?.arrive();
    response.on('close', () => enforcer?.release());
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const url = new URL(request.url ?? '/', 'http://double');
      const method = request.method ?? 'GET';
      const limited = { method, path: url.pathname, mutation: url.pathname === '/graphql' && /^\s*mutation\b/.test(graphqlQuery(chunks)) };
      // Limits are per identity (RL: "per user or per installation"): our client always sends
      // a token; a spec's person acting through the double's HTTP API sends none and has its own.
      const admission = request.headers.authorization ? enforcer?.admit(limited) : undefined;
      const limitHeaders = admission?.headers ?? { 'x-ratelimit-remaining': '4999', 'x-ratelimit-limit': '5000' };
      const answer = (status: number, body: unknown, route: string, headers: Record<string, string> = {}) => {
        calls.push({ method, route, status });
        response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...limitHeaders, ...headers });
        response.end(status === 204 ? undefined : JSON.stringify(body));
      };
      if (admission?.refusal) {
        const { refusal } = admission;
        return answer(refusal.status, { message: refusal.message, documentation_url: 'https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api' }, `${method} ${url.pathname}`, refusal.headers);
      }
      if (method === 'POST' && url.pathname === '/graphql') return answerGraphql(chunks, answer);
      const operation = operations.find((op) => op.method === method && op.regex.test(url.pathname));
      if (!operation) {
        violations.push(`${method} ${url.pathname} is not an operation of api.github.com`);
        return answer(404, { message: 'Not Found' }, `${method} ${url.pathname}`);
      }
      const route = `${method} ${operation.template}`;
      const params = operation.regex.exec(url.pathname)!.slice(1).map((s) => decodeURIComponent(s));
      for (const name of url.searchParams.keys()) if (!operation.queryNames.has(name)) violations.push(`${route}: query parameter ${name} is not declared`);
      let body: Body = {};
      if (chunks.length > 0) {
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Body;
        } catch {
          violations.push(`${route}: body is not JSON`);
          return answer(400, { message: 'Problems parsing JSON' }, route);
        }
      }
      const validate = operation.validateBody;
      if (validate && !validate(body)) {
        violations.push(`${route}: body does not match the schema: ${JSON.stringify(validate.errors?.slice(0, 3))}`);
        return answer(422, { message: 'Invalid request.' }, route);
      }
      if (params[0] !== owner || params[1] !== repo) return answer(404, { message: 'Not Found' }, route);
      const failure = failures.find((f) => f.method === method && f.route === operation.template && f.times > 0);
      if (failure) {
        failure.times -= 1;
        return answer(failure.status, { message: failure.message ?? 'Injected failure', documentation_url: 'https://docs.github.com/rest' }, route, failure.headers);
      }
      const handler = handlers[`${method} ${operation.template}`];
      if (!handler) {
        violations.push(`${route} is valid GitHub API but the double does not implement it`);
        return answer(501, { message: 'Not implemented by the double' }, route);
      }
      const result = handler(params, url.searchParams, body);
      // Conditional requests (docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-
      // the-rest-api#use-conditional-requests-if-appropriate): a GET answer carries an ETag; the
      // same If-None-Match is answered 304 with no body (and costs no primary rate limit).
      if (method === 'GET' && result.status === 200) {
        const etag = `W/"${hash(result.body)}"`;
        if (request.headers['if-none-match'] === etag) {
          calls.push({ method, route, status: 304 });
          if (admission) enforcer?.notModified(limited);
          response.writeHead(304, { etag });
          response.end();
          return;
        }
        return answer(result.status, result.body, route, { ...result.headers, etag });
      }
      answer(result.status, result.body, route, result.headers);
    });
  });
  const listening = await serveOnLoopback(server);
  listeningUrl = listening.url;
  return {
    url: listening.url,
    owner,
    repo,
    calls,
    violations,
    pulls,
    comments: (number) => [...(comments.get(number) ?? [])],
    branch: (name) => refs.get(`heads/${name}`),
    deleteBranch: (name) => {
      for (const pull of pulls) if (pull.head === name && pull.state === 'open') closePull(pull);
      refs.delete(`heads/${name}`);
    },
    files: (ref) => new Map(treeOf(resolve(ref) ?? refs.get(`heads/${ref}`)!)),
    commit: (sha) => commits.get(sha),
    addCommit: (input) => putCommit(putTree(new Map(input.files)), input.parents, input.message, input.author),
    pushBranch: (name, sha) => {
      if (!commits.has(sha)) throw new Error(`no commit ${sha}`);
      refs.set(`heads/${name}`, sha);
    },
    failNext: (method, route, status, times = 1, message) => failures.push({ method, route, status, times, ...(message ? { message } : {}) }),
    rateLimitNext: (method, route, kind, seconds, times = 1) =>
      failures.push(
        kind === 'primary'
          ? {
              method,
              route,
              status: 403,
              times,
              message: 'API rate limit exceeded for installation ID 1.',
              headers: { 'x-ratelimit-limit': '5000', 'x-ratelimit-remaining': '0', 'x-ratelimit-used': '5000', 'x-ratelimit-reset': String(Math.ceil(Date.now() / 1000) + seconds) },
            }
          : {
              method,
              route,
              status: 403,
              times,
              message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
              headers: { 'retry-after': String(seconds) },
            },
      ),
    mergeableAfterPolls: (polls) => (pendingPollsOfNewPulls = polls),
    resetCalls: () => calls.splice(0),
    limits: enforcer,
    close: listening.close,
  };
}
