/** Why `version` cannot run control-plane under package.json's engines `range`, or undefined. */
export function nodeVersionProblem(version: string, range: string): string | undefined;
