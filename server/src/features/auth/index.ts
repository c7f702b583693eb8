export { bearerToken, principalOf, requireAuth, requireRole, type Authenticator } from './auth.middleware.ts';
export { canReadAudit, isAdmin, type Principal } from './principal.ts';
