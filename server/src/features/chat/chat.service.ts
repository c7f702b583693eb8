import type {
  ChatMessageView,
  ChatStatusView,
  ThreadDetailView,
  ThreadView,
  ToolCallView,
} from '@gateway/shared';
import { AppError, conflict, forbidden, notFound } from '../../platform/http/errors.ts';
import type { Logger } from '../../platform/logging/logger.ts';
import { inRootSpan, setActiveAttributes } from '../../platform/telemetry/tracing.ts';
import type { AuditEventInput, AuditSink } from '../../core/audit.ts';
import { canReadAudit, type Principal } from '../../core/principal.ts';
import type { CredentialsService, RefreshLock } from '../credentials/index.ts';
import type { Gateway } from '../gateway/index.ts';
import type { RegistryService } from '../registry/index.ts';
import { DEFAULT_SYSTEM_PROMPT, runTurn, type ChatModelSettings, type TurnOutcome } from './chat.agent.ts';
import type { ChatRepository, MessageRow, ThreadRow } from './chat.repository.ts';

const DEFAULT_TITLE = 'New thread';
const AUTO_TITLE_LENGTH = 60;

/** Where the service sends live events: the socket adapter puts them in the thread's room. */
export interface ChatEvents {
  message(threadId: string, message: ChatMessageView): void;
  delta(threadId: string, text: string): void;
  toolCall(threadId: string, call: ToolCallView): void;
  runState(threadId: string, running: boolean): void;
  thread(threadId: string, thread: ThreadView | null): void;
}

/** The gateway's rate limits, as they apply to the agent's tool calls (RateLimitService). */
export interface ChatLimits {
  checkMcp(
    subject: { ip: string | undefined; principal: Principal; method: string; path: string },
    target: { slug: string | undefined; toolCalls: readonly { slug: string; tool: string }[] },
  ): Promise<{ message: string } | undefined>;
}

export interface ChatSettings {
  model: ChatModelSettings | undefined;
  maxSteps: number;
  approvalTimeoutMs: number;
  turnTimeoutMs: number;
  systemPrompt: string | undefined;
}

interface Run {
  userId: string;
  abort: AbortController;
  approvals: Map<string, (approved: boolean) => void>;
}

