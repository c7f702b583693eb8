import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { AuthRepository } from './auth.repository.ts';

/** oidc-provider storage over the database, one instance per model. */
export function adapterFactory(repo: AuthRepository) {
  return class DatabaseAdapter implements Adapter {
    readonly model: string;
    constructor(model: string) {
      this.model = model;
    }
    #key(id: string) {
      return `${this.model}:${id}`;
    }
    async upsert(id: string, payload: AdapterPayload, expiresIn: number) {
      await repo.oauthUpsert({
        key: this.#key(id),
        model: this.model,
        payload: payload as Record<string, unknown>,
        grantId: payload.grantId ?? null,
        userCode: payload.userCode ?? null,
        uid: payload.uid ?? null,
        accountId: payload.accountId ?? null,
        expiresAt: expiresIn ? new Date(Date.now() + expiresIn * 1000) : null,
      });
    }
    async #load(row: Awaited<ReturnType<AuthRepository['oauthFind']>>): Promise<AdapterPayload | undefined> {
      if (!row) return undefined;
      if (row.expiresAt && row.expiresAt.getTime() <= Date.now()) return undefined;
      return {
        ...(row.payload as AdapterPayload),
        ...(row.consumedAt ? { consumed: Math.floor(row.consumedAt.getTime() / 1000) } : {}),
      };
    }
    async find(id: string) {
      return this.#load(await repo.oauthFind(this.#key(id)));
    }
    async findByUid(uid: string) {
      return this.#load(await repo.oauthFindBy(this.model, 'uid', uid));
    }
    async findByUserCode(userCode: string) {
      return this.#load(await repo.oauthFindBy(this.model, 'userCode', userCode));
    }
    async consume(id: string) {
      await repo.oauthConsume(this.#key(id));
    }
    async destroy(id: string) {
      await repo.oauthDestroy(this.#key(id));
    }
    async revokeByGrantId(grantId: string) {
      await repo.oauthRevokeByGrantId(grantId);
    }
  };
}
