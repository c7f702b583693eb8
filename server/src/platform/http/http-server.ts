import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';

export interface RunningHttpServer {
  readonly server: Server;
  /** The URL the server listens on (`http://host:port`, or `https://` with TLS). */
  readonly url: string;
  /** Stops accepting, lets in-flight requests finish until `timeoutMs`, then cuts the rest. */
  close(timeoutMs: number): Promise<void>;
}

/**
 * Listens on host:port, over TLS when `tls` is given (a certificate and key already checked
 * by `loadTls`); rejects with a one-line reason (port in use, no permission).
 */
export async function listen(
  app: Express,
  host: string,
  port: number,
  tls?: { cert: Buffer; key: Buffer },
): Promise<RunningHttpServer> {
  const server: Server = tls ? createHttpsServer({ cert: tls.cert, key: tls.key }, app) : createServer(app);
  // Keep-alive longer than typical proxies' idle timeouts (60 s) so they close first.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const reason =
        err.code === 'EADDRINUSE'
          ? `port ${port} on ${host} is already in use (set PORT to another port)`
          : err.code === 'EACCES'
            ? `no permission to listen on ${host}:${port}`
            : err.message;
      reject(new Error(`cannot listen: ${reason}`));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `${tls ? 'https' : 'http'}://${shownHost === '0.0.0.0' ? '127.0.0.1' : shownHost}:${address.port}`;
  return {
    server,
    url,
    close(timeoutMs) {
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.closeAllConnections();
        }, timeoutMs);
        timer.unref();
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}
