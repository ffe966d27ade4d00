// Types of timetrail-client (index.js): the HTTP API v1 of timetrail (docs/http-api.md).
// Answers keep the server's field names (snake_case); options are camelCase.

/** A time: an RFC 3339 string, a plain date (`2024-06-01`), a Date, or microseconds since the
 * epoch. */
export type Time = string | number | Date;
/** An expected revision: `"any"`, `"no_stream"`, `"exists"` or the revision number. */
export type ExpectedRevision = 'any' | 'no_stream' | 'exists' | number;
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Metadata = { actor?: string; reason?: string; [key: string]: Json | undefined };

/** An event to append (newEvent makes one). */
export interface NewEvent {
  id?: string;
  type: string;
  data?: Json;
  metadata?: Metadata;
  valid_from?: string;
}

/** A stored event. */
export interface Event {
  stream: string;
  revision: number;
  position: number;
  id: string;
  type: string;
  data: Json;
  metadata?: Metadata;
  recorded_at: string;
  valid_from: string;
  tx: number;
  hash: string;
  [key: string]: unknown;
}

export interface AppendResult {
  stream: string;
  first_revision: number;
  revision: number;
  first_position: number;
  position: number;
  tx: number;
  recorded_at: string;
  idempotent_replay: boolean;
}

export interface StreamAppend {
  stream: string;
  expected_revision: ExpectedRevision;
  events: NewEvent[];
}

export interface TransactionResult {
  tx: number;
  first_position: number;
  position: number;
  recorded_at: string;
  idempotent_replay: boolean;
  streams: Array<{ stream: string; first_revision: number; revision: number;
    first_position: number; position: number }>;
}

export interface BatchResult {
  results: Array<{ status: number; committed?: TransactionResult; error?: ErrorBody }>;
  /** The index of the transaction that failed (everything before it is stored), or null. */
  failed: number | null;
}

export interface StreamPage {
  events: Event[];
  /** The revision to pass as fromRevision for the next page, null at the end. */
  next: number | null;
}

export interface StreamInfo {
  stream: string;
  exists: boolean;
  revision: number | null;
  position: number | null;
  deleted: boolean;
}

export interface LogPage {
  events: Event[];
  next: number;
  head: number;
}

export interface EntityState {
  stream: string;
  exists: boolean;
  state: Json;
  revision: number | null;
  position: number | null;
  recorded_at: string | null;
  valid_from: string | null;
  metadata: Metadata | null;
}

/** One end of a history interval. */
export interface HistoryPoint {
  revision: number;
  position: number;
  recorded_at: string;
  valid_from?: string;
  [key: string]: unknown;
}

export interface HistoryInterval {
  value: Json;
  exists: boolean;
  from: HistoryPoint;
  /** null for the interval that lasts until now. */
  to: HistoryPoint | null;
  metadata: Metadata | null;
}

export interface HistoryPage {
  stream: string;
  path: string;
  intervals: HistoryInterval[];
  cursor: string | null;
}

export interface PatchOperation {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  value?: Json;
  from?: string;
}

export interface DiffSide {
  state: Json;
  exists?: boolean;
  revision?: number | null;
  position?: number | null;
  recorded_at?: string | null;
  [key: string]: unknown;
}

export interface Diff {
  stream: string;
  from: DiffSide;
  to: DiffSide;
  patch: PatchOperation[];
  /** With `events: true`: a page of the events in between. */
  events?: Event[];
  cursor?: string | null;
}

export interface ActivityPage {
  events: Event[];
  cursor: string | null;
}

export interface IntegrityHead {
  position: number;
  hash: string;
}

export interface VerifyResult {
  ok: boolean;
  events_checked: number;
  first_bad_position: number | null;
  message: string;
  head: IntegrityHead;
}

export interface Consumer {
  name: string;
  position: number;
}

export interface Health {
  status: 'ok';
  position: number;
}

/** The JSON body of an error response. */
export interface ErrorBody {
  error: string;
  message: string;
  [key: string]: unknown;
}

