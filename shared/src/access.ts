import { z } from 'zod';
import { slugSchema } from './servers.ts';

/** `POST /api/access-rules` body. */
export const createAccessRuleSchema = z
  .object({
    subjectType: z.enum(['user', 'group', 'everyone']),
    /** User id (subjectType user) or group name (group); omitted for everyone. */
    subject: z.string().min(1).max(256).optional(),
    server: slugSchema,
    /**
     * What of the server the rule grants. With none of `tools`, `prompts` and `resources`
     * the rule grants the whole server; with any of them, only the items listed, and a kind
     * left out grants none of that kind.
     */
    /** Tool names. */
    tools: z.array(z.string().min(1).max(256)).min(1).max(512).nullable().optional(),
    /** Prompt names. */
    prompts: z.array(z.string().min(1).max(256)).min(1).max(512).nullable().optional(),
    /**
     * Resource URIs: an exact URI, or a prefix ending in `*` (`file:///docs/*`) that grants
     * every URI starting with it. A resource template is granted when its URI template is
     * listed exactly, or when its text before the first `{` starts with a granted prefix.
     */
    resources: z.array(z.string().min(1).max(2048)).min(1).max(512).nullable().optional(),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (v.subjectType === 'everyone' && v.subject !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['subject'], message: 'must be omitted for everyone' });
    }
    if (v.subjectType !== 'everyone' && !v.subject) {
      ctx.addIssue({ code: 'custom', path: ['subject'], message: `is required for a ${v.subjectType} rule` });
    }
    if (v.subjectType === 'user' && v.subject && !z.string().uuid().safeParse(v.subject).success) {
      ctx.addIssue({ code: 'custom', path: ['subject'], message: 'must be a user id' });
    }
  });
export type CreateAccessRule = z.infer<typeof createAccessRuleSchema>;

export interface AccessRuleView {
  id: string;
  subjectType: 'user' | 'group' | 'everyone';
  subject: string;
  server: string;
  /** Null in all three: the whole server. Otherwise only what is listed (null: none of that kind). */
  tools: string[] | null;
  prompts: string[] | null;
  resources: string[] | null;
}

/** `GET /api/me`: who the caller is. */
export interface MeView {
  id: string;
  displayName: string;
  email: string | null;
  role: 'admin' | 'auditor' | 'user';
  groups: string[];
  via: 'api_key' | 'oauth' | 'session';
  /** CSRF token to send as X-CSRF-Token on state-changing requests (web sessions only). */
  csrfToken?: string;
}

/** A connected OAuth client (a grant) as `GET /api/oauth/grants` shows it. */
export interface OAuthGrantView {
  id: string;
  clientId: string;
  clientName: string;
  userId: string;
  resources: string[];
  createdAt: string | null;
  expiresAt: string | null;
}

/** `PATCH /api/users/{id}` body (admins): a user's role, or whether the account is disabled. */
export const updateUserSchema = z
  .object({
    role: z.enum(['admin', 'auditor', 'user']).optional(),
    disabled: z.boolean().optional(),
  })
  .strict()
  .refine((v) => v.role !== undefined || v.disabled !== undefined, 'must change role or disabled');
export type UpdateUser = z.infer<typeof updateUserSchema>;
