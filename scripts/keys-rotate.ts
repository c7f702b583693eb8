// `npm run keys:rotate`: re-wraps every stored secret under the current master key. The
// same work as POST /api/admin/keys/rotate and the credentials.rewrap job, run from a shell.
import { parseArgs } from 'node:util';

const HELP = `Usage: npm run keys:rotate [-- --batch-size N]

Re-wraps every stored secret (users' and servers' credentials, the gateway's own sealed
settings) under the current master key,
ENCRYPTION_KEY, opening each one with the earlier key that sealed it, taken from
ENCRYPTION_PREVIOUS_KEYS (comma-separated). Records already under ENCRYPTION_KEY are
skipped, so running it again does nothing. Only the wrapped data keys change; the
secrets themselves are never decrypted to disk or printed. Prints the counts as JSON.

Rotating a master key:
  1. Start every server and workers process with ENCRYPTION_KEY=<new key> and
     ENCRYPTION_PREVIOUS_KEYS=<old key>. Everything keeps working: old records still open.
     (At start-up the server also queues the credentials.rewrap job, which does step 2 in
     the background unless ENCRYPTION_REWRAP_ON_START=false.)
  2. Re-wrap:
     - PostgreSQL (DATABASE_URL set): run this command with the same environment. It can
       run beside running servers: each record is swapped only if nobody changed it meanwhile.
     - Embedded database (no DATABASE_URL): PGlite belongs to one process, so this command
       works only while the server is stopped. While it runs, go through it instead, with
       POST /api/admin/keys/rotate and an admin key:
         curl -X POST -H "Authorization: Bearer <admin key>" <gateway URL>/api/admin/keys/rotate
  3. Once "rewrapped" + "alreadyCurrent" equals "total" and "failed" is 0, remove the old
     key from ENCRYPTION_PREVIOUS_KEYS.

On the embedded default without ENCRYPTION_KEY, the current key is DATA_DIR/encryption.key:
set ENCRYPTION_PREVIOUS_KEYS to its content and ENCRYPTION_KEY to the new key.

Options:
  --batch-size N   records per database round trip (default 200)
  -h, --help       this text

Exit status: 0 when every record is under the current key, 1 otherwise.
`;

let args: { values: { help?: boolean | undefined; 'batch-size'?: string | undefined } };
try {
  args = parseArgs({
    options: { help: { type: 'boolean', short: 'h' }, 'batch-size': { type: 'string' } },
    strict: true,
  });
} catch (err) {
  process.stderr.write(`keys:rotate: ${(err as Error).message}\n\n${HELP}`);
  process.exit(2);
}
if (args.values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const batchSize = Number(args.values['batch-size'] ?? 200);
if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
  process.stderr.write('keys:rotate: --batch-size must be a whole number from 1 to 10000\n');
  process.exit(2);
}

const fail = (message: string): never => {
  process.stderr.write(`keys:rotate: ${message}\n`);
  process.exit(1);
};

// Loaded after the arguments are checked, so --help and usage errors answer at once.
const [
  { pino },
  { AuditRepository, AuditService },
  { CredentialsRotation },
  { loadConfig },
  { DatabaseUnavailableError, openDatabase },
  { createLogger },
  { openVault, sealedStores },
] = await Promise.all([
  import('pino'),
  import('../server/src/features/audit/index.ts'),
  import('../server/src/features/credentials/index.ts'),
  import('../server/src/platform/config/config.ts'),
  import('../server/src/platform/db/database.ts'),
  import('../server/src/platform/logging/logger.ts'),
  import('../server/src/runtime.ts'),
]);

try {
  const config = loadConfig(process.env);
  if (!config.secrets.encryptionKey) {
    fail(
      'ENCRYPTION_KEY is not set: set it to the new master key and ENCRYPTION_PREVIOUS_KEYS to the old one(s) (see --help)',
    );
  }
  // Logs go to stderr at warn unless LOG_LEVEL says otherwise: stdout carries the report.
  const logger = createLogger({
    level: process.env['LOG_LEVEL'] ?? 'warn',
    name: 'keys-rotate',
    destination: pino.destination(2),
  });
  let database;
  try {
    // No migrations: a maintenance command never changes the schema under running servers.
    database = await openDatabase(config.database, logger, { migrate: false });
  } catch (err) {
    if (
      err instanceof DatabaseUnavailableError &&
      config.database.kind === 'pglite' &&
      /in use/.test(err.message)
    ) {
      fail(
        `${err.message}.\nWhile the server runs, rotate through it: POST /api/admin/keys/rotate with an admin key (see --help)`,
      );
    }
    throw err;
  }
  const audit = new AuditService(new AuditRepository(database.db), {
    logger,
    batchSize: config.audit.batchSize,
    flushIntervalMs: config.audit.flushIntervalMs,
    bufferMax: config.audit.bufferMax,
    // The server's spool: should the database fail while this runs, the event is replayed by
    // the next server start on this machine. Not `start()`ed, so it never takes the server's files.
    spoolDir: config.audit.spoolDir,
  });
  try {
    const vault = await openVault(config, logger);
    const rotation = new CredentialsRotation({ stores: sealedStores(database.db), vault, audit, logger });
    const report = await rotation.rewrapAll({ trigger: 'cli', batchSize });
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    if (report.failed) {
      process.stderr.write(
        `keys:rotate: ${report.failed} records could not be opened` +
          (report.missingKeyIds.length
            ? `: their master keys (${report.missingKeyIds.join(', ')}) are not in ENCRYPTION_PREVIOUS_KEYS\n`
            : '\n'),
      );
      process.exitCode = 1;
    }
  } finally {
    await audit.stop(5_000);
    await database.close();
  }
} catch (err) {
  fail((err as Error).message);
}
