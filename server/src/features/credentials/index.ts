export { CredentialsRepository } from './credentials.repository.ts';
export {
  CredentialsService,
  type CredentialTarget,
  type ResolvedCredentials,
} from './credentials.service.ts';
