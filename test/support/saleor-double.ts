import { createPrivateKey, randomUUID, sign as rsaSign, type KeyObject } from 'node:crypto';
import http from 'node:http';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { serveOnLoopback } from './http.ts';

/**
 * A stand-in for one Saleor instance, built from Saleor's source (github.com/saleor/saleor, 3.24):
 *
 * - Signing (saleor/webhook/transport/__init__.py signature_for_payload → saleor/core/jwt_manager.py
 *   jws_encode, PyJWT api_jws.encode): a webhook without a secret key gets a detached JWS, RS256
 *   over `base64url(header) + "." + body` with the body NOT encoded (RFC 7797), header
 *   {"alg","b64":false,"crit":["b64"],"kid","typ":"JWT"} serialized compact with sorted keys, kid
 *   the RFC 7638 thumbprint of the public key (JWTManager.get_key_id), the token sent with an
 *   empty payload segment (`<header>..<signature>`).
 * - JWKS (saleor/core/views.py jwks, saleor/urls.py `.well-known/jwks.json`): the one current key,
 *   {kty, n, e, use: "sig", kid, alg: "RS256"}. Rotating (a new RSA_PRIVATE_KEY) replaces it:
 *   Saleor serves only one key, so a key rotated out is gone at once.
 * - Headers (saleor/webhook/transport/utils.py send_webhook_using_http): Content-Type, the X-
 *   deprecated trio and Saleor-Event, Saleor-Domain, Saleor-Signature, Saleor-Api-Url.
 * - Body (transport.py: json.dumps({**data})): Python's json.dumps, separators ", " and ": ",
 *   non-ASCII escaped, Money.amount a float ("10.0"); the event object itself, as with `event` as
 *   the subscription root (saleor/graphql/webhook/subscription_payload.py).
 * - Retries (transport.py send_webhook_request_async, handle_webhook_retry): the stored payload is
 *   sent again, re-signed; no retry after a 3xx or 4xx.
 * - Money (saleor/payment/transaction_item_calculations.py): a successful refund moves its amount
 *   from charged to refunded.
 * - GraphQL `orders` (schema.graphql): MANAGE_ORDERS, at most 100 a page, `where` by updatedAt
 *   range or ids, cursor pagination.
 *
 * Stricter than Saleor: the GraphQL endpoint answers only the control-plane's ControlPlaneOrders
 * operation and refuses any `where` field it does not know (Saleor would run other queries), a
 * missing or wrong app token gets 401 (Saleor answers some of those with 200 and errors), and
 * JWKS requests other than GET are refused.
 */
export interface SaleorDouble {
  /** e.g. http://127.0.0.1:PORT/graphql/ — what Saleor-Api-Url says and SALEOR_API_URL is. */
  apiUrl: string;
  appToken: string;
  /** Current key's kid. */
  kid(): string;
  /** A new RSA key (or `next`, made ahead) replaces the current one (JWKS serves only the new one). */
  rotateKey(next?: SigningKey): Promise<void>;
  jwksFetches(): number;
  createOrder(input: CreateOrderInput): DoubleOrder;
  /** Charges the order's total (CHARGE_SUCCESS): fully paid. */
  pay(orderId: string): DoubleOrder;
  /** A successful refund of `minor` (REFUND_SUCCESS). */
  refund(orderId: string, minor: number): DoubleOrder;
  setMetadata(orderId: string, key: string, value: string, where?: 'metadata' | 'privateMetadata'): DoubleOrder;
  /** The body and headers Saleor would send for `event` about the order now. */
  delivery(event: 'order_fully_paid' | 'order_refunded' | 'order_fully_refunded' | 'order_created', orderId: string): SaleorDelivery;
  /** A delivery of `body` as it stands, signed: what a Saleor with another subscription query would send. */
  signed(event: string, body: string): SaleorDelivery;
  /** Sends a delivery to `url` as Saleor's HTTP transport does. */
  send(url: string, delivery: SaleorDelivery, edit?: (headers: Record<string, string>) => void): Promise<{ status: number; body: Record<string, unknown> }>;
  graphqlRequests(): number;
  close(): Promise<void>;
}

export interface CreateOrderInput {
  /** Written to the order's public metadata as `gsv.io/org-id` unless undefined. */
  orgId?: string;
  creditSku?: string;
  creditUnits: number;
  /** Minor units per credit unit charged (default 100). */
  unitPriceMinor?: number;
  currency?: string;
  /** A line of something else, priced in minor units. */
  otherLine?: { sku: string; quantity: number; unitPriceMinor: number };
}

