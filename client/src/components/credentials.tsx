import { useState, type FormEvent, type ReactNode } from 'react';
import type { CredentialField, CredentialView, OAuthConnectView, ServerView } from '@gateway/shared';
import { api, ApiError, query } from '../lib/api.ts';
import { formatTime } from '../lib/format.ts';
import { useAction } from '../lib/hooks.ts';
import { Badge, ConfirmButton, ErrorMessage, TextField } from './ui.tsx';

/**
 * Whose credential a form edits: the user's own (every connection of theirs), or one chat
 * thread's (the agent uses it in that thread instead of the user's own).
 */
export interface CredentialScope {
  /** The chat thread; undefined: the user's own credential. */
  threadId?: string | undefined;
  /** In a thread: the user's own credential of the same kind, which the agent falls back to. */
  userCredential?: CredentialView | undefined;
}

/**
 * What applies in a thread besides its own credential: nothing else on a thread-isolated
 * server, else the user's own credential when the thread has none.
 */
function threadNote(server: ServerView, own: CredentialView | undefined, user: CredentialView | undefined) {
  if (server.threadIsolated) {
    return user
      ? "Only this thread's values count on this server: your own are not used here."
      : "Only this thread's values count on this server.";
  }
  if (!user) return undefined;
  return own ? 'They replace your own values in this thread.' : 'The agent uses your own values here.';
}

/** The user's account at an OAuth server: connect (the browser goes to the upstream), or disconnect. */
export function OAuthConnect(
  props: {
    server: ServerView;
    credential: CredentialView | undefined;
    onChanged: () => void;
  } & CredentialScope,
) {
  const { server, credential, onChanged, threadId } = props;
  const inThread = threadId !== undefined;
  const connect = useAction(async () => {
    try {
      const res = await api.post<OAuthConnectView>(
        `/api/servers/${server.slug}/oauth/connect`,
        inThread ? { threadId } : {},
      );
      location.assign(res.authorizationUrl);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404 && e.message.startsWith('no route')) {
        throw new Error('Connecting accounts is not available on this gateway yet.');
      }
      throw e;
    }
  });
  const status = !credential
    ? inThread
      ? 'Not connected for this thread'
      : 'Not connected'
    : credential.status === 'ok'
      ? inThread
        ? 'Connected for this thread'
        : 'Connected'
      : 'The server refused the connection: connect again';
  const note = inThread
    ? server.threadIsolated
      ? "Only this thread's connection counts on this server."
      : !credential && props.userCredential
        ? 'The agent uses your own account here.'
        : undefined
    : undefined;
  const whose = inThread ? "this thread's account" : 'your account';
  return (
    <div className="oauth">
      <p>
        <Badge tone={!credential ? 'neutral' : credential.status === 'ok' ? 'ok' : 'warn'}>{status}</Badge>
        {credential && <span className="muted"> · since {formatTime(credential.updatedAt)}</span>}
        {note && <span className="muted"> · {note}</span>}
      </p>
      <ErrorMessage error={connect.error} />
      <div className="actions">
        <button type="button" disabled={connect.pending} onClick={() => void connect.run()}>
          {connect.pending ? 'Connecting…' : credential ? 'Reconnect account' : 'Connect account'}
        </button>
        {credential && (
          <ConfirmButton
            label="Disconnect"
            ariaLabel={`Disconnect ${whose} from ${server.name}`}
            title={`Disconnect ${whose} from ${server.name}?`}
            message={
              inThread
                ? 'The gateway deletes the tokens it holds for this thread; your own connection stays.'
                : 'The gateway deletes its tokens for your account; connect again to use this server.'
            }
            confirmLabel="Disconnect"
            onConfirm={async () => {
              await api.delete(`/api/servers/${server.slug}/oauth${query({ threadId })}`);
              onChanged();
            }}
          />
        )}
      </div>
    </div>
  );
}

const fieldLabel = (f: CredentialField) => f.label || f.name;

/**
 * Values for the server's credential fields, the user's own or one thread's. Values are
 * write-only: the API shows which fields are set, never what they are, and a save replaces
 * them all.
 */
