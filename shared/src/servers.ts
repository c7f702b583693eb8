import { z } from 'zod';
import type { UpstreamStatus } from './upstream-health.ts';

/** URL-safe server identifier used in `/mcp/{slug}` and as the `{slug}__` tool prefix. */
export const slugSchema = z
  .string()
  .regex(
    /^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$/,
    'must be 1-48 lowercase letters, digits or single dashes, starting and ending with a letter or digit',
  )
  .refine((s) => !s.includes('--'), 'must not contain "--"');

const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'must be a valid environment variable name');
const headerName = z
  .string()
  .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$/, 'must be a valid HTTP header name');
const forbiddenHeaders = new Set([
  'host',
  'content-length',
  'connection',
  'transfer-encoding',
  'mcp-session-id',
]);

export const stdioTransportSchema = z.object({
  type: z.literal('stdio'),
  command: z.string().min(1).max(1024),
  args: z.array(z.string().max(4096)).max(256).default([]),
  env: z.record(envName, z.string().max(32_768)).default({}),
  cwd: z.string().max(1024).optional(),
});

export const remoteTransportSchema = z.object({
  type: z.enum(['streamable-http', 'sse']),
  url: z.string().url(),
  headers: z
    .record(
      headerName.refine((h) => !forbiddenHeaders.has(h.toLowerCase()), 'is set by the gateway itself'),
      z.string().max(8_192),
    )
    .default({}),
});

export const transportSchema = z.discriminatedUnion('type', [stdioTransportSchema, remoteTransportSchema]);
export type TransportConfig = z.infer<typeof transportSchema>;

/** An OAuth scope token (RFC 6749 §3.3: printable ASCII except space, `"` and `\\`). */
const oauthScope = z
  .string()
  .regex(/^[\x21\x23-\x5B\x5D-\x7E]{1,256}$/, 'must be an OAuth scope (no spaces or quotes)');

/**
 * `oauth` of a remote server whose upstream requires OAuth: each user connects their own
 * account and the gateway is the OAuth client. Without `clientId` the gateway registers
 * itself dynamically (RFC 7591) once per server; `clientSecret` is sealed and never shown.
 */
export const oauthSettingsSchema = z
  .object({
    /** Scopes to ask for (when the upstream's metadata does not say). */
    scopes: z.array(oauthScope).max(64).default([]),
    /** A client an admin registered at the upstream's authorization server. */
    clientId: z.string().min(1).max(512).optional(),
    clientSecret: z.string().min(1).max(4096).optional(),
  })
  .strict()
  .refine((o) => !o.clientSecret || o.clientId, {
    path: ['clientSecret'],
    message: 'needs clientId',
  });
export type OAuthSettings = z.infer<typeof oauthSettingsSchema>;

/** A value each user supplies for a server: an environment variable (stdio) or a header (remote). */
export const credentialFieldSchema = z.object({
  name: z.string().min(1).max(128),
  kind: z.enum(['env', 'header']),
  label: z.string().max(200).optional(),
  description: z.string().max(1000).optional(),
  secret: z.boolean().default(true),
  required: z.boolean().default(true),
});
export type CredentialField = z.infer<typeof credentialFieldSchema>;

const serverFields = {
  name: z.string().min(1).max(200),
  description: z.string().max(4000).default(''),
  transport: transportSchema,
  credentialFields: z.array(credentialFieldSchema).max(64).default([]),
  enabled: z.boolean().default(true),
  /** In chat, only the thread's own credential counts (never the user's). */
  threadIsolated: z.boolean().default(false),
  /** Tools that need the user's approval in chat before they run. */
  sensitiveTools: z.array(z.string().min(1).max(256)).max(512).default([]),
  /** The upstream requires OAuth: every user connects their own account (remote servers only). */
  oauth: oauthSettingsSchema.optional(),
};

