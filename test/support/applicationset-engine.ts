import path from 'node:path';
import { runGoHarness } from './argocd-engine.ts';

const SOURCE = path.join(import.meta.dirname, 'applicationset-engine', 'main.go');

/** What the git directory generator passes a goTemplate ApplicationSet for one directory (argo-cd docs, "Git Generator"). */
export function gitDirectoryParams(directory: string): Record<string, unknown> {
  const segments = directory.split('/');
  const basename = segments.at(-1)!;
  return { path: { path: directory, basename, basenameNormalized: basename.replace(/[^a-zA-Z0-9-]/g, '-'), segments } };
}

/**
 * Renders each of `templates` (string fields of an ApplicationSet's template) for each set of
 * generator parameters with Go text/template and sprig, as the ApplicationSet controller does.
 * A field that fails to render throws: a name the controller could not build is a bug here.
 */
export async function renderApplicationSetFields(options: string[], templates: Record<string, string>, params: Record<string, unknown>[]): Promise<Record<string, string>[]> {
  const results = JSON.parse(await runGoHarness(SOURCE, { options, templates, params })) as Record<string, { text?: string; error?: string }>[];
  return results.map((fields) =>
    Object.fromEntries(
      Object.entries(fields).map(([key, { text, error }]) => {
        if (error !== undefined) throw new Error(`ApplicationSet field ${key}: ${error}`);
        return [key, text ?? ''];
      }),
    ),
  );
}
