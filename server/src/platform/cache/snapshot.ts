/**
 * A value loaded from the database and kept in memory for `ttlMs`, for lookups that run on
 * every request. Concurrent readers share one load. `invalidate()` after a change makes the
 * next read load anew, and a load that was already running when the change happened does
 * not store its result: it may have read the rows from before the change, and storing them
 * would serve the old value for a whole TTL.
 */
export class Snapshot<T> {
  readonly #load: () => Promise<T>;
  readonly #ttlMs: number;
  readonly #onBackgroundError: ((err: unknown) => void) | undefined;
  #value: { at: number; value: T } | undefined;
  #loading: Promise<T> | undefined;
  #generation = 0;

  /**
   * `onBackgroundError` turns on stale-while-revalidate: once the TTL has passed, readers get
   * the old value at once while a reload runs, and a failed reload is reported there. Without
   * it, readers past the TTL wait for the reload.
   */
  constructor(
    load: () => Promise<T>,
    options: { ttlMs: number; onBackgroundError?: (err: unknown) => void },
  ) {
    this.#load = load;
    this.#ttlMs = options.ttlMs;
    this.#onBackgroundError = options.onBackgroundError;
  }

  get(): Promise<T> {
    const cached = this.#value;
    if (cached && Date.now() - cached.at < this.#ttlMs) return Promise.resolve(cached.value);
    const running = this.#loading;
    const loading = running ?? this.#start();
    if (cached && this.#onBackgroundError) {
      // Reported once, by the read that started the reload.
      if (!running) loading.catch(this.#onBackgroundError);
      return Promise.resolve(cached.value);
    }
    return loading;
  }

  /** Forgets the value; reads from now on see only what is loaded after this call. */
  invalidate(): void {
    this.#generation++;
    this.#value = undefined;
    this.#loading = undefined;
  }

  #start(): Promise<T> {
    const generation = this.#generation;
    const at = Date.now();
    const loading = this.#load().then((value) => {
      if (generation === this.#generation) this.#value = { at, value };
      return value;
    });
    this.#loading = loading;
    const done = () => {
      if (this.#loading === loading) this.#loading = undefined;
    };
    loading.then(done, done);
    return loading;
  }
}
