import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { createServerSchema, type CreateServer } from '@gateway/shared';
import type { Logger } from '../../platform/logging/logger.ts';
import type { RegistryService } from './registry.service.ts';

/** One entry of the common `mcpServers` JSON shape (Claude Desktop, Cursor, VS Code). */
const entrySchema = z.union([
  z
    .object({
      command: z.string(),
      args: z.array(z.string()).optional(),
      env: z.record(z.string(), z.string()).optional(),
      cwd: z.string().optional(),
      type: z.literal('stdio').optional(),
    })
    .passthrough(),
  z
    .object({
      url: z.string(),
      headers: z.record(z.string(), z.string()).optional(),
      type: z.enum(['streamable-http', 'http', 'streamableHttp', 'sse']).optional(),
    })
    .passthrough(),
]);

const fileSchema = z.object({ mcpServers: z.record(z.string(), z.unknown()) });

export interface CatalogSyncReport {
  created: string[];
  updated: string[];
  errors: { entry: string; message: string }[];
}

/** Maps one `mcpServers` entry onto a server definition; extra keys we understand are kept. */
export function toServerDefinition(name: string, raw: unknown): CreateServer {
  const entry = entrySchema.parse(raw);
  const extra = raw as {
    description?: unknown;
    credentialFields?: unknown;
    threadIsolated?: unknown;
    enabled?: unknown;
    sensitiveTools?: unknown;
    oauth?: unknown;
    name?: unknown;
  };
  const transport =
    'command' in entry
      ? {
          type: 'stdio' as const,
          command: entry.command,
          args: entry.args ?? [],
          env: entry.env ?? {},
          ...(entry.cwd ? { cwd: entry.cwd } : {}),
        }
      : {
          type: entry.type === 'sse' ? ('sse' as const) : ('streamable-http' as const),
          url: entry.url,
          headers: entry.headers ?? {},
        };
  return createServerSchema.parse({
    slug: name,
    name: typeof extra.name === 'string' ? extra.name : name,
    ...(extra.description !== undefined ? { description: extra.description } : {}),
    ...(extra.credentialFields !== undefined ? { credentialFields: extra.credentialFields } : {}),
    ...(extra.threadIsolated !== undefined ? { threadIsolated: extra.threadIsolated } : {}),
    ...(extra.enabled !== undefined ? { enabled: extra.enabled } : {}),
    ...(extra.sensitiveTools !== undefined ? { sensitiveTools: extra.sensitiveTools } : {}),
    ...(extra.oauth !== undefined ? { oauth: extra.oauth } : {}),
    transport,
  });
}

function describe(err: unknown): string {
  if (err instanceof z.ZodError) {
    const i = err.issues[0]!;
    return `${i.path.length ? i.path.join('.') + ': ' : ''}${i.message}`;
  }
  return (err as Error).message;
}

/**
 * Syncs MCP_SERVERS_FILE into the registry: each entry is created or updated (source
 * `file`). A bad entry is reported by name and skipped; the others still sync. A file that
 * cannot be read or is not `{"mcpServers": {...}}` throws, naming the file.
 */
export async function syncCatalogFile(
  file: string,
  registry: RegistryService,
  logger: Logger,
): Promise<CatalogSyncReport> {
  let parsed: z.infer<typeof fileSchema>;
  try {
    parsed = fileSchema.parse(JSON.parse(await readFile(file, 'utf8')));
  } catch (err) {
    throw new Error(
      `MCP_SERVERS_FILE ${file}: ${err instanceof SyntaxError ? `not valid JSON (${err.message})` : describe(err)}`,
    );
  }
  const report: CatalogSyncReport = { created: [], updated: [], errors: [] };
  for (const [name, raw] of Object.entries(parsed.mcpServers)) {
    try {
      const def = toServerDefinition(name, raw);
      const existing = await registry.get(def.slug);
      if (existing) {
        const { slug: _slug, ...changes } = def;
        await registry.update(undefined, def.slug, changes);
        report.updated.push(def.slug);
      } else {
        await registry.create(undefined, def, { source: 'file', discover: false });
        report.created.push(def.slug);
      }
    } catch (err) {
      const message = describe(err);
      report.errors.push({ entry: name, message });
      logger.error({ entry: name, err: message }, `MCP_SERVERS_FILE entry "${name}" skipped`);
    }
  }
  logger.info(
    { created: report.created.length, updated: report.updated.length, errors: report.errors.length },
    'synced MCP_SERVERS_FILE',
  );
  return report;
}
