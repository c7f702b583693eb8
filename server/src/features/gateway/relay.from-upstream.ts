import {
  ErrorCode,
  type JSONRPCErrorResponse,
  type JSONRPCMessage,
  type JSONRPCNotification,
  type JSONRPCRequest,
  type JSONRPCResultResponse,
  type ProgressToken,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import { isErrorResponse, isNotification, isRequest, isResult } from './gateway.messages.ts';
import type { RelayContext } from './relay.context.ts';
import type { RelayLifecycle } from './relay.lifecycle.ts';
import { errorMessage, errorResponse } from './relay.outbox.ts';

/**
 * The upstream -> downstream direction: answers to the client's requests, the upstream's own
 * requests to the client (sampling, elicitation, roots, ping...), its notifications and progress.
 */
export class RelayFromUpstream {
  private readonly ctx: RelayContext;
  private readonly lifecycle: RelayLifecycle;

  constructor(ctx: RelayContext, lifecycle: RelayLifecycle) {
    this.ctx = ctx;
    this.lifecycle = lifecycle;
  }

  /** A message from the current upstream. */
  onMessage(message: JSONRPCMessage): void {
    if (this.ctx.state === 'closed') return;
    if (isResult(message) || isErrorResponse(message)) {
      this.forwardResponseDownstream(message);
    } else if (isRequest(message)) {
      this.forwardRequestDownstream(message);
    } else if (isNotification(message)) {
      this.forwardNotificationDownstream(message);
    }
  }

  private forwardResponseDownstream(response: JSONRPCMessage & { id?: RequestId | null }): void {
    const { opts, requests, outbox } = this.ctx;
    const upstreamId = response.id;
    const pending = requests.upstream(upstreamId);
    if (!pending) {
      // Late response after timeout/cancellation/upstream-close: the downstream already got its answer.
      outbox.drop('up->down', response, 'response to unknown/settled request');
      return;
    }
    requests.settleUpstream(upstreamId!);
    if (pending.internal) {
      pending.internal(response as JSONRPCMessage);
      return;
    }
    this.ctx.report(pending, 'answered', response as JSONRPCResultResponse | JSONRPCErrorResponse);

    if (pending.method === 'initialize' && isResult(response)) {
      // Client-level bookkeeping normally done by the SDK `Client`: the HTTP client transport must
      // send the negotiated version in the mcp-protocol-version header of every later request.
      const version = (response.result as { protocolVersion?: string }).protocolVersion;
      if (version) this.ctx.upstream?.setProtocolVersion?.(version);
    }
    // A response is routed by its own id (= the downstream request id) onto that request's stream.
    let relayed = { ...response, id: pending.downstreamId } as JSONRPCMessage;
    if (opts.transformResult && isResult(relayed)) {
      relayed = { ...relayed, result: opts.transformResult(pending.method, relayed.result) };
    }
    outbox.toDownstream(relayed, undefined);

    if (pending.method === 'initialize' && isErrorResponse(response)) {
      // Upstream refused to initialize: the downstream session is useless.
      void this.lifecycle.shutdown('upstream rejected initialize');
    }
  }

  private forwardRequestDownstream(request: JSONRPCRequest): void {
    const { requests, outbox } = this.ctx;
    // A request id must never be reused within a session (MCP spec), so a repeat is a replay:
    // an HTTP upstream's SSE resumption (Last-Event-ID) can re-deliver events, and with some event
    // stores even events of *other* streams. Relaying it would ask the user twice.
    if (requests.isReplay(request.id)) {
      outbox.drop('up->down', request, 'duplicate request id (replay)');
      return;
    }
    const relatedRequestId = this.guessRelatedRequest();
    const downstreamId = requests.addDownstream(request, relatedRequestId);
    outbox.toDownstream({ ...request, id: downstreamId }, relatedRequestId, (error) => {
      if (!requests.takeDownstream(downstreamId)) return;
      outbox.toUpstream(
        errorResponse(
          request.id,
          ErrorCode.InternalError,
          `Relay could not deliver ${request.method} to the downstream client: ${errorMessage(error)}`,
        ),
      );
    });
  }

  private forwardNotificationDownstream(notification: JSONRPCNotification): void {
    const { opts, requests, outbox } = this.ctx;
    opts.onNotification?.('upstream->client', notification);
    if (notification.method === 'notifications/progress') {
      const token = (notification.params as { progressToken?: ProgressToken } | undefined)?.progressToken;
      const inFlight = requests.byProgressToken(token);
      if (!inFlight) {
        // Progress for a finished/cancelled/unknown request: the SDK client would raise an error.
        outbox.drop('up->down', notification, 'progress for unknown token');
        return;
      }
      const { upstreamId, pending } = inFlight;
      // Progress MUST increase; a non-increasing value is a replayed duplicate (see NOTES: SSE
      // resumption of an HTTP upstream can re-deliver progress of in-flight requests).
      const value = (notification.params as { progress?: unknown }).progress;
      if (typeof value === 'number') {
        if (pending.lastProgress !== undefined && value <= pending.lastProgress) {
          outbox.drop('up->down', notification, 'non-increasing progress (replay)');
          return;
        }
        pending.lastProgress = value;
      }
      if (opts.resetTimeoutOnProgress) this.lifecycle.armTimeout(upstreamId, pending);
      // Same SSE stream as the request's response => progress is seen in order, before the result.
      outbox.toDownstream(notification, pending.downstreamId);
      return;
    }

    if (notification.method === 'notifications/cancelled') {
      // The upstream cancels one of ITS requests to the downstream client.
      const upstreamReqId = (notification.params as { requestId?: RequestId } | undefined)?.requestId;
      const downstreamId = requests.downstreamIdOf(upstreamReqId);
      const pending = requests.takeDownstream(downstreamId);
      if (!pending) {
        outbox.drop('up->down', notification, 'cancel for unknown request');
        return;
      }
      outbox.toDownstream(
        { ...notification, params: { ...notification.params, requestId: downstreamId! } },
        this.isDownstreamRequestOpen(pending.relatedRequestId)
          ? pending.relatedRequestId
          : this.guessRelatedRequest(),
      );
      return;
    }

    outbox.toDownstream(notification, this.guessRelatedRequest());
  }

  /**
   * Which downstream request does an upstream-originated message (server->client request, logging,
   * list_changed, ...) belong to? Over stdio the SDK server's `relatedRequestId` never reaches the
   * wire, so the relay cannot know. Heuristic: if exactly one downstream request is in flight, use
   * its SSE stream (it is guaranteed to be open, and a server->client request issued by a tool call
   * lands there, in order with the tool's progress and result); otherwise use the standalone GET
   * stream. Either way an SDK client processes the message identically; the choice only matters for
   * ordering and for clients that never open a GET stream.
   */
  private guessRelatedRequest(): RequestId | undefined {
    return this.ctx.requests.onlyDownstreamId();
  }

  private isDownstreamRequestOpen(downstreamId: RequestId | undefined): boolean {
    return this.ctx.requests.upstreamIdOf(downstreamId) !== undefined;
  }
}
