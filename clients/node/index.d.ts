// SPDX-License-Identifier: MIT
// Types of the ferry client for Node.js (lib/index.js).
/// <reference types="node" />
import { EventEmitter } from 'events';

export type Bytes = Buffer | Uint8Array | string;

/** The protocol version sent in HELLO. */
export const PROTOCOL_VERSION: number;

export interface ConnectionOptions {
  /** "host:port", "[v6]:port" or "unix:/path"; default $FERRY_ADDR, else "127.0.0.1:7700". */
  addr?: string;
  /** Access token sent in HELLO; default $FERRY_TOKEN. */
  token?: string;
  /** Name shown by `ferry services`; default "node-PID". */
  name?: string;
  /** Interval of our idle PINGs, announced to ferryd (0 = none); default 2500. */
  heartbeatMs?: number;
  /** TCP connect plus HELLO; default 2000. */
  connectTimeoutMs?: number;
  /** First reconnect delay; default 50. */
  reconnectMinMs?: number;
  /** Reconnect backoff cap; default 2000. */
  reconnectMaxMs?: number;
  /** Largest frame body accepted from ferryd (announced in HELLO v2); default 16 MiB. */
  maxFrame?: number;
}

export interface ClientOptions extends ConnectionOptions {
  /** Bytes of calls that may wait to be written before calls reject with OverloadedError; default 32 MiB. */
  maxQueuedBytes?: number;
}

export interface CallOptions {
  /** Time allowed in ms; 0 or absent = ferryd's default_deadline_ms. */
  deadlineMs?: number;
  /** Routing key (0..1024 bytes). */
  key?: Bytes;
  /** Safe to run twice: ferryd may retry it on another worker. */
  idempotent?: boolean;
  /** Aborting it sends CANCEL and rejects the call with CancelledError (name "AbortError"). */
  signal?: AbortSignal;
}

/** What ferryd said in HELLO_OK. */
export interface ServerInfo {
  version: number;
  name: string;
  heartbeatMs: number;
  maxFrame: number;
  maxDeadlineMs?: number;
  defaultDeadlineMs?: number;
}

