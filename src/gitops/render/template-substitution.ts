/**
 * Structural substitution: templates are parsed YAML (plain data), and `${path}` references
 * inside string scalars are replaced by values looked up in a variables object. A scalar that
 * is exactly one reference takes the value itself (a number stays a number, an object stays an
 * object); a reference inside a longer string is interpolated as text into that one string.
 * Nothing is ever spliced into YAML text, so no value can add keys or documents.
 */
export class TemplateError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'TemplateError';
  }
}

export type Variables = Record<string, unknown>;

// `${a.b}` or `${a.b|string}` (the value as text, for fields such as env values that must be strings).
const WHOLE = /^\$\{([A-Za-z0-9_.-]+)(\|string)?\}$/;
const PART = /\$\{([A-Za-z0-9_.-]+)(?:\|string)?\}/g;

export function substitute(node: unknown, variables: Variables, where = ''): unknown {
  if (typeof node === 'string') return substituteString(node, variables, where);
  if (Array.isArray(node)) return node.map((item, index) => substitute(item, variables, `${where}/${index}`));
  if (node !== null && typeof node === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(node)) {
      const replaced = substitute(value, variables, `${where}/${key}`);
      // A whole-scalar reference to an absent optional value drops the key.
      if (replaced !== undefined) out[key] = replaced;
    }
    return out;
  }
  return node;
}

function substituteString(text: string, variables: Variables, where: string): unknown {
  const whole = WHOLE.exec(text);
  if (whole) {
    const value = lookup(variables, whole[1]!, where);
    return whole[2] ? scalarText(value, whole[1]!, where) : structuredClone(value);
  }
  return text.replace(PART, (_, reference: string) => scalarText(lookup(variables, reference, where), reference, where));
}

function scalarText(value: unknown, reference: string, where: string): string {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new TemplateError(`${where}: \${${reference}} is used as text but is not a scalar`);
}

function lookup(variables: Variables, reference: string, where: string): unknown {
  let value: unknown = variables;
  for (const segment of reference.split('.')) {
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, segment)) {
      throw new TemplateError(`${where}: \${${reference}} does not name a known value`);
    }
    value = (value as Record<string, unknown>)[segment];
  }
  return value;
}