export interface DoubleOrder {
  uuid: string;
  id: string;
  number: string;
  created: string;
  updatedAt: string;
  currency: string;
  metadata: Map<string, string>;
  privateMetadata: Map<string, string>;
  lines: { uuid: string; sku: string; variantPk: number; quantity: number; unitPriceMinor: number }[];
  chargedMinor: number;
  refundedMinor: number;
  checkoutUuid: string;
}

export interface SaleorDelivery {
  event: string;
  body: string;
  headers: Record<string, string>;
}

/** Python floats print with a fractional part (json.dumps(10.0) is "10.0"). */
class PyFloat {
  readonly value: number;
  constructor(value: number) {
    this.value = value;
  }
}

/** Python's json.dumps with default arguments: ", " and ": " separators, ensure_ascii. */
export function pythonJsonDumps(value: unknown): string {
  if (value instanceof PyFloat) return Number.isInteger(value.value) ? `${value.value}.0` : String(value.value);
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (typeof value === 'number' || typeof value === 'boolean') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(pythonJsonDumps).join(', ')}]`;
  return `{${Object.entries(value as Record<string, unknown>).map(([k, v]) => `${pythonJsonDumps(k)}: ${pythonJsonDumps(v)}`).join(', ')}}`;
}

const globalId = (type: string, pk: string | number) => Buffer.from(`${type}:${pk}`).toString('base64');
const FRACTION_DIGITS: Record<string, number> = { EUR: 2, USD: 2, JPY: 0, KWD: 3 };

export async function startSaleorDouble(options: { pageSize?: number; version?: string } = {}): Promise<SaleorDouble> {
  const pageSize = Math.min(options.pageSize ?? 100, 100);
  const version = options.version ?? '3.24.0';
  const appToken = `saleor-app-${randomUUID()}`;
  let key = await newKey();
  let jwksFetches = 0;
  let graphqlRequests = 0;
  let orderNumber = 1000;
  const orders = new Map<string, DoubleOrder>();
  // An hour ago, so that today's reconciliation window holds what specs create.
  let clock = Date.now() - 3600_000;
  const tick = () => new Date((clock += 1000)).toISOString();

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://double');
    if (url.pathname === '/.well-known/jwks.json') {
      if (req.method !== 'GET') return answer(res, 405, { error: 'method not allowed' });
      jwksFetches += 1;
      return answer(res, 200, { keys: [key.jwk] });
    }
    if (url.pathname === '/graphql/' && req.method === 'POST') {
      graphqlRequests += 1;
      let text = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (text += chunk));
      req.on('end', () => {
        if (req.headers.authorization !== `Bearer ${appToken}`) return answer(res, 401, { errors: [{ message: 'Invalid token', extensions: { exception: { code: 'InvalidTokenError' } } }] });
        if (!/^application\/json/.test(req.headers['content-type'] ?? '')) return answer(res, 400, { errors: [{ message: 'Must provide query string.' }] });
        let request: { query?: unknown; variables?: Record<string, unknown>; operationName?: unknown };
        try {
          request = JSON.parse(text) as typeof request;
        } catch {
          return answer(res, 400, { errors: [{ message: 'Unable to parse query.' }] });
        }
        answer(res, 200, ordersQuery(request));
      });
      return;
    }
    answer(res, 404, { error: 'not found' });
  });
  const listening = await serveOnLoopback(server);
  const apiUrl = `${listening.url}/graphql/`;

  function ordersQuery(request: { query?: unknown; variables?: Record<string, unknown> }): unknown {
    const query = typeof request.query === 'string' ? request.query : '';
    if (!/^\s*query ControlPlaneOrders\(\$where: OrderWhereInput!, \$after: String\)/.test(query)) {
      return { errors: [{ message: 'The Saleor double answers only the ControlPlaneOrders query.' }] };
    }
    const first = Number(/orders\(first: (\d+)/.exec(query)?.[1]);
    // "the system only allows fetching a maximum of 100 objects in a single query" (schema.graphql, Query.orders).
    if (!(first >= 1 && first <= 100)) return { errors: [{ message: 'The `first` argument must be between 1 and 100.' }] };
    const variables = request.variables ?? {};
    const unknownVariables = Object.keys(variables).filter((k) => k !== 'where' && k !== 'after');
    if (unknownVariables.length > 0) return { errors: [{ message: `Unknown variables ${unknownVariables.join(', ')}` }] };
    const where = variables.where as Record<string, unknown> | undefined;
    if (!where || typeof where !== 'object') return { errors: [{ message: 'Variable "$where" of required type "OrderWhereInput!" was not provided.' }] };
    const unknownFields = Object.keys(where).filter((k) => k !== 'updatedAt' && k !== 'ids');
    if (unknownFields.length > 0) return { errors: [{ message: `The double knows no OrderWhereInput field ${unknownFields.join(', ')}` }] };
    let selected = [...orders.values()];
    if (where.updatedAt !== undefined) {
      const range = where.updatedAt as { gte?: string; lte?: string };
      const bad = Object.keys(range).filter((k) => k !== 'gte' && k !== 'lte');
      if (bad.length > 0 || [range.gte, range.lte].some((v) => v !== undefined && Number.isNaN(Date.parse(v)))) {
        return { errors: [{ message: 'DateTimeRangeInput takes gte and lte, ISO 8601 date-times.' }] };
      }
      selected = selected.filter((o) => (range.gte === undefined || o.updatedAt >= new Date(range.gte).toISOString()) && (range.lte === undefined || o.updatedAt <= new Date(range.lte).toISOString()));
    }
    if (where.ids !== undefined) {
      if (!Array.isArray(where.ids)) return { errors: [{ message: 'ids is a list of IDs' }] };
      const ids = new Set(where.ids as string[]);
      selected = selected.filter((o) => ids.has(o.id));
    }
    selected.sort((a, b) => Number(b.number) - Number(a.number));
    const after = typeof variables.after === 'string' ? Number(Buffer.from(variables.after, 'base64').toString('utf8').replace(/^cursor:/, '')) : -1;
    const start = after + 1;
    const page = selected.slice(start, start + Math.min(first, pageSize));
    return {
      data: {
        orders: {
          pageInfo: { hasNextPage: start + page.length < selected.length, endCursor: page.length ? Buffer.from(`cursor:${start + page.length - 1}`).toString('base64') : null },
          edges: page.map((o) => ({ node: plain(orderNode(o)) })),
        },
      },
    };
  }

  function money(currency: string, minor: number) {
    const digits = FRACTION_DIGITS[currency] ?? 2;
    return { currency, amount: new PyFloat(minor / 10 ** digits), fractionalAmount: minor, fractionDigits: digits };
  }
  const totalMinor = (o: DoubleOrder) => o.lines.reduce((sum, l) => sum + l.quantity * l.unitPriceMinor, 0);

  /** Exactly the fields of the control-plane's ControlPlaneOrder fragment, in its order. */
  function orderNode(o: DoubleOrder) {
    const charge = o.chargedMinor === 0 ? 'NONE' : o.chargedMinor < totalMinor(o) ? 'PARTIAL' : o.chargedMinor === totalMinor(o) ? 'FULL' : 'OVERCHARGED';
    return {
      id: o.id,
      number: o.number,
      created: o.created,
      updatedAt: o.updatedAt,
      status: 'UNFULFILLED',
      chargeStatus: charge,
      checkoutId: globalId('Checkout', o.checkoutUuid),
      metadata: [...o.metadata].map(([k, v]) => ({ key: k, value: v })),
      privateMetadata: [...o.privateMetadata].map(([k, v]) => ({ key: k, value: v })),
      total: { gross: money(o.currency, totalMinor(o)) },
      totalCharged: money(o.currency, o.chargedMinor),
      totalRefunded: money(o.currency, o.refundedMinor),
      lines: o.lines.map((l) => ({ id: globalId('OrderLine', l.uuid), productSku: l.sku, quantity: l.quantity, variant: { id: globalId('ProductVariant', l.variantPk), sku: l.sku } })),
    };
  }

  const TYPENAMES: Record<string, string> = { order_fully_paid: 'OrderFullyPaid', order_refunded: 'OrderRefunded', order_fully_refunded: 'OrderFullyRefunded', order_created: 'OrderCreated' };

  function get(orderId: string): DoubleOrder {
    const order = orders.get(orderId);
    if (!order) throw new Error(`the Saleor double has no order ${orderId}`);
    return order;
  }

  return {
    apiUrl,
    appToken,
    kid: () => key.kid,
    rotateKey: async (next) => {
      key = next ?? (await newKey());
    },
    jwksFetches: () => jwksFetches,
    graphqlRequests: () => graphqlRequests,
    createOrder: (input) => {
      const uuid = randomUUID();
      const created = tick();
      const order: DoubleOrder = {
        uuid,
        id: globalId('Order', uuid),
        number: String((orderNumber += 1)),
        created,
        updatedAt: created,
        currency: input.currency ?? 'EUR',
        // Saleor copies the checkout's metadata onto the order (saleor/checkout/complete_checkout.py).
        metadata: new Map(input.orgId === undefined ? [] : [['gsv.io/org-id', input.orgId]]),
        privateMetadata: new Map(),
        lines: [
          { uuid: randomUUID(), sku: input.creditSku ?? 'gsv-credit', variantPk: 7, quantity: input.creditUnits, unitPriceMinor: input.unitPriceMinor ?? 100 },
          ...(input.otherLine ? [{ uuid: randomUUID(), sku: input.otherLine.sku, variantPk: 8, quantity: input.otherLine.quantity, unitPriceMinor: input.otherLine.unitPriceMinor }] : []),
        ],
        chargedMinor: 0,
        refundedMinor: 0,
        checkoutUuid: randomUUID(),
      };
      orders.set(order.id, order);
      return order;
    },
    pay: (orderId) => {
      const order = get(orderId);
      order.chargedMinor = totalMinor(order);
      order.updatedAt = tick();
      return order;
    },
    refund: (orderId, minor) => {
      const order = get(orderId);
      if (minor <= 0 || minor > order.chargedMinor) throw new Error(`cannot refund ${minor} of ${order.chargedMinor} charged`);
      order.chargedMinor -= minor;
      order.refundedMinor += minor;
      order.updatedAt = tick();
      return order;
    },
    setMetadata: (orderId, k, v, where = 'metadata') => {
      const order = get(orderId);
      order[where].set(k, v);
      order.updatedAt = tick();
      return order;
    },
    delivery: (event, orderId) => {
      const order = get(orderId);
      return signed(event, pythonJsonDumps({ __typename: TYPENAMES[event], issuedAt: tick(), version, order: orderNode(order) }));
    },
    signed: (event, body) => signed(event, body),
    send: async (url, delivery, edit) => {
      const headers = { ...delivery.headers };
      edit?.(headers);
      const response = await fetch(url, { method: 'POST', headers, body: delivery.body, redirect: 'manual' });
      const text = await response.text();
      return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
    },
    close: listening.close,
  };

  function signed(event: string, body: string): SaleorDelivery {
      const signature = signDetached(body, key);
      const domain = new URL(apiUrl).host;
      return {
        event,
        body,
        headers: {
          'Content-Type': 'application/json',
          'X-Saleor-Event': event,
          'X-Saleor-Domain': domain,
          'X-Saleor-Signature': signature,
          'Saleor-Event': event,
          'Saleor-Domain': domain,
          'Saleor-Signature': signature,
          'Saleor-Api-Url': apiUrl,
        },
      };
  }
}

/** Signs `body` as Saleor does; exported so specs can sign with a key that is not Saleor's. */
export function signDetached(body: string, key: { kid: string; privateKey: KeyObject }): string {
  // PyJWT: header {"typ": "JWT", "alg": ...} updated with Saleor's kid and crit, b64 false, sorted, compact.
  const header = JSON.stringify({ alg: 'RS256', b64: false, crit: ['b64'], kid: key.kid, typ: 'JWT' });
  const protectedHeader = Buffer.from(header).toString('base64url');
  const signature = rsaSign('sha256', Buffer.concat([Buffer.from(`${protectedHeader}.`), Buffer.from(body, 'utf8')]), key.privateKey);
  return `${protectedHeader}..${signature.toString('base64url')}`;
}

export interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  jwk: Record<string, unknown>;
}

/** A 2048-bit RSA key as Saleor makes one (saleor/core/jwt_manager.py), with its JWK and thumbprint kid. */
export async function newKey(): Promise<SigningKey> {
  const pair = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  const publicJwk = await exportJWK(pair.publicKey);
  const kid = await calculateJwkThumbprint(publicJwk, 'sha256');
  const privateKey = createPrivateKey({ key: await exportJWK(pair.privateKey), format: 'jwk' });
  return { kid, privateKey, jwk: { kty: publicJwk.kty, e: publicJwk.e, n: publicJwk.n, use: 'sig', kid, alg: 'RS256' } };
}

function answer(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** PyFloat → number, for GraphQL answers (the HTTP layer serializes with JSON.stringify). */
function plain(value: unknown): unknown {
  if (value instanceof PyFloat) return value.value;
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  return value;
}