export class Client extends EventEmitter {
  constructor(opts?: ClientOptions);
  readonly addr: string;
  /** How many times a connection was made (HELLO_OK received). */
  readonly connects: number;
  /** Calls not yet answered. */
  readonly pending: number;
  readonly connected: boolean;
  /** The last HELLO_OK, or null before the first. */
  readonly server: ServerInfo | null;
  connect(): Promise<void>;
  call(service: string, payload?: Bytes | null, opts?: CallOptions): Promise<Buffer>;
  close(): Promise<void>;
  /** ferry.cache helpers (docs/services.md). */
  readonly cache: Cache;
  /** ferry.kv helpers. */
  readonly kv: Kv;
  /** ferry.id helpers. */
  readonly id: Id;
  /** ferry.queue helpers (docs/queues.md). */
  readonly queue: Queue;
  /** ferry.topic helpers (docs/topics.md). */
  readonly topic: Topic;
  /**
   * This node's view of its cluster (the built-in ferry.cluster,
   * docs/cluster.md): `{ enabled: false }` on a single node. Needs what
   * `ferry services` needs (the admin token when ferryd has one).
   */
  cluster(opts?: CallOptions): Promise<ClusterView>;
  on(event: 'connect', listener: (server: ServerInfo) => void): this;
  on(event: 'disconnect', listener: (err: FerryError) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export class Job {
  /** ferryd's id of the request. */
  readonly id: bigint;
  readonly service: string;
  /** Time the caller had left when the job arrived (ms). */
  readonly deadlineMs: number;
  readonly idempotent: boolean;
  readonly key: Buffer;
  readonly payload: Buffer | null;
  readonly answered: boolean;
  readonly cancelled: boolean;
  /** Aborted when ferryd cancels the job or the connection is lost. */
  readonly signal: AbortSignal;
  /** Answers the job; false when it was answered or cancelled already. */
  reply(data: Bytes): boolean;
  /** Fails the job with an error (a FerryError's code, else WORKER_ERROR) or a code and message. */
  fail(err: Error | ErrorName | number, message?: string): boolean;
  /** Gives the job up unanswered (stop() no longer waits for it). */
  abandon(): boolean;
}

/**
 * Returns the reply (or a promise of it); throws to fail the job; returns
 * undefined to answer later with job.reply() / job.fail().
 */
export type Handler = (payload: Buffer, job: Job) =>
  Bytes | void | undefined | Promise<Bytes | void | undefined>;

export interface HandleOptions {
  /** Jobs of this service held at once, 1..65535; default 16. */
  credit?: number;
}

export class Worker extends EventEmitter {
  constructor(opts?: ConnectionOptions);
  readonly addr: string;
  readonly connects: number;
  /** Jobs answered. */
  readonly handled: number;
  /** Jobs held now (received, not answered or cancelled). */
  readonly held: number;
  readonly ready: boolean;
  handle(service: string, handler: Handler, opts?: HandleOptions): this;
  start(): Promise<void>;
  stop(opts?: { timeoutMs?: number }): Promise<void>;
  on(event: 'ready', listener: () => void): this;
  on(event: 'cancel', listener: (job: Job) => void): this;
  on(event: 'disconnect' | 'error', listener: (err: FerryError) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export type ErrorName =
  | 'PROTO' | 'TOO_BIG' | 'VERSION' | 'UNKNOWN_TYPE' | 'UNKNOWN_SERVICE' | 'NO_WORKER'
  | 'DEADLINE' | 'WORKER_LOST' | 'WORKER_ERROR' | 'OVERLOADED' | 'INVALID_ARGUMENT'
  | 'CANCELLED' | 'SHUTTING_DOWN' | 'DUPLICATE_ID' | 'UNAUTHORIZED' | 'CONNECTION'
  | 'NOMEM' | 'SYS' | 'CIRCUIT_OPEN' | 'SERVICE_DISABLED' | 'SLOW_CONSUMER' | 'TIMED_OUT'
  | 'NO_SPACE' | 'NOT_MY_VBUCKET' | 'FENCED' | 'UNAVAILABLE';

export class FerryError extends Error {
  constructor(errno: number, message?: string, options?: { cause?: unknown });
  /** The error's name, "DEADLINE" ("UNKNOWN_ERROR" for a code this client does not know). */
  readonly code: ErrorName | 'UNKNOWN_ERROR';
  /** The stable number, 7. */
  readonly errno: number;
  static of(errno: number, message?: string, options?: { cause?: unknown }): FerryError;
}

interface FerryErrorClass<C extends ErrorName, N extends number> {
  new (message?: string, options?: { cause?: unknown }): FerryError & { readonly code: C; readonly errno: N };
  readonly code: C;
  readonly errno: N;
}

export const ProtoError: FerryErrorClass<'PROTO', 1>;
export const TooBigError: FerryErrorClass<'TOO_BIG', 2>;
export const VersionError: FerryErrorClass<'VERSION', 3>;
export const UnknownTypeError: FerryErrorClass<'UNKNOWN_TYPE', 4>;
export const UnknownServiceError: FerryErrorClass<'UNKNOWN_SERVICE', 5>;
export const NoWorkerError: FerryErrorClass<'NO_WORKER', 6>;
export const DeadlineError: FerryErrorClass<'DEADLINE', 7>;
export const WorkerLostError: FerryErrorClass<'WORKER_LOST', 8>;
export const WorkerError: FerryErrorClass<'WORKER_ERROR', 9>;
export const OverloadedError: FerryErrorClass<'OVERLOADED', 10>;
export const InvalidArgumentError: FerryErrorClass<'INVALID_ARGUMENT', 11>;
export const CancelledError: FerryErrorClass<'CANCELLED', 12>;
export const ShuttingDownError: FerryErrorClass<'SHUTTING_DOWN', 13>;
export const DuplicateIdError: FerryErrorClass<'DUPLICATE_ID', 14>;
export const UnauthorizedError: FerryErrorClass<'UNAUTHORIZED', 15>;
export const ConnectionError: FerryErrorClass<'CONNECTION', 16>;
export const NomemError: FerryErrorClass<'NOMEM', 17>;
export const SysError: FerryErrorClass<'SYS', 18>;
export const CircuitOpenError: FerryErrorClass<'CIRCUIT_OPEN', 19>;
export const ServiceDisabledError: FerryErrorClass<'SERVICE_DISABLED', 20>;
export const SlowConsumerError: FerryErrorClass<'SLOW_CONSUMER', 21>;
export const TimedOutError: FerryErrorClass<'TIMED_OUT', 22>;
export const NoSpaceError: FerryErrorClass<'NO_SPACE', 23>;
export const NotMyVbucketError: FerryErrorClass<'NOT_MY_VBUCKET', 24>;
export const FencedError: FerryErrorClass<'FENCED', 25>;
export const UnavailableError: FerryErrorClass<'UNAVAILABLE', 26>;

/** [errno, NAME, default message] of every code. */
export const CODES: ReadonlyArray<readonly [number, ErrorName, string]>;
export function errname(errno: number): ErrorName | 'UNKNOWN_ERROR';
export function errnoOf(name: string): number | undefined;

export function parseAddr(addr?: string): { text: string; opts: { host: string; port: number } | { path: string } };

export interface DecodedFrame {
  type: number;
  flags: number;
  id: bigint;
  body: Buffer;
  size: number;
  fields: Record<string, unknown>;
}

/** The wire codec (docs/protocol.md). */
export namespace codec {
  const HEADER_SIZE: 16;
  const DEFAULT_MAX_BODY: number;
  const HELLO: 1, HELLO_OK: 2, REQUEST: 3, REPLY: 4, ERROR: 5, CANCEL: 6,
    REGISTER: 7, REGISTERED: 8, PING: 9, DRAIN: 10;
  const TYPE_NAMES: ReadonlyArray<string | null>;
  const TYPES: Readonly<Record<string, number>>;
  function decodeFrame(buf: Buffer, maxBody?: number): DecodedFrame | null;
  function encodeHello(h?: { version?: number; role?: number; heartbeatMs?: number; name?: Bytes; token?: Bytes; maxFrame?: number }): Buffer;
  function encodeHelloOk(h?: { version?: number; heartbeatMs?: number; maxFrame?: number; name?: Bytes; maxDeadlineMs?: number; defaultDeadlineMs?: number }): Buffer;
  function encodeRequest(id: number | bigint, service: Bytes, payload?: Bytes, opts?: { deadlineMs?: number; key?: Bytes; flags?: number }): Buffer;
  function encodeReply(id: number | bigint, payload?: Bytes): Buffer;
  function encodeError(id: number | bigint, errno: number, message?: Bytes): Buffer;
  function encodeRegister(id: number | bigint, service: Bytes, credit: number): Buffer;
  function encodeEmpty(type: number, id?: number | bigint): Buffer;
}

// ---------------------------------------------------------------- servants
/** Options of every servant helper call. */
export interface ServantCallOptions {
  deadlineMs?: number;
  signal?: AbortSignal;
}
export interface CacheItem { value: Buffer; flags: number; cas: bigint; }
export type Status = 'OK' | 'NOT_FOUND' | 'NOT_STORED' | 'EXISTS';
/** A store's outcome; cas is the item's new cas when ok. */
export interface CacheWrite { status: Status; ok: boolean; cas: bigint; }
export interface CacheStoreOptions extends ServantCallOptions { flags?: number; ttlMs?: number; }
export class Cache {
  get(key: Bytes, opts?: ServantCallOptions): Promise<CacheItem | null>;
  gat(key: Bytes, ttlMs: number, opts?: ServantCallOptions): Promise<CacheItem | null>;
  getMany(keys: Bytes[], opts?: ServantCallOptions): Promise<Array<CacheItem | null>>;
  set(key: Bytes, value: Bytes, opts?: CacheStoreOptions): Promise<CacheWrite>;
  add(key: Bytes, value: Bytes, opts?: CacheStoreOptions): Promise<CacheWrite>;
  replace(key: Bytes, value: Bytes, opts?: CacheStoreOptions): Promise<CacheWrite>;
  append(key: Bytes, value: Bytes, opts?: ServantCallOptions): Promise<CacheWrite>;
  prepend(key: Bytes, value: Bytes, opts?: ServantCallOptions): Promise<CacheWrite>;
  cas(key: Bytes, value: Bytes, cas: bigint, opts?: CacheStoreOptions): Promise<CacheWrite>;
  /** true when deleted, false when there was no such item. */
  delete(key: Bytes, opts?: ServantCallOptions): Promise<boolean>;
  touch(key: Bytes, ttlMs: number, opts?: ServantCallOptions): Promise<boolean>;
  /** The new value, or null when there is no such item. */
  incr(key: Bytes, delta?: bigint, opts?: ServantCallOptions): Promise<bigint | null>;
  decr(key: Bytes, delta?: bigint, opts?: ServantCallOptions): Promise<bigint | null>;
  flush(delayMs?: number, opts?: ServantCallOptions): Promise<void>;
}
export interface KvEntry { key: Buffer; value: Buffer; createRev: bigint; modRev: bigint; version: bigint; }
export interface KvGet { rev: bigint; entry: KvEntry | null; }
/** A put or delete: ok, or EXISTS (compare failed; rev = the key's mod_rev) or NOT_FOUND. */
export interface KvWrite { status: Status; ok: boolean; rev: bigint; }
export interface KvRange { rev: bigint; more: boolean; items: KvEntry[]; nextKey: Buffer | null; }
export interface KvEvent extends KvEntry { type: 'put' | 'delete'; }
export interface KvWatch { rev: bigint; events: KvEvent[]; }
export interface KvPutOptions extends ServantCallOptions { ifAbsent?: boolean; ifModRev?: bigint; }
export interface KvRangeOptions extends ServantCallOptions { end?: Bytes; limit?: number; keysOnly?: boolean; }
export interface KvWatchOptions extends ServantCallOptions { prefix?: boolean; fromRev?: bigint; waitMs?: number; maxEvents?: number; }
export class Kv {
  get(key: Bytes, opts?: ServantCallOptions): Promise<KvEntry | null>;
  getRev(key: Bytes, opts?: ServantCallOptions): Promise<KvGet>;
  put(key: Bytes, value: Bytes, opts?: KvPutOptions): Promise<KvWrite>;
  delete(key: Bytes, opts?: ServantCallOptions & { ifModRev?: bigint }): Promise<KvWrite>;
  range(key: Bytes, opts?: KvRangeOptions): Promise<KvRange>;
  count(key: Bytes, opts?: ServantCallOptions & { end?: Bytes }): Promise<bigint>;
  watch(key: Bytes, opts?: KvWatchOptions): Promise<KvWatch>;
}
export interface IdParts { unixMs: number; node: number; seq: number; }
export class Id {
  next(count?: number, opts?: ServantCallOptions): Promise<bigint[]>;
  decode(id: bigint, opts?: ServantCallOptions): Promise<IdParts>;
}

/** A queue's answer to ack, release, bury: OK, or STALE (the token no longer holds the job) or NOT_FOUND. */
export type QueueStatus = 'OK' | 'EMPTY' | 'STALE' | 'NOT_FOUND';
export interface QueueResult { status: QueueStatus; ok: boolean; }
/** touch: the reservation's new time left (0 unless ok). */
export interface QueueTouch extends QueueResult { visibilityMs: number; }
export interface QueuePush { id: bigint; dup: boolean; }
/** A reserved job; attempts counts this delivery. */
export interface QueueJob { id: bigint; token: bigint; attempts: number; priority: number; payload: Buffer; }
export type QueueJobState = 'ready' | 'delayed' | 'reserved';
export interface QueuePeekEntry {
  id: bigint; attempts: number; priority: number; state: QueueJobState;
  /** Since it was pushed. */
  ageMs: number;
  /** Why it was buried or dead-lettered (empty otherwise). */
  reason: Buffer;
  payload: Buffer;
}
export interface QueuePushOptions extends ServantCallOptions {
  /** -32768..32767, higher first; default 0. */
  priority?: number;
  delayMs?: number;
  /** 0 or absent: the queue's visibility_ms. */
  visibilityMs?: number;
  /** 0 or absent: the queue's max_deliveries. */
  maxDeliveries?: number;
  /** A push with a dedup id seen within the queue's dedup window stores nothing (dup: true). */
  dedup?: Bytes;
}
export interface QueueReserveOptions extends ServantCallOptions {
  /** Time to wait for a job (at most 600000); 0 or absent: answer at once. deadlineMs defaults to waitMs + 5000. */
  waitMs?: number;
  visibilityMs?: number;
}
export type QueueReleaseOptions = ServantCallOptions & ({ delayMs?: number; backoff?: false } | { backoff: true; delayMs?: undefined });
/** The settings of CONFIGURE, as docs/queues.md names them; the answer holds all of them. */
export interface QueueSettings {
  visibility_ms?: number;
  max_deliveries?: number;
  dedup_window_ms?: number;
  dead_letter?: string;
  backoff_ms?: number[];
  paused?: boolean;
  [key: string]: unknown;
}
/** One queue's STATS object (docs/queues.md), or {queues: [...]} for every queue (in a cluster every node's, each with its node, and nodes, missing: docs/cluster.md). */
export interface QueueStats {
  name: string; ready: number; delayed: number; reserved: number; dead: number; waiters: number;
  paused: boolean; oldest_ready_age_ms: number; pushes: number; dedup_hits: number; reserves: number;
  empty_reserves: number; acks: number; releases: number; touches: number; buries: number;
  expired: number; dead_lettered: number; redriven: number; purged: number; push_rate: number;
  ack_rate: number; settings: QueueSettings;
  [key: string]: unknown;
}
export class Queue {
  push(queue: string, payload: Bytes, opts?: QueuePushOptions): Promise<QueuePush>;
  /** The next job, or null when none came within waitMs (EMPTY). */
  reserve(queue: string, opts?: QueueReserveOptions): Promise<QueueJob | null>;
  ack(queue: string, id: bigint, token: bigint, opts?: ServantCallOptions): Promise<QueueResult>;
  /** Ready again at once, after delayMs, or by the queue's backoff_ms with {backoff: true}. */
  release(queue: string, id: bigint, token: bigint, opts?: QueueReleaseOptions): Promise<QueueResult>;
  touch(queue: string, id: bigint, token: bigint, opts?: ServantCallOptions & { visibilityMs?: number }): Promise<QueueTouch>;
  bury(queue: string, id: bigint, token: bigint, reason?: Bytes | null, opts?: ServantCallOptions): Promise<QueueResult>;
  /** null when there is no such queue. */
  peek(queue: string, opts?: ServantCallOptions & { which?: 'ready' | 'delayed' | 'dead' | 'reserved'; limit?: number }): Promise<QueuePeekEntry[] | null>;
  stats(opts?: ServantCallOptions): Promise<{ queues: QueueStats[] }>;
  stats(queue: string, opts?: ServantCallOptions): Promise<QueueStats | null>;
  /** Dead jobs moved back (null: no such queue). */
  redrive(queue: string, opts?: ServantCallOptions & { limit?: number }): Promise<bigint | null>;
  /** false when there is no such queue. */
  pause(queue: string, opts?: ServantCallOptions): Promise<boolean>;
  resume(queue: string, opts?: ServantCallOptions): Promise<boolean>;
  /** Ready and delayed jobs removed (null: no such queue). */
  purge(queue: string, opts?: ServantCallOptions): Promise<bigint | null>;
  /** Refused with InvalidArgumentError while the queue holds jobs; false when there is no such queue. */
  delete(queue: string, opts?: ServantCallOptions): Promise<boolean>;
  /** The queue's settings after the change. */
  configure(queue: string, settings: QueueSettings | string, opts?: ServantCallOptions): Promise<QueueSettings>;
  consume(queue: string, handler: QueueHandler, opts?: ConsumeOptions): Consumer;
}
/** A job given to a consume() handler; once it is acked, released or buried the consumer leaves it alone. */
export class ConsumedJob implements QueueJob {
  readonly queue: string;
  readonly id: bigint;
  readonly token: bigint;
  readonly attempts: number;
  readonly priority: number;
  readonly payload: Buffer;
  readonly settled: boolean;
  ack(opts?: ServantCallOptions): Promise<QueueResult>;
  release(opts?: QueueReleaseOptions): Promise<QueueResult>;
  bury(reason?: Bytes | null, opts?: ServantCallOptions): Promise<QueueResult>;
  touch(opts?: ServantCallOptions & { visibilityMs?: number }): Promise<QueueTouch>;
}
/** Resolves: the job is acked; rejects or throws: it is released. */
export type QueueHandler = (job: ConsumedJob) => unknown | Promise<unknown>;
export interface ConsumeOptions {
  /** Reserves kept in flight (jobs handled at once), 1..65535; default 1. */
  credit?: number;
  /** Each reserve's long poll, 1..600000; default 20000. */
  waitMs?: number;
  visibilityMs?: number;
  /** How a job whose handler rejected is released; default {backoff: true} (the queue's backoff_ms). */
  release?: { delayMs: number } | { backoff: true };
  /** Aborting it stops the consumer. */
  signal?: AbortSignal;
}
export class Consumer extends EventEmitter {
  readonly queue: string;
  readonly credit: number;
  /** Jobs whose handler ended. */
  readonly handled: number;
  /** Jobs in the handler now. */
  readonly held: number;
  /** Reserves waiting now. */
  readonly waiting: number;
  readonly stopped: boolean;
  /** Resolves once stopped; rejects with the error that stopped it (INVALID_ARGUMENT, UNKNOWN_SERVICE, ...). */
  readonly done: Promise<void>;
  /** No more reserves; waits up to timeoutMs (default 30000) for the handlers running. */
  stop(opts?: { timeoutMs?: number }): Promise<void>;
  on(event: 'error', listener: (err: FerryError, job: ConsumedJob | null) => void): this;
  on(event: 'handlerError', listener: (err: unknown, job: ConsumedJob) => void): this;
  on(event: 'stale', listener: (job: ConsumedJob, status: QueueStatus) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}
/** What a subscription does when its buffer is full. */
export type TopicPolicy = 'drop_oldest' | 'close';
/** A message of a subscription; seq counts from 1, a hole in it is where messages were dropped. */
export interface TopicMessage { kind: 'message'; seq: bigint; subject: string; payload: Buffer; }
/** A gap notice of messages(): dropped messages were lost before the next one, or (resubscribed) the
 * subscription had expired and was made again (dropped 0: a count unknown). */
export interface TopicGap { kind: 'gap'; dropped: bigint; resubscribed: boolean; }
/** A poll's answer: messages (none when waitMs passed) and the messages dropped since the previous answer. */
export interface TopicPoll { messages: TopicMessage[]; dropped: bigint; }
export interface TopicSubscribeOptions extends ServantCallOptions {
  /** Share the messages of (pattern, group) with its other members: each goes to one. */
  group?: string | null;
  /** The buffer, 0 or absent: 1000 (at most 65536). */
  maxPending?: number;
  /** When the buffer is full: drop the oldest (default), or close the subscription (its next poll: SlowConsumerError). */
  policy?: TopicPolicy;
}
export interface TopicPollOptions extends ServantCallOptions {
  /** Time to wait for a message (at most 600000); 0 or absent: answer at once. deadlineMs defaults to waitMs + 5000. */
  waitMs?: number;
  /** 0 or absent: 1000. */
  maxMsgs?: number;
}
export interface TopicMessagesOptions {
  group?: string | null;
  maxPending?: number;
  policy?: TopicPolicy;
  /** Each poll's long wait, 1..600000; default 25000 (keep it below topic_idle_ms). */
  waitMs?: number;
  maxMsgs?: number;
  /** Aborting it ends the loop (and unsubscribes). */
  signal?: AbortSignal;
}
/** The totals of docs/topics.md (subs: for a caller who may see internals), or one subscription's object (JSON numbers). */
export interface TopicStats {
  subscriptions?: number; published?: number; delivered?: number; dropped?: number;
  subs?: TopicSubStats[];
  [key: string]: unknown;
}
export interface TopicSubStats {
  id: number; pattern: string | null; group: string | null; max_pending: number; policy: TopicPolicy;
  pending: number; queued: number; delivered: number; dropped: number; gap: number; polling: boolean; closed: boolean;
  [key: string]: unknown;
}
export class Topic {
  /** The subscriptions the message reached (a group counts once; 0: nobody listens). */
  publish(subject: string, payload?: Bytes | null, opts?: ServantCallOptions): Promise<number>;
  /** The subId of a new subscription. */
  subscribe(pattern: string, opts?: TopicSubscribeOptions): Promise<bigint>;
  /** A Subscriber calling handler for each message until stopped. */
  subscribe(pattern: string, handler: TopicHandler, opts?: TopicMessagesOptions): Subscriber;
  /** null when the subscription is gone (unsubscribed, expired, closed and told); SlowConsumerError once when closed by policy close. */
  poll(subId: number | bigint, opts?: TopicPollOptions): Promise<TopicPoll | null>;
  /** false when the subscription was gone. */
  unsubscribe(subId: number | bigint, opts?: ServantCallOptions): Promise<boolean>;
  stats(opts?: ServantCallOptions): Promise<TopicStats>;
  stats(subId: number | bigint, opts?: ServantCallOptions): Promise<TopicSubStats | null>;
  /** Subscribes and yields each message, with gap notices; polls again after a lost connection, re-subscribes after expiry. */
  messages(pattern: string, opts?: TopicMessagesOptions): AsyncGenerator<TopicMessage | TopicGap, void, undefined>;
}
export type TopicHandler = (message: TopicMessage) => unknown | Promise<unknown>;
export class Subscriber extends EventEmitter {
  readonly pattern: string;
  /** Messages handed to the handler. */
  readonly received: number;
  readonly stopped: boolean;
  /** Resolves once stopped (and unsubscribed); rejects with the error that ended it (SLOW_CONSUMER, INVALID_ARGUMENT, ...). */
  readonly done: Promise<void>;
  /** Cancels the poll in flight; resolves once unsubscribed. */
  stop(): Promise<void>;
  on(event: 'gap', listener: (dropped: bigint, resubscribed: boolean) => void): this;
  on(event: 'handlerError', listener: (err: unknown, message: TopicMessage) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}
export const servants: {
  encodeCache(op: string, args?: object): { key: Buffer; payload: Buffer };
  encodeKv(op: string, key: Bytes, args?: object): { key: Buffer; payload: Buffer };
  encodeId(op: 'next' | 'decode', args?: { count?: number; id?: bigint }): { key: Buffer; payload: Buffer };
  decodeCache(op: string, reply: Buffer): unknown;
  decodeKv(op: string, reply: Buffer): unknown;
  decodeId(op: 'next' | 'decode', reply: Buffer): unknown;
  encodeQueue(op: string, queue: string | null | undefined, args?: object): { key: Buffer; payload: Buffer };
  decodeQueue(op: string, reply: Buffer): unknown;
  encodeTopic(op: 'publish' | 'subscribe' | 'poll' | 'unsubscribe' | 'stats', args?: object): { key: Buffer; payload: Buffer };
  decodeTopic(op: 'publish' | 'subscribe' | 'poll' | 'unsubscribe' | 'stats', reply: Buffer): unknown;
};

/** One member of a cluster as a node sees it (ferry.cluster). */
export interface ClusterMember {
  name: string;
  addr: string;
  http?: string;
  node_id: number;
  services: Record<string, { workers: number; credit: number }>;
  vbuckets: number;
  link: 'self' | 'up' | 'down';
  out?: number;
  forwarded?: number;
  failed?: number;
  links?: number;
  [field: string]: unknown;
}

/** The document of ferry.cluster and GET /v1/cluster. */
export interface ClusterView {
  enabled: boolean;
  node?: string;
  peer_addr?: string;
  fenced?: boolean;
  epoch?: number;
  vbucket_count?: number;
  members?: ClusterMember[];
  counters?: Record<string, number>;
  [field: string]: unknown;
}
