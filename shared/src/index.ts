// Browser-safe entry: zod schemas and types only. Never import Node.js built-ins here;
// an architecture test enforces it.
export * from './access.ts';
export * from './audit.ts';
export * from './chat.ts';
export * from './credentials.ts';
export * from './errors.ts';
export * from './health.ts';
export * from './jobs.ts';
export * from './key-rotation.ts';
export * from './keys.ts';
export * from './servers.ts';
export * from './upstream-health.ts';
