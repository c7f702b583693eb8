import type {
  JSONRPCMessage,
  JSONRPCRequest,
  ProgressToken,
  RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import type { RelayRequestTrace } from './relay.options.ts';
import { byteLength } from './relay.outbox.ts';

/** A downstream request forwarded upstream, keyed by the upstream id the relay assigned. */
export interface PendingUpstreamRequest {
  downstreamId: RequestId;
  method: string;
  params?: JSONRPCRequest['params'];
  startedAt: number;
  requestBytes: number;
  /** Internal requests (upstream restart) are answered to a callback, not downstream. */
  internal?: (response: JSONRPCMessage) => void;
  progressToken?: ProgressToken;
  /** Last progress value relayed; progress MUST increase, so anything else is a duplicate. */
  lastProgress?: number;
  timer?: ReturnType<typeof setTimeout>;
  /** Its span, when tracing is on. */
  trace?: RelayRequestTrace | undefined;
}

/** An upstream-originated request forwarded downstream, keyed by the downstream id the relay assigned. */
export interface PendingDownstreamRequest {
  upstreamId: RequestId;
  method: string;
  params?: JSONRPCRequest['params'];
  startedAt: number;
  requestBytes: number;
  /** The downstream request whose SSE stream carried it (undefined = standalone stream). */
  relatedRequestId?: RequestId;
}

/**
 * The relay's bookkeeping of requests in flight, both ways: both peers pick ids from their
 * own counters, so every forwarded request gets a fresh id from this side's counter, and the
 * maps here lead an answer, a cancellation or a progress notification back to the original.
 */
export class RelayRequests {
  private static readonly SEEN_IDS_LIMIT = 10_000;

  // Separate counters per side keep ids readable in traces; uniqueness is per side.
  private nextUpstreamId = 1;
  private nextDownstreamId = 1;

  private readonly toUpstream = new Map<RequestId, PendingUpstreamRequest>(); // upstreamId -> pending
  private readonly upstreamIdByDownstreamId = new Map<RequestId, RequestId>();
  private readonly upstreamIdByProgressToken = new Map<ProgressToken, RequestId>();
  private readonly toDownstream = new Map<RequestId, PendingDownstreamRequest>(); // downstreamId -> pending
  private readonly downstreamIdByUpstreamId = new Map<RequestId, RequestId>();
  /** Ids of upstream-originated requests already relayed (bounded), to drop replayed duplicates. */
  private readonly seenUpstreamRequestIds = new Set<RequestId>();

  get counts(): { toUpstream: number; toDownstream: number } {
    return { toUpstream: this.toUpstream.size, toDownstream: this.toDownstream.size };
  }

  /** Tracks a downstream request about to be forwarded; answers the id it gets upstream. */
  addUpstream(request: JSONRPCRequest): { upstreamId: number; pending: PendingUpstreamRequest } {
    const upstreamId = this.nextUpstreamId++;
    const progressToken = (request.params?._meta as { progressToken?: ProgressToken } | undefined)
      ?.progressToken;
    const pending: PendingUpstreamRequest = {
      downstreamId: request.id,
      method: request.method,
      params: request.params,
      progressToken,
      startedAt: Date.now(),
      requestBytes: byteLength(request),
    };
    this.toUpstream.set(upstreamId, pending);
    this.upstreamIdByDownstreamId.set(request.id, upstreamId);
    // notifications/progress carries only the token, not a request id: remember which request it
    // belongs to so progress can be sent on that request's SSE stream. The token itself is forwarded
    // unchanged (it is opaque and already unique per session on the downstream side).
    if (progressToken !== undefined) this.upstreamIdByProgressToken.set(progressToken, upstreamId);
    return { upstreamId, pending };
  }

  /** Tracks a request the relay itself sends upstream (answered to `pending.internal`). */
  addInternal(pending: PendingUpstreamRequest): number {
    const id = this.nextUpstreamId++;
    this.toUpstream.set(id, pending);
    return id;
  }

  upstream(upstreamId: RequestId | null | undefined): PendingUpstreamRequest | undefined {
    return upstreamId === undefined || upstreamId === null ? undefined : this.toUpstream.get(upstreamId);
  }

  /** The upstream id of a downstream request still in flight. */
  upstreamIdOf(downstreamId: RequestId | undefined): RequestId | undefined {
    return downstreamId === undefined ? undefined : this.upstreamIdByDownstreamId.get(downstreamId);
  }

  /** The request in flight a progress token belongs to. */
  byProgressToken(
    token: ProgressToken | undefined,
  ): { upstreamId: RequestId; pending: PendingUpstreamRequest } | undefined {
    const upstreamId = token === undefined ? undefined : this.upstreamIdByProgressToken.get(token);
    const pending = this.upstream(upstreamId);
    return pending ? { upstreamId: upstreamId!, pending } : undefined;
  }

  /** Forget a downstream->upstream request (answered, failed, timed out or cancelled). */
  settleUpstream(upstreamId: RequestId): void {
    const pending = this.toUpstream.get(upstreamId);
    if (!pending) return;
    if (pending.timer) clearTimeout(pending.timer);
    this.toUpstream.delete(upstreamId);
    if (this.upstreamIdByDownstreamId.get(pending.downstreamId) === upstreamId) {
      this.upstreamIdByDownstreamId.delete(pending.downstreamId);
    }
    if (
      pending.progressToken !== undefined &&
      this.upstreamIdByProgressToken.get(pending.progressToken) === upstreamId
    ) {
      this.upstreamIdByProgressToken.delete(pending.progressToken);
    }
  }

  /** Every downstream->upstream request in flight, with its upstream id. */
  upstreamEntries(): [RequestId, PendingUpstreamRequest][] {
    return [...this.toUpstream];
  }

  /**
   * A request id must never be reused within a session (MCP spec), so an upstream request
   * whose id was seen before is a replay: true for those; remembers the id otherwise.
   */
  isReplay(upstreamRequestId: RequestId): boolean {
    if (this.seenUpstreamRequestIds.has(upstreamRequestId)) return true;
    this.seenUpstreamRequestIds.add(upstreamRequestId);
    if (this.seenUpstreamRequestIds.size > RelayRequests.SEEN_IDS_LIMIT) {
      const [oldest] = this.seenUpstreamRequestIds;
      this.seenUpstreamRequestIds.delete(oldest!);
    }
    return false;
  }

  /** Tracks an upstream request about to be forwarded downstream; answers the id it gets there. */
  addDownstream(request: JSONRPCRequest, relatedRequestId: RequestId | undefined): number {
    const downstreamId = this.nextDownstreamId++;
    this.toDownstream.set(downstreamId, {
      upstreamId: request.id,
      method: request.method,
      params: request.params,
      relatedRequestId,
      startedAt: Date.now(),
      requestBytes: byteLength(request),
    });
    this.downstreamIdByUpstreamId.set(request.id, downstreamId);
    return downstreamId;
  }

  /** Removes and returns an upstream->downstream request by its downstream id. */
  takeDownstream(downstreamId: RequestId | null | undefined): PendingDownstreamRequest | undefined {
    if (downstreamId === undefined || downstreamId === null) return undefined;
    const pending = this.toDownstream.get(downstreamId);
    if (!pending) return undefined;
    this.toDownstream.delete(downstreamId);
    this.downstreamIdByUpstreamId.delete(pending.upstreamId);
    return pending;
  }

  /** The downstream id of an upstream request still waiting on the client. */
  downstreamIdOf(upstreamRequestId: RequestId | undefined): RequestId | undefined {
    return upstreamRequestId === undefined ? undefined : this.downstreamIdByUpstreamId.get(upstreamRequestId);
  }

  /** Upstream-originated requests still waiting on the client: nobody is left to receive answers. */
  clearDownstream(): void {
    this.toDownstream.clear();
    this.downstreamIdByUpstreamId.clear();
  }

  /** The downstream request of the only request in flight upstream, if exactly one is. */
  onlyDownstreamId(): RequestId | undefined {
    if (this.toUpstream.size !== 1) return undefined;
    const [only] = this.toUpstream.values();
    return only?.downstreamId;
  }
}