export class TimetrailError extends Error {
  constructor(status: number | null, code: string, message: string, body?: Record<string, unknown>);
  /** The HTTP status; null when the server could not be reached. */
  status: number | null;
  /** The API's error code: not_found, invalid_argument, wrong_expected_revision, timeout... */
  code: string;
  message: string;
  body: Record<string, unknown>;
}

export class WrongExpectedRevision extends TimetrailError {
  readonly stream: string | null;
  /** Where the stream is; null when it has no events. */
  readonly actualRevision: number | null;
}

export class NotFound extends TimetrailError {}

export class ConnectionFailed extends TimetrailError {
  constructor(message: string);
  status: null;
}

export function errorFromResponse(status: number, body: unknown): TimetrailError;
export function formatTime(value: Time): string;
export function parseTime(value: string): Date;
export function newEvent(type: string, data?: Json,
  options?: { metadata?: Metadata; id?: string; valid_from?: Time }): NewEvent;
export function streamAppend(stream: string, events: NewEvent[],
  expectedRevision?: ExpectedRevision): StreamAppend;

export interface ClientOptions {
  /** An API token, sent as `Authorization: Bearer`. */
  token?: string;
  /** The time limit of each request in milliseconds (default 30000). */
  timeout?: number;
}

/** Options of every read: wait until `minPosition` (a position a write answered) is readable,
 * at most `timeoutMs` (the server's default is 5000). */
export interface ReadOptions {
  minPosition?: number;
  timeoutMs?: number;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | string[] | null | undefined>;
  body?: unknown;
  timeout?: number;
}

export interface SubscribeOptions {
  /** The first position (default 1). */
  fromPosition?: number;
  streamPrefix?: string;
  types?: string[];
  /** Start after this named consumer's acknowledged position. */
  consumer?: string;
  /** Reconnect after a dropped connection (default true). */
  reconnect?: boolean;
  /** Milliseconds before the first reconnect attempt, doubling up to maxRetryDelay. */
  retryDelay?: number;
  maxRetryDelay?: number;
  /** Milliseconds without a connection before the iteration fails with ConnectionFailed
   * (default 60000; null: never). */
  giveUpAfter?: number | null;
  /** Milliseconds without data before a connection counts as dropped (default 60000; keep it
   * above the server's keepalive interval, 15 s by default). */
  readTimeout?: number;
}

export class Subscription implements AsyncIterable<Event> {
  /** The position of the last event delivered, null before the first. */
  position: number | null;
  /** How many connections were opened (1 plus the reconnects). */
  connections: number;
  /** Events the server sent again after a reconnect, which were not delivered twice. */
  duplicatesSkipped: number;
  readonly closed: boolean;
  reconnect: boolean;
  retryDelay: number;
  maxRetryDelay: number;
  giveUpAfter: number | null;
  readTimeout: number;
  /** Ends the subscription; an iteration waiting for events finishes. */
  close(): void;
  [Symbol.asyncIterator](): AsyncGenerator<Event, void, undefined>;
}

export class Client {
  constructor(baseUrl: string, options?: ClientOptions);
  readonly baseUrl: string;
  token: string | null;
  timeout: number;

  /** Sends one request and resolves to the parsed JSON answer. */
  request<T = unknown>(method: string, path: string, options?: RequestOptions): Promise<T>;

  append(stream: string, events: NewEvent[],
    options?: { expectedRevision?: ExpectedRevision }): Promise<AppendResult>;
  transaction(appends: StreamAppend[]): Promise<TransactionResult>;
  transactionBatch(transactions: StreamAppend[][]): Promise<BatchResult>;
  revert(stream: string, options?: { toRevision?: number; toTime?: Time;
    expectedRevision?: ExpectedRevision; actor?: string; reason?: string }): Promise<AppendResult>;

