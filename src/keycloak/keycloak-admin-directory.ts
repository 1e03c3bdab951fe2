import KcAdminClient, { NetworkError } from '@keycloak/keycloak-admin-client';
import { KeycloakGroupGoneError, KeycloakUnavailableError, type KeycloakDirectory } from './keycloak-directory.ts';

export interface KeycloakAdminSettings {
  /** Keycloak's base URL, e.g. https://sso.example.com (the admin API is under /admin/realms/). */
  url: string;
  realm: string;
  /** A confidential client with a service account holding realm-management's manage-users and query-groups. */
  clientId: string;
  clientSecret: string;
  /** Per request; a hung Keycloak must not hold the mirror (or its leader lock) for long. */
  timeoutMs: number;
}

/** Children and members are read this many at a time (Keycloak pages both; first/max). */
const PAGE = 100;

/**
 * KeycloakDirectory over @keycloak/keycloak-admin-client, authenticated with the client
 * credentials grant. Keycloak issues no refresh token for that grant (the client setting "Use
 * refresh tokens for client credentials grant" is off by default), so an access token about to
 * expire is replaced by a new grant, and so is one the admin API refused (401).
 */
export class KeycloakAdminDirectory implements KeycloakDirectory {
  readonly realm: string;
  readonly #client: KcAdminClient;
  readonly #settings: KeycloakAdminSettings;
  #authenticated = false;

  constructor(settings: KeycloakAdminSettings) {
    this.realm = settings.realm;
    this.#settings = settings;
    this.#client = new KcAdminClient({ baseUrl: settings.url, realmName: settings.realm, timeout: settings.timeoutMs });
    // The client's own renewal uses a refresh token, which this grant does not get: a second
    // client only fetches tokens, and hands one out while it is valid for 5 s more
    // (isTokenExpired's margin), else a new grant.
    const tokens = new KcAdminClient({ baseUrl: settings.url, realmName: settings.realm, timeout: settings.timeoutMs });
    this.#client.registerTokenProvider({
      getAccessToken: async () => {
        if (!this.#authenticated || tokens.isTokenExpired()) {
          await tokens.auth({ grantType: 'client_credentials', clientId: settings.clientId, clientSecret: settings.clientSecret });
          this.#authenticated = true;
        }
        return tokens.accessToken;
      },
    });
  }

  async createGroup(name: string, parentId?: string): Promise<{ id: string } | 'exists'> {
    try {
      return await this.#call(() => (parentId ? this.#client.groups.createChildGroup({ id: parentId }, { name }) : this.#client.groups.create({ name })));
    } catch (error) {
      // GroupsResource.addTopLevelGroup and GroupResource.addChild answer 409 for a name taken
      // among the siblings; addChild answers 404 for a parent that is gone.
      if (statusOf(error) === 409) return 'exists';
      if (parentId && statusOf(error) === 404) throw new KeycloakGroupGoneError(parentId);
      throw error;
    }
  }

  async findGroup(name: string, parentId?: string): Promise<string | undefined> {
    if (!parentId) {
      // A top-level path has no `/` to encode (nested paths in group-by-path are encoded as
      // %2F by the client's URL template, which Keycloak does not read as a separator).
      try {
        const group = await this.#call(() => this.#client.realms.getGroupByPath({ realm: this.realm, path: name }));
        return group.name === name && group.id ? group.id : undefined;
      } catch (error) {
        if (statusOf(error) === 404) return undefined;
        throw error;
      }
    }
    // `search` matches part of a name: read every page and keep the exact name.
    for (let first = 0; ; first += PAGE) {
      const page = await this.#call(() => this.#client.groups.listSubGroups({ parentId, search: name, first, max: PAGE, briefRepresentation: true }));
      if (page === null) throw new KeycloakGroupGoneError(parentId);
      const match = page.find((group) => group.name === name);
      if (match?.id) return match.id;
      if (page.length < PAGE) return undefined;
    }
  }

  async directGroupsOf(userId: string): Promise<Set<string> | undefined> {
    try {
      // UserResource.groupMembership: the user's own groups (not their parents), each once.
      const groups = await this.#call(() => this.#client.users.listGroups({ id: userId, briefRepresentation: true }));
      return new Set(groups.flatMap((group) => (group.id ? [group.id] : [])));
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  async joinGroup(userId: string, groupId: string): Promise<void> {
    await this.#membership(() => this.#client.users.addToGroup({ id: userId, groupId }), groupId);
  }

  async leaveGroup(userId: string, groupId: string): Promise<void> {
    await this.#membership(() => this.#client.users.delFromGroup({ id: userId, groupId }), groupId);
  }

  async membersOf(groupId: string): Promise<string[]> {
    const ids: string[] = [];
    for (let first = 0; ; first += PAGE) {
      const page = await this.#call(() => this.#client.groups.listMembers({ id: groupId, first, max: PAGE, briefRepresentation: true }));
      if (page === null) throw new KeycloakGroupGoneError(groupId);
      ids.push(...page.flatMap((user) => (user.id ? [user.id] : [])));
      if (page.length < PAGE) return ids;
    }
  }

  /** The caller read the user's groups just before: a 404 here is the group (else the next read says so). */
  async #membership(request: () => Promise<unknown>, groupId: string): Promise<void> {
    try {
      await this.#call(request);
    } catch (error) {
      if (statusOf(error) === 404) throw new KeycloakGroupGoneError(groupId);
      throw error;
    }
  }

  /**
   * One admin request with a valid token. Answers a caller handles (404, 409) come back as the
   * client's NetworkError; what retrying later can fix (5xx, 429, a refused token, a timeout,
   * no connection) becomes KeycloakUnavailableError.
   */
  async #call<T>(request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      const status = statusOf(error);
      if (status === 401) this.#authenticated = false;
      if (status === 404 || status === 409) throw error;
      throw new KeycloakUnavailableError(describe(error, status, this.#settings), { status, cause: error });
    }
  }
}

function statusOf(error: unknown): number | undefined {
  return error instanceof NetworkError ? error.response.status : undefined;
}

function describe(error: unknown, status: number | undefined, settings: KeycloakAdminSettings): string {
  const shown = new URL(settings.url);
  shown.username = '';
  shown.password = '';
  const where = `Keycloak ${shown.origin}${shown.pathname.replace(/\/$/, '')} realm ${settings.realm}`;
  if (status === 401) return `${where} refused the credentials of client ${settings.clientId}: check KEYCLOAK_CLIENT_ID and KEYCLOAK_CLIENT_SECRET`;
  if (status === 403) return `${where} refused client ${settings.clientId}: give its service account realm-management's manage-users, view-users and query-groups`;
  if (status !== undefined) return `${where} answered ${status}: ${(error as Error).message}`;
  const name = (error as Error | undefined)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') return `${where} did not answer within ${settings.timeoutMs} ms`;
  return `${where} could not be reached: ${(error as Error | undefined)?.message ?? String(error)}`;
}
