export { CredentialsRepository } from './credentials.repository.ts';
export {
  CredentialsService,
  type CredentialTarget,
  type ResolvedCredentials,
} from './credentials.service.ts';
export { CredentialsRotation, credentialsSealedStore, type RotationTrigger } from './credentials.rotation.ts';
export { defineCredentialsJobs } from './credentials.jobs.ts';
export {
  pendingAuthorizationsSealedStore,
  UpstreamOAuthError,
  UpstreamOAuthService,
  VaultOAuthProvider,
  type OAuthScope,
  type OAuthTarget,
  type RefreshOutcome,
} from './credentials.oauth.ts';
export { InProcessLock, RedisLock, type RefreshLock } from './credentials.lock.ts';
