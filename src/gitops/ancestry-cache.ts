import type { GitopsRepository } from './repository.ts';

export type AncestryCheck = Pick<GitopsRepository, 'isAncestor'>;

const FULL_SHA = /^[0-9a-f]{40}$/;

/**
 * Remembers answers of `isAncestor` for full commit ids: commits are immutable, so whether one
 * contains another never changes. This keeps GitHub's compare API (one call per question) off
 * the path of repeated Argo CD notices and reconciler rounds. Errors are not cached; the oldest
 * answers are dropped beyond `maxEntries`.
 */
export function cacheAncestry(repository: AncestryCheck, maxEntries = 10_000): AncestryCheck {
  const answers = new Map<string, boolean>();
  return {
    async isAncestor(ancestor, descendant) {
      if (!FULL_SHA.test(ancestor) || !FULL_SHA.test(descendant)) return repository.isAncestor(ancestor, descendant);
      const key = `${ancestor}..${descendant}`;
      const known = answers.get(key);
      if (known !== undefined) return known;
      const answer = await repository.isAncestor(ancestor, descendant);
      answers.set(key, answer);
      if (answers.size > maxEntries) answers.delete(answers.keys().next().value!);
      return answer;
    },
  };
}