  readStream(stream: string, options?: ReadOptions & { fromRevision?: number; backward?: boolean;
    limit?: number }): Promise<StreamPage>;
  iterStream(stream: string, options?: { fromRevision?: number; backward?: boolean;
    pageSize?: number; minPosition?: number }): AsyncGenerator<Event, void, undefined>;
  streamInfo(stream: string, options?: ReadOptions): Promise<StreamInfo>;
  readLog(options?: ReadOptions & { fromPosition?: number; limit?: number; streamPrefix?: string;
    types?: string[] }): Promise<LogPage>;
  iterLog(options?: { fromPosition?: number; streamPrefix?: string; types?: string[];
    pageSize?: number; minPosition?: number }): AsyncGenerator<Event, void, undefined>;
  getEvent(eventId: string, options?: ReadOptions): Promise<Event>;

  entity(stream: string, options?: ReadOptions & { atRevision?: number; atPosition?: number;
    asOf?: Time; validAt?: Time; knownAt?: Time }): Promise<EntityState>;
  history(stream: string, path: string, options?: ReadOptions & { validTime?: boolean;
    knownAt?: Time; limit?: number; cursor?: string | null }): Promise<HistoryPage>;
  iterHistory(stream: string, path: string, options?: { validTime?: boolean; knownAt?: Time;
    pageSize?: number; minPosition?: number }): AsyncGenerator<HistoryInterval, void, undefined>;
  diff(stream: string, options?: ReadOptions & { fromRevision?: number; fromTime?: Time;
    toRevision?: number; toTime?: Time; events?: boolean; limit?: number;
    cursor?: string | null }): Promise<Diff>;
  activity(options?: ActivityOptions): Promise<ActivityPage>;
  iterActivity(options?: Omit<ActivityOptions, 'limit' | 'cursor'> & { pageSize?: number }):
    AsyncGenerator<Event, void, undefined>;

  integrityHead(): Promise<IntegrityHead>;
  verify(): Promise<VerifyResult>;
  ack(consumer: string, position: number): Promise<Consumer>;
  consumer(consumer: string): Promise<Consumer>;
  health(): Promise<Health>;

  subscribe(options?: SubscribeOptions): Subscription;
}

export interface ActivityOptions extends ReadOptions {
  actor?: string;
  streamPrefix?: string;
  types?: string[];
  since?: Time;
  until?: Time;
  limit?: number;
  cursor?: string | null;
}

// Who and why for changes captured from PostgreSQL (context.js; docs/capture.md section 4).

/** A request's context: its members go into the metadata of the changes it makes. */
export type Context = {
  actor?: string; reason?: string; request_id?: string; correlation_id?: string;
  [key: string]: Json | undefined;
};

/** Runs fn with ctx merged over the current context (inner keys win). */
export function withContext<T>(ctx: Context, fn: () => T): T;
/** The active context (a copy), or undefined outside a context. */
export function currentContext(): Context | undefined;
/** The context as the comment's JSON ('/', '%', '?', '$' escaped), '' when it has no member. */
export function encodeContext(ctx: Context): string;
/** The statement with a trailing `/*timetrail {JSON}*\/` comment when it can write and a
 * context is active (or ctx is given); otherwise unchanged. */
export function annotate(sql: string, ctx?: Context): string;

/** The request and response parts the middleware uses (Express, Connect, node:http). */
export interface ContextRequest { headers?: Record<string, string | string[] | undefined> }
export interface ContextResponse { setHeader?(name: string, value: string): unknown; headersSent?: boolean }
/** An Express-style middleware running the rest of the request in a context with `request_id`
 * (X-Request-Id or a new UUID) and what fromRequest returns. */
export function contextMiddleware<Req extends ContextRequest = ContextRequest>(
  fromRequest?: (req: Req) => Context | undefined | Promise<Context | undefined>,
): (req: Req, res: ContextResponse, next: (err?: unknown) => void) => void;

/** A node-postgres Pool or Client (structurally, so the package needs no dependency on pg). */
export interface Queryable { query(...args: any[]): any }
/** Makes every write statement through a node-postgres Pool (and the clients it hands out) or
 * Client carry the active context; named prepared statements that get a comment are sent unnamed.
 * Returns its argument. */
export function instrumentPg<T extends Queryable>(poolOrClient: T): T;
