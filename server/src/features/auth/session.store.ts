import session from 'express-session';
import type { AuthRepository } from './auth.repository.ts';

/**
 * express-session store over the database (PostgreSQL or PGlite), so web sessions survive
 * restarts and are shared by every replica.
 */
export class DatabaseSessionStore extends session.Store {
  readonly #repo: AuthRepository;
  readonly #ttlMs: number;

  constructor(repo: AuthRepository, ttlMs: number) {
    super();
    this.#repo = repo;
    this.#ttlMs = ttlMs;
  }

  #expiry(sess: session.SessionData): Date {
    const e = sess.cookie?.expires;
    return e ? new Date(e) : new Date(Date.now() + this.#ttlMs);
  }

  override get(sid: string, cb: (err: unknown, session?: session.SessionData | null) => void): void {
    this.#repo.getSession(sid).then(
      (row) =>
        cb(
          null,
          row && row.expiresAt.getTime() > Date.now() ? (row.sess as unknown as session.SessionData) : null,
        ),
      (err: unknown) => cb(err),
    );
  }

  override set(sid: string, sess: session.SessionData, cb?: (err?: unknown) => void): void {
    this.#repo
      .setSession(sid, JSON.parse(JSON.stringify(sess)) as Record<string, unknown>, this.#expiry(sess))
      .then(
        () => cb?.(),
        (err: unknown) => cb?.(err),
      );
  }

  override touch(sid: string, sess: session.SessionData, cb?: (err?: unknown) => void): void {
    this.#repo.touchSession(sid, this.#expiry(sess)).then(
      () => cb?.(),
      (err: unknown) => cb?.(err),
    );
  }

  override destroy(sid: string, cb?: (err?: unknown) => void): void {
    this.#repo.destroySession(sid).then(
      () => cb?.(),
      (err: unknown) => cb?.(err),
    );
  }
}
