import { Type } from '@sinclair/typebox';
import { defineRoute, type RouteSpec } from '../route.ts';
import type { LedgerDeps } from '../../domain/billing/ledger.ts';
import { listSaleorOrders, type SaleorOrderRecord } from '../../domain/billing/saleor-top-ups.ts';

const Minor = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });

const SaleorOrderBody = Type.Object({
  orderId: Type.String({ description: "Saleor's order id." }),
  orderNumber: Type.String(),
  status: Type.Union([Type.Literal('credited'), Type.Literal('unmatched')]),
  unmatchedReason: Type.Union([Type.Literal('missing-org-metadata'), Type.Literal('unknown-org'), Type.Null()]),
  orgReference: Type.Union([Type.String({ description: 'What the order metadata `gsv.io/org-id` said.' }), Type.Null()]),
  organizationId: Type.Union([Type.String({ format: 'uuid' }), Type.Null()]),
  walletId: Type.Union([Type.String({ format: 'uuid' }), Type.Null()]),
  currency: Type.String(),
  credit: Minor,
  debited: Type.Integer({ minimum: 0, description: 'Taken back for refunds.' }),
  shortfall: Type.Integer({ minimum: 0, description: 'Refunded but not taken back: the wallet had less available.' }),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});

function present(record: SaleorOrderRecord) {
  return {
    ...record,
    credit: Number(record.credit),
    debited: Number(record.debited),
    shortfall: Number(record.shortfall),
    createdAt: record.createdAt.toISOString(),
    updatedAt: record.updatedAt.toISOString(),
  };
}

/** What a platform admin reads of Saleor top-ups: orders credited, and those that named no known org. */
export function saleorRoutes(deps: LedgerDeps): RouteSpec[] {
  return [
    defineRoute({
      method: 'get',
      path: '/billing/saleor/orders',
      operationId: 'listSaleorOrders',
      summary: 'Saleor orders that bought credit, newest first (platform admins).',
      description:
        '`status=unmatched` lists paid credit orders whose metadata `gsv.io/org-id` names no known organization: nothing was credited. ' +
        'Set the key on the order in Saleor; the next event or the daily reconciler credits it.',
      tags: ['billing'],
      access: 'platform-admin',
      query: Type.Object(
        {
          status: Type.Optional(Type.Union([Type.Literal('credited'), Type.Literal('unmatched')])),
          limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
          cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 400, description: 'nextCursor of the previous page.' })),
        },
        { additionalProperties: false },
      ),
      responses: {
        200: { description: 'A page of orders.', schema: Type.Object({ items: Type.Array(SaleorOrderBody), nextCursor: Type.Union([Type.String(), Type.Null()]) }) },
      },
      handler: async ({ ctx, query }) => {
        const page = await listSaleorOrders(deps, undefined, { limit: query.limit, ...(query.status ? { status: query.status } : {}), ...(query.cursor ? { cursor: query.cursor } : {}) });
        ctx.body = { items: page.items.map(present), nextCursor: page.nextCursor };
      },
    }),
  ];
}
