export { AccessService, type AccessTarget } from './access.service.ts';
