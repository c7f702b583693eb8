import { useEffect, useId, useRef, useState, type KeyboardEvent } from 'react';
import { CHAT_MESSAGE_MAX, type ChatMessageView } from '@gateway/shared';
import { ErrorMessage } from '../../components/ui.tsx';
import { useAction } from '../../lib/hooks.ts';
import { chat } from '../../lib/socket.ts';

/** The box the owner types a message in; Enter sends it over the socket. */
export function Composer(props: {
  threadId: string;
  disabled: boolean;
  model: string | null;
  onSent: (m: ChatMessageView) => void;
}) {
  const id = useId();
  const area = useRef<HTMLTextAreaElement>(null);
  const [text, setText] = useState('');
  const send = useAction(
    async (body: string) => (await chat.send({ threadId: props.threadId, text: body })).message,
  );
  const disabled = props.disabled || send.pending;

  // Typing goes on where it stopped: the box is disabled while the agent answers, which
  // takes the focus away from it.
  const wasDisabled = useRef(disabled);
  useEffect(() => {
    const active = document.activeElement;
    if (wasDisabled.current && !disabled && (!active || active === document.body)) area.current?.focus();
    wasDisabled.current = disabled;
  }, [disabled]);

  const submit = async () => {
    const body = text.trim();
    if (!body || disabled) return;
    const message = await send.run(body);
    if (message) {
      setText('');
      props.onSent(message);
    }
  };
  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      void submit();
    }
  };

  return (
    <form
      className="composer"
      aria-label="Send a message"
      onSubmit={(e) => {
        e.preventDefault();
        void submit();
      }}
    >
      <ErrorMessage error={send.error} title="Your message was not sent" />
      <div className="field">
        <label htmlFor={id}>Message</label>
        <textarea
          id={id}
          ref={area}
          rows={3}
          value={text}
          maxLength={CHAT_MESSAGE_MAX}
          disabled={disabled}
          aria-describedby={`${id}-hint`}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={onKeyDown}
        />
        <p className="hint" id={`${id}-hint`}>
          Enter sends, Shift+Enter starts a new line.
          {props.model && <> Model: {props.model}.</>}
        </p>
      </div>
      <div className="actions">
        <button type="submit" className="button-primary" disabled={disabled || !text.trim()}>
          Send
        </button>
      </div>
    </form>
  );
}
