import { Type, type TSchema } from '@sinclair/typebox';
import { slugSchema } from '../../gitops/tenant-paths.ts';

// Slugs: tenant-paths.ts owns their rules (no `--`, the separator of generated names; lengths
// that keep every generated name within 63 characters).
export const OrgSlugSchema = slugSchema('org');
export const ProjectSlugSchema = slugSchema('project');
export const TeamSlugSchema = slugSchema('team');
export const InstanceNameSchema = slugSchema('instanceName');
export const OfferingSlugSchema = slugSchema('offering');
export const RoleSlugSchema = slugSchema('role');

export const Timestamp = Type.String({ format: 'date-time' });
export const Uuid = Type.String({ format: 'uuid' });
export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
