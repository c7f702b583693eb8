import { reconnect, type ConnectionState } from '../../lib/socket.ts';

/** Says when live updates are off (or still connecting), with a way to reconnect. */
export function ConnectionNotice({ state, reason }: { state: ConnectionState; reason: string | undefined }) {
  if (state === 'connected') return null;
  if (state === 'connecting') {
    return (
      <p className="muted small" role="status">
        Connecting to live updates…
      </p>
    );
  }
  return (
    <p className="alert alert-warn" role="alert">
      Live updates are off{reason ? `: ${reason}` : ''}.{' '}
      <button type="button" className="link-button" onClick={reconnect}>
        Reconnect
      </button>
    </p>
  );
}
