import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import { serveOnLoopback } from './http.ts';

/**
 * A stand-in for Keycloak's token endpoint and the part of its admin REST API the membership
 * mirror uses, on a loopback port, holding one realm in memory. Each operation below cites the
 * Keycloak resource method it copies (services/src/main/java/org/keycloak/services/resources/
 * admin/, Keycloak 26); where Keycloak is lenient the double is not:
 * - only the listed method + path pairs exist, and each takes only the query names its resource
 *   method declares, with typed values; anything else is a violation (recorded, answered 400/404);
 * - bodies must be JSON objects with only GroupRepresentation's fields (Keycloak's Jackson
 *   mapper ignores unknown ones); membership PUT/DELETE take no body but `{}`;
 * - every admin request needs a bearer token this double issued for this realm, unexpired, to a
 *   client whose service account holds the realm-management role the operation needs;
 * - the token endpoint takes one client authentication method per request (RFC 6749 §2.3.1).
 * Faults: an outage (every request answered 5xx, or left hanging), and one-shot faults for the
 * next matching request, including a hang after the effect landed (the retry's problem).
 * Every request and every change of state is recorded, so a spec can count them.
 */
export interface KeycloakDoubleOptions {
  realm?: string;
  clients?: { clientId: string; secret: string; roles?: string[] }[];
  /** Access token lifetime (realm setting accessTokenLifespan, 300 s by default). */
  accessTokenLifespanSeconds?: number;
}

export type KeycloakFault = { kind: 'status'; status: number } | { kind: 'hang' } | { kind: 'hang-after-effect' };

export interface RecordedRequest {
  method: string;
  path: string;
  /** The operation matched (e.g. 'PUT /users/{id}/groups/{groupId}'), or undefined. */
  operation: string | undefined;
  status: number | 'hung';
}

/** A change of the realm's state that a request made (a request that changed nothing is not one). */
export type KeycloakEffect = { action: 'create-group'; path: string } | { action: 'join' | 'leave'; user: string; path: string };

interface Group {
  id: string;
  name: string;
  parentId: string | undefined;
}

interface Token {
  clientId: string;
  exp: number;
}

const MANAGE = 'manage-users';
const VIEW_USERS = 'view-users';
const QUERY_GROUPS = 'query-groups';
const DEFAULT_ROLES = [MANAGE, VIEW_USERS, QUERY_GROUPS];
/** GroupRepresentation's properties (org.keycloak.representations.idm.GroupRepresentation; the admin client's defs/groupRepresentation.d.ts lists the same). */
const GROUP_FIELDS = new Set(['id', 'name', 'path', 'parentId', 'subGroupCount', 'subGroups', 'attributes', 'realmRoles', 'clientRoles', 'access', 'description']);

class Reply {
  readonly status: number;
  readonly body: unknown;
  readonly headers: Record<string, string>;
  constructor(status: number, body?: unknown, headers: Record<string, string> = {}) {
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
}
const error = (status: number, message: string, field: 'error' | 'errorMessage' = 'error') => new Reply(status, { [field]: message });

interface Operation {
  method: string;
  /** Relative to /admin/realms/{realm}. */
  template: string;
  regex: RegExp;
  query: Record<string, 'int' | 'bool' | 'string'>;
  role: string;
  handle: (request: { params: string[]; query: URLSearchParams; body: unknown; url: string }) => Reply;
}

export class KeycloakDouble {
  readonly realm: string;
  url = '';
  readonly requests: RecordedRequest[] = [];
  readonly effects: KeycloakEffect[] = [];
  readonly violations: string[] = [];
  tokensIssued = 0;
  readonly #clients: Map<string, { secret: string; roles: string[] }>;
  readonly #lifespan: number;
  readonly #tokens = new Map<string, Token>();
  readonly #groups = new Map<string, Group>();
  readonly #users = new Map<string, { username: string; groups: Set<string> }>();
  readonly #operations: Operation[];
  readonly #oneShot: { match: (method: string, path: string) => boolean; fault: KeycloakFault }[] = [];
  readonly #hanging = new Set<http.ServerResponse>();
  #outage: KeycloakFault | undefined;
  #server: { close(): Promise<void> } | undefined;

