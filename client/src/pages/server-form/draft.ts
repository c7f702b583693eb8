import type { ServerView } from '@gateway/shared';

/** The transport types the form offers. */
export type TransportType = ServerView['transport']['type'];

/** One credential field as the admin edits it. */
export interface FieldDraft {
  /** Stable React key (names change as the admin types). */
  key: number;
  name: string;
  label: string;
  description: string;
  secret: boolean;
  required: boolean;
}

/** The server form's state: every input as typed (JSON fields as text). */
export interface Draft {
  slug: string;
  name: string;
  description: string;
  type: TransportType;
  command: string;
  args: string;
  env: string;
  cwd: string;
  url: string;
  headers: string;
  fields: FieldDraft[];
  enabled: boolean;
  threadIsolated: boolean;
  sensitiveTools: string;
  oauth: boolean;
  oauthScopes: string;
  oauthClientId: string;
  oauthClientSecret: string;
}

/** Makes the setter of one draft property. */
export type SetDraft = <K extends keyof Draft>(key: K) => (value: Draft[K]) => void;

/** The message of the validation issue at a body path, if the last save had one. */
export type IssueAt = (path: string) => string | undefined;

let nextKey = 1;

/** A new credential field: secret and required unless the admin says otherwise. */
export function blankField(): FieldDraft {
  return { key: nextKey++, name: '', label: '', description: '', secret: true, required: true };
}

/** The form's starting state: empty for a new server, else the server as the API shows it. */
export function draftFrom(view: ServerView | undefined): Draft {
  const t = view?.transport;
  // Static env and header values are secrets: the API shows only their names, so an edit
  // starts from the names with empty values.
  const blank = (names: string[]) =>
    names.length ? JSON.stringify(Object.fromEntries(names.map((n) => [n, ''])), null, 2) : '{}';
  return {
    slug: view?.slug ?? '',
    name: view?.name ?? '',
    description: view?.description ?? '',
    type: t?.type ?? 'stdio',
    command: t?.type === 'stdio' ? t.command : '',
    args: t?.type === 'stdio' ? JSON.stringify(t.args, null, 2) : '[]',
    env: t?.type === 'stdio' ? blank(t.envNames) : '{}',
    cwd: t?.type === 'stdio' ? (t.cwd ?? '') : '',
    url: t && t.type !== 'stdio' ? t.url : '',
    headers: t && t.type !== 'stdio' ? blank(t.headerNames) : '{}',
    fields: (view?.credentialFields ?? []).map((f) => ({
      key: nextKey++,
      name: f.name,
      label: f.label ?? '',
      description: f.description ?? '',
      secret: f.secret,
      required: f.required,
    })),
    enabled: view?.enabled ?? true,
    threadIsolated: view?.threadIsolated ?? false,
    sensitiveTools: (view?.sensitiveTools ?? []).join(', '),
    oauth: !!view?.oauth,
    oauthScopes: view?.oauth?.scopes.join(' ') ?? '',
    oauthClientId: view?.oauth?.clientId ?? '',
    oauthClientSecret: '',
  };
}
