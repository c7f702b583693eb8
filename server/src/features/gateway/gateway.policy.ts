import type { JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import type { Principal } from '../../core/principal.ts';
import type { AccessItemKind, AccessService, AccessTarget } from '../access/index.ts';
import { RpcCode, type RpcError } from './gateway.errors.ts';

type Json = Record<string, unknown>;

/** The access decisions the policy asks (from memory: `AccessService`). */
export type AccessDecisions = Pick<AccessService, 'canUseServer' | 'canUseItem' | 'grantOf'>;

/** The list calls whose items the policy filters, with the item key and kind of each. */
const LISTS: Record<string, { key: string; kind: AccessItemKind; field: 'name' | 'uri' | 'uriTemplate' }> = {
  'tools/list': { key: 'tools', kind: 'tool', field: 'name' },
  'prompts/list': { key: 'prompts', kind: 'prompt', field: 'name' },
  'resources/list': { key: 'resources', kind: 'resource', field: 'uri' },
  'resources/templates/list': { key: 'resourceTemplates', kind: 'template', field: 'uriTemplate' },
};

const KIND_NAMES: Record<AccessItemKind, string> = {
  tool: 'tool',
  prompt: 'prompt',
  resource: 'resource',
  template: 'resource template',
};

/** The item a request names (tool, prompt, resource URI, template), if it names one. */
function itemOf(request: JSONRPCRequest): { kind: AccessItemKind; name: string } | undefined {
  const params = (request.params ?? {}) as Json;
  switch (request.method) {
    case 'tools/call':
      return { kind: 'tool', name: String(params['name'] ?? '') };
    case 'prompts/get':
      return { kind: 'prompt', name: String(params['name'] ?? '') };
    case 'resources/read':
    case 'resources/subscribe':
      return { kind: 'resource', name: String(params['uri'] ?? '') };
    case 'completion/complete': {
      const ref = (params['ref'] ?? {}) as Json;
      if (ref['type'] === 'ref/prompt') return { kind: 'prompt', name: String(ref['name'] ?? '') };
      if (ref['type'] === 'ref/resource') return { kind: 'template', name: String(ref['uri'] ?? '') };
      return undefined;
    }
    default:
      return undefined;
  }
}

/**
 * The policy of every request a client sends through a session, asked with the session's
 * CURRENT principal (refreshed on each HTTP request and on every change of users, keys,
 * grants and rules): the server must still be usable, and the tool, prompt, resource or
 * template the request names must be granted. Other methods (lists, ping, logging, and
 * `resources/unsubscribe`, so a client can always drop a subscription) need only the server. One function for
 * `/mcp/{slug}`, every member of `/mcp` and the chat's in-process sessions, so no endpoint
 * can miss a method. Decisions come from memory.
 */
export function authorizeRequest(
  access: AccessDecisions,
  principal: Principal,
  server: AccessTarget,
  request: JSONRPCRequest,
  display: (name: string) => string = (n) => n,
): RpcError | undefined {
  if (!access.canUseServer(principal, server))
    return { code: RpcCode.Forbidden, message: `server ${server.slug} is no longer available to you` };
  const item = itemOf(request);
  if (!item || access.canUseItem(principal, server, item.kind, item.name)) return undefined;
  const shown = item.kind === 'tool' || item.kind === 'prompt' ? display(item.name) : item.name;
  return {
    code: RpcCode.Forbidden,
    message: `${KIND_NAMES[item.kind]} ${shown} of server ${server.slug} is not allowed for you`,
  };
}

/** A list result with the items the principal may not use left out (what is refused is not listed). */
export function filterListResult(
  access: AccessDecisions,
  principal: Principal,
  server: AccessTarget,
  method: string,
  result: Json,
): Json {
  const list = LISTS[method];
  if (!list || !Array.isArray(result[list.key])) return result;
  const items = (result[list.key] as Json[]).filter((item) =>
    access.canUseItem(principal, server, list.kind, String(item[list.field] ?? '')),
  );
  return { ...result, [list.key]: items };
}
