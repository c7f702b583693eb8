import { describe, expect, it } from 'vitest';
import { dev, dns, noDns, strict } from '../../../../test/support/ssrf.ts';
import { assertUrlAllowed, type LookupFn, SsrfError, type SsrfPolicy } from './ssrf.policy.ts';

async function refusal(
  url: string,
  policy: SsrfPolicy = strict,
  lookup: LookupFn = noDns,
): Promise<SsrfError> {
  const error: unknown = await assertUrlAllowed(url, policy, lookup).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof SsrfError)) {
    throw new Error(`expected ${url} to be refused with SsrfError, got ${String(error)}`);
  }
  return error;
}

describe('assertUrlAllowed', () => {
  it.each([
    ['https://10.0.0.1/', 'private'],
    ['https://172.16.5.4/', 'private'],
    ['https://172.31.255.255/', 'private'],
    ['https://192.168.1.1/', 'private'],
    ['https://100.64.0.1/', 'private'],
    ['https://127.0.0.1/', 'loopback'],
    ['https://127.255.0.9/', 'loopback'],
    ['https://169.254.1.1/', 'link-local'],
    ['https://169.254.169.254/latest/meta-data/', 'cloud metadata'],
    ['https://100.100.100.200/', 'cloud metadata'],
    ['https://0.0.0.0/', 'unspecified'],
    ['https://224.0.0.1/', 'multicast'],
    ['https://255.255.255.255/', 'broadcast'],
    ['https://240.0.0.1/', 'reserved'],
    ['https://192.0.2.10/', 'reserved'],
    ['https://198.18.0.1/', 'reserved'],
  ])('refuses the IPv4 literal %s (%s)', async (url, kind) => {
    expect((await refusal(url)).reason).toMatch(new RegExp(`is an? ${kind} address`));
  });

  it.each([
    ['https://[::1]/', 'loopback'],
    ['https://[::]/', 'unspecified'],
    ['https://[fe80::1]/', 'link-local'],
    ['https://[fc00::1]/', 'private'],
    ['https://[fd12:3456::1]/', 'private'],
    ['https://[fd00:ec2::254]/', 'cloud metadata'],
    ['https://[ff02::1]/', 'multicast'],
    ['https://[2001:db8::1]/', 'reserved'],
    ['https://[::a00:1]/', 'reserved'],
    ['https://[4000::1]/', 'reserved'],
  ])('refuses the IPv6 literal %s (%s)', async (url, kind) => {
    expect((await refusal(url)).reason).toMatch(new RegExp(`is an? ${kind} address`));
  });

  it.each([
    ['https://[::ffff:10.0.0.1]/', 'private'],
    ['https://[::ffff:a00:1]/', 'private'],
    ['https://[0:0:0:0:0:ffff:c0a8:101]/', 'private'],
    ['https://[::ffff:7f00:1]/', 'loopback'],
    ['https://[::ffff:169.254.169.254]/', 'cloud metadata'],
    ['https://[::ffff:0.0.0.0]/', 'unspecified'],
    ['https://[64:ff9b::a9fe:a9fe]/', 'cloud metadata'],
    ['https://[2002:a00:1::]/', 'private'],
  ])('refuses %s, an IPv6 form of a blocked IPv4 address (%s)', async (url, kind) => {
    expect((await refusal(url)).reason).toMatch(new RegExp(`is an? ${kind} address`));
  });

  it.each(['https://2130706433/', 'https://0x7f.0.0.1/', 'https://017700000001/', 'https://127.1/'])(
    'refuses the loopback address spelled %s',
    async (url) => {
      expect((await refusal(url)).reason).toContain('127.0.0.1 is a loopback address');
    },
  );

  it.each(['https://8.8.8.8/', 'https://[2606:4700:4700::1111]/', 'https://[::ffff:8.8.8.8]/'])(
    'allows the public literal %s without DNS',
    async (url) => {
      await expect(assertUrlAllowed(url, strict, noDns)).resolves.toBeUndefined();
    },
  );

  it('refuses the cloud metadata host names without asking DNS', async () => {
    expect((await refusal('https://metadata.google.internal/computeMetadata/v1/')).reason).toBe(
      'metadata.google.internal is a cloud metadata host',
    );
    expect((await refusal('https://METADATA.google.internal./')).reason).toContain('cloud metadata host');
  });

  it('refuses a host name that resolves to a private address', async () => {
    const error = await refusal(
      'https://intranet.example.com/mcp',
      strict,
      dns({ 'intranet.example.com': ['10.1.2.3'] }),
    );
    expect(error.reason).toBe('intranet.example.com resolves to 10.1.2.3, which is a private address');
    expect(error.message).toBe(
      'refused to connect to https://intranet.example.com: intranet.example.com resolves to 10.1.2.3, which is a private address',
    );
  });

  it('requires every resolved address to be allowed', async () => {
    const lookup = dns({ 'mixed.example.com': ['93.184.216.34', '::ffff:192.168.0.7'] });
    expect((await refusal('https://mixed.example.com/', strict, lookup)).reason).toContain('private address');
    await expect(
      assertUrlAllowed(
        'https://public.example.com/',
        strict,
        dns({ 'public.example.com': ['93.184.216.34'] }),
      ),
    ).resolves.toBeUndefined();
  });

  it('lets a lookup failure through unchanged', async () => {
    await expect(assertUrlAllowed('https://nowhere.example.com/', strict, noDns)).rejects.toThrow(
      'unexpected DNS lookup of nowhere.example.com',
    );
  });

  it('allowPrivate permits private ranges but never metadata or link-local', async () => {
    const lan: SsrfPolicy = { ...strict, allowPrivate: true };
    await expect(assertUrlAllowed('https://10.0.0.1/', lan, noDns)).resolves.toBeUndefined();
    await expect(assertUrlAllowed('https://[fd12::1]/', lan, noDns)).resolves.toBeUndefined();
    await expect(
      assertUrlAllowed('https://lan.test/', lan, dns({ 'lan.test': ['192.168.1.20'] })),
    ).resolves.toBe(undefined);
    await refusal('https://169.254.169.254/', lan);
    await refusal('https://100.100.100.200/', lan);
    await refusal('https://[fd00:ec2::254]/', lan);
    await refusal('https://169.254.1.1/', lan);
    await refusal('https://127.0.0.1/', lan);
  });

  it('allowLoopback permits loopback but not the unspecified address', async () => {
    await expect(assertUrlAllowed('https://127.0.0.1/', dev, noDns)).resolves.toBeUndefined();
    await expect(assertUrlAllowed('https://[::1]/', dev, noDns)).resolves.toBeUndefined();
    expect((await refusal('https://0.0.0.0/', dev)).reason).toContain('unspecified');
    await refusal('https://10.0.0.1/', dev);
  });

  it('allows allow-listed host names, exact and by wildcard, without checking their addresses', async () => {
    const policy: SsrfPolicy = { ...strict, allowList: ['mcp.internal.test', '*.corp.example'] };
    await expect(assertUrlAllowed('https://mcp.internal.test/', policy, noDns)).resolves.toBeUndefined();
    await expect(assertUrlAllowed('https://MCP.Internal.Test./', policy, noDns)).resolves.toBeUndefined();
    await expect(assertUrlAllowed('https://a.corp.example/', policy, noDns)).resolves.toBeUndefined();
    await expect(assertUrlAllowed('https://a.b.corp.example/', policy, noDns)).resolves.toBeUndefined();
    const privateDns = dns({
      'corp.example': ['10.0.0.1'],
      'evilcorp.example': ['10.0.0.1'],
      'x.internal.test': ['10.0.0.1'],
    });
    await refusal('https://corp.example/', policy, privateDns);
    await refusal('https://evilcorp.example/', policy, privateDns);
    await refusal('https://x.internal.test/', policy, privateDns);
  });

  it('allows addresses inside allow-listed CIDRs, IPv4 and IPv6', async () => {
    const policy: SsrfPolicy = { ...strict, allowList: ['10.1.0.0/16', 'fd00:1234::/32', '169.254.169.254'] };
    await expect(assertUrlAllowed('https://10.1.2.3/', policy, noDns)).resolves.toBeUndefined();
    await expect(assertUrlAllowed('https://[::ffff:10.1.2.3]/', policy, noDns)).resolves.toBeUndefined();
    await expect(assertUrlAllowed('https://[fd00:1234::5]/', policy, noDns)).resolves.toBeUndefined();
    await expect(assertUrlAllowed('https://169.254.169.254/', policy, noDns)).resolves.toBeUndefined();
    await expect(
      assertUrlAllowed('https://lan.test/', policy, dns({ 'lan.test': ['10.1.9.9'] })),
    ).resolves.toBe(undefined);
    await refusal('https://10.2.0.1/', policy);
    await refusal('https://[fd00:1235::5]/', policy);
    await refusal('https://lan.test/', policy, dns({ 'lan.test': ['10.1.9.9', '10.2.0.1'] }));
  });

  it.each(['10.0.0.0/33', '10.0.0.0/', 'fd00::/129', 'exa mple.com', '*.', 'example.com/8', ''])(
    'rejects the malformed allow-list entry %j',
    async (entry) => {
      await expect(
        assertUrlAllowed('https://8.8.8.8/', { ...strict, allowList: [entry] }, noDns),
      ).rejects.toThrow(TypeError);
    },
  );

  it('refuses plain http unless loopback is allowed and the host is a loopback host', async () => {
    expect((await refusal('http://127.0.0.1:8080/')).reason).toBe(
      'plain http is not allowed (https only; set UPSTREAM_ALLOW_LOOPBACK=true to reach servers on this machine over http)',
    );
    expect((await refusal('http://93.184.216.34/', dev)).reason).toBe(
      'plain http is allowed only to loopback hosts',
    );
    expect((await refusal('http://example.com/', dev)).reason).toBe(
      'plain http is allowed only to loopback hosts',
    );
    await expect(assertUrlAllowed('http://127.0.0.1:8080/', dev, noDns)).resolves.toBeUndefined();
    await expect(assertUrlAllowed('http://[::1]:8080/', dev, noDns)).resolves.toBeUndefined();
    await expect(
      assertUrlAllowed('http://localhost:8080/', dev, dns({ localhost: ['127.0.0.1', '::1'] })),
    ).resolves.toBe(undefined);
  });

  it('refuses localhost unless loopback is allowed, and a localhost that is not loopback', async () => {
    expect((await refusal('https://localhost/')).reason).toBe(
      'localhost is a loopback host (set UPSTREAM_ALLOW_LOOPBACK=true to allow servers on this machine)',
    );
    expect((await refusal('https://app.localhost/')).reason).toBe(
      'app.localhost is a loopback host (set UPSTREAM_ALLOW_LOOPBACK=true to allow servers on this machine)',
    );
    expect((await refusal('https://localhost/', dev, dns({ localhost: ['93.184.216.34'] }))).reason).toBe(
      'localhost resolves to 93.184.216.34, which is not a loopback address',
    );
  });

  it.each([
    'ftp://example.com/',
    'file:///etc/passwd',
    'javascript:alert(1)',
    'ws://127.0.0.1/',
    'gopher://127.0.0.1/',
  ])('refuses the scheme of %s', async (url) => {
    expect((await refusal(url, dev)).reason).toMatch(/^scheme .* is not allowed/);
  });

  it('refuses credentials in the URL without repeating them', async () => {
    const error = await refusal('https://alice:s3cret@example.com/mcp?token=abc#frag');
    expect(error.reason).toBe('credentials in the URL are not allowed (send them in a header)');
    expect(error.message).toBe(
      'refused to connect to https://example.com: credentials in the URL are not allowed (send them in a header)',
    );
    expect(error.url).toBe('https://example.com');
  });

  it('names only the origin of a refused URL', async () => {
    const error = await refusal('https://10.0.0.1:8443/s/key-in-path/mcp?api_key=zzz#x');
    expect(error.url).toBe('https://10.0.0.1:8443');
    expect(error.message).toBe('refused to connect to https://10.0.0.1:8443: 10.0.0.1 is a private address');
  });

  it('refuses an invalid URL without repeating it', async () => {
    const error = await refusal('not a url, password=hunter2');
    expect(error.message).toBe('refused to connect to an invalid URL: not a valid URL');
  });
});
