import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Provider } from 'oidc-provider';

/** People the test identity provider knows, with their groups. */
export const IDP_ACCOUNTS: Record<string, { name: string; email: string; groups: string[] }> = {
  alice: { name: 'Alice Admin', email: 'alice@example.test', groups: ['gw-admins', 'staff'] },
  bob: { name: 'Bob User', email: 'bob@example.test', groups: ['staff'] },
  carol: { name: 'Carol Auditor', email: 'carol@example.test', groups: ['auditors'] },
};

/**
 * A real OpenID Connect provider (oidc-provider, with its built-in login and consent pages)
 * playing the organisation's identity provider on loopback. Any password is accepted for
 * the known accounts.
 */
export async function startIdentityProvider(options: {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
}) {
  const server: Server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: options.clientId,
        client_secret: options.clientSecret,
        redirect_uris: [options.redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
    claims: { openid: ['sub'], profile: ['name'], email: ['email'], groups: ['groups'] },
    scopes: ['openid', 'profile', 'email', 'groups'],
    features: { devInteractions: { enabled: true } },
    pkce: { required: () => false },
    cookies: { keys: ['test-idp-cookie-key-0123456789'] },
    async findAccount(_ctx, id) {
      const account = IDP_ACCOUNTS[id];
      if (!account) return undefined;
      return { accountId: id, claims: async () => ({ sub: id, ...account }) };
    },
  });
  server.on('request', provider.callback());
  return {
    issuer,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
