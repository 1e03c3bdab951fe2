import { Type } from '@sinclair/typebox';
import { NotFoundError, ValidationError } from '../../errors.ts';
import { principalOfRequest } from '../auth/authenticate.ts';
import { defineRoute, type RouteSpec } from '../route.ts';
import { authorize, getAuthorization, listWalletAuthorizations, settle, voidAuthorization, type Authorization } from '../../domain/billing/authorizations.ts';
import { organizationForHold, requireResolveAccess, requireWalletAccess } from '../../domain/billing/billing-access.ts';
import { creditWallet } from '../../domain/billing/credits.ts';
import { minorAmount, type LedgerDeps } from '../../domain/billing/ledger.ts';
import { walletStatement, type Statement, type StatementLine } from '../../domain/billing/statement.ts';
import { listWalletEntries, type LedgerEntry, type Wallet } from '../../domain/billing/wallets.ts';
import { csvText, toCsv } from '../csv.ts';

export interface BillingRouteDeps extends LedgerDeps {
  /** Expiry of a hold whose request names none. */
  defaultHoldTtlSeconds: number;
  /** BILLING_MEMBER_HOLD_MAX_MINOR and BILLING_MEMBER_HOLD_MAX_SECONDS. */
  memberHolds: { maxPendingMinor: number; maxSeconds: number };
}

const Uuid = Type.String({ format: 'uuid' });
/** Minor units (cents); JSON numbers stay exact up to 2^53 − 1. */
const Minor = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
/**
 * An amount a request names: past 2^53 − 1 it is refused with 422 amount-out-of-range (the
 * handler's minorAmount), since JSON has already rounded it by the time a schema could look.
 */
const MinorInput = Type.Integer({ minimum: 0, description: 'Minor units of the currency (e.g. cents), at most 2^53 − 1.' });
const PositiveMinorInput = Type.Integer({ minimum: 1, description: 'Minor units of the currency (e.g. cents), at most 2^53 − 1.' });
const Currency = Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 4217 code.' });

const AuthorizationBody = Type.Object({
  id: Uuid,
  walletId: Uuid,
  org: Type.String(),
  currency: Currency,
  amount: Minor,
  capturedAmount: Type.Union([Minor, Type.Null()]),
  status: Type.Union(['pending', 'settled', 'voided', 'expired'].map((s) => Type.Literal(s))),
  reference: Type.Union([Type.String(), Type.Null()]),
  instanceId: Type.Union([Uuid, Type.Null()], { description: "An instance's setup fee: the instance it follows (null for other holds)." }),
  expiresAt: Type.String({ format: 'date-time' }),
  resolvedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  createdBy: Type.String({ description: 'Who placed it: a subject, or control-plane for an instance\'s setup fee.' }),
  createdAt: Type.String({ format: 'date-time' }),
});

const WalletBody = Type.Object({
  id: Uuid,
  org: Type.String(),
  currency: Currency,
  balance: Minor,
  pending: Minor,
  available: Minor,
});

const EntryBody = Type.Object({
  id: Type.String({ description: 'Increases with time.' }),
  transferId: Uuid,
  kind: Type.String({ description: 'top-up, trial-credit, capture or usage.' }),
  amount: Type.Integer({ description: 'Positive credits the wallet, negative debits it.' }),
  authorizationId: Type.Union([Uuid, Type.Null()]),
  instanceId: Type.Union([Uuid, Type.Null()]),
  reason: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
});

const WalletParams = Type.Object({ id: Uuid });

