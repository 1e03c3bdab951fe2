/**
 * What the membership mirror needs of Keycloak's admin REST API, in neutral types: groups by
 * name under a parent, direct group memberships of a user, and a group's direct members. One
 * implementation talks to Keycloak (keycloak-admin-directory.ts); specs use it against a
 * double of the API (test/support/keycloak-double.ts).
 */
export interface KeycloakDirectory {
  /** The realm, for logs. */
  readonly realm: string;
  /**
   * Creates a group named `name` (top level without `parentId`). 'exists' when the parent
   * already has a child of that name (Keycloak answers 409): look it up with findGroup.
   */
  createGroup(name: string, parentId?: string): Promise<{ id: string } | 'exists'>;
  /** The id of the group named exactly `name` (top level without `parentId`), if there is one. */
  findGroup(name: string, parentId?: string): Promise<string | undefined>;
  /** Ids of the groups the user is a direct member of; undefined when the realm has no such user. */
  directGroupsOf(userId: string): Promise<Set<string> | undefined>;
  /** Makes the user a direct member of the group (Keycloak does nothing when it already is). */
  joinGroup(userId: string, groupId: string): Promise<void>;
  /** Ends the user's direct membership of the group (nothing when there is none). */
  leaveGroup(userId: string, groupId: string): Promise<void>;
  /** User ids of the group's direct members, every page. */
  membersOf(groupId: string): Promise<string[]>;
}

/** Keycloak did not answer usefully (a 5xx, a timeout, a refused token, 429): try again later. */
export class KeycloakUnavailableError extends Error {
  readonly retryable = true;
  readonly status: number | undefined;
  constructor(message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'KeycloakUnavailableError';
    this.status = options.status;
  }
}

/** A group id Keycloak no longer knows (deleted in the console): resolve the group again. */
export class KeycloakGroupGoneError extends Error {
  readonly retryable = true;
  readonly groupId: string;
  constructor(groupId: string) {
    super(`Keycloak has no group ${groupId} (deleted in the console?): it is looked up again`);
    this.name = 'KeycloakGroupGoneError';
    this.groupId = groupId;
  }
}
