export { AccessRepository } from './access.repository.ts';
export { AccessService, type AccessItemKind, type AccessTarget } from './access.service.ts';
