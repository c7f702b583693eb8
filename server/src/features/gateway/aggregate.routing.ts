import type { ServerRecord } from '../registry/index.ts';
import { mapUri, prefixName, splitName, unmapUri } from './aggregate.names.ts';
import { RpcCode } from './gateway.errors.ts';

export type Json = Record<string, unknown>;

/** The list calls the aggregate endpoint answers itself, and how their items are named. */
export const LIST_METHODS: Record<
  string,
  { key: string; kind: 'name' | 'uri' | 'template'; capability: string }
> = {
  'tools/list': { key: 'tools', kind: 'name', capability: 'tools' },
  'prompts/list': { key: 'prompts', kind: 'name', capability: 'prompts' },
  'resources/list': { key: 'resources', kind: 'uri', capability: 'resources' },
  'resources/templates/list': { key: 'resourceTemplates', kind: 'template', capability: 'resources' },
};

/**
 * One item of a member's list in aggregate form: names prefixed `{slug}__` (titled with the
 * server's name when the item has no title), URIs and URI templates mapped.
 */
export function listItem(kind: 'name' | 'uri' | 'template', server: ServerRecord, item: Json): Json {
  const slug = server.slug;
  if (kind === 'name')
    return {
      ...item,
      name: prefixName(slug, String(item['name'])),
      ...(item['title'] ? {} : { title: `${server.name}: ${String(item['name'])}` }),
    };
  if (kind === 'uri') return { ...item, uri: mapUri(slug, String(item['uri'])) };
  return { ...item, uriTemplate: mapUri(slug, String(item['uriTemplate'])) };
}

/** Where a request goes: the member its prefixed name or mapped URI names, with params unmapped. */
export function routeRequest(
  method: string,
  params: Json,
): { slug: string; params: Json } | { error: string; code: number } {
  const byName = () => {
    const s = splitName(String(params['name'] ?? ''));
    return s
      ? { slug: s.slug, params: { ...params, name: s.name } }
      : { error: `${method}: name must be {server}__{name}`, code: RpcCode.InvalidParams };
  };
  const byUri = () => {
    const u = unmapUri(String(params['uri'] ?? ''));
    return u
      ? { slug: u.slug, params: { ...params, uri: u.uri } }
      : { error: `${method}: unknown resource URI`, code: RpcCode.InvalidParams };
  };
  switch (method) {
    case 'tools/call':
    case 'prompts/get':
      return byName();
    case 'resources/read':
    case 'resources/subscribe':
    case 'resources/unsubscribe':
      return byUri();
    case 'completion/complete': {
      const ref = (params['ref'] ?? {}) as Json;
      if (ref['type'] === 'ref/prompt') {
        const s = splitName(String(ref['name'] ?? ''));
        if (s) return { slug: s.slug, params: { ...params, ref: { ...ref, name: s.name } } };
      } else if (ref['type'] === 'ref/resource') {
        const u = unmapUri(String(ref['uri'] ?? ''));
        if (u) return { slug: u.slug, params: { ...params, ref: { ...ref, uri: u.uri } } };
      }
      return { error: 'completion/complete: unknown ref', code: RpcCode.InvalidParams };
    }
    default:
      return {
        error: `method ${method} is not supported by the aggregate endpoint`,
        code: RpcCode.MethodNotFound,
      };
  }
}

/** Maps URIs inside results (embedded resources, resource links, read contents) to aggregate form. */
export function mapResult(slug: string, method: string, result: Json): Json {
  const mapContent = (c: Json): Json => {
    if (c['type'] === 'resource_link' && typeof c['uri'] === 'string')
      return { ...c, uri: mapUri(slug, c['uri']) };
    if (c['type'] === 'resource' && c['resource'] && typeof (c['resource'] as Json)['uri'] === 'string') {
      const r = c['resource'] as Json;
      return { ...c, resource: { ...r, uri: mapUri(slug, String(r['uri'])) } };
    }
    return c;
  };
  if (method === 'tools/call' && Array.isArray(result['content'])) {
    return { ...result, content: (result['content'] as Json[]).map(mapContent) };
  }
  if (method === 'resources/read' && Array.isArray(result['contents'])) {
    return {
      ...result,
      contents: (result['contents'] as Json[]).map((c) => ({ ...c, uri: mapUri(slug, String(c['uri'])) })),
    };
  }
  if (method === 'prompts/get' && Array.isArray(result['messages'])) {
    return {
      ...result,
      messages: (result['messages'] as Json[]).map((m) =>
        m['content'] ? { ...m, content: mapContent(m['content'] as Json) } : m,
      ),
    };
  }
  return result;
}
