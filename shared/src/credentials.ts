import { z } from 'zod';

/** `PUT /api/servers/{slug}/credentials` body: values for the server's credential fields. */
export const putCredentialsSchema = z
  .object({
    values: z.record(z.string().min(1).max(128), z.string().max(32_768)),
    /** Store for one chat thread only. */
    threadId: z.string().uuid().optional(),
  })
  .strict();
export type PutCredentials = z.infer<typeof putCredentialsSchema>;

/** A stored credential as the API shows it: which fields are set, never their values. */
export interface CredentialView {
  serverSlug: string;
  threadId: string | null;
  fields: string[];
  updatedAt: string;
}
