/**
 * The GitOps repository as the rest of the service sees it. One implementation per backend
 * (`local/`, `github/`), identical method names; callers never know which one they hold.
 */
export interface GitopsRepository {
  readonly driver: 'local' | 'github';
  /** Readiness: the repository answers and its base branch exists. Throws otherwise. */
  ping(): Promise<void>;
  /**
   * Whether `ancestor` is reachable from `descendant` (or equal to it); false when either is
   * unknown to the repository. Argo CD's synced revision must contain an instance's merge
   * commit before the instance counts as ready.
   */
  isAncestor(ancestor: string, descendant: string): Promise<boolean>;
}

/** A file to commit: a path relative to the repository root and its full content. */
export interface RepositoryFile {
  path: string;
  content: string;
}
