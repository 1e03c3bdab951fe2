/**
 * The part of GitHub's GraphQL API (POST /graphql) the github driver uses, over the double's
 * flat trees. It parses the query (operations, variables, aliases, arguments, inline
 * fragments and named fragments) and refuses — as a GraphQL `errors` answer and a recorded
 * violation — any field outside the subset below, an argument a field does not take, a
 * variable not declared or not given. The subset and its types are copied from GitHub's
 * reference (https://docs.github.com/en/graphql/reference/objects#repository, #tree,
 * #treeentry, #blob, #commit; interfaces#gitobject). Stricter than GitHub, never looser: a
 * field GitHub has but the subset lacks is refused too.
 * Blob.text is null for a binary blob ("UTF8 text data or null if the Blob is binary") and cut
 * at `textLimit` bytes with isTruncated true (GitHub documents the flag, not the size).
 */
type Value = { variable: string } | { literal: unknown };
interface Field {
  alias: string;
  name: string;
  args: Record<string, Value>;
  selections: Selection[];
}
type Selection = { kind: 'field'; field: Field } | { kind: 'inline'; on: string; selections: Selection[] } | { kind: 'spread'; name: string };
interface Document {
  variables: Set<string>;
  selections: Selection[];
  fragments: Map<string, { on: string; selections: Selection[] }>;
}

/** Fields (and their arguments) per type; `__typename` is allowed everywhere. */
const SCHEMA: Record<string, Record<string, string[]>> = {
  Query: { repository: ['owner', 'name'] },
  Repository: { object: ['oid', 'expression'], nameWithOwner: [] },
  Tree: { oid: [], entries: [] },
  TreeEntry: { name: [], path: [], type: [], mode: [], oid: [], object: [] },
  Blob: { oid: [], byteSize: [], isBinary: [], isTruncated: [], text: [] },
  Commit: { oid: [], message: [] },
};
const GIT_OBJECT = new Set(['Blob', 'Tree', 'Commit']);

export interface GraphqlStore {
  owner: string;
  repo: string;
  /** A commit's flat tree (path → content) by commit sha or branch name, or undefined. */
  treeAt(rev: string): { sha: string; files: Map<string, string> } | undefined;
  hash(value: unknown): string;
  textLimit: number;
}

export class GraphqlRefusal extends Error {}

export function executeGraphql(store: GraphqlStore, body: { query?: unknown; variables?: unknown }): unknown {
  if (typeof body.query !== 'string') throw new GraphqlRefusal('body has no query string');
  const document = parse(body.query);
  const given = (body.variables ?? {}) as Record<string, unknown>;
  for (const name of document.variables) if (!(name in given)) throw new GraphqlRefusal(`variable $${name} is declared but not given`);
  const value = (v: Value) => {
    if ('literal' in v) return v.literal;
    if (!document.variables.has(v.variable)) throw new GraphqlRefusal(`variable $${v.variable} is not declared`);
    return given[v.variable];
  };

  type Obj = { type: string; resolve(field: Field): unknown };
  const select = (object: Obj | null, selections: Selection[]): unknown => {
    if (object === null) return null;
    const out: Record<string, unknown> = {};
    const walk = (list: Selection[]) => {
      for (const selection of list) {
        if (selection.kind === 'spread') {
          const fragment = document.fragments.get(selection.name);
          if (!fragment) throw new GraphqlRefusal(`fragment ${selection.name} is not defined`);
          if (matches(fragment.on, object.type)) walk(fragment.selections);
        } else if (selection.kind === 'inline') {
          if (matches(selection.on, object.type)) walk(selection.selections);
        } else {
          const { field } = selection;
          if (field.name === '__typename') out[field.alias] = object.type;
          else {
            const allowed = SCHEMA[object.type]?.[field.name];
            if (!allowed) throw new GraphqlRefusal(`${object.type}.${field.name} is not in the double's subset of GitHub's schema`);
            for (const arg of Object.keys(field.args)) if (!allowed.includes(arg)) throw new GraphqlRefusal(`${object.type}.${field.name} takes no argument ${arg}`);
            const result = object.resolve(field);
            out[field.alias] = Array.isArray(result) ? result.map((item: Obj) => select(item, field.selections)) : isObj(result) ? select(result, field.selections) : result;
          }
        }
      }
    };
    walk(selections);
    return out;
  };
  const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && 'resolve' in x;
  const matches = (on: string, type: string) => on === type || (on === 'GitObject' && GIT_OBJECT.has(type));

  const blob = (content: string): Obj => {
    const bytes = Buffer.from(content);
    const binary = bytes.includes(0);
    const truncated = !binary && bytes.length > store.textLimit;
    const fields: Record<string, unknown> = {
      oid: store.hash(content),
      byteSize: bytes.length,
      isBinary: binary,
      isTruncated: truncated,
      text: binary ? null : truncated ? bytes.subarray(0, store.textLimit).toString('utf8') : content,
    };
    return { type: 'Blob', resolve: (f) => fields[f.name] };
  };
  const tree = (files: Map<string, string>, prefix: string): Obj => {
    const below = [...files.keys()].filter((p) => prefix === '' || p.startsWith(`${prefix}/`));
    const entries = () => {
      const names = new Map<string, 'blob' | 'tree'>();
      for (const path of below) {
        const [name, ...rest] = path.slice(prefix ? prefix.length + 1 : 0).split('/');
        names.set(name!, rest.length ? 'tree' : 'blob');
      }
      return [...names].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, type]): Obj => {
        const path = prefix ? `${prefix}/${name}` : name;
        const object = type === 'blob' ? blob(files.get(path)!) : tree(files, path);
        const fields: Record<string, unknown> = { name, path, type, mode: type === 'blob' ? 33188 : 16384, oid: object.resolve({ name: 'oid' } as Field), object };
        return { type: 'TreeEntry', resolve: (f) => fields[f.name] };
      });
    };
    const oid = store.hash(below.map((p) => [p, files.get(p)]));
    return { type: 'Tree', resolve: (f) => (f.name === 'oid' ? oid : entries()) };
  };
  const gitObject = (expression: string): Obj | null => {
    const [rev, ...rest] = expression.split(':');
    const at = store.treeAt(rev!);
    if (!at) return null;
    if (rest.length === 0) return { type: 'Commit', resolve: (f) => (f.name === 'oid' ? at.sha : '') };
    const path = rest.join(':').replace(/\/+$/, '');
    if (at.files.has(path)) return blob(at.files.get(path)!);
    if (path !== '' && ![...at.files.keys()].some((p) => p.startsWith(`${path}/`))) return null;
    return tree(at.files, path);
  };
  const repository: Obj = {
    type: 'Repository',
    resolve: (f) => {
      if (f.name === 'nameWithOwner') return `${store.owner}/${store.repo}`;
      const oid = f.args.oid ? value(f.args.oid) : undefined;
      const expression = f.args.expression ? value(f.args.expression) : undefined;
      if ((oid === undefined) === (expression === undefined)) throw new GraphqlRefusal('Repository.object takes exactly one of oid, expression');
      if (oid !== undefined && (typeof oid !== 'string' || !/^[0-9a-f]{40}$/.test(oid))) throw new GraphqlRefusal('oid is not a GitObjectID');
      return gitObject(typeof oid === 'string' ? oid : String(expression));
    },
  };
  const query: Obj = {
    type: 'Query',
    resolve: (f) => (value(f.args.owner!) === store.owner && value(f.args.name!) === store.repo ? repository : null),
  };
  return { data: select(query, document.selections) };
}

