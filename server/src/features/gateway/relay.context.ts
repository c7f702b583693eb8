import type { JSONRPCErrorResponse, JSONRPCResultResponse } from '@modelcontextprotocol/sdk/types.js';
import type {
  DownstreamTransport,
  RelayOptions,
  SettledRequest,
  UpstreamTransport,
} from './relay.options.ts';
import { RelayOutbox } from './relay.outbox.ts';
import { RelayRequests, type PendingUpstreamRequest } from './relay.requests.ts';

/** The hooks of RelayOptions that have no default. */
type OptionalHooks =
  | 'trace'
  | 'log'
  | 'onShutdown'
  | 'authorize'
  | 'onSettled'
  | 'onNotification'
  | 'transformResult'
  | 'describeFailure'
  | 'tracer';

/** RelayOptions with every default filled in. */
export type ResolvedRelayOptions = Required<Omit<RelayOptions, OptionalHooks>> &
  Pick<RelayOptions, OptionalHooks>;

export type RelayState = 'new' | 'initializing' | 'ready' | 'upstream-down' | 'closing' | 'closed';

/**
 * What the parts of one McpRelay share: its options, its requests in flight, its send queues,
 * the upstream of the moment and where the session stands. McpRelay handles the
 * downstream->upstream direction, RelayFromUpstream the other one, RelayLifecycle timeouts
 * and shutdown; each reads and changes this one object.
 */
export class RelayContext {
  readonly opts: ResolvedRelayOptions;
  readonly downstream: DownstreamTransport;
  upstream?: UpstreamTransport;

  readonly requests = new RelayRequests();
  readonly outbox: RelayOutbox;

  state: RelayState = 'new';

  constructor(options: RelayOptions) {
    this.opts = {
      requestTimeoutMs: 60_000,
      initializeTimeoutMs: 30_000,
      resetTimeoutOnProgress: true,
      trackStandaloneStream: false,
      standaloneBufferLimit: 1000,
      closeDownstreamOnUpstreamClose: true,
      ...options,
    };
    this.downstream = options.downstream;
    this.outbox = new RelayOutbox({
      downstream: options.downstream,
      upstream: () => this.upstream,
      upstreamName: this.opts.upstreamName,
      trackStandaloneStream: this.opts.trackStandaloneStream,
      standaloneBufferLimit: this.opts.standaloneBufferLimit,
      trace: this.opts.trace,
      log: this.opts.log,
    });
  }

  /** Reports how a downstream->upstream request ended (onSettled). */
  report(
    pending: PendingUpstreamRequest,
    outcome: SettledRequest['outcome'],
    response?: JSONRPCResultResponse | JSONRPCErrorResponse,
    error?: string,
  ): void {
    const event: SettledRequest = {
      direction: 'client->upstream',
      method: pending.method,
      params: pending.params,
      latencyMs: Date.now() - pending.startedAt,
      requestBytes: pending.requestBytes,
      outcome,
      ...(response ? { response } : {}),
      ...(error ? { error } : {}),
    };
    if (pending.trace) pending.trace.settled(event, () => this.opts.onSettled?.(event));
    else this.opts.onSettled?.(event);
  }
}
