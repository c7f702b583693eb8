// Browser-safe entry: zod schemas and types only. Never import Node.js built-ins here;
// an architecture test enforces it.
export * from './errors.ts';
export * from './health.ts';
export * from './jobs.ts';
