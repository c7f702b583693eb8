const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const dateTimeSeconds = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

/** `12 Mar 2026, 14:05`; an em dash for null. */
export function formatTime(iso: string | null | undefined, seconds = false): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : (seconds ? dateTimeSeconds : dateTime).format(d);
}

/** `5 minutes ago`, `in 3 days`; `never` for null. */
export function formatRelative(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return 'never';
  const diff = (new Date(iso).getTime() - now) / 1000;
  const abs = Math.abs(diff);
  const [value, unit]: [number, Intl.RelativeTimeFormatUnit] =
    abs < 60
      ? [diff, 'second']
      : abs < 3600
        ? [diff / 60, 'minute']
        : abs < 86_400
          ? [diff / 3600, 'hour']
          : abs < 86_400 * 60
            ? [diff / 86_400, 'day']
            : [diff / (86_400 * 30), 'month'];
  return relative.format(Math.round(value), unit);
}

/** `1 tool`, `3 tools`. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
