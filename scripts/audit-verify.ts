// `npm run audit:verify`: checks the audit trail's hash chain from the command line.
import { parseArgs } from 'node:util';
import type { AuditVerifyReport } from '@gateway/shared';

const HELP = `Usage: npm run audit:verify [-- --json]

Walks the audit trail's hash chain from the newest retention checkpoint (or its start) to
the newest event. Prints OK with the number of events checked, or the first broken link:
its seq, id, the expected and the stored hash, and why (an event changed, an event before
it missing, events at the end missing).

It reads the same environment as the server (DATABASE_URL, DATA_DIR, ...).

On the embedded PGlite database (DATABASE_URL unset) run it only while the server is
stopped: PGlite serves one process, and this command refuses to open a data directory the
server holds. While the server runs, use its admin API instead, which does the same check
and returns the same report as JSON:

  curl -X POST -H "Authorization: Bearer <admin key>" http://127.0.0.1:3000/api/audit/verify

On PostgreSQL it can run at any time, beside running servers.

Options:
  --json    print the whole report as JSON
  --help    this text

Exit codes: 0 the chain holds, 1 the chain is broken, 2 it could not be checked
(bad configuration, database unavailable).
`;

function describe(report: AuditVerifyReport): string {
  const from =
    report.start.kind === 'genesis'
      ? 'the start of the chain'
      : `the ${report.start.kind} checkpoint after seq ${report.start.afterSeq}`;
  if (report.ok) {
    return `OK: ${report.checked} audit events verified from ${from}${report.lastSeq !== null ? ` to seq ${report.lastSeq}` : ''} (${report.durationMs} ms)\n`;
  }
  const b = report.broken!;
  const why: Record<typeof b.reason, string> = {
    hash_mismatch: 'the event was changed after it was written',
    prev_hash_mismatch: 'the event before it is missing or was replaced',
    head_mismatch: 'events at the end of the chain are missing, or the chain head was edited',
    head_missing: 'the chain head row is missing',
  };
  return [
    `BROKEN: audit chain broken at seq ${b.seq}${b.id ? ` (event ${b.id})` : ''}: ${why[b.reason]}`,
    `  expected hash:      ${b.expectedHash}`,
    `  stored hash:        ${b.storedHash}`,
    `  expected prev_hash: ${b.expectedPrevHash}`,
    `  stored prev_hash:   ${b.storedPrevHash}`,
    `  ${report.checked} events before it verified from ${from}`,
    '',
  ].join('\n');
}

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    }).values;
  } catch (err) {
    process.stderr.write(`audit:verify: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(HELP);
    return 0;
  }
  let report: AuditVerifyReport;
  try {
    // Loaded only now, so `--help` answers without loading the database drivers.
    const { AuditRepository, AuditTrail } = await import('../server/src/features/audit/index.ts');
    const { loadConfig } = await import('../server/src/platform/config/config.ts');
    const { openDatabase } = await import('../server/src/platform/db/database.ts');
    const { createLogger } = await import('../server/src/platform/logging/logger.ts');
    const config = loadConfig(process.env);
    // Quiet: the report is the output; warnings and errors still go to the log stream.
    const logger = createLogger({ level: 'warn', name: 'audit-verify' });
    // Read-only: a verification must not change the schema under running servers.
    const database = await openDatabase(config.database, logger, { migrate: false });
    try {
      report = await new AuditTrail(new AuditRepository(database.db), { logger }).verify();
    } finally {
      await database.close();
    }
  } catch (err) {
    const cause = (err as { cause?: Error }).cause?.message ?? '';
    const message = /does not exist/.test(cause)
      ? `the database has no audit chain yet (${cause}); start the server once so it migrates the database`
      : /in use by process/.test((err as Error).message)
        ? `${(err as Error).message}. While the server runs, use POST /api/audit/verify (see --help)`
        : [(err as Error).message.split('\n')[0], cause].filter(Boolean).join(': ');
    process.stderr.write(`audit:verify: ${message}\n`);
    return 2;
  }
  process.stdout.write(args.json ? `${JSON.stringify(report, null, 2)}\n` : describe(report));
  return report.ok ? 0 : 1;
}

process.exitCode = await main();
