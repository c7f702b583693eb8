/**
 * Names on the aggregate endpoint `/mcp`: tools and prompts are `{slug}__{name}`; resource
 * URIs (and URI templates) become `gw+{slug}:{original}` — a valid URI scheme for every slug,
 * reversible without any lookup, and templates keep their `{variables}` expandable.
 */
export const NAME_SEPARATOR = '__';

export const prefixName = (slug: string, name: string) => `${slug}${NAME_SEPARATOR}${name}`;

export function splitName(prefixed: string): { slug: string; name: string } | undefined {
  const i = prefixed.indexOf(NAME_SEPARATOR);
  if (i <= 0) return undefined;
  return { slug: prefixed.slice(0, i), name: prefixed.slice(i + NAME_SEPARATOR.length) };
}

export const mapUri = (slug: string, uri: string) => `gw+${slug}:${uri}`;

export function unmapUri(mapped: string): { slug: string; uri: string } | undefined {
  const m = /^gw\+([a-z0-9-]+):(.+)$/s.exec(mapped);
  return m ? { slug: m[1]!, uri: m[2]! } : undefined;
}
