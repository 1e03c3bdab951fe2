import { createHash } from 'node:crypto';

/** One entry of a git tree object. */
export interface TreeEntry {
  /** As git writes it in a tree object: `100644`, `100755`, `120000`, `40000` or `160000`. */
  mode: string;
  sha: string;
}

/** A tree object to write: its entries by name, and the id git will give it. */
export interface TreeObject {
  sha: string;
  entries: Map<string, TreeEntry>;
  /** The object's body, as git stores it (what `git hash-object -t tree` takes). */
  body: Buffer;
}

export const TREE_MODE = '40000';
export const FILE_MODE = '100644';

/** Parses the body of a tree object (`<mode> <name>\0<20-byte id>`, repeated). */
export function parseTree(body: Buffer): Map<string, TreeEntry> {
  const entries = new Map<string, TreeEntry>();
  let at = 0;
  while (at < body.length) {
    const space = body.indexOf(0x20, at);
    const nul = body.indexOf(0, space);
    if (space < 0 || nul < 0 || nul + 21 > body.length) throw new Error('malformed tree object');
    entries.set(body.toString('utf8', space + 1, nul), { mode: body.toString('latin1', at, space), sha: body.toString('hex', nul + 1, nul + 21) });
    at = nul + 21;
  }
  return entries;
}

/**
 * The tree object for `entries`, with the id git computes for it: entries in git's order (a
 * directory sorts as if its name ended in `/`), hashed as `tree <size>\0<body>`. Computing the
 * id here lets a whole commit's trees be written by one `git hash-object -t tree`, parents
 * naming children before git has answered; the ids git prints are checked against these.
 * That check cannot catch a wrong entry order (git takes the body as given), so the order is
 * tested against `git mktree`, which sorts for itself (test/gitops/tree-objects.spec.ts).
 */
export function treeObject(entries: Map<string, TreeEntry>): TreeObject {
  const names = [...entries.keys()];
  const keys = new Map(names.map((name) => [name, entries.get(name)!.mode === TREE_MODE ? `${name}/` : name]));
  // Git compares the bytes of the names; for the ASCII names a tenant tree holds, string order
  // is byte order, and the general case falls back to comparing UTF-8 bytes.
  names.sort((a, b) => {
    const x = keys.get(a)!;
    const y = keys.get(b)!;
    return isAscii(x) && isAscii(y) ? (x < y ? -1 : x > y ? 1 : 0) : Buffer.compare(Buffer.from(x, 'utf8'), Buffer.from(y, 'utf8'));
  });
  let size = 0;
  for (const name of names) size += entries.get(name)!.mode.length + 1 + Buffer.byteLength(name, 'utf8') + 1 + 20;
  const body = Buffer.allocUnsafe(size);
  let at = 0;
  for (const name of names) {
    const entry = entries.get(name)!;
    at += body.write(`${entry.mode} ${name}\0`, at, 'utf8');
    at += body.write(entry.sha, at, 'hex');
  }
  const sha = createHash('sha1').update(`tree ${body.length}\0`).update(body).digest('hex');
  return { sha, entries, body };
}

// eslint-disable-next-line no-control-regex
const ASCII = /^[\x00-\x7f]*$/;
function isAscii(text: string): boolean {
  return ASCII.test(text);
}

/**
 * Splits `git cat-file --batch` output for `count` requests: the object body for each one, or
 * undefined when git answered `missing` (or the object is not of `type`).
 */
export function parseCatFileBatch(out: Buffer, count: number, type: string): (Buffer | undefined)[] {
  const bodies: (Buffer | undefined)[] = [];
  let at = 0;
  for (let i = 0; i < count; i += 1) {
    const end = out.indexOf(0x0a, at);
    if (end < 0) throw new Error('truncated git cat-file --batch output');
    const header = out.toString('utf8', at, end).split(' ');
    at = end + 1;
    if (header.length !== 3) {
      bodies.push(undefined); // "<name> missing" (or ambiguous): nothing there
      continue;
    }
    const size = Number(header[2]);
    bodies.push(header[1] === type ? out.subarray(at, at + size) : undefined);
    at += size + 1;
  }
  return bodies;
}
