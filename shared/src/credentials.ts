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
  /** `values` (fields the user typed in) or `oauth` (tokens from connecting an account). */
  kind: 'values' | 'oauth';
  /** Field names (`values`); empty for `oauth`. */
  fields: string[];
  /** `needs_consent`: the upstream refused the stored grant; connect again. Always `ok` for `values`. */
  status: 'ok' | 'needs_consent';
  /** When the current OAuth access token expires (the gateway refreshes it before); null for `values`. */
  expiresAt: string | null;
  updatedAt: string;
}

/** `POST /api/servers/{slug}/oauth/connect` body. */
export const connectOAuthSchema = z
  .object({
    /** Connect for one chat thread only. */
    threadId: z.string().uuid().optional(),
  })
  .strict();
export type ConnectOAuth = z.infer<typeof connectOAuthSchema>;

/** `POST /api/servers/{slug}/oauth/connect` answer: where to send the user's browser. */
export interface OAuthConnectView {
  /** The upstream authorization server's page; it redirects back to the gateway's callback. */
  authorizationUrl: string;
  /** The pending authorization expires (and the link stops working) at this time. */
  expiresAt: string;
}