function toThreadView(row: ThreadRow, running: boolean): ThreadView {
  return {
    id: row.id,
    title: row.title,
    userId: row.userId,
    userName: row.userName,
    running,
    messageCount: Number(row.messageCount),
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

function toMessageView(row: MessageRow): ChatMessageView {
  return {
    id: row.id,
    threadId: row.threadId,
    role: row.role,
    text: row.text,
    toolCalls: row.toolCalls,
    error: row.error,
    createdAt: row.createdAt.toISOString(),
  };
}

/**
 * Threads, messages and the agent's turns. A turn runs in the process that received the
 * message, under a lock per thread (one turn at a time, across replicas); its tools go
 * through an in-process gateway session with the thread's credential scope, so the gateway's
 * access rules, credentials, rate of audit and timeouts apply exactly as for external clients.
 * Every step is stored as it ends: a crash mid-turn loses at most the step in progress.
 */
export class ChatService {
  readonly #repo: ChatRepository;
  readonly #gateway: Gateway;
  readonly #registry: RegistryService;
  readonly #credentials: CredentialsService;
  readonly #audit: AuditSink;
  readonly #logger: Logger;
  readonly #lock: RefreshLock;
  readonly #settings: ChatSettings;
  readonly #runs = new Map<string, Run>();
  readonly #turns = new Set<Promise<unknown>>();
  #events: ChatEvents | undefined;
  #limits: ChatLimits | undefined;

  constructor(deps: {
    repo: ChatRepository;
    gateway: Gateway;
    registry: RegistryService;
    credentials: CredentialsService;
    audit: AuditSink;
    logger: Logger;
    lock: RefreshLock;
    settings: ChatSettings;
  }) {
    this.#repo = deps.repo;
    this.#gateway = deps.gateway;
    this.#registry = deps.registry;
    this.#credentials = deps.credentials;
    this.#audit = deps.audit;
    this.#logger = deps.logger.child({ feature: 'chat' });
    this.#lock = deps.lock;
    this.#settings = deps.settings;
  }

  /** Set once the socket server exists (it needs the HTTP server, built after the services). */
  setEvents(events: ChatEvents): void {
    this.#events = events;
  }

  /** Set by the server process: the agent's tool calls count against the same limits as MCP clients'. */
  setLimits(limits: ChatLimits): void {
    this.#limits = limits;
  }

  status(): ChatStatusView {
    return { enabled: Boolean(this.#settings.model), model: this.#settings.model?.name ?? null };
  }

  // ----- threads -----

  async createThread(principal: Principal, title: string | undefined): Promise<ThreadView> {
    const id = await this.#repo.insertThread(principal.userId, title ?? DEFAULT_TITLE);
    const row = (await this.#repo.findThread(id))!;
    this.#record(principal, id, { action: 'thread.create' });
    return toThreadView(row, false);
  }

  async listOwn(principal: Principal): Promise<ThreadView[]> {
    const rows = await this.#repo.listThreads({ userId: principal.userId, limit: 500 });
    return rows.map((r) => toThreadView(r, this.#runs.has(r.id)));
  }

  /** Every user's threads (admins and auditors review them). */
  async listAll(
    principal: Principal,
    filter: { userId?: string | undefined; limit: number },
  ): Promise<ThreadView[]> {
    if (!canReadAudit(principal)) throw forbidden('only admins and auditors may list every thread');
    const rows = await this.#repo.listThreads(filter);
    return rows.map((r) => toThreadView(r, this.#runs.has(r.id)));
  }

  /** The owner's thread; someone else's is "not found" (its existence is not revealed). */
  async #own(principal: Principal, threadId: string): Promise<ThreadRow> {
    const row = await this.#repo.findThread(threadId);
    if (!row || row.userId !== principal.userId) throw notFound('thread');
    return row;
  }

  /** A thread its owner, or an admin or auditor, may read. */
  async #readable(principal: Principal, threadId: string): Promise<ThreadRow> {
    const row = await this.#repo.findThread(threadId);
    if (!row || (row.userId !== principal.userId && !canReadAudit(principal))) throw notFound('thread');
    return row;
  }

  /** Throws unless the thread exists and is the caller's (for thread-scoped credentials). */
  async requireOwnThread(principal: Principal, threadId: string): Promise<void> {
    await this.#own(principal, threadId);
  }

  /** Checks that the caller may follow a thread's live events (owner, admin, auditor). */
  async requireReadable(principal: Principal, threadId: string): Promise<void> {
    await this.#readable(principal, threadId);
  }

  async getThread(principal: Principal, threadId: string): Promise<ThreadDetailView> {
    const row = await this.#readable(principal, threadId);
    if (row.userId !== principal.userId) {
      // Reading another user's conversation is itself on record.
      this.#record(principal, threadId, { action: 'thread.review', details: { owner: row.userId } });
    }
    const messages = await this.#repo.listMessages(threadId);
    return { ...toThreadView(row, this.#runs.has(threadId)), messages: messages.map(toMessageView) };
  }

  async renameThread(principal: Principal, threadId: string, title: string): Promise<ThreadView> {
    await this.#own(principal, threadId);
    await this.#repo.renameThread(threadId, title);
    const view = toThreadView((await this.#repo.findThread(threadId))!, this.#runs.has(threadId));
    this.#events?.thread(threadId, view);
    return view;
  }

  /** Deletes the thread, its messages and its own credentials; stops a turn in progress. */
  async deleteThread(principal: Principal, threadId: string): Promise<void> {
    await this.#own(principal, threadId);
    this.#runs.get(threadId)?.abort.abort(new Error('thread deleted'));
    await this.#credentials.deleteForThread(principal.userId, threadId);
    if (!(await this.#repo.deleteThread(threadId))) throw notFound('thread');
    this.#record(principal, threadId, { action: 'thread.delete' });
    this.#events?.thread(threadId, null);
  }

  // ----- turns -----

  /**
   * Stores the user's message and starts the agent's turn; answers once the message is
   * stored (the turn streams its progress as events). One turn per thread at a time.
   */
  async send(principal: Principal, threadId: string, text: string): Promise<ChatMessageView> {
    const model = this.#settings.model;
    if (!model) {
      throw new AppError(
        'not_ready',
        'no language model is configured: an administrator sets OPENAI_API_KEY (or OPENAI_BASE_URL)',
      );
    }
    const thread = await this.#own(principal, threadId);
    if (this.#runs.has(threadId))
      throw conflict('the agent is still answering in this thread: wait, or stop it');
    const run: Run = { userId: principal.userId, abort: new AbortController(), approvals: new Map() };
    this.#runs.set(threadId, run);
    return new Promise<ChatMessageView>((resolve, reject) => {
      // Held a little longer than a turn may last, so a replica that died frees it.
      const lease = this.#settings.turnTimeoutMs + 60_000;
      let stored = false;
      const turn = this.#lock
        .run(`chat-turn:${threadId}`, lease, async () => {
          const message = toMessageView(await this.#repo.insertMessage({ threadId, role: 'user', text }));
          stored = true;
          resolve(message);
          this.#events?.message(threadId, message);
          if (thread.title === DEFAULT_TITLE) {
            // A title is a nicety: the turn runs without it.
            await this.#autoTitle(thread, text).catch((err: unknown) =>
              this.#logger.warn({ err, threadId }, 'could not title the thread'),
            );
          }
          // One trace per turn: the model's steps and every tool call through the gateway.
          await inRootSpan('chat.turn', { 'user.id': principal.userId, 'mcp_gateway.thread': threadId }, () =>
            this.#turn(principal, thread, model, run),
          );
        })
        .then(
          (r) => {
            if (!r.ran) reject(conflict('the agent is still answering in this thread: wait, or stop it'));
          },
          (err: unknown) => {
            // Before the message was stored, the caller hears of it; after, only the log can.
            if (stored) this.#logger.error({ err, threadId }, 'chat turn failed');
            else reject(err instanceof Error ? err : new Error(String(err)));
          },
        )
        .finally(() => {
          this.#runs.delete(threadId);
          this.#turns.delete(turn);
        });
      this.#turns.add(turn);
    });
  }

  async #autoTitle(thread: ThreadRow, text: string) {
    const oneLine = text.replace(/\s+/g, ' ').trim();
    const title =
      oneLine.length > AUTO_TITLE_LENGTH ? `${oneLine.slice(0, AUTO_TITLE_LENGTH - 1)}…` : oneLine;
    await this.#repo.renameThread(thread.id, title);
    const row = await this.#repo.findThread(thread.id);
    if (row) this.#events?.thread(thread.id, toThreadView(row, true));
  }

  async #turn(principal: Principal, thread: ThreadRow, model: ChatModelSettings, run: Run): Promise<void> {
    const threadId = thread.id;
    const started = Date.now();
    this.#events?.runState(threadId, true);
    const signal = AbortSignal.any([run.abort.signal, AbortSignal.timeout(this.#settings.turnTimeoutMs)]);
    let outcome: TurnOutcome;
    let steps = 0;
    let toolCalls = 0;
    try {
      const history = await this.#repo.listMessages(threadId);
      const sensitive = await this.#sensitiveTools();
      const { client: mcp, redact } = await this.#gateway.connectInProcess(
        { principal, threadId },
        { name: 'chat-agent', version: '1' },
      );
      try {
        outcome = await runTurn({
          model,
          system: this.#settings.systemPrompt ?? DEFAULT_SYSTEM_PROMPT,
          maxSteps: this.#settings.maxSteps,
          history,
          mcp,
          redact,
          sensitive: (name) => sensitive.has(name),
          approve: (call) => this.#waitForApproval(run, call, signal),
          admit: async (call) => {
            const refused = await this.#limits?.checkMcp(
              { ip: undefined, principal, method: 'tools/call', path: `chat:${threadId}` },
              { slug: undefined, toolCalls: [{ slug: call.server, tool: call.tool }] },
            );
            return refused?.message;
          },
          signal,
          listener: {
            onDelta: (text) => this.#events?.delta(threadId, text),
            onToolCall: (call) => this.#events?.toolCall(threadId, call),
            onStep: async (step) => {
              steps++;
              toolCalls += step.toolCalls.length;
              const row = await this.#repo.insertMessage({ threadId, role: 'assistant', ...step });
              this.#events?.message(threadId, toMessageView(row));
            },
          },
        });
      } finally {
        await mcp.close().catch(() => {});
      }
    } catch (err) {
      this.#logger.error({ err, threadId }, 'chat turn failed');
      outcome = { status: 'error', error: 'The agent could not run this turn (see the server log).' };
    }
    if (outcome.status === 'error' || outcome.status === 'cancelled') {
      const error = outcome.status === 'error' ? outcome.error : 'Stopped.';
      const row = await this.#repo
        .insertMessage({ threadId, role: 'assistant', text: '', error })
        .catch(() => undefined);
      if (row) this.#events?.message(threadId, toMessageView(row));
    }
    setActiveAttributes({ 'mcp_gateway.outcome': outcome.status, 'mcp_gateway.tool_calls': toolCalls });
    this.#record(principal, threadId, {
      action: 'chat.turn',
      status: outcome.status === 'error' ? 'error' : 'ok',
      latencyMs: Date.now() - started,
      error: outcome.status === 'error' ? outcome.error : null,
      details: { model: model.name, outcome: outcome.status, steps, toolCalls },
    });
    this.#events?.runState(threadId, false);
  }

  /** A `chat` audit event by the caller about one thread (status `ok` unless given). */
  #record(
    principal: Principal,
    threadId: string,
    event: Pick<AuditEventInput, 'action'> &
      Partial<Omit<AuditEventInput, 'category' | 'userId' | 'threadId'>>,
  ) {
    this.#audit.record({
      category: 'chat',
      status: 'ok',
      userId: principal.userId,
      apiKeyId: principal.apiKeyId ?? null,
      threadId,
      ...event,
    });
  }

  /** `{server}__{tool}` names of every tool a server marks sensitive. */
  async #sensitiveTools(): Promise<Set<string>> {
    const names = new Set<string>();
    for (const server of await this.#registry.list()) {
      for (const tool of server.sensitiveTools) names.add(`${server.slug}__${tool}`);
    }
    return names;
  }

  #waitForApproval(run: Run, call: ToolCallView, signal: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (approved: boolean) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        run.approvals.delete(call.id);
        resolve(approved);
      };
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(false), this.#settings.approvalTimeoutMs);
      signal.addEventListener('abort', onAbort, { once: true });
      run.approvals.set(call.id, done);
    });
  }

  /**
   * The owner's answer to a sensitive tool call. Returns false when no turn in this process
   * waits for it (the socket adapter then asks the other replicas).
   */
  approve(principal: Principal, threadId: string, callId: string, approved: boolean): boolean {
    const run = this.#runs.get(threadId);
    if (!run) return false;
    if (run.userId !== principal.userId) throw notFound('tool call');
    const waiting = run.approvals.get(callId);
    if (!waiting) return false;
    this.#record(principal, threadId, {
      action: approved ? 'tool.approve' : 'tool.deny',
      details: { callId },
    });
    waiting(approved);
    return true;
  }

  /** Stops the turn in progress. Returns false when none runs in this process. */
  cancel(principal: Principal, threadId: string): boolean {
    const run = this.#runs.get(threadId);
    if (!run) return false;
    if (run.userId !== principal.userId) throw notFound('thread');
    run.abort.abort(new Error('stopped by the user'));
    return true;
  }

  /** Shutdown: stops every turn and waits (bounded) for them to store what they have. */
  async stop(timeoutMs: number): Promise<void> {
    for (const run of this.#runs.values()) run.abort.abort(new Error('server shutting down'));
    await Promise.race([
      Promise.allSettled([...this.#turns]),
      new Promise((r) => setTimeout(r, timeoutMs).unref()),
    ]);
  }
}
