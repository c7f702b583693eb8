import { z } from 'zod';
import { slugSchema } from './servers.ts';

/** `POST /api/keys` body. */
export const createApiKeySchema = z
  .object({
    name: z.string().min(1).max(200),
    /** Servers the key may reach; omitted or null: every server its owner may use. */
    servers: z.array(slugSchema).min(1).max(256).nullable().optional(),
    /** ISO time after which the key stops working. */
    expiresAt: z.iso
      .datetime({ offset: true })
      .refine((v) => Date.parse(v) > Date.now(), 'must be in the future')
      .optional(),
  })
  .strict();
export type CreateApiKey = z.infer<typeof createApiKeySchema>;

export interface ApiKeyView {
  id: string;
  name: string;
  /** First characters of the key, to recognise it; never enough to use it. */
  prefix: string;
  userId: string;
  servers: string[] | null;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
  createdAt: string;
}

/** The create response: the only time the secret is shown. */
export interface CreatedApiKey extends ApiKeyView {
  key: string;
}
