import { TextField } from '../../components/ui.tsx';
import { blankField, type FieldDraft, type IssueAt, type TransportType } from './draft.ts';

/**
 * The Credential fields section: the values each user supplies for themselves, as
 * environment variables (stdio) or request headers (remote).
 */
export function CredentialFields(props: {
  fields: FieldDraft[];
  type: TransportType;
  issue: IssueAt;
  /** Changes the fields from their latest state. */
  onFields: (update: (fields: FieldDraft[]) => FieldDraft[]) => void;
}) {
  const { fields, type, issue, onFields } = props;
  const updateField = (key: number, patch: Partial<FieldDraft>) =>
    onFields((old) => old.map((f) => (f.key === key ? { ...f, ...patch } : f)));
  return (
    <section className="panel" aria-labelledby="fields-title">
      <h2 id="fields-title">Credential fields</h2>
      <p className="muted">
        Values each user supplies for themselves:{' '}
        {type === 'stdio' ? 'environment variables of their process' : 'headers of their requests'}.
      </p>
      {fields.length === 0 && <p className="muted">None: every user connects with the same settings.</p>}
      {fields.map((f, i) => (
        <fieldset key={f.key} className="credential-field">
          <legend>Field {i + 1}</legend>
          <div className="form-grid">
            <TextField
              label={type === 'stdio' ? 'Variable name' : 'Header name'}
              value={f.name}
              onValue={(v) => updateField(f.key, { name: v })}
              required
              placeholder={type === 'stdio' ? 'API_TOKEN' : 'X-Api-Key'}
              error={issue(`body.credentialFields.${i}.name`) ?? issue(`body.credentialFields.${i}.kind`)}
            />
            <TextField
              label="Label"
              value={f.label}
              onValue={(v) => updateField(f.key, { label: v })}
              placeholder="API token"
              error={issue(`body.credentialFields.${i}.label`)}
            />
          </div>
          <TextField
            label="Help text"
            value={f.description}
            onValue={(v) => updateField(f.key, { description: v })}
            error={issue(`body.credentialFields.${i}.description`)}
          />
          <div className="inline">
            <label className="choice">
              <input
                type="checkbox"
                checked={f.secret}
                onChange={(e) => updateField(f.key, { secret: e.target.checked })}
              />{' '}
              Secret
            </label>
            <label className="choice">
              <input
                type="checkbox"
                checked={f.required}
                onChange={(e) => updateField(f.key, { required: e.target.checked })}
              />{' '}
              Required
            </label>
            <button
              type="button"
              className="button-small button-danger"
              onClick={() => onFields((old) => old.filter((x) => x.key !== f.key))}
            >
              Remove field {i + 1}
            </button>
          </div>
        </fieldset>
      ))}
      <button
        type="button"
        className="button-small"
        onClick={() => onFields((old) => [...old, blankField()])}
      >
        Add credential field
      </button>
    </section>
  );
}
