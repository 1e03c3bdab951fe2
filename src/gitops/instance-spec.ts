import YAML from 'yaml';
import { INSTANCE_ID_LABEL, PROJECT_LABEL } from './labels.ts';

/**
 * What an instance's directory on the base branch says the instance is: written by the renderer
 * as an annotation on each of the instance's objects, read back by convergence. One canonical
 * JSON value (keys sorted), so the same spec always reads and compares the same.
 */
export const INSTANCE_SPEC_ANNOTATION = 'gsv.io/spec';

export interface InstanceSpec {
  offering: string;
  version: string;
  parameters: Record<string, unknown>;
}

/** What a directory on main holds for one instance. */
export interface ObservedDirectory {
  /** The instance id its objects carry; undefined when no object carries one. */
  instanceId: string | undefined;
  /** Undefined when the objects carry no readable spec (an engineer's own files, say). */
  spec: InstanceSpec | undefined;
  /** The project label of the same object (what a rebuild from Git needs); undefined without one. */
  project?: string;
}

export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortDeep(value));
}

function sortDeep(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortDeep);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => [k, sortDeep(v)]));
  }
  return value;
}

export function specAnnotation(spec: InstanceSpec): string {
  return canonicalJson(spec);
}

export function sameSpec(a: InstanceSpec, b: InstanceSpec): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/**
 * Reads the instance id and spec from a directory's YAML files (kustomization.yaml and anything
 * that does not parse are skipped: a hand-written file must not stop convergence). The first
 * object, in path order, that carries the instance id label decides.
 */
export function readObservedDirectory(files: Map<string, string>): ObservedDirectory {
  for (const [path, content] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!/\.ya?ml$/.test(path) || /(^|\/)kustomization\.ya?ml$/.test(path)) continue;
    let documents: YAML.Document[];
    try {
      documents = YAML.parseAllDocuments(content, { version: '1.1' }) as YAML.Document[];
    } catch {
      continue;
    }
    for (const document of documents) {
      if (document.errors.length > 0) continue;
      const object = document.toJS() as { metadata?: { labels?: Record<string, unknown>; annotations?: Record<string, unknown> } } | null;
      const instanceId = object?.metadata?.labels?.[INSTANCE_ID_LABEL];
      if (typeof instanceId !== 'string') continue;
      const project = object?.metadata?.labels?.[PROJECT_LABEL];
      return { instanceId, spec: parseSpec(object?.metadata?.annotations?.[INSTANCE_SPEC_ANNOTATION]), ...(typeof project === 'string' ? { project } : {}) };
    }
  }
  return { instanceId: undefined, spec: undefined };
}

/** The spec a `gsv.io/spec` annotation carries; undefined when it is missing or not ours. */
export function parseSpec(value: unknown): InstanceSpec | undefined {
  if (typeof value !== 'string') return undefined;
  try {
    const spec = JSON.parse(value) as Partial<InstanceSpec>;
    if (typeof spec.offering !== 'string' || typeof spec.version !== 'string') return undefined;
    if (spec.parameters === null || typeof spec.parameters !== 'object' || Array.isArray(spec.parameters)) return undefined;
    return { offering: spec.offering, version: spec.version, parameters: spec.parameters };
  } catch {
    return undefined;
  }
}
