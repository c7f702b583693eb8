export { KeysRepository } from './keys.repository.ts';
export { KeysService, KEY_PREFIX, type KeyRejection } from './keys.service.ts';
