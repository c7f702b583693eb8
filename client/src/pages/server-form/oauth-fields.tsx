import type { ServerView } from '@gateway/shared';
import { TextField } from '../../components/ui.tsx';
import type { Draft, IssueAt, SetDraft } from './draft.ts';

/**
 * The Upstream OAuth section of a remote server. Editing, it shows the current settings
 * until the admin chooses to replace them (the client secret cannot be shown).
 */
export function OAuthFields(props: {
  d: Draft;
  set: SetDraft;
  issue: IssueAt;
  existing: ServerView | undefined;
  replace: boolean;
  onReplace: (replace: boolean) => void;
}) {
  const { d, set, issue, existing } = props;
  return (
    <section className="panel">
      <h2>Upstream OAuth</h2>
      {existing && (
        <label className="choice">
          <input
            type="checkbox"
            checked={props.replace}
            onChange={(e) => props.onReplace(e.target.checked)}
          />{' '}
          Change the OAuth settings
          <span className="hint block">The client secret is not shown: type it again if there is one.</span>
        </label>
      )}
      {props.replace ? (
        <>
          <label className="choice">
            <input type="checkbox" checked={d.oauth} onChange={(e) => set('oauth')(e.target.checked)} /> The
            server requires OAuth: each user connects their own account
          </label>
          {d.oauth && (
            <div className="form-grid">
              <TextField
                label="Scopes"
                value={d.oauthScopes}
                onValue={set('oauthScopes')}
                hint="Space-separated; empty: what the server's metadata says."
                error={issue('body.oauth.scopes')}
              />
              <TextField
                label="Client id"
                value={d.oauthClientId}
                onValue={set('oauthClientId')}
                hint="Empty: the gateway registers itself."
                error={issue('body.oauth.clientId')}
              />
              <TextField
                label="Client secret"
                type="password"
                autoComplete="new-password"
                value={d.oauthClientSecret}
                onValue={set('oauthClientSecret')}
                error={issue('body.oauth.clientSecret')}
              />
            </div>
          )}
        </>
      ) : (
        <p className="muted">
          {existing?.oauth
            ? `On (client ${existing.oauth.clientId ?? 'registered dynamically'}${existing.oauth.clientSecretSet ? ', secret set' : ''}).`
            : 'Off.'}
        </p>
      )}
    </section>
  );
}