function checkCredentialFields(
  value: {
    transport: TransportConfig;
    credentialFields: CredentialField[];
    oauth?: OAuthSettings | undefined;
  },
  ctx: z.RefinementCtx,
) {
  if (value.oauth && value.transport.type === 'stdio') {
    ctx.addIssue({ code: 'custom', path: ['oauth'], message: 'is for remote servers only (not stdio)' });
  }
  const seen = new Set<string>();
  value.credentialFields.forEach((f, i) => {
    const wanted = value.transport.type === 'stdio' ? 'env' : 'header';
    if (f.kind !== wanted) {
      ctx.addIssue({
        code: 'custom',
        path: ['credentialFields', i, 'kind'],
        message: `must be "${wanted}" for a ${value.transport.type} server`,
      });
    }
    const valid = f.kind === 'env' ? envName.safeParse(f.name).success : headerName.safeParse(f.name).success;
    if (!valid) {
      ctx.addIssue({
        code: 'custom',
        path: ['credentialFields', i, 'name'],
        message:
          f.kind === 'env' ? 'must be a valid environment variable name' : 'must be a valid header name',
      });
    }
    const key = f.kind === 'header' ? f.name.toLowerCase() : f.name;
    if (seen.has(key)) {
      ctx.addIssue({ code: 'custom', path: ['credentialFields', i, 'name'], message: 'is declared twice' });
    }
    seen.add(key);
  });
}

/** `POST /api/servers` body. */
export const createServerSchema = z
  .object({ slug: slugSchema, ...serverFields })
  .strict()
  .superRefine(checkCredentialFields);
export type CreateServer = z.infer<typeof createServerSchema>;

/** `PATCH /api/servers/{slug}` body: any subset; `transport` is replaced whole. */
export const updateServerSchema = z
  .object({
    name: serverFields.name.optional(),
    description: z.string().max(4000).optional(),
    transport: transportSchema.optional(),
    credentialFields: z.array(credentialFieldSchema).max(64).optional(),
    enabled: z.boolean().optional(),
    threadIsolated: z.boolean().optional(),
    sensitiveTools: z.array(z.string().min(1).max(256)).max(512).optional(),
    /** Replaced whole (a secret left out is removed); `null` turns OAuth off. */
    oauth: oauthSettingsSchema.nullable().optional(),
  })
  .strict()
  .refine((v) => Object.keys(v).length > 0, 'must change at least one field');
export type UpdateServer = z.infer<typeof updateServerSchema>;

/** What discovery learned about an upstream: its initialize result and lists. */
export const capabilitiesSchema = z.object({
  protocolVersion: z.string(),
  serverInfo: z.object({ name: z.string(), version: z.string() }).passthrough(),
  capabilities: z.record(z.string(), z.unknown()),
  instructions: z.string().optional(),
  tools: z.array(z.object({ name: z.string(), description: z.string().optional() }).passthrough()),
  resources: z.array(z.object({ uri: z.string(), name: z.string() }).passthrough()),
  resourceTemplates: z.array(z.object({ uriTemplate: z.string(), name: z.string() }).passthrough()),
  prompts: z.array(z.object({ name: z.string(), description: z.string().optional() }).passthrough()),
});
export type Capabilities = z.infer<typeof capabilitiesSchema>;

/** A server as the API shows it. Secret values (static env values and headers) are never included. */
export interface ServerView {
  id: string;
  slug: string;
  name: string;
  description: string;
  transport:
    | { type: 'stdio'; command: string; args: string[]; envNames: string[]; cwd?: string | undefined }
    | { type: 'streamable-http' | 'sse'; url: string; headerNames: string[] };
  credentialFields: CredentialField[];
  enabled: boolean;
  threadIsolated: boolean;
  sensitiveTools: string[];
  /** OAuth settings (the client secret is never shown, only whether one is set); null: no OAuth. */
  oauth: { scopes: string[]; clientId: string | null; clientSecretSet: boolean } | null;
  source: 'api' | 'file';
  capabilities: Capabilities | null;
  capabilitiesAt: string | null;
  capabilitiesError: string | null;
  /** Latest upstream health-check status (GET /api/servers/{slug}/health has the details). */
  health?: UpstreamStatus;
  createdAt: string;
  updatedAt: string;
}
