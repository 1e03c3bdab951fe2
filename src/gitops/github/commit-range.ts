import type { Octokit } from 'octokit';
import { parseTrailers, RepositoryRejectedError, type CommitSummary } from '../repository.ts';

/**
 * Retrying cannot help: the range holds more commits, or a commit more files, than GitHub's
 * REST API lists. Converge from state instead: read the directories at `head` (readDirectories).
 */
export class ComparisonTooLargeError extends RepositoryRejectedError {
  constructor(detail: string) {
    super(`${detail}; read the tenant directories at the head commit instead of the history`);
    this.name = 'ComparisonTooLargeError';
  }
}

/**
 * Limits from GitHub's OpenAPI description (@octokit/openapi, operations repos/compare-commits
 * and repos/get-commit, https://docs.github.com/rest/commits/commits):
 * - compare without `per_page`/`page` "is limited to 250 commits, and the last commit in the
 *   list is the most recent"; with them it pages (per_page max 100), and its files list "is
 *   only shown on the first page ... up to 300 changed files for the entire comparison";
 * - get-commit lists 300 files per page and links the rest "up to a limit of 3000 files".
 */
export const COMPARE_UNPAGED_COMMITS = 250;
export const COMPARE_FILES_LIMIT = 300;
export const COMMIT_FILES_LIMIT = 3000;
const PER_PAGE = 100;

interface Repo {
  octokit: Octokit;
  owner: string;
  repo: string;
  /** Beyond this many commits a range is refused (each costs a call): ComparisonTooLargeError. */
  maxCommits: number;
}

interface ApiCommit {
  sha: string;
  parents: { sha: string }[];
  commit: { message: string; author?: { name?: string; email?: string; date?: string } | null };
}
interface ApiFile {
  filename: string;
  previous_filename?: string;
}

/**
 * compareCommits for GitHub. Calls: one compare (up to 250 commits; more pages of 100 above
 * that), then per commit one read of its paths: get-commit for a commit with one parent,
 * compare(first parent...merge) for a merge — GitHub documents what compare's files are (the
 * changes from the merge base, here the first parent, to the head) and not what get-commit
 * lists for a merge. A range of one commit on top of `base` needs no second call: the
 * comparison's files are that commit's. With `base` undefined: get-commit of `head` (and a
 * compare if it is a merge).
 */
export async function compareRange(r: Repo, base: string | undefined, head: string): Promise<CommitSummary[]> {
  if (base === undefined) {
    const { data, headers } = await r.octokit.rest.repos.getCommit({ owner: r.owner, repo: r.repo, ref: head });
    const paths = data.parents.length > 1 ? await comparisonPaths(r, data.parents[0]!.sha, data.sha) : await commitPaths(r, data.sha, { files: data.files ?? [], link: headers.link });
    return [summary(data, paths)];
  }
  const { commits, files } = await listRange(r, base, head);
  if (commits.length === 1 && commits[0]!.parents.length === 1 && commits[0]!.parents[0]!.sha === base && files.length < COMPARE_FILES_LIMIT) {
    return [summary(commits[0]!, pathsOf(files))];
  }
  const out: CommitSummary[] = [];
  // One after another, as GitHub asks of integrations (docs: best practices, "avoid concurrent requests").
  for (const commit of commits) {
    const paths = commit.parents.length > 1 ? await comparisonPaths(r, commit.parents[0]!.sha, commit.sha) : await commitPaths(r, commit.sha);
    out.push(summary(commit, paths));
  }
  return out;
}

/** Every commit of base...head, parents before children, and the comparison's first-page files. */
async function listRange(r: Repo, base: string, head: string): Promise<{ commits: ApiCommit[]; files: ApiFile[] }> {
  const basehead = `${base}...${head}`;
  const { data } = await r.octokit.rest.repos.compareCommitsWithBasehead({ owner: r.owner, repo: r.repo, basehead });
  const total = data.total_commits;
  let commits: ApiCommit[] = data.commits;
  if (total > commits.length) {
    if (total > r.maxCommits) throw new ComparisonTooLargeError(`${basehead} in ${r.owner}/${r.repo} has ${total} commits (more than ${r.maxCommits})`);
    commits = [];
    for (let page = 1; (page - 1) * PER_PAGE < total; page += 1) {
      const { data: next } = await r.octokit.rest.repos.compareCommitsWithBasehead({ owner: r.owner, repo: r.repo, basehead, per_page: PER_PAGE, page });
      commits.push(...next.commits);
      if (next.commits.length < PER_PAGE) break;
    }
  }
  const unique = [...new Map(commits.map((c) => [c.sha, c])).values()];
  if (unique.length !== total) throw new Error(`GitHub listed ${unique.length} of the ${total} commits of ${basehead}; try again`);
  return { commits: parentsFirst(unique), files: data.files ?? [] };
}

