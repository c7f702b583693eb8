import { useState, type FormEvent } from 'react';
import { THREAD_TITLE_MAX, type ThreadView } from '@gateway/shared';
import { ConfirmButton, ErrorMessage, TextField } from '../../components/ui.tsx';
import { api, ApiError } from '../../lib/api.ts';
import { useAction } from '../../lib/hooks.ts';

/** The owner's Rename and Delete buttons for a thread; Rename swaps them for a form. */
export function ThreadActions(props: {
  thread: ThreadView;
  onRenamed: (t: ThreadView) => void;
  onDeleted: () => void;
}) {
  const [renaming, setRenaming] = useState(false);
  if (renaming) {
    return (
      <RenameForm
        thread={props.thread}
        onDone={(t) => {
          setRenaming(false);
          if (t) props.onRenamed(t);
        }}
      />
    );
  }
  return (
    <>
      <button type="button" className="button-small" onClick={() => setRenaming(true)}>
        Rename
      </button>
      <ConfirmButton
        label="Delete thread"
        title={`Delete the thread “${props.thread.title}”?`}
        message={
          <p>
            Its messages are deleted, and so are the credentials stored for this thread only. Your own
            credentials for the servers stay.
          </p>
        }
        confirmLabel="Delete thread"
        onConfirm={async () => {
          await api.delete(`/api/threads/${props.thread.id}`);
          props.onDeleted();
        }}
      />
    </>
  );
}

function RenameForm({ thread, onDone }: { thread: ThreadView; onDone: (t?: ThreadView) => void }) {
  const [title, setTitle] = useState(thread.title);
  const save = useAction((value: string) =>
    api.patch<ThreadView>(`/api/threads/${thread.id}`, { title: value }),
  );
  const error = save.error instanceof ApiError ? save.error : undefined;
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const saved = await save.run(title.trim());
    if (saved) onDone(saved);
  };
  return (
    <form className="rename-form" aria-label="Rename thread" onSubmit={(e) => void submit(e)} noValidate>
      <TextField
        label="Thread title"
        value={title}
        onValue={setTitle}
        maxLength={THREAD_TITLE_MAX}
        required
        autoFocus
        error={error?.issueAt('body.title')}
        onKeyDown={(e) => {
          if (e.key === 'Escape') {
            e.preventDefault();
            onDone();
          }
        }}
      />
      {save.error && !error?.issueAt('body.title') && <ErrorMessage error={save.error} />}
      <div className="actions">
        <button type="submit" className="button-primary button-small" disabled={save.pending}>
          {save.pending ? 'Saving…' : 'Save'}
        </button>
        <button type="button" className="button-small" onClick={() => onDone()}>
          Cancel
        </button>
      </div>
    </form>
  );
}
