export { CredentialsRepository } from './credentials.repository.ts';
export {
  CredentialsService,
  type CredentialTarget,
  type ResolvedCredentials,
} from './credentials.service.ts';
export { CredentialsRotation, credentialsSealedStore, type RotationTrigger } from './credentials.rotation.ts';
export { defineCredentialsJobs } from './credentials.jobs.ts';
export { UpstreamOAuthError, UpstreamOAuthService, type OAuthScope } from './upstream-oauth.service.ts';
export { pendingAuthorizationsSealedStore, type OAuthTarget } from './upstream-oauth.store.ts';
export { type RefreshOutcome } from './upstream-oauth.refresh.ts';
export { VaultOAuthProvider } from './upstream-oauth.provider.ts';
export { InProcessLock, RedisLock, type RefreshLock } from './credentials.lock.ts';
