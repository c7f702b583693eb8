export {
  RateLimitService,
  type RateLimitDeps,
  type RateLimitRejection,
  type RateLimitScope,
  type ToolCallTarget,
} from './ratelimit.service.ts';
export { ipRateLimit, mcpRateLimit, RATE_LIMITED_RPC_CODE, userRateLimit } from './ratelimit.middleware.ts';
