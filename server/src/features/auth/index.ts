export { bearerToken, principalOf, requireAuth, requireRole, type Authenticator } from './auth.middleware.ts';
export { canReadAudit, isAdmin, type Principal } from './principal.ts';
export { AuthRepository } from './auth.repository.ts';
export { authApiRoutes } from './auth.routes.ts';
export { settingsSealedStore, sharedSecret } from './auth.secrets.ts';
export { roleForGroups, safeReturnTo, WebAuth, type OidcSettings } from './auth.web.ts';
export { MCP_SCOPE, OAuthServer, redirectUriAllowed, resourceFor } from './oauth.server.ts';
export { OAuthGrantStatus } from './oauth.grants.ts';
export { continuePage, errorPage, successPage } from './auth.pages.ts';
