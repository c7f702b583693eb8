import {
  type JSONRPCErrorResponse,
  type JSONRPCMessage,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import { isErrorResponse, isResult } from './gateway.messages.ts';
import type { DownstreamTransport, TraceEvent, UpstreamTransport } from './relay.options.ts';

export function errorResponse(
  id: RequestId,
  code: number,
  message: string,
  data?: unknown,
): JSONRPCErrorResponse {
  return { jsonrpc: '2.0', id, error: data === undefined ? { code, message } : { code, message, data } };
}

export function byteLength(message: unknown): number {
  return Buffer.byteLength(JSON.stringify(message) ?? '');
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The two sides an outbox sends to, and how it reports what it does. */
export interface RelayOutboxSide {
  downstream: DownstreamTransport;
  /** The upstream of the moment (replaced when it restarts). */
  upstream: () => UpstreamTransport | undefined;
  upstreamName: string;
  /** See RelayOptions.trackStandaloneStream. */
  trackStandaloneStream: boolean;
  standaloneBufferLimit: number;
  trace?: ((event: TraceEvent) => void) | undefined;
  log?: ((message: string, error?: unknown) => void) | undefined;
}

/**
 * The relay's sending, one ordered queue per direction. Transport.send() is async; for stdio
 * and for the SDK server transport it is effectively in-order anyway, but the HTTP client
 * transport does one POST per message, and e.g. a `notifications/cancelled` must not overtake
 * the request it cancels. Serializing also guarantees the upstream session id (learned from
 * the initialize response headers) is known before the next POST goes out.
 */
export class RelayOutbox {
  private upChain: Promise<void> = Promise.resolve();
  private downChain: Promise<void> = Promise.resolve();
  private standaloneOpen: boolean;
  private standaloneBuffer: JSONRPCMessage[] = [];
  private readonly side: RelayOutboxSide;

  constructor(side: RelayOutboxSide) {
    this.side = side;
    this.standaloneOpen = !side.trackStandaloneStream;
  }

  /**
   * Runs `task` in the upstream queue: messages queued after it wait for it, and are not
   * sent (their onError is told) when it fails.
   */
  queueUpstreamTask(task: () => Promise<void>): void {
    this.upChain = this.upChain.then(task);
  }

  toUpstream(message: JSONRPCMessage, onError?: (error: unknown) => void): void {
    this.upChain = this.upChain
      .then(async () => {
        const upstream = this.side.upstream();
        if (!upstream) throw new Error('upstream not started');
        this.side.trace?.({ kind: 'forward', direction: 'down->up', message });
        await upstream.send(message);
      })
      .catch((error) => {
        if (onError) onError(error);
        else this.side.log?.(`dropping message for upstream "${this.side.upstreamName}"`, error);
      });
  }

  toDownstream(
    message: JSONRPCMessage,
    relatedRequestId: RequestId | undefined,
    onError?: (error: unknown) => void,
  ): void {
    const isResponse = isResult(message) || isErrorResponse(message);
    if (!isResponse && relatedRequestId === undefined && !this.standaloneOpen) {
      this.standaloneBuffer.push(message);
      if (this.standaloneBuffer.length > this.side.standaloneBufferLimit) {
        const dropped = this.standaloneBuffer.shift()!;
        this.drop('up->down', dropped, 'standalone buffer full');
      }
      return;
    }
    this.downChain = this.downChain
      .then(async () => {
        this.side.trace?.({ kind: 'forward', direction: 'up->down', message, relatedRequestId });
        await this.side.downstream.send(
          message,
          relatedRequestId === undefined ? undefined : { relatedRequestId },
        );
      })
      .catch((error) => {
        if (onError) onError(error);
        else this.side.log?.('could not deliver message downstream', error);
      });
  }

  /** Answers a downstream request with an error the relay made up itself. */
  replyDownstreamError(id: RequestId, code: number, message: string, data?: unknown): void {
    const response = errorResponse(id, code, message, data);
    this.side.trace?.({ kind: 'synthesized', direction: 'up->down', message: response, reason: message });
    this.toDownstream(response, undefined);
  }

  /** Records (for tracing) a message the relay deliberately does not forward, and why. */
  drop(direction: 'down->up' | 'up->down', message: JSONRPCMessage, reason: string): void {
    this.side.trace?.({ kind: 'drop', direction, message, reason });
  }

  /** The downstream GET SSE stream is now registered in the server transport: send what waited. */
  standaloneStreamOpened(): void {
    this.standaloneOpen = true;
    const buffered = this.standaloneBuffer;
    this.standaloneBuffer = [];
    for (const message of buffered) this.toDownstream(message, undefined);
  }

  standaloneStreamClosed(): void {
    if (this.side.trackStandaloneStream) this.standaloneOpen = false;
  }

  /** Forgets messages waiting for a standalone stream (shutdown). */
  clearStandalone(): void {
    this.standaloneBuffer = [];
  }

  /** Resolves when everything queued downstream so far was sent (or failed). */
  downstreamDrained(): Promise<void> {
    return this.downChain;
  }
}
