import { parseTrailers, type CommitSummary } from '../repository.ts';

/**
 * GitHub truncates a push payload's `commits`: "The array includes a maximum of 2048 commits.
 * If necessary, you can use the Commits API to fetch additional commits."
 * (https://docs.github.com/en/webhooks/webhook-events-and-payloads#push). The payload carries
 * no total, so an array of this length may be cut short.
 */
export const PUSH_COMMITS_LIMIT = 2048;

const SHA = /^[0-9a-f]{40}$/;
const ZERO = '0'.repeat(40);

/**
 * The commits of a `push` webhook as CommitSummary[] (oldest first, as GitHub lists them), or
 * undefined when the payload cannot be trusted to say everything compareCommits would; the
 * caller then asks compareCommits(before, after). Undefined is always safe (it costs calls,
 * never correctness), so every doubt leads there:
 * - not a branch update of an existing branch (a tag, a created, deleted or forced ref: there
 *   `before` is zero or not an ancestor of `after`, and the list is not "before..after");
 * - a field we read is missing or mistyped (the payload is not what GitHub documents);
 * - the list may be truncated (2048 entries), is empty, or does not end at `after`;
 * - a commit lists no added, removed or modified file: GitHub documents that "for extremely
 *   large commits where GitHub is unable to calculate this list in a timely manner, this may
 *   be empty even if files were added" (same page, commits[][added]);
 * - the push may contain a merge commit. The payload has no `parents`, and GitHub does not
 *   document what added/removed/modified hold for a merge, while convergence needs a merge's
 *   paths against its first parent. Commits pushed before to another ref (`distinct: false`,
 *   "whether this commit is distinct from any that have been pushed before") are what a
 *   merge of a pull request brings along, and `Merge ` is how git and GitHub title merges.
 *   A merge made locally from commits never pushed, under another title, cannot be seen.
 */
export function commitsFromPushPayload(payload: unknown): CommitSummary[] | undefined {
  if (!isObject(payload)) return undefined;
  const { ref, before, after, created, deleted, forced, commits } = payload;
  if (typeof ref !== 'string' || !ref.startsWith('refs/heads/')) return undefined;
  if (created !== false || deleted !== false || forced !== false) return undefined;
  if (!isSha(before) || !isSha(after) || before === ZERO || after === ZERO || before === after) return undefined;
  if (!Array.isArray(commits) || commits.length === 0 || commits.length >= PUSH_COMMITS_LIMIT) return undefined;
  const out: CommitSummary[] = [];
  for (const commit of commits) {
    const summary = summarize(commit);
    if (!summary) return undefined;
    out.push(summary);
  }
  if (new Set(out.map((c) => c.sha)).size !== out.length || out[out.length - 1]!.sha !== after) return undefined;
  return out;
}

function summarize(commit: unknown): CommitSummary | undefined {
  if (!isObject(commit)) return undefined;
  const { id, message, timestamp, author, distinct, added, removed, modified } = commit;
  if (!isSha(id) || typeof message !== 'string' || typeof timestamp !== 'string' || distinct !== true) return undefined;
  if (!isObject(author) || typeof author.name !== 'string' || typeof author.email !== 'string') return undefined;
  if (message.startsWith('Merge ')) return undefined;
  const lists = [added, removed, modified];
  if (!lists.every((list) => Array.isArray(list) && list.every((p) => typeof p === 'string' && p.length > 0))) return undefined;
  const paths = [...new Set((lists as string[][]).flat())].sort();
  if (paths.length === 0) return undefined;
  return { sha: id, message, author: { name: author.name, email: author.email }, authoredAt: timestamp, trailers: parseTrailers(message), paths };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isSha(value: unknown): value is string {
  return typeof value === 'string' && SHA.test(value);
}
