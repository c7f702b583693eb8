import { ErrorCode, type RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { RelayContext } from './relay.context.ts';
import type { PendingUpstreamRequest } from './relay.requests.ts';

/**
 * How requests and the relay itself end when nobody answers: request timeouts, an upstream
 * that goes away, and the shutdown of the whole relay.
 */
export class RelayLifecycle {
  private readonly ctx: RelayContext;
  private shutdownStarted = false;

  constructor(ctx: RelayContext) {
    this.ctx = ctx;
  }

  /** (Re)starts the timeout of a downstream->upstream request. */
  armTimeout(upstreamId: RequestId, pending: PendingUpstreamRequest): void {
    const { opts, requests, outbox } = this.ctx;
    if (pending.timer) clearTimeout(pending.timer);
    const ms = pending.method === 'initialize' ? opts.initializeTimeoutMs : opts.requestTimeoutMs;
    if (!ms) return;
    pending.timer = setTimeout(() => {
      if (requests.upstream(upstreamId) !== pending) return;
      requests.settleUpstream(upstreamId);
      if (pending.internal) return;
      this.ctx.report(pending, 'timeout', undefined, `no answer within ${ms} ms`);
      outbox.replyDownstreamError(
        pending.downstreamId,
        ErrorCode.RequestTimeout,
        `Upstream "${opts.upstreamName}" did not answer ${pending.method} within ${ms} ms`,
      );
      if (pending.method === 'initialize') {
        // initialize must not be cancelled (spec); a session whose upstream never came up is dead.
        void this.shutdown('upstream initialize timed out');
        return;
      }
      // Tell the upstream to stop working on it; its late response (if any) will be dropped.
      outbox.toUpstream({
        jsonrpc: '2.0',
        method: 'notifications/cancelled',
        params: { requestId: upstreamId, reason: `Relay timeout after ${ms} ms` },
      });
    }, ms);
    pending.timer.unref?.();
  }

  /** The current upstream's transport closed. */
  onUpstreamClosed(): void {
    const { opts } = this.ctx;
    if (this.shutdownStarted) return; // we closed it ourselves
    opts.log?.(`upstream "${opts.upstreamName}" closed unexpectedly`);
    this.failAllPending(`Upstream "${opts.upstreamName}" closed the connection`);
    if (opts.closeDownstreamOnUpstreamClose) {
      void this.shutdown('upstream closed');
    } else {
      // Keep the client's session; the next request starts a fresh upstream (restartUpstream).
      this.ctx.state = 'upstream-down';
      this.ctx.upstream = undefined;
    }
  }

  private failAllPending(reason: string, notify = true): void {
    const { opts, requests, outbox } = this.ctx;
    for (const [upstreamId, pending] of requests.upstreamEntries()) {
      requests.settleUpstream(upstreamId);
      if (pending.internal) continue;
      this.ctx.report(pending, 'failed', undefined, reason);
      if (notify)
        outbox.replyDownstreamError(pending.downstreamId, ErrorCode.InternalError, reason, {
          upstream: opts.upstreamName,
        });
    }
    // Upstream-originated requests still waiting on the client: nobody is left to receive answers.
    requests.clearDownstream();
  }

  /** Ends the relay: fails what is in flight, closes both sides. Runs once; later calls do nothing. */
  async shutdown(reason: string): Promise<void> {
    const { opts, outbox } = this.ctx;
    if (this.shutdownStarted) return;
    this.shutdownStarted = true;
    this.ctx.state = 'closing';
    opts.log?.(`relay shutting down: ${reason}`);
    opts.onShutdown?.();
    // If the downstream itself is gone there is nobody left to tell.
    this.failAllPending(
      `Relay to upstream "${opts.upstreamName}" is shutting down (${reason})`,
      reason !== 'downstream closed',
    );
    outbox.clearStandalone();

    const upstream = this.ctx.upstream;
    // Let queued error responses reach the client before its streams are torn down.
    await outbox.downstreamDrained();
    await Promise.allSettled([
      (async () => {
        if (!upstream) return;
        if (upstream.terminateSession) await upstream.terminateSession().catch(() => undefined);
        await upstream.close();
      })(),
      reason === 'downstream closed' ? Promise.resolve() : this.ctx.downstream.close(),
    ]);
    this.ctx.state = 'closed';
  }
}
