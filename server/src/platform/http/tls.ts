import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { RequestHandler } from 'express';
import { ConfigError } from '../config/config.ts';
import { AppError } from './errors.ts';

/** A certificate (chain) and its private key, PEM, checked to belong together. */
export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** When the (leaf) certificate expires. */
  readonly validTo: Date;
}

async function read(variable: string, file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code;
    throw new ConfigError(variable, `cannot be read: ${file} (${why ?? 'unknown error'})`);
  }
}

/**
 * Reads TLS_CERT_FILE and TLS_KEY_FILE and checks them, so a bad file stops start-up with
 * one line naming the variable instead of a TLS stack trace (or a server nobody can reach).
 * Never echoes file contents: the key is a secret.
 * @throws ConfigError naming TLS_CERT_FILE or TLS_KEY_FILE.
 */
export async function loadTls(files: { certFile: string; keyFile: string }): Promise<TlsMaterial> {
  const [cert, key] = await Promise.all([
    read('TLS_CERT_FILE', files.certFile),
    read('TLS_KEY_FILE', files.keyFile),
  ]);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    throw new ConfigError('TLS_CERT_FILE', `is not a PEM certificate: ${files.certFile}`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw new ConfigError(
      'TLS_KEY_FILE',
      `is not an unencrypted PEM private key: ${files.keyFile} (passphrase-protected keys are not supported)`,
    );
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new ConfigError('TLS_KEY_FILE', `is not the private key of the certificate in TLS_CERT_FILE`);
  }
  return { cert, key, validTo: new Date(x509.validTo) };
}

/** `Strict-Transport-Security`: one year, subdomains included (RFC 6797). */
export const HSTS_VALUE = 'max-age=31536000; includeSubDomains';

const EXEMPT = new Set(['/healthz', '/readyz']);

/**
 * HTTPS-only transport, for production. A request is secure when its socket is TLS, or when
 * a trusted proxy (TRUST_PROXY) says it received it over TLS (`X-Forwarded-Proto: https`;
 * express's `req.secure` applies exactly the trust-proxy rules). Plain-HTTP requests are
 * refused except the health checks (load balancers and orchestrators probe them in plain
 * HTTP): browsers navigating (GET/HEAD accepting HTML) are redirected to https, everything
 * else gets 403 — API and MCP clients must not send credentials in clear, and silently
 * following a redirect would already have sent them. Secure responses carry HSTS.
 *
 * Cookies: whoever sets one must mark it `Secure` in production (`config.isProduction`),
 * so it is never sent back over plain HTTP.
 */
export function httpsOnly(options: { enabled: boolean; publicUrl?: string | undefined }): RequestHandler {
  const publicOrigin =
    options.publicUrl && new URL(options.publicUrl).protocol === 'https:'
      ? new URL(options.publicUrl).origin
      : undefined;
  return (req, res, next) => {
    if (!options.enabled) return next();
    if (req.secure) {
      res.setHeader('Strict-Transport-Security', HSTS_VALUE);
      return next();
    }
    if (EXEMPT.has(req.path)) return next();
    const navigating =
      (req.method === 'GET' || req.method === 'HEAD') && (req.headers.accept ?? '').includes('text/html');
    if (navigating) {
      // PUBLIC_URL when it is https: a Host header is the client's to choose.
      const origin = publicOrigin ?? `https://${req.hostname}`;
      res.redirect(308, `${origin}${req.originalUrl}`);
      return;
    }
    next(
      new AppError(
        'forbidden',
        `plain HTTP is refused: this server only answers over HTTPS${publicOrigin ? ` (${publicOrigin})` : ''}`,
      ),
    );
  };
}
