import { describe, expect, it } from 'vitest';
import { mapUri, prefixName, splitName, unmapUri } from './aggregate.names.ts';

describe('aggregate names', () => {
  it('round-trips tool names, including names that contain the separator', () => {
    expect(splitName(prefixName('files', 'read__all'))).toEqual({ slug: 'files', name: 'read__all' });
    expect(splitName('noprefix')).toBeUndefined();
    expect(splitName('__x')).toBeUndefined();
  });

  it('round-trips resource URIs and templates', () => {
    for (const uri of ['demo://resource/static/1', 'file:///tmp/a b.txt', 'x://{id}/y', 'urn:isbn:1']) {
      const mapped = mapUri('my-server', uri);
      expect(new URL(mapped).protocol).toBe('gw+my-server:');
      expect(unmapUri(mapped)).toEqual({ slug: 'my-server', uri });
    }
    expect(unmapUri('demo://resource')).toBeUndefined();
  });
});
