export { bearerToken, requireAuth, type Authenticator } from './auth.middleware.ts';
export { AuthRepository } from './auth.repository.ts';
export { settingsSealedStore, sharedSecret } from './auth.secrets.ts';
export { roleForGroups, safeReturnTo, WebAuth, type OidcSettings } from './auth.web.ts';
export { MCP_SCOPE, OAuthServer, redirectUriAllowed, resourceFor } from './oauth.server.ts';
export { continuePage, errorPage, successPage } from './auth.pages.ts';
