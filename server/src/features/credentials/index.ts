export { CredentialsRepository } from './credentials.repository.ts';
export {
  CredentialsService,
  type CredentialTarget,
  type ResolvedCredentials,
} from './credentials.service.ts';
export { CredentialsRotation, type RotationTrigger } from './credentials.rotation.ts';
export { keyRotationRoutes } from './credentials.routes.ts';
export { defineCredentialsJobs } from './credentials.jobs.ts';
