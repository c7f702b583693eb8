// What an IP address is (private, loopback, cloud metadata, ...), however it is spelled: the
// SSRF policy (ssrf.policy.ts) decides from this class whether it may be connected to.
import { BlockList, isIP } from 'node:net';

/** The kind of an IP address, as the SSRF policy judges it. */
export type AddressClass =
  | 'public'
  | 'private'
  | 'loopback'
  | 'link-local'
  | 'metadata'
  | 'unspecified'
  | 'multicast'
  | 'broadcast'
  | 'reserved';

/** Checked in this order, so the narrow classes win over the ranges that contain them. */
const RANGES: readonly (readonly [Exclude<AddressClass, 'public'>, readonly string[]])[] = [
  [
    'metadata',
    [
      '169.254.169.254/32', // AWS, GCP, Azure, OpenStack, DigitalOcean, ...
      '169.254.170.2/32', // AWS ECS task credentials
      '100.100.100.200/32', // Alibaba Cloud (inside CGNAT, which allowPrivate would permit)
      'fd00:ec2::254/128', // AWS IMDS over IPv6 (inside fc00::/7)
    ],
  ],
  ['unspecified', ['0.0.0.0/8', '::/128']],
  ['loopback', ['127.0.0.0/8', '::1/128']],
  ['private', ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', 'fc00::/7', 'fec0::/10']],
  ['link-local', ['169.254.0.0/16', 'fe80::/10']],
  ['multicast', ['224.0.0.0/4', 'ff00::/8']],
  ['broadcast', ['255.255.255.255/32']],
  [
    'reserved',
    [
      '192.0.0.0/24', // IETF protocol assignments
      '192.0.2.0/24', // documentation
      '198.51.100.0/24', // documentation
      '203.0.113.0/24', // documentation
      '198.18.0.0/15', // benchmarking
      '192.88.99.0/24', // 6to4 relay anycast (deprecated)
      '240.0.0.0/4', // future use
      '::/96', // IPv4-compatible (deprecated)
      '::ffff:0:0:0/96', // IPv4-translated (SIIT)
      '64:ff9b:1::/48', // local-use NAT64
      '100::/64', // discard-only
      '2001::/32', // Teredo: the IPv4 server and client are obfuscated inside
      '2001:2::/48', // benchmarking
      '2001:10::/28', // ORCHID (deprecated)
      '2001:20::/28', // ORCHIDv2
      '2001:db8::/32', // documentation
      '3fff::/20', // documentation
      '5f00::/16', // SRv6 SIDs
    ],
  ],
];

const CLASS_LISTS: readonly (readonly [Exclude<AddressClass, 'public'>, BlockList])[] = RANGES.map(
  ([cls, cidrs]) => {
    const list = new BlockList();
    for (const cidr of cidrs) {
      const [address = '', prefix = ''] = cidr.split('/');
      list.addSubnet(address, Number(prefix), isIP(address) === 4 ? 'ipv4' : 'ipv6');
    }
    return [cls, list] as const;
  },
);

/** The class of an IP address; IPv6 forms that carry an IPv4 address get that address's class. */
export function classifyAddress(address: string): AddressClass {
  const ip = bareAddress(address);
  const family = isIP(ip);
  if (family === 6) {
    const embedded = embeddedIPv4(ip);
    if (embedded !== undefined) {
      return classifyAddress(embedded);
    }
  } else if (family !== 4) {
    // Not an address at all: nothing to connect to that could be allowed.
    return 'reserved';
  }
  const type = family === 4 ? 'ipv4' : 'ipv6';
  for (const [cls, list] of CLASS_LISTS) {
    if (list.check(ip, type)) {
      return cls;
    }
  }
  // IANA has allocated only 2000::/3 for global unicast; the rest is unassigned.
  if (family === 6 && (ipv6Hextets(ip)[0]! & 0xe000) !== 0x2000) {
    return 'reserved';
  }
  return 'public';
}

/** Lower case, without IPv6 brackets or the trailing dot of a fully qualified name. */
export function normalizeHost(host: string): string {
  let normal = host.toLowerCase();
  if (normal.startsWith('[') && normal.endsWith(']')) {
    normal = normal.slice(1, -1);
  }
  return normal.endsWith('.') ? normal.slice(0, -1) : normal;
}

/** An address as Node and BlockList take it: no brackets, no zone index. */
export function bareAddress(address: string): string {
  return stripZone(normalizeHost(address));
}

function stripZone(address: string): string {
  const percent = address.indexOf('%');
  return percent === -1 ? address : address.slice(0, percent);
}

/**
 * The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`, also written `::ffff:a00:1`),
 * NAT64 (`64:ff9b::/96`) or 6to4 (`2002::/16`) address: connecting to one of those reaches
 * the IPv4 address, so it is judged as that address.
 */
export function embeddedIPv4(ipv6: string): string | undefined {
  const h = ipv6Hextets(ipv6);
  const [h0, h1, h2, h3, h4, h5, h6, h7] = h as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (h0 === 0 && h1 === 0 && h2 === 0 && h3 === 0 && h4 === 0 && h5 === 0xffff) {
    return dottedQuad(h6, h7);
  }
  if (h0 === 0x64 && h1 === 0xff9b && h2 === 0 && h3 === 0 && h4 === 0 && h5 === 0) {
    return dottedQuad(h6, h7);
  }
  if (h0 === 0x2002) {
    return dottedQuad(h1, h2);
  }
  return undefined;
}

function dottedQuad(high: number, low: number): string {
  return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
}

/** The eight 16-bit groups of a valid IPv6 address (any textual form, including a dotted tail). */
function ipv6Hextets(ipv6: string): number[] {
  let text = ipv6;
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const [a = 0, b = 0, c = 0, d = 0] = tail.split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const groups = (part: string): number[] =>
    part === '' ? [] : part.split(':').map((group) => parseInt(group, 16));
  const [head = '', rest] = text.split('::');
  if (rest === undefined) {
    return groups(head);
  }
  const before = groups(head);
  const after = groups(rest);
  return [...before, ...new Array<number>(8 - before.length - after.length).fill(0), ...after];
}
