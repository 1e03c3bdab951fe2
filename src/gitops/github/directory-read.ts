import type { Octokit } from 'octokit';
import { RepositoryRejectedError } from '../repository.ts';

/**
 * readDirectories for GitHub through GraphQL: `Repository.object(expression: "<sha>:<dir>")`
 * returns the Tree at that path, and aliases put every directory in ONE query
 * (https://docs.github.com/en/graphql/reference/objects#repository, #tree, #treeentry, #blob).
 * Tree.entries is a list, not a connection, so no `first`/`last` is needed and the node
 * limit (500,000, counted over connections: https://docs.github.com/en/graphql/overview/
 * rate-limits-and-query-limits-for-the-graphql-api) does not apply.
 * Entries nest DEPTH levels per query; a tree still deeper is read by a next query (the
 * same shape, its own expression). `Blob.text` is "UTF8 text data or null if the Blob is
 * binary", and `isTruncated` says whether it was cut: those blobs are read in full by REST
 * get-blob (base64, "supports blobs up to 100 megabytes"), one call each.
 * Cost for tenant directories of ordinary depth: one query, whatever the number of dirs up
 * to DIRS_PER_QUERY.
 */
export const DEPTH = 4;
/** Our bound, not GitHub's (it documents none on aliases): keeps each query small and quick. */
export const DIRS_PER_QUERY = 50;

interface Repo {
  octokit: Octokit;
  owner: string;
  repo: string;
}

interface BlobNode {
  __typename: 'Blob';
  oid: string;
  isBinary: boolean;
  isTruncated: boolean;
  text: string | null;
}
interface TreeNode {
  __typename: 'Tree';
  entries?: { path: string; type: string; object: BlobNode | TreeNode | { __typename: string } | null }[];
}
type GitObjectNode = BlobNode | TreeNode | { __typename: string };

const SHA = /^[0-9a-f]{40}$/;

export async function readDirectoriesAt(r: Repo, commit: string, dirs: string[]): Promise<Map<string, Map<string, string>>> {
  if (!SHA.test(commit)) throw new RepositoryRejectedError(`${commit} is not a commit id`);
  const files = new Map<string, string>();
  const refetch: { path: string; oid: string }[] = [];
  let pending = [...new Set(dirs.map((dir) => dir.replace(/\/+$/, '')))];
  while (pending.length > 0) {
    const batch = pending.slice(0, DIRS_PER_QUERY);
    pending = pending.slice(DIRS_PER_QUERY);
    const variables: Record<string, string> = { owner: r.owner, name: r.repo, commit };
    batch.forEach((path, i) => (variables[`d${i}`] = `${commit}:${path}`));
    const data = await r.octokit.graphql<{ repository: Record<string, GitObjectNode | null> | null }>(directoryQuery(batch.length), variables);
    if (!data.repository) throw new RepositoryRejectedError(`GitHub GraphQL has no repository ${r.owner}/${r.repo}`);
    if (!data.repository.commit) throw new RepositoryRejectedError(`commit ${commit} is not in ${r.owner}/${r.repo}`);
    batch.forEach((_, i) => {
      const node = data.repository![`d${i}`];
      if (node?.__typename === 'Tree') collect(node as TreeNode, files, refetch, pending);
    });
  }
  for (const { path, oid } of refetch) {
    const { data } = await r.octokit.rest.git.getBlob({ owner: r.owner, repo: r.repo, file_sha: oid });
    files.set(path, Buffer.from(data.content, 'base64').toString('utf8'));
  }
  // Each file belongs to the first of `dirs` it lies below, as the local driver assigns them.
  const result = new Map(dirs.map((dir) => [dir, new Map<string, string>()]));
  for (const path of [...files.keys()].sort()) {
    const dir = dirs.find((d) => path.startsWith(`${d.replace(/\/+$/, '')}/`));
    if (dir !== undefined) result.get(dir)!.set(path, files.get(path)!);
  }
  return result;
}

/** Files of a tree answer; blobs without full text go to `refetch`, trees past DEPTH to `deeper`. */
function collect(tree: TreeNode, files: Map<string, string>, refetch: { path: string; oid: string }[], deeper: string[]): void {
  for (const entry of tree.entries ?? []) {
    const object = entry.object;
    // Submodules ("commit" entries) have no files in this repository; the local driver skips them too.
    if (entry.type === 'blob' && object?.__typename === 'Blob') {
      const blob = object as BlobNode;
      if (blob.isBinary || blob.isTruncated || blob.text === null) refetch.push({ path: entry.path, oid: blob.oid });
      else files.set(entry.path, blob.text);
    } else if (entry.type === 'tree' && object?.__typename === 'Tree') {
      if ((object as TreeNode).entries === undefined) deeper.push(entry.path);
      else collect(object as TreeNode, files, refetch, deeper);
    }
  }
}

/** The query for `count` directories: $d0..$dN-1 are "<sha>:<path>" expressions. */
export function directoryQuery(count: number): string {
  const variables = ['$owner: String!', '$name: String!', '$commit: GitObjectID!', ...Array.from({ length: count }, (_, i) => `$d${i}: String!`)];
  const dirs = Array.from({ length: count }, (_, i) => `d${i}: object(expression: $d${i}) { __typename ...Level${DEPTH} }`);
  const levels = Array.from({ length: DEPTH }, (_, i) => {
    const level = i + 1;
    const inner = level === 1 ? '__typename ...BlobText' : `__typename ...BlobText ...Level${level - 1}`;
    return `fragment Level${level} on Tree { entries { path type object { ${inner} } } }`;
  });
  return [
    `query ReadDirectories(${variables.join(', ')}) {`,
    `  repository(owner: $owner, name: $name) {`,
    `    commit: object(oid: $commit) { __typename }`,
    ...dirs.map((d) => `    ${d}`),
    `  }`,
    `}`,
    `fragment BlobText on Blob { oid isBinary isTruncated text }`,
    ...levels,
  ].join('\n');
}
