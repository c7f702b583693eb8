import type { CredentialField } from '@gateway/shared';
import { ApiError } from '../../lib/api.ts';
import type { Draft, TransportType } from './draft.ts';

/** A problem found before sending (bad JSON), in the API's issue shape so both display alike. */
class DraftError extends ApiError {
  constructor(path: string, message: string) {
    super(400, { code: 'validation_failed', message: `${path}: ${message}`, issues: [{ path, message }] });
  }
}

function parseJson<T>(text: string, path: string, check: (v: unknown) => v is T, shape: string): T {
  let value: unknown;
  try {
    value = JSON.parse(text.trim() || 'null');
  } catch (e) {
    throw new DraftError(path, `is not valid JSON (${(e as Error).message})`);
  }
  if (!check(value)) throw new DraftError(path, `must be ${shape}`);
  return value;
}

const isStringArray = (v: unknown): v is string[] =>
  Array.isArray(v) && v.every((x) => typeof x === 'string');
const isStringRecord = (v: unknown): v is Record<string, string> =>
  typeof v === 'object' &&
  v !== null &&
  !Array.isArray(v) &&
  Object.values(v).every((x) => typeof x === 'string');

function transportOf(d: Draft) {
  if (d.type === 'stdio') {
    return {
      type: 'stdio' as const,
      command: d.command.trim(),
      args: parseJson(d.args, 'body.transport.args', isStringArray, 'a JSON array of strings'),
      env: parseJson(d.env, 'body.transport.env', isStringRecord, 'a JSON object of strings'),
      ...(d.cwd.trim() ? { cwd: d.cwd.trim() } : {}),
    };
  }
  return {
    type: d.type,
    url: d.url.trim(),
    headers: parseJson(d.headers, 'body.transport.headers', isStringRecord, 'a JSON object of strings'),
  };
}

function credentialFieldsOf(d: Draft, type: TransportType): CredentialField[] {
  return d.fields.map((f) => ({
    name: f.name.trim(),
    kind: type === 'stdio' ? 'env' : 'header',
    ...(f.label.trim() ? { label: f.label.trim() } : {}),
    ...(f.description.trim() ? { description: f.description.trim() } : {}),
    secret: f.secret,
    required: f.required,
  }));
}

const list = (text: string) =>
  text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);

function oauthOf(d: Draft) {
  if (!d.oauth) return null;
  return {
    scopes: list(d.oauthScopes),
    ...(d.oauthClientId.trim() ? { clientId: d.oauthClientId.trim() } : {}),
    ...(d.oauthClientSecret ? { clientSecret: d.oauthClientSecret } : {}),
  };
}

/** What a create and an update both send; `type` is the transport the server will have. */
function commonOf(d: Draft, type: TransportType) {
  return {
    name: d.name.trim(),
    description: d.description,
    credentialFields: credentialFieldsOf(d, type),
    enabled: d.enabled,
    threadIsolated: d.threadIsolated,
    sensitiveTools: list(d.sensitiveTools),
  };
}

/** The body of `POST /api/servers`; throws an `ApiError` naming a field whose JSON is bad. */
export function createBody(d: Draft) {
  const common = commonOf(d, d.type);
  const oauth = d.type !== 'stdio' ? oauthOf(d) : null;
  return {
    slug: d.slug.trim(),
    ...common,
    transport: transportOf(d),
    ...(oauth ? { oauth } : {}),
  };
}

/**
 * The body of `PATCH /api/servers/{slug}`: the transport and the OAuth settings hold secrets
 * the form cannot show, so each is sent (replaced whole) only when `replace` says so.
 * Throws an `ApiError` naming a field whose JSON is bad.
 */
export function updateBody(d: Draft, type: TransportType, replace: { transport: boolean; oauth: boolean }) {
  return {
    ...commonOf(d, type),
    ...(replace.transport ? { transport: transportOf(d) } : {}),
    ...(replace.oauth && type !== 'stdio' ? { oauth: oauthOf(d) } : {}),
  };
}