/**
 * GitHub returns "chronological order", which a commit dated before its parent breaks; the
 * interface promises oldest first, so order by ancestry, keeping GitHub's order otherwise.
 */
function parentsFirst(commits: ApiCommit[]): ApiCommit[] {
  const inRange = new Map(commits.map((c) => [c.sha, c]));
  const placed = new Set<string>();
  const out: ApiCommit[] = [];
  const place = (commit: ApiCommit) => {
    const stack: [ApiCommit, number][] = [[commit, 0]];
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const [current, next] = top;
      if (placed.has(current.sha)) {
        stack.pop();
        continue;
      }
      const parent = current.parents.slice(next).find((p) => inRange.has(p.sha) && !placed.has(p.sha));
      if (parent) {
        top[1] = current.parents.indexOf(parent) + 1;
        stack.push([inRange.get(parent.sha)!, 0]);
      } else {
        placed.add(current.sha);
        out.push(current);
        stack.pop();
      }
    }
  };
  commits.forEach(place);
  return out;
}

/** A merge's paths against its first parent: the files of compare(firstParent...merge). */
async function comparisonPaths(r: Repo, firstParent: string, merge: string): Promise<string[]> {
  const { data } = await r.octokit.rest.repos.compareCommitsWithBasehead({ owner: r.owner, repo: r.repo, basehead: `${firstParent}...${merge}`, per_page: 1 });
  const files = data.files ?? [];
  if (files.length >= COMPARE_FILES_LIMIT) throw new ComparisonTooLargeError(`merge ${merge} changes ${COMPARE_FILES_LIMIT} files or more against its first parent`);
  return pathsOf(files);
}

/** A single-parent commit's paths: get-commit (unless its first page is at hand), following its Link header past 300 files. */
async function commitPaths(r: Repo, sha: string, first?: { files: ApiFile[]; link: string | undefined }): Promise<string[]> {
  const page: { files: ApiFile[]; link: string | undefined } =
    first ?? (await r.octokit.rest.repos.getCommit({ owner: r.owner, repo: r.repo, ref: sha }).then((res) => ({ files: res.data.files ?? [], link: res.headers.link })));
  const files = [...page.files];
  let next = nextLink(page.link);
  while (next) {
    const response = await r.octokit.request({ method: 'GET', url: next });
    files.push(...((response.data as { files?: ApiFile[] }).files ?? []));
    next = nextLink(response.headers.link);
  }
  if (files.length >= COMMIT_FILES_LIMIT) throw new ComparisonTooLargeError(`commit ${sha} changes ${COMMIT_FILES_LIMIT} files or more`);
  return pathsOf(files);
}

/** The `rel="next"` URL of an RFC 8288 Link header, as GitHub paginates (docs: "Using pagination in the REST API"). */
function nextLink(link: string | undefined): string | undefined {
  return link?.split(',').map((part) => /<([^>]+)>;\s*rel="next"/.exec(part)?.[1]).find(Boolean);
}

/** A rename touches both paths: GitHub reports it once, with `previous_filename`. */
function pathsOf(files: ApiFile[]): string[] {
  return [...new Set(files.flatMap((f) => (f.previous_filename ? [f.previous_filename, f.filename] : [f.filename])))].sort();
}

function summary(commit: ApiCommit, paths: string[]): CommitSummary {
  const author = commit.commit.author ?? {};
  return {
    sha: commit.sha,
    message: commit.commit.message,
    author: { name: author.name ?? '', email: author.email ?? '' },
    authoredAt: author.date ?? '',
    trailers: parseTrailers(commit.commit.message),
    paths,
  };
}
