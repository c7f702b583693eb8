export { ChatRepository } from './chat.repository.ts';
export { ChatService, type ChatEvents, type ChatLimits, type ChatSettings } from './chat.service.ts';
export { chatRoutes } from './chat.routes.ts';
export { attachChatSocket } from './chat.socket.ts';
