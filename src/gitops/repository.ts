/**
 * The GitOps repository as the rest of the service sees it. One implementation per backend
 * (`local/`, `github/`), identical method names; callers never know which one they hold.
 */
export interface GitopsRepository {
  readonly driver: 'local' | 'github';
  /** Readiness: the repository answers and its base branch exists. Throws otherwise. */
  ping(): Promise<void>;
}

/** A file to commit: a path relative to the repository root and its full content. */
export interface RepositoryFile {
  path: string;
  content: string;
}
