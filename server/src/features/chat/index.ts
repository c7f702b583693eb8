export { ChatRepository } from './chat.repository.ts';
export { ChatService, type ChatEvents, type ChatLimits, type ChatSettings } from './chat.service.ts';
export { attachChatSocket } from './chat.socket.ts';