  constructor(options: KeycloakDoubleOptions = {}) {
    this.realm = options.realm ?? 'gsv';
    this.#clients = new Map((options.clients ?? [{ clientId: 'control-plane', secret: 'kc-secret' }]).map((c) => [c.clientId, { secret: c.secret, roles: c.roles ?? DEFAULT_ROLES }]));
    this.#lifespan = options.accessTokenLifespanSeconds ?? 300;
    this.#operations = this.#describeOperations();
  }

  async start(): Promise<this> {
    const listening = await serveOnLoopback(http.createServer((req, res) => void this.#serve(req, res)));
    this.url = listening.url;
    this.#server = listening;
    return this;
  }

  async close(): Promise<void> {
    for (const res of this.#hanging) res.destroy();
    await this.#server?.close();
  }

  // ---- faults -------------------------------------------------------------------------------

  /** Every request (token endpoint too) fails this way until `outage(undefined)`. */
  outage(fault: KeycloakFault | undefined): void {
    this.#outage = fault;
  }

  /** The next request matching `operation` (e.g. 'PUT /users/{id}/groups/{groupId}') fails this way. */
  failNext(operation: string, fault: KeycloakFault): void {
    this.#oneShot.push({ match: (method, template) => `${method} ${template}` === operation, fault });
  }

  // ---- the realm, as an administrator sees it in the console ---------------------------------

  addUser(username: string, id: string = randomUUID()): string {
    this.#users.set(id, { username, groups: new Set() });
    return id;
  }

  groupId(path: string): string | undefined {
    return [...this.#groups.values()].find((g) => this.#path(g) === path)?.id;
  }

  /** Paths of the user's direct groups, sorted. */
  directGroups(userId: string): string[] {
    return [...(this.#users.get(userId)?.groups ?? [])].map((id) => this.#path(this.#groups.get(id)!)).sort();
  }

  consoleCreateGroup(path: string): string {
    const slash = path.lastIndexOf('/');
    const parentId = slash === 0 ? undefined : this.groupId(path.slice(0, slash));
    const group = { id: randomUUID(), name: path.slice(slash + 1), parentId };
    this.#groups.set(group.id, group);
    return group.id;
  }

  consoleDeleteGroup(path: string): void {
    const id = this.groupId(path)!;
    const doomed = new Set([...this.#groups.values()].filter((g) => this.#isAncestorOrSelf(id, g.id)).map((g) => g.id));
    for (const g of doomed) this.#groups.delete(g);
    for (const user of this.#users.values()) for (const g of doomed) user.groups.delete(g);
  }

  consoleJoin(userId: string, path: string): void {
    this.#users.get(userId)!.groups.add(this.groupId(path)!);
  }

  consoleLeave(userId: string, path: string): void {
    this.#users.get(userId)!.groups.delete(this.groupId(path)!);
  }

  /** Requests of one operation that were answered 2xx, or hung after their effect landed. */
  succeeded(operation: string): RecordedRequest[] {
    return this.requests.filter((r) => r.operation === operation && (r.status === 'hung' || (r.status >= 200 && r.status < 300)));
  }

  // ---- HTTP ---------------------------------------------------------------------------------

  async #serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', this.url);
    const method = req.method ?? 'GET';
    const record: RecordedRequest = { method, path: url.pathname, operation: undefined, status: 0 };
    this.requests.push(record);

    const tokenPath = `/realms/${this.realm}/protocol/openid-connect/token`;
    const adminPrefix = `/admin/realms/${this.realm}`;
    // One trailing slash is the same resource to JAX-RS: @keycloak/keycloak-admin-client sends
    // POST .../groups/ (its path "" joined to the resource's), and Keycloak's own admin console,
    // built on that client, creates groups that way.
    const adminPath = url.pathname.slice(adminPrefix.length).replace(/(.)\/$/, '$1');
    const operation = url.pathname.startsWith(`${adminPrefix}/`) ? this.#match(method, adminPath) : undefined;
    record.operation = url.pathname === tokenPath ? 'POST token' : operation ? `${operation.op.method} ${operation.op.template}` : undefined;

    const oneShot = this.#oneShot.findIndex((f) => operation && f.match(operation.op.method, operation.op.template));
    const fault = this.#outage ?? (oneShot >= 0 ? this.#oneShot.splice(oneShot, 1)[0]!.fault : undefined);
    if (fault?.kind === 'hang') return this.#hang(res, record);
    if (fault?.kind === 'status') {
      record.status = fault.status;
      res.writeHead(fault.status, { 'content-type': 'text/html' }).end('<html><body>Service Unavailable</body></html>');
      return;
    }

    let reply: Reply;
    if (url.pathname === tokenPath) reply = method === 'POST' ? this.#token(req, raw) : this.#violation(405, `${method} on the token endpoint`);
    else if (!operation) reply = this.#violation(404, `no such operation: ${method} ${url.pathname}`);
    else reply = this.#admin(req, operation.op, operation.params, url, raw);

    if (fault?.kind === 'hang-after-effect') return this.#hang(res, record);
    record.status = reply.status;
    const json = reply.body === undefined ? undefined : JSON.stringify(reply.body);
    res.writeHead(reply.status, { ...(json ? { 'content-type': 'application/json' } : {}), ...reply.headers }).end(json);
  }

  #hang(res: http.ServerResponse, record: RecordedRequest): void {
    record.status = 'hung';
    this.#hanging.add(res);
    res.on('close', () => this.#hanging.delete(res));
  }

  #violation(status: number, message: string): Reply {
    this.violations.push(message);
    return error(status, message);
  }

  #match(method: string, path: string): { op: Operation; params: string[] } | undefined {
    for (const op of this.#operations) {
      const found = op.method === method ? op.regex.exec(path) : null;
      if (found) return { op, params: found.slice(1).map((p) => decodeURIComponent(p)) };
    }
    return undefined;
  }

  /**
   * OIDC token endpoint, client credentials grant (Keycloak's ClientCredentialsGrantType): no
   * refresh token unless the client enables it, which this realm's clients do not.
   */
  #token(req: http.IncomingMessage, raw: string): Reply {
    if (!req.headers['content-type']?.startsWith('application/x-www-form-urlencoded')) return this.#violation(400, 'token request is not form-encoded');
    const form = new URLSearchParams(raw);
    let clientId = form.get('client_id') ?? undefined;
    let secret = form.get('client_secret') ?? undefined;
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
    if (basic) {
      if (secret !== undefined) return this.#violation(400, 'two client authentication methods in one token request (RFC 6749 2.3)');
      const [id, pass] = Buffer.from(basic[1]!, 'base64').toString('utf8').split(':').map((p) => decodeURIComponent(p.replace(/\+/g, ' ')));
      if (clientId !== undefined && clientId !== id) return this.#violation(400, 'client_id in the body differs from the Basic credentials');
      clientId = id;
      secret = pass;
    }
    if (form.get('grant_type') !== 'client_credentials') return this.#violation(400, `grant_type ${form.get('grant_type')} (only client_credentials is expected)`);
    const client = clientId === undefined ? undefined : this.#clients.get(clientId);
    if (!client || client.secret !== secret) return new Reply(401, { error: 'unauthorized_client', error_description: 'Invalid client or Invalid client credentials' });
    const now = Math.floor(Date.now() / 1000);
    const payload = { exp: now + this.#lifespan, iat: now, jti: randomUUID(), iss: `${this.url}/realms/${this.realm}`, typ: 'Bearer', azp: clientId, sub: `service-account-${clientId}` };
    const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const accessToken = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64(payload)}.${randomBytes(32).toString('base64url')}`;
    this.#tokens.set(accessToken, { clientId: clientId!, exp: payload.exp });
    this.tokensIssued += 1;
    return new Reply(200, { access_token: accessToken, expires_in: this.#lifespan, refresh_expires_in: 0, token_type: 'Bearer', 'not-before-policy': 0, scope: 'profile email' });
  }

  #admin(req: http.IncomingMessage, op: Operation, params: string[], url: URL, raw: string): Reply {
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const token = bearer ? this.#tokens.get(bearer) : undefined;
    if (!token || token.exp * 1000 <= Date.now()) return new Reply(401, { error: 'HTTP 401 Unauthorized' });
    if (!this.#clients.get(token.clientId)!.roles.includes(op.role)) return new Reply(403, { error: 'HTTP 403 Forbidden' });
    for (const [name, value] of url.searchParams) {
      const type = op.query[name];
      if (!type) return this.#violation(400, `${op.method} ${op.template} takes no query parameter ${name}`);
      if (type === 'int' && !/^\d+$/.test(value)) return this.#violation(400, `${name}=${value} is not a non-negative integer`);
      if (type === 'bool' && value !== 'true' && value !== 'false') return this.#violation(400, `${name}=${value} is not a boolean`);
    }
    let body: unknown;
    if (op.method === 'POST' || op.method === 'PUT' || op.method === 'DELETE') {
      if (raw !== '') {
        if (!req.headers['content-type']?.startsWith('application/json')) return this.#violation(415, `${op.method} ${op.template} body is not JSON`);
        try {
          body = JSON.parse(raw);
        } catch {
          return this.#violation(400, `${op.method} ${op.template} body is not valid JSON`);
        }
      }
    } else if (raw !== '') return this.#violation(400, `GET ${op.template} with a body`);
    return op.handle({ params, query: url.searchParams, body, url: url.toString() });
  }

  // ---- the operations -----------------------------------------------------------------------

  #describeOperations(): Operation[] {
    const op = (method: string, template: string, role: string, query: Operation['query'], handle: Operation['handle']): Operation => ({
      method,
      template,
      role,
      query,
      handle,
      regex: new RegExp(`^${template.replace(/\{[^}]+\}/g, '([^/]+)')}$`),
    });
    return [
      // GroupsResource.addTopLevelGroup: 409 for a top-level name taken, else 201 + Location, no body.
      op('POST', '/groups', MANAGE, {}, ({ body, url }) => {
        const name = this.#groupName(body);
        if (name instanceof Reply) return name;
        if (this.#children(undefined).some((g) => g.name === name)) return error(409, `Top level group named '${name}' already exists.`, 'errorMessage');
        const group = this.#create(name, undefined);
        return new Reply(201, undefined, { location: `${url.replace(/\/$/, '')}/${group.id}` });
      }),
      // GroupResource.addChild: 404 for a parent that is gone, 409 for a sibling's name, else 201 + Location + the child.
      op('POST', '/groups/{id}/children', MANAGE, {}, ({ params, body }) => {
        const parent = this.#groups.get(params[0]!);
        if (!parent) return error(404, 'Could not find group by id');
        const name = this.#groupName(body);
        if (name instanceof Reply) return name;
        if (this.#children(parent.id).some((g) => g.name === name)) return error(409, `Sibling group named '${name}' already exists.`, 'errorMessage');
        const group = this.#create(name, parent.id);
        return new Reply(201, this.#brief(group), { location: `${this.url}/admin/realms/${this.realm}/groups/${group.id}` });
      }),
      // RealmAdminResource.getGroupByPath: the group at exactly that path, or 404.
      op('GET', '/group-by-path/{path}', QUERY_GROUPS, {}, ({ params }) => {
        // A nested path sent as one segment (%2F) is refused: Keycloak does not read it as a separator.
        if (params[0]!.includes('/')) return this.#violation(400, `group-by-path with an encoded slash: ${params[0]}`);
        const wanted = `/${params[0]!}`;
        const group = [...this.#groups.values()].find((g) => this.#path(g) === wanted);
        return group ? new Reply(200, this.#brief(group)) : error(404, 'Group path does not exist');
      }),
      // GroupResource.getSubGroups: search matches part of a name, case-insensitively (exact=true: whole);
      // first defaults to 0, max to 10.
      op('GET', '/groups/{id}/children', QUERY_GROUPS, { search: 'string', exact: 'bool', first: 'int', max: 'int', briefRepresentation: 'bool', subGroupsCount: 'bool' }, ({ params, query }) => {
        if (!this.#groups.has(params[0]!)) return error(404, 'Could not find group by id');
        const search = query.get('search')?.toLowerCase();
        const exact = query.get('exact') === 'true';
        const matching = this.#children(params[0]).filter((g) => search === undefined || (exact ? g.name.toLowerCase() === search : g.name.toLowerCase().includes(search)));
        return new Reply(200, this.#page(matching, query, 10).map((g) => this.#brief(g)));
      }),
      // GroupResource.getMembers: the group's direct members (not its subgroups'); max defaults to 100.
      op('GET', '/groups/{id}/members', VIEW_USERS, { first: 'int', max: 'int', briefRepresentation: 'bool' }, ({ params, query }) => {
        if (!this.#groups.has(params[0]!)) return error(404, 'Could not find group by id');
        const members = [...this.#users].filter(([, u]) => u.groups.has(params[0]!)).map(([id, u]) => ({ id, username: u.username, enabled: true }));
        return new Reply(200, this.#page(members, query, 100));
      }),
      // UserResource.groupMembership: the user's direct groups.
      op('GET', '/users/{id}/groups', VIEW_USERS, { search: 'string', first: 'int', max: 'int', briefRepresentation: 'bool' }, ({ params, query }) => {
        const user = this.#users.get(params[0]!);
        if (!user) return error(404, 'User not found');
        const groups = [...user.groups].map((id) => this.#groups.get(id)!);
        return new Reply(200, this.#page(groups, query, Number.MAX_SAFE_INTEGER).map((g) => this.#brief(g)));
      }),
      // UserResource.joinGroup: nothing when isMemberOf(group) already holds, which counts
      // membership of any subgroup (RoleUtils.isMember walks up from the user's groups).
      op('PUT', '/users/{id}/groups/{groupId}', MANAGE, {}, ({ params, body }) => {
        const checked = this.#membershipRequest(params, body);
        if (checked instanceof Reply) return checked;
        const { userId, user, group } = checked;
        if (![...user.groups].some((g) => this.#isAncestorOrSelf(group.id, g))) {
          user.groups.add(group.id);
          this.effects.push({ action: 'join', user: userId, path: this.#path(group) });
        }
        return new Reply(204);
      }),
      // UserResource.removeMembership: leaves the group when isMemberOf holds; only a direct
      // membership is ever removed.
      op('DELETE', '/users/{id}/groups/{groupId}', MANAGE, {}, ({ params, body }) => {
        const checked = this.#membershipRequest(params, body);
        if (checked instanceof Reply) return checked;
        const { userId, user, group } = checked;
        if (user.groups.delete(group.id)) this.effects.push({ action: 'leave', user: userId, path: this.#path(group) });
        return new Reply(204);
      }),
    ];
  }

  #membershipRequest(params: string[], body: unknown): Reply | { userId: string; user: { groups: Set<string> }; group: Group } {
    if (body !== undefined && (typeof body !== 'object' || body === null || Object.keys(body).length > 0)) return this.#violation(400, 'membership requests take no body');
    const user = this.#users.get(params[0]!);
    if (!user) return error(404, 'User not found');
    const group = this.#groups.get(params[1]!);
    if (!group) return error(404, 'Group not found');
    return { userId: params[0]!, user, group };
  }

  #groupName(body: unknown): string | Reply {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return this.#violation(400, 'a group body must be a JSON object');
    const unknown = Object.keys(body).filter((k) => !GROUP_FIELDS.has(k));
    if (unknown.length > 0) return this.#violation(400, `GroupRepresentation has no ${unknown.join(', ')}`);
    const { name } = body as { name?: unknown };
    // GroupResource: "Group name is missing" for a blank name.
    if (typeof name !== 'string' || name.trim() === '') return error(400, 'Group name is missing', 'errorMessage');
    return name;
  }

  #create(name: string, parentId: string | undefined): Group {
    const group = { id: randomUUID(), name, parentId };
    this.#groups.set(group.id, group);
    this.effects.push({ action: 'create-group', path: this.#path(group) });
    return group;
  }

  #children(parentId: string | undefined): Group[] {
    return [...this.#groups.values()].filter((g) => g.parentId === parentId).sort((a, b) => a.name.localeCompare(b.name));
  }

  #page<T>(items: T[], query: URLSearchParams, defaultMax: number): T[] {
    const first = Number(query.get('first') ?? 0);
    const max = Number(query.get('max') ?? defaultMax);
    return items.slice(first, first + max);
  }

  #path(group: Group): string {
    const parent = group.parentId ? this.#groups.get(group.parentId) : undefined;
    return `${parent ? this.#path(parent) : ''}/${group.name}`;
  }

  #isAncestorOrSelf(ancestorId: string, groupId: string): boolean {
    for (let g = this.#groups.get(groupId); g; g = g.parentId ? this.#groups.get(g.parentId) : undefined) if (g.id === ancestorId) return true;
    return false;
  }

  #brief(group: Group) {
    return { id: group.id, name: group.name, path: this.#path(group), ...(group.parentId ? { parentId: group.parentId } : {}), subGroups: [] };
  }
}
