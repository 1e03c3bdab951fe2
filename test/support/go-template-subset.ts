/**
 * Just enough of Go's text/template (with sprig's toJson and default) to render our Argo CD
 * Notifications template in a test: `{{ toJson PATH }}`, `{{ toJson (default "x" PATH) }}`,
 * `{{ with PATH }}…{{ else }}…{{ end }}` and `{{ if PATH }}…{{ else }}…{{ end }}`. Anything
 * else throws, so the template cannot quietly use what this double does not understand.
 */
type Node =
  | { type: 'text'; text: string }
  | { type: 'output'; expression: string }
  | { type: 'with' | 'if'; path: string; then: Node[]; otherwise: Node[] };

export function renderGoTemplate(template: string, data: unknown): string {
  const tokens = template.split(/(\{\{-?\s*.*?\s*-?\}\})/s);
  let position = 0;
  const parse = (): { nodes: Node[]; stop: string } => {
    const nodes: Node[] = [];
    while (position < tokens.length) {
      const token = tokens[position++]!;
      const action = /^\{\{-?\s*(.*?)\s*-?\}\}$/s.exec(token)?.[1];
      if (action === undefined) {
        if (token) nodes.push({ type: 'text', text: token });
        continue;
      }
      if (action === 'else' || action === 'end') return { nodes, stop: action };
      const block = /^(with|if) (\S+)$/.exec(action);
      if (block) {
        const then = parse();
        const otherwise = then.stop === 'else' ? parse() : { nodes: [], stop: 'end' };
        if (otherwise.stop !== 'end') throw new Error(`unterminated {{ ${action} }}`);
        nodes.push({ type: block[1] as 'with' | 'if', path: block[2]!, then: then.nodes, otherwise: otherwise.nodes });
        continue;
      }
      nodes.push({ type: 'output', expression: action });
    }
    return { nodes, stop: 'eof' };
  };
  const root = parse();
  if (root.stop !== 'eof') throw new Error(`unexpected {{ ${root.stop} }}`);
  return execute(root.nodes, data);
}

function execute(nodes: Node[], dot: unknown): string {
  let out = '';
  for (const node of nodes) {
    if (node.type === 'text') out += node.text;
    else if (node.type === 'output') out += evaluate(node.expression, dot);
    else {
      const value = resolve(node.path, dot);
      out += truthy(value) ? execute(node.then, node.type === 'with' ? value : dot) : execute(node.otherwise, dot);
    }
  }
  return out;
}

function evaluate(expression: string, dot: unknown): string {
  const plain = /^toJson (\.\S*)$/.exec(expression);
  if (plain) return JSON.stringify(resolve(plain[1]!, dot) ?? null);
  const withDefault = /^toJson \(default "([^"]*)" (\.\S*)\)$/.exec(expression);
  if (withDefault) {
    const value = resolve(withDefault[2]!, dot);
    return JSON.stringify(truthy(value) ? value : withDefault[1]);
  }
  throw new Error(`unsupported template action {{ ${expression} }}`);
}

function resolve(path: string, dot: unknown): unknown {
  if (path === '.') return dot;
  let value = dot;
  for (const key of path.slice(1).split('.')) {
    if (value === null || value === undefined) throw new Error(`nil pointer evaluating ${path}`);
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function truthy(value: unknown): boolean {
  if (value === undefined || value === null || value === false || value === '' || value === 0) return false;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object') return Object.keys(value).length > 0;
  return true;
}