export function CredentialsForm(
  props: {
    server: ServerView;
    /** The stored credential this form replaces (the thread's, in a thread). */
    credential: CredentialView | undefined;
    onChanged: () => void;
  } & CredentialScope,
) {
  const { server, credential, threadId } = props;
  const inThread = threadId !== undefined;
  const [values, setValues] = useState<Record<string, string>>({});
  const [saved, setSaved] = useState(false);
  const save = useAction(async () => {
    const body = Object.fromEntries(Object.entries(values).filter(([, v]) => v !== ''));
    await api.put(`/api/servers/${server.slug}/credentials`, {
      values: body,
      ...(inThread ? { threadId } : {}),
    });
    return true;
  });
  const error = save.error instanceof ApiError ? save.error : undefined;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setSaved(false);
    if (await save.run()) {
      setValues({});
      setSaved(true);
      props.onChanged();
    }
  };

  let status: ReactNode;
  if (inThread) {
    const note = threadNote(server, credential, props.userCredential);
    status = (
      <p className="credential-status" data-testid="thread-credential-status">
        {credential ? (
          <>
            Stored for this thread:{' '}
            {credential.fields.map((f, i) => (
              <span key={f}>
                {i > 0 && ', '}
                <code>{f}</code>
              </span>
            ))}
            .
          </>
        ) : (
          'No values stored for this thread.'
        )}
        {note && <> {note}</>}
        {credential && <span className="muted"> Updated {formatTime(credential.updatedAt)}.</span>}
      </p>
    );
  } else {
    status = (
      <p className="credential-status" data-testid="credential-status">
        {credential ? (
          <>
            Stored:{' '}
            {credential.fields.map((f) => (
              <code key={f}>{f}</code>
            ))}{' '}
            <span className="muted">· updated {formatTime(credential.updatedAt)}</span>
          </>
        ) : (
          'No values stored.'
        )}
      </p>
    );
  }

  return (
    <form
      onSubmit={(e) => void submit(e)}
      aria-label={`${inThread ? 'Thread credentials' : 'Credentials'} for ${server.name}`}
      noValidate
    >
      {status}
      <div className="form-grid">
        {server.credentialFields.map((f) => (
          <TextField
            key={f.name}
            label={
              <>
                {fieldLabel(f)}
                {!f.required && <span className="muted"> (optional)</span>}
              </>
            }
            hint={
              <>
                {f.description && <>{f.description} </>}
                {f.label && f.label !== f.name && (
                  <>
                    {f.kind === 'env' ? 'Environment variable' : 'Header'} <code>{f.name}</code>.{' '}
                  </>
                )}
                {f.secret && 'Secret: it is never shown again.'}
              </>
            }
            type={f.secret ? 'password' : 'text'}
            autoComplete={f.secret ? 'new-password' : 'off'}
            name={f.name}
            value={values[f.name] ?? ''}
            placeholder={credential?.fields.includes(f.name) ? 'stored — type to replace' : undefined}
            onValue={(v) => setValues((old) => ({ ...old, [f.name]: v }))}
            error={error?.issueAt(`body.values.${f.name}`)}
          />
        ))}
      </div>
      <ErrorMessage error={save.error} />
      {saved && (
        <p className="alert alert-ok" role="status">
          {inThread
            ? `Saved. The agent uses these values for ${server.name} in this thread.`
            : `Saved. Your next connections to ${server.name} use these values.`}
        </p>
      )}
      <div className="actions">
        <button type="submit" className="button-primary" disabled={save.pending}>
          {save.pending ? 'Saving…' : credential && !inThread ? 'Replace values' : 'Save values'}
        </button>
        {credential &&
          (inThread ? (
            <ConfirmButton
              label="Remove"
              ariaLabel={`Remove this thread's values for ${server.name}`}
              title={`Remove this thread's values for ${server.name}?`}
              message={
                server.threadIsolated
                  ? 'The gateway forgets what this thread stored; the agent has no values for this server here until you save them again.'
                  : 'The gateway forgets what this thread stored; the agent uses your own values here, if you stored any.'
              }
              confirmLabel="Remove"
              onConfirm={async () => {
                await api.delete(`/api/servers/${server.slug}/credentials${query({ threadId })}`);
                setSaved(false);
                props.onChanged();
              }}
            />
          ) : (
            <ConfirmButton
              label="Delete values"
              ariaLabel={`Delete your values for ${server.name}`}
              title={`Delete your values for ${server.name}?`}
              message="The gateway forgets what you stored; connections to this server will not have them until you save them again."
              confirmLabel="Delete"
              onConfirm={async () => {
                await api.delete(`/api/servers/${server.slug}/credentials`);
                setSaved(false);
                props.onChanged();
              }}
            />
          ))}
      </div>
      {credential && <p className="hint">Saving replaces every stored value: fill in all the fields.</p>}
    </form>
  );
}
