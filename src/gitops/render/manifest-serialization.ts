import YAML from 'yaml';

const FIRST_KEYS = ['apiVersion', 'kind', 'metadata'];

function rank(key: string): number {
  const index = FIRST_KEYS.indexOf(key);
  return index === -1 ? FIRST_KEYS.length : index;
}

/**
 * One object as a YAML document, deterministically: keys sorted (apiVersion, kind, metadata
 * first), no line folding, multi-line strings as one double-quoted line, LF and one trailing newline.
 * YAML 1.1 quoting, because Kubernetes tooling (go-yaml) reads `yes`, `on`, `012` as 1.1 does.
 */
export function serializeManifest(object: unknown): string {
  const text = YAML.stringify(object, {
    version: '1.1',
    lineWidth: 0,
    blockQuote: false,
    singleQuote: false,
    doubleQuotedAsJSON: true,
    sortMapEntries: (a, b) => {
      const ka = String((a.key as { value?: unknown }).value ?? a.key);
      const kb = String((b.key as { value?: unknown }).value ?? b.key);
      return rank(ka) - rank(kb) || (ka < kb ? -1 : ka > kb ? 1 : 0);
    },
  });
  return text.endsWith('\n') ? text : `${text}\n`;
}

/** Parses one YAML document as plain data (YAML 1.1, like the tooling that reads the output). */
export function parseManifest(text: string): unknown {
  return YAML.parse(text, { version: '1.1' });
}
