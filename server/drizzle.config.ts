import { defineConfig } from 'drizzle-kit';

// `npm run db:generate` writes a new SQL migration into server/drizzle after a schema change.
// The same migrations run on PostgreSQL and on the embedded PGlite.
export default defineConfig({
  dialect: 'postgresql',
  schema: './server/src/platform/db/schema.ts',
  out: './server/drizzle',
});
