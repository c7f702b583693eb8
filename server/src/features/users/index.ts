export { UsersRepository, type Role, type UserRow } from './users.repository.ts';
export { usersRoutes } from './users.routes.ts';
