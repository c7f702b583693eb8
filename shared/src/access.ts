import { z } from 'zod';
import { slugSchema } from './servers.ts';

/** `POST /api/access-rules` body. */
export const createAccessRuleSchema = z
  .object({
    subjectType: z.enum(['user', 'group', 'everyone']),
    /** User id (subjectType user) or group name (group); omitted for everyone. */
    subject: z.string().min(1).max(256).optional(),
    server: slugSchema,
    /** Tool names the rule grants; omitted or null: every tool. */
    tools: z.array(z.string().min(1).max(256)).min(1).max(512).nullable().optional(),
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
  tools: string[] | null;
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