/** A recursive-descent parser for the executable subset of GraphQL the driver may send. */
function parse(source: string): Document {
  const tokens = source.match(/\.\.\.|[{}():!$,=[\]@]|"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|[A-Za-z_][A-Za-z0-9_]*|#[^\n]*|\S/g)?.filter((t) => !t.startsWith('#') && t !== ',') ?? [];
  let at = 0;
  const peek = () => tokens[at];
  const next = () => {
    const token = tokens[at++];
    if (token === undefined) throw new GraphqlRefusal('unexpected end of query');
    return token;
  };
  const expect = (token: string) => {
    const got = next();
    if (got !== token) throw new GraphqlRefusal(`expected ${token}, got ${got}`);
  };
  const name = () => {
    const token = next();
    if (!/^[A-Za-z_]/.test(token)) throw new GraphqlRefusal(`expected a name, got ${token}`);
    return token;
  };
  const document: Document = { variables: new Set(), selections: [], fragments: new Map() };
  const type = (): void => {
    if (peek() === '[') {
      next();
      type();
      expect(']');
    } else name();
    if (peek() === '!') next();
  };
  const literal = (): Value => {
    const token = next();
    if (token === '$') return { variable: name() };
    if (token.startsWith('"')) return { literal: JSON.parse(token) as unknown };
    if (/^-?\d/.test(token)) return { literal: Number(token) };
    if (token === 'true' || token === 'false') return { literal: token === 'true' };
    if (token === 'null') return { literal: null };
    throw new GraphqlRefusal(`unsupported value ${token}`);
  };
  const selectionSet = (): Selection[] => {
    expect('{');
    const out: Selection[] = [];
    while (peek() !== '}') {
      if (peek() === '...') {
        next();
        if (peek() === 'on') {
          next();
          const on = name();
          out.push({ kind: 'inline', on, selections: selectionSet() });
        } else out.push({ kind: 'spread', name: name() });
        continue;
      }
      const alias = name();
      let fieldName = alias;
      if (peek() === ':') {
        next();
        fieldName = name();
      }
      const args: Record<string, Value> = {};
      if (peek() === '(') {
        next();
        while (peek() !== ')') {
          const arg = name();
          expect(':');
          args[arg] = literal();
        }
        next();
      }
      if (peek() === '@') throw new GraphqlRefusal('directives are not supported by the double');
      out.push({ kind: 'field', field: { alias, name: fieldName, args, selections: peek() === '{' ? selectionSet() : [] } });
    }
    next();
    return out;
  };
  while (at < tokens.length) {
    if (peek() === '{') document.selections.push(...selectionSet());
    else if (peek() === 'query') {
      next();
      if (peek() !== '(' && peek() !== '{') name();
      if (peek() === '(') {
        next();
        while (peek() !== ')') {
          expect('$');
          document.variables.add(name());
          expect(':');
          type();
          if (peek() === '=') throw new GraphqlRefusal('default values are not supported by the double');
        }
        next();
      }
      document.selections.push(...selectionSet());
    } else if (peek() === 'fragment') {
      next();
      const fragment = name();
      expect('on');
      const on = name();
      document.fragments.set(fragment, { on, selections: selectionSet() });
    } else throw new GraphqlRefusal(`unsupported definition ${peek()}`);
  }
  return document;
}
