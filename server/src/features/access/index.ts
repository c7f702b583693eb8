export { AccessRepository } from './access.repository.ts';
export { AccessService, type AccessTarget } from './access.service.ts';