const Timestamp = Type.String({ format: 'date-time' });
const StatementLineBody = Type.Object(
  {
    kind: Type.Union(['usage', 'top-up', 'trial-credit', 'capture'].map((k) => Type.Literal(k)), { description: 'usage: consecutive hours of one instance at one rate; capture: a setup fee.' }),
    postedAt: Timestamp,
    instanceId: Type.Union([Uuid, Type.Null()]),
    instanceName: Type.Union([Type.String(), Type.Null()]),
    from: Type.Union([Timestamp, Type.Null()], { description: 'usage: the first hour charged.' }),
    to: Type.Union([Timestamp, Type.Null()], { description: 'usage: the end of the last hour charged.' }),
    hours: Type.Union([Type.Integer(), Type.Null()]),
    hourlyRate: Type.Union([Minor, Type.Null()]),
    amount: Type.Integer({ description: 'Positive credits the wallet, negative debits it.' }),
    description: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);
const StatementBody = Type.Object(
  {
    walletId: Uuid,
    currency: Currency,
    from: Timestamp,
    to: Timestamp,
    openingBalance: Minor,
    credits: Minor,
    debits: Type.Integer({ maximum: 0 }),
    closingBalance: Minor,
    lines: Type.Array(StatementLineBody),
    byInstance: Type.Array(
      Type.Object(
        { instanceId: Uuid, instanceName: Type.Union([Type.String(), Type.Null()]), setupFees: Type.Integer(), usageHours: Type.Integer(), usage: Type.Integer(), total: Type.Integer() },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

function minor(value: bigint): number {
  // Amounts enter as safe integers; a sum beyond 2^53 would be an accounting event of its own.
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < -BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`amount ${value} exceeds JSON's exact range`);
  return Number(value);
}

function presentAuthorization(a: Authorization) {
  return {
    id: a.id,
    walletId: a.walletId,
    org: a.organizationSlug,
    currency: a.currency,
    amount: minor(a.amount),
    capturedAmount: a.capturedAmount === null ? null : minor(a.capturedAmount),
    status: a.status,
    reference: a.reference,
    instanceId: a.instanceId,
    expiresAt: a.expiresAt.toISOString(),
    resolvedAt: a.resolvedAt?.toISOString() ?? null,
    createdBy: a.createdBy,
    createdAt: a.createdAt.toISOString(),
  };
}

function presentWallet(w: Wallet) {
  return { id: w.id, org: w.organizationSlug, currency: w.currency, balance: minor(w.balance), pending: minor(w.pending), available: minor(w.available) };
}

function presentEntry(e: LedgerEntry) {
  return {
    id: e.id,
    transferId: e.transferId,
    kind: e.kind,
    amount: minor(e.amount),
    authorizationId: e.authorizationId,
    instanceId: e.instanceId,
    reason: e.reason,
    createdAt: e.createdAt.toISOString(),
  };
}

/**
 * A query instant: RFC 3339 passes the schema with a leap second (23:59:60) or year 0000, which
 * JavaScript cannot represent or PostgreSQL refuses; those are the caller's mistake, not a 500.
 */
function instantOf(value: string, name: string): Date {
  const at = new Date(value);
  if (Number.isNaN(at.getTime()) || at.getUTCFullYear() < 1970 || at.getUTCFullYear() > 9999) {
    throw new ValidationError([{ in: 'query', pointer: `/${name}`, message: 'must be an instant between 1970 and 9999 (no leap second)' }]);
  }
  return at;
}

function presentStatementLine(line: StatementLine) {
  const usage = line.kind === 'usage' ? line : undefined;
  return {
    kind: line.kind,
    postedAt: line.postedAt.toISOString(),
    instanceId: line.instanceId,
    instanceName: line.instanceName,
    from: usage?.from.toISOString() ?? null,
    to: usage?.to.toISOString() ?? null,
    hours: usage?.hours ?? null,
    hourlyRate: usage ? minor(usage.hourlyRate) : null,
    amount: minor(line.amount),
    description: line.kind === 'usage' ? null : line.description,
  };
}

function presentStatement(s: Statement) {
  return {
    walletId: s.walletId,
    currency: s.currency,
    from: s.from.toISOString(),
    to: s.to.toISOString(),
    openingBalance: minor(s.openingBalance),
    credits: minor(s.credits),
    debits: minor(s.debits),
    closingBalance: minor(s.closingBalance),
    lines: s.lines.map(presentStatementLine),
    byInstance: s.byInstance.map((i) => ({
      instanceId: i.instanceId,
      instanceName: i.instanceName,
      setupFees: minor(i.setupFees),
      usageHours: i.usageHours,
      usage: minor(i.usage),
      total: minor(i.total),
    })),
  };
}

const STATEMENT_CSV_HEADER = ['posted_at', 'kind', 'instance_id', 'instance_name', 'from', 'to', 'hours', 'hourly_rate', 'amount', 'balance', 'currency', 'description'] as const;

/** One record per line, between an opening-balance and a closing-balance record. */
function statementCsv(s: Statement): string {
  const balance = (kind: string, at: Date, amount: bigint) => [at.toISOString(), kind, null, null, null, null, null, null, null, amount, s.currency, null];
  const lines = s.lines.map(presentStatementLine).map((l) => [
    l.postedAt,
    l.kind,
    l.instanceId,
    csvText(l.instanceName),
    l.from,
    l.to,
    l.hours,
    l.hourlyRate,
    l.amount,
    null,
    s.currency,
    csvText(l.description),
  ]);
  return toCsv(STATEMENT_CSV_HEADER, [balance('opening-balance', s.from, s.openingBalance), ...lines, balance('closing-balance', s.to, s.closingBalance)]);
}

const PROBLEMS = {
  402: { description: 'The wallet cannot cover the amount (problem+json, code payment-required).' },
  404: { description: 'No such wallet or authorization visible to the caller.' },
  409: { description: 'The hold is already settled, voided or expired (codes authorization-already-settled, authorization-already-voided, authorization-expired).' },
  422: { description: 'Over-capture (capture-exceeds-authorization), an amount past 2^53 − 1 (amount-out-of-range), or an Idempotency-Key reused with another body.' },
};

export function billingRoutes(deps: BillingRouteDeps): RouteSpec[] {
  return [
    defineRoute({
      method: 'post',
      path: '/billing/authorize',
      operationId: 'authorizeHold',
      summary: 'Place a hold on the org’s wallet in a currency.',
      description:
        'Refused with 402 when available = balance − pending holds would go below zero. A member (not an owner) may have at most BILLING_MEMBER_HOLD_MAX_MINOR held at once ' +
        'on a wallet (403 member-hold-limit) for at most BILLING_MEMBER_HOLD_MAX_SECONDS (422 hold-lifetime-limit).',
      tags: ['billing'],
      access: 'authenticated',
      idempotent: true,
      body: Type.Object(
        {
          org: Type.String({ minLength: 1, maxLength: 100, description: 'Organization slug (or id).' }),
          amount: PositiveMinorInput,
          currency: Currency,
          reference: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
          expiresInSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 90 * 24 * 3600 })),
        },
        { additionalProperties: false },
      ),
      responses: {
        201: { description: 'The hold, pending.', schema: AuthorizationBody },
        402: PROBLEMS[402],
        403: { description: "A member's holds on the wallet would pass BILLING_MEMBER_HOLD_MAX_MINOR (member-hold-limit), or the caller may only read." },
        404: PROBLEMS[404],
        422: PROBLEMS[422],
      },
      handler: async ({ ctx, body, transaction }) => {
        const principal = principalOfRequest(ctx);
        const amount = minorAmount(body.amount, 'amount');
        const authorization = await transaction(async (tx) => {
          const { organizationId, member } = await organizationForHold(deps, tx, principal, body.org);
          const limits = member ? { maxPendingMinor: BigInt(deps.memberHolds.maxPendingMinor), maxSeconds: deps.memberHolds.maxSeconds } : undefined;
          return authorize(deps, tx, {
            organizationId,
            currency: body.currency,
            amount,
            reference: body.reference,
            expiresInSeconds: body.expiresInSeconds ?? Math.min(deps.defaultHoldTtlSeconds, limits?.maxSeconds ?? Infinity),
            actor: principal.subject,
            ...(limits ? { memberLimits: limits } : {}),
          });
        });
        ctx.status = 201;
        ctx.body = presentAuthorization(authorization);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/billing/settle',
      operationId: 'settleHold',
      summary: 'Capture up to the held amount (all by default); the rest is released.',
      tags: ['billing'],
      access: 'authenticated',
      idempotent: true,
      body: Type.Object({ authorizationId: Uuid, amount: Type.Optional(MinorInput) }, { additionalProperties: false }),
      responses: { 200: { description: 'The settled hold.', schema: AuthorizationBody }, 404: PROBLEMS[404], 409: PROBLEMS[409], 422: PROBLEMS[422] },
      handler: async ({ ctx, body, transaction }) => {
        const principal = principalOfRequest(ctx);
        const amount = body.amount === undefined ? undefined : minorAmount(body.amount, 'amount');
        const settled = await transaction(async (tx) => {
          await requireResolveAccess(deps, tx, principal, await getAuthorization(deps, tx, body.authorizationId));
          return settle(deps, tx, { authorizationId: body.authorizationId, amount, actor: principal.subject });
        });
        ctx.body = presentAuthorization(settled);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/billing/void',
      operationId: 'voidHold',
      summary: 'Release a hold entirely.',
      tags: ['billing'],
      access: 'authenticated',
      idempotent: true,
      body: Type.Object({ authorizationId: Uuid }, { additionalProperties: false }),
      responses: { 200: { description: 'The voided hold.', schema: AuthorizationBody }, 404: PROBLEMS[404], 409: PROBLEMS[409], 422: PROBLEMS[422] },
      handler: async ({ ctx, body, transaction }) => {
        const principal = principalOfRequest(ctx);
        const voided = await transaction(async (tx) => {
          await requireResolveAccess(deps, tx, principal, await getAuthorization(deps, tx, body.authorizationId));
          return voidAuthorization(deps, tx, { authorizationId: body.authorizationId });
        });
        ctx.body = presentAuthorization(voided);
      },
    }),
    defineRoute({
      method: 'get',
      path: '/billing/authorizations/:id',
      operationId: 'getHold',
      summary: 'A hold and its status (an unexpired pending hold, or what resolved it).',
      tags: ['billing'],
      access: 'authenticated',
      params: Type.Object({ id: Uuid }),
      responses: { 200: { description: 'The hold.', schema: AuthorizationBody }, 404: PROBLEMS[404] },
      handler: async ({ ctx, params }) => {
        const authorization = await getAuthorization(deps, undefined, params.id);
        await requireWalletAccess(deps, undefined, principalOfRequest(ctx), authorization.walletId, 'read').catch((error: unknown) => {
          throw error instanceof NotFoundError ? new NotFoundError(`No authorization ${params.id}.`) : error;
        });
        ctx.body = presentAuthorization(authorization);
      },
    }),
    defineRoute({
      method: 'get',
      path: '/billing/wallets/:id/authorizations',
      operationId: 'listWalletHolds',
      summary: "The wallet's holds, newest first (members of its org): who placed each, for how much, until when.",
      tags: ['billing'],
      access: 'authenticated',
      params: WalletParams,
      query: Type.Object(
        {
          status: Type.Optional(Type.Union([Type.Literal('pending'), Type.Literal('settled'), Type.Literal('voided'), Type.Literal('expired')])),
          limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
        },
        { additionalProperties: false },
      ),
      responses: { 200: { description: 'The holds.', schema: Type.Object({ items: Type.Array(AuthorizationBody) }, { additionalProperties: false }) }, 404: PROBLEMS[404] },
      handler: async ({ ctx, params, query }) => {
        const wallet = await requireWalletAccess(deps, undefined, principalOfRequest(ctx), params.id, 'read');
        const holds = await listWalletAuthorizations(deps, undefined, wallet.id, { limit: query.limit, ...(query.status ? { status: query.status } : {}) });
        ctx.body = { items: holds.map(presentAuthorization) };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/billing/wallets/:id',
      operationId: 'getWallet',
      summary: 'A wallet: balance, pending holds and what is available.',
      tags: ['billing'],
      access: 'authenticated',
      params: WalletParams,
      responses: { 200: { description: 'The wallet.', schema: WalletBody }, 404: PROBLEMS[404] },
      handler: async ({ ctx, params }) => {
        ctx.body = presentWallet(await requireWalletAccess(deps, undefined, principalOfRequest(ctx), params.id, 'read'));
      },
    }),
    defineRoute({
      method: 'get',
      path: '/billing/wallets/:id/entries',
      operationId: 'listWalletEntries',
      summary: 'The wallet’s ledger entries, newest first.',
      tags: ['billing'],
      access: 'authenticated',
      params: WalletParams,
      query: Type.Object(
        {
          limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
          cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 40, description: 'nextCursor of the previous page.' })),
        },
        { additionalProperties: false },
      ),
      responses: {
        200: { description: 'A page of entries.', schema: Type.Object({ items: Type.Array(EntryBody), nextCursor: Type.Union([Type.String(), Type.Null()]) }) },
        404: PROBLEMS[404],
      },
      handler: async ({ ctx, params, query }) => {
        const wallet = await requireWalletAccess(deps, undefined, principalOfRequest(ctx), params.id, 'read');
        const page = await listWalletEntries(deps, undefined, wallet.id, { limit: query.limit, cursor: query.cursor });
        ctx.body = { items: page.items.map(presentEntry), nextCursor: page.nextCursor };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/billing/wallets/:id/statement',
      operationId: 'getWalletStatement',
      summary: 'A statement of the wallet for a period: opening balance, lines grouped by instance and hour ranges, closing balance.',
      description:
        'Entries posted in [from, to) (default: this calendar month, UTC, until now). Consecutive hours of one instance at one rate are one usage line; ' +
        'byInstance sums setup fees and usage per instance. With `Accept: text/csv` the same statement as RFC 4180 CSV (an opening-balance record, one record per line, a closing-balance record).',
      tags: ['billing'],
      access: 'authenticated',
      params: WalletParams,
      query: Type.Object({ from: Type.Optional(Timestamp), to: Type.Optional(Timestamp) }, { additionalProperties: false }),
      responses: {
        200: { description: 'The statement (application/json, or text/csv on Accept: text/csv).', schema: StatementBody },
        404: PROBLEMS[404],
        422: { description: 'from is not before to, or the period is longer than 366 days (invalid-period).' },
      },
      handler: async ({ ctx, params, query }) => {
        const wallet = await requireWalletAccess(deps, undefined, principalOfRequest(ctx), params.id, 'read');
        const to = query.to === undefined ? deps.now() : instantOf(query.to, 'to');
        const from = query.from === undefined ? new Date(Date.UTC(to.getUTCFullYear(), to.getUTCMonth(), 1)) : instantOf(query.from, 'from');
        const statement = await walletStatement(deps, undefined, wallet, { from, to });
        if (ctx.accepts('application/json', 'text/csv') === 'text/csv') {
          ctx.type = 'text/csv; charset=utf-8; header=present';
          ctx.set('content-disposition', `attachment; filename="statement-${wallet.id}-${from.toISOString().slice(0, 10)}.csv"`);
          ctx.body = statementCsv(statement);
          return;
        }
        ctx.body = presentStatement(statement);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/billing/wallets/:id/credits',
      operationId: 'creditWallet',
      summary: 'Top up a wallet (platform admins).',
      tags: ['billing'],
      access: 'platform-admin',
      idempotent: true,
      params: WalletParams,
      body: Type.Object({ amount: PositiveMinorInput, reason: Type.String({ minLength: 1, maxLength: 500 }) }, { additionalProperties: false }),
      responses: { 201: { description: 'The wallet after the credit.', schema: WalletBody }, 404: PROBLEMS[404], 422: { description: 'An amount past 2^53 − 1 (amount-out-of-range), or a balance that would pass it (balance-limit).' } },
      handler: async ({ ctx, params, body, transaction }) => {
        const principal = principalOfRequest(ctx);
        const amount = minorAmount(body.amount, 'amount');
        const wallet = await transaction(async (tx) => {
          await creditWallet(deps, tx, { walletId: params.id, amount, reason: body.reason, actor: principal.subject });
          return requireWalletAccess(deps, tx, principal, params.id, 'read');
        });
        ctx.status = 201;
        ctx.body = presentWallet(wallet);
      },
    }),
  ];
}
