// The database schema: every feature's tables, in one module for drizzle and drizzle-kit.
// Tables are defined beside the feature that owns them; only that feature's repository
// reads or writes them.
export * from '../../features/users/users.schema.ts';
export * from '../../features/maintenance/maintenance.schema.ts';
export * from '../../features/registry/registry.schema.ts';
export * from '../../features/keys/keys.schema.ts';
export * from '../../features/credentials/credentials.schema.ts';
export * from '../../features/audit/audit.schema.ts';
export * from '../../features/access/access.schema.ts';
export * from '../../features/auth/auth.schema.ts';
export * from '../../features/monitoring/monitoring.schema.ts';
export * from '../../features/chat/chat.schema.ts';
