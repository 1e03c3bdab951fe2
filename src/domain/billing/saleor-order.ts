import { Type, type Static } from '@sinclair/typebox';

/**
 * What this service reads of a Saleor order, in webhooks and in the reconciler alike: the fields
 * the ORDER_FRAGMENT below selects, as Saleor's GraphQL engine serializes them (camelCase, Money
 * as { currency, amount, fractionalAmount, fractionDigits }; fractionalAmount exists since
 * Saleor 3.22, saleor/graphql/core/types/money.py). One schema for both producers.
 */
const Money = Type.Object({
  currency: Type.String({ pattern: '^[A-Z]{3}$' }),
  amount: Type.Number(),
  fractionalAmount: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  fractionDigits: Type.Integer({ minimum: 0, maximum: 6 }),
});

const MetadataItem = Type.Object({ key: Type.String({ maxLength: 1000 }), value: Type.String({ maxLength: 10000 }) });

export const SaleorOrderSchema = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 200 }),
  number: Type.String({ minLength: 1, maxLength: 64 }),
  created: Type.String({ maxLength: 64 }),
  updatedAt: Type.String({ maxLength: 64 }),
  status: Type.String({ maxLength: 64 }),
  chargeStatus: Type.String({ maxLength: 64 }),
  checkoutId: Type.Union([Type.String({ maxLength: 200 }), Type.Null()]),
  metadata: Type.Array(MetadataItem, { maxItems: 1000 }),
  privateMetadata: Type.Array(MetadataItem, { maxItems: 1000 }),
  total: Type.Object({ gross: Money }),
  totalCharged: Money,
  totalRefunded: Money,
  lines: Type.Array(
    Type.Object({
      id: Type.String({ maxLength: 200 }),
      productSku: Type.Union([Type.String({ maxLength: 255 }), Type.Null()]),
      quantity: Type.Integer({ minimum: 0, maximum: 1_000_000 }),
      variant: Type.Union([Type.Object({ id: Type.String({ maxLength: 200 }), sku: Type.Union([Type.String({ maxLength: 255 }), Type.Null()]) }), Type.Null()]),
    }),
    { maxItems: 10_000 },
  ),
});
export type SaleorOrder = Static<typeof SaleorOrderSchema>;

/** The events this service subscribes to (Saleor's WebhookEventAsyncType values, saleor/webhook/event_types.py). */
export const SALEOR_ORDER_EVENTS = ['order_fully_paid', 'order_refunded', 'order_fully_refunded'] as const;
export type SaleorOrderEvent = (typeof SALEOR_ORDER_EVENTS)[number];

/**
 * The body of one delivery: with `event` as the subscription's root field, Saleor sends the
 * event object itself (saleor/graphql/webhook/subscription_payload.py, _process_payload_instance),
 * and adds `errors` when part of the query could not be resolved (a missing permission).
 */
export const SaleorOrderPayloadSchema = Type.Object({
  __typename: Type.Optional(Type.String({ maxLength: 64 })),
  issuedAt: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()])),
  version: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()])),
  order: SaleorOrderSchema,
});
export type SaleorOrderPayload = Static<typeof SaleorOrderPayloadSchema>;

const ORDER_FRAGMENT = `fragment ControlPlaneOrder on Order {
  id
  number
  created
  updatedAt
  status
  chargeStatus
  checkoutId
  metadata { key value }
  privateMetadata { key value }
  total { gross { currency amount fractionalAmount fractionDigits } }
  totalCharged { currency amount fractionalAmount fractionDigits }
  totalRefunded { currency amount fractionalAmount fractionDigits }
  lines { id productSku quantity variant { id sku } }
}`;

/**
 * The subscription query to give the Saleor webhook (asyncEvents ORDER_FULLY_PAID,
 * ORDER_REFUNDED, ORDER_FULLY_REFUNDED; no secretKey, so Saleor signs with JWS). The app needs
 * MANAGE_ORDERS (the events' permission, and what privateMetadata asks).
 */
export const SALEOR_SUBSCRIPTION_QUERY = `subscription ControlPlaneOrderEvents {
  event {
    __typename
    issuedAt
    version
    ... on OrderFullyPaid { order { ...ControlPlaneOrder } }
    ... on OrderRefunded { order { ...ControlPlaneOrder } }
    ... on OrderFullyRefunded { order { ...ControlPlaneOrder } }
  }
}
${ORDER_FRAGMENT}`;

/** The reconciler's read: orders by `where` (Saleor ≥ 3.22), 100 a page (Saleor's maximum). */
export const SALEOR_ORDERS_QUERY = `query ControlPlaneOrders($where: OrderWhereInput!, $after: String) {
  orders(first: 100, after: $after, where: $where) {
    pageInfo { hasNextPage endCursor }
    edges { node { ...ControlPlaneOrder } }
  }
}
${ORDER_FRAGMENT}`;

/** The order (or checkout, whose metadata Saleor copies onto the order) metadata key naming the org. */
export const ORG_METADATA_KEY = 'gsv.io/org-id';

export interface CreditProduct {
  /** SKU of the variant that is credit. */
  sku: string;
  /** Minor units of `currency` one unit of that variant credits. */
  minorPerUnit: bigint;
  currency: string;
}

/** What an order means for a wallet, by the rules below; pure. */
export type OrderAssessment =
  | { kind: 'no-credit' }
  | { kind: 'not-paid'; credit: bigint }
  | {
      kind: 'credit';
      /** Minor units of the credit currency the order buys. */
      credit: bigint;
      /** What was charged before refunds (charged + refunded), in the order's minor units. */
      paid: bigint;
      orderCurrency: string;
      refunded: bigint;
      /** The org named in the metadata: private metadata first (only staff and apps write it), then public. */
      orgReference: string | undefined;
    };

/**
 * Credit = the quantity of lines whose SKU is the credit SKU × minorPerUnit (price-independent:
 * what the shop charges for a unit, vouchers included, is the shop's business). An order earns it
 * once it has been fully paid: charged + refunded covers the gross total (Saleor moves a refund's
 * amount from charged to refunded, saleor/payment/transaction_item_calculations.py).
 */
export function assessOrder(order: SaleorOrder, product: CreditProduct): OrderAssessment {
  const units = order.lines.reduce((sum, line) => ((line.variant?.sku ?? line.productSku) === product.sku ? sum + BigInt(line.quantity) : sum), 0n);
  if (units === 0n) return { kind: 'no-credit' };
  const credit = units * product.minorPerUnit;
  const currency = order.total.gross.currency;
  if (order.totalCharged.currency !== currency || order.totalRefunded.currency !== currency) return { kind: 'not-paid', credit };
  const refunded = BigInt(order.totalRefunded.fractionalAmount);
  const paid = BigInt(order.totalCharged.fractionalAmount) + refunded;
  if (paid === 0n || paid < BigInt(order.total.gross.fractionalAmount)) return { kind: 'not-paid', credit };
  const named = (items: { key: string; value: string }[]) => items.find((item) => item.key === ORG_METADATA_KEY)?.value.trim() || undefined;
  return { kind: 'credit', credit, paid, orderCurrency: currency, refunded, orgReference: named(order.privateMetadata) ?? named(order.metadata) };
}

/**
 * How much of `credit` a refund of `refunded` out of `paid` takes back: pro rata, rounded down
 * (in the customer's favour), all of it once everything is refunded.
 */
export function refundDue(credit: bigint, paid: bigint, refunded: bigint): bigint {
  if (refunded <= 0n) return 0n;
  if (refunded >= paid) return credit;
  return (credit * refunded) / paid;
}
