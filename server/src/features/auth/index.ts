export { bearerToken, requireAuth, type Authenticator } from './auth.middleware.ts';
export { AuthRepository } from './auth.repository.ts';
export { settingsSealedStore, sharedSecret } from './auth.secrets.ts';
export { roleForGroups, safeReturnTo, WebAuth, type OidcSettings } from './auth.web.ts';
export { OAuthServer } from './oauth.server.ts';
export { MCP_SCOPE, redirectUriAllowed, resourceFor } from './oauth.provider.ts';
export { OAuthGrantStatus } from './oauth.grants.ts';
export { continuePage, errorPage, successPage } from './auth.pages.ts';
export { LivePrincipals } from './auth.live.ts';
