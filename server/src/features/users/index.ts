export { UsersRepository, type Role, type UserRow } from './users.repository.ts';
