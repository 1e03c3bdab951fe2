import { Type, type TSchema } from '@sinclair/typebox';

/** A DNS-1123 label of at most 40 characters: org, project, team and instance names. */
export const NameSchema = Type.String({
  pattern: '^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$',
  description: 'A DNS-1123 label: lowercase letters, digits and "-", starting and ending alphanumeric, at most 40 characters.',
});

/** An offering or role slug (at most 16 characters, so `<org>-<role>` stays a DNS label). */
export const OfferingSlugSchema = Type.String({
  pattern: '^[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?$',
  description: 'A DNS-1123 label of at most 16 characters.',
});

export const Timestamp = Type.String({ format: 'date-time' });
export const Uuid = Type.String({ format: 'uuid' });
export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
