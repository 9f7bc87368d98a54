// SPDX-License-Identifier: MIT
'use strict';
/*
 * servants.js - helpers for ferryd's built-in services ferry.cache,
 * ferry.kv and ferry.id (docs/services.md), ferry.queue (docs/queues.md)
 * and ferry.topic (docs/topics.md): client.cache, client.kv, client.id,
 * client.queue and client.topic encode the request payloads and decode
 * the replies. u64s (cas, revisions, versions, counts, ids, job ids and
 * tokens, ferry.topic's sub ids, sequence numbers and drop counts) are
 * bigint.
 *
 *   const item = await client.cache.get('user:1');   // {value, flags, cas} | null
 *   const { rev } = await client.kv.put('cfg/a', '1');
 *   const ids = await client.id.next(10);              // bigint[]
 *   const job = await client.queue.reserve('jobs', { waitMs: 5000 }); // {id, token, ...} | null
 *   for await (const m of client.topic.messages('orders.*')) { ... } // messages and gap notices
 *
 * encodeX / decodeX are the codec (tests/vectors/client_payloads.json);
 * a malformed reply rejects with InvalidArgumentError.
 */
const { EventEmitter } = require('events');
const { FerryError } = require('./errors');
const codec = require('./codec');
const { Backoff } = require('./conn');

const CACHE = 'ferry.cache';
const KV = 'ferry.kv';
const ID = 'ferry.id';
const CLUSTER = 'ferry.cluster';
const STATUS = ['OK', 'NOT_FOUND', 'NOT_STORED', 'EXISTS'];
const CACHE_OPS = {
  get: 1, getMany: 2, set: 3, add: 4, replace: 5, append: 6, prepend: 7, cas: 8,
  delete: 9, incr: 10, decr: 11, touch: 12, gat: 13, flush: 14,
};
const KV_OPS = { get: 1, put: 2, delete: 3, range: 4, count: 5, watch: 6 };
const COND = { any: 0, absent: 1, modRev: 2 };
const U64_MAX = (1n << 64n) - 1n;

function bad(msg) { return FerryError.of(11, msg); }

function bytes(v, what) { return v === undefined || v === null ? codec.EMPTY : codec.toBytes(v, what); }

/** A growing big-endian writer for one request. */
class W {
  constructor() { this.parts = []; }
  u8(v, what) { return this.num(1, v, what); }
  u16(v, what) { return this.num(2, v, what); }
  u32(v, what) { return this.num(4, v, what); }
  i16(v, what) {
    v = v === undefined ? 0 : v;
    if (!Number.isInteger(v) || v < -32768 || v > 32767) {
      throw bad(`${what} must be an integer from -32768 to 32767`);
    }
    const b = Buffer.allocUnsafe(2);
    b.writeInt16BE(v);
    this.parts.push(b);
    return this;
  }
  num(n, v, what) {
    v = v === undefined ? 0 : v;
    if (!Number.isInteger(v) || v < 0 || v >= 2 ** (8 * n)) {
      throw bad(`${what} must be an integer from 0 to ${2 ** (8 * n) - 1}`);
    }
    const b = Buffer.allocUnsafe(n);
    b.writeUIntBE(v, 0, n);
    this.parts.push(b);
    return this;
  }
  u64(v, what) {
    v = v === undefined ? 0n : BigInt(v);
    if (v < 0n || v > U64_MAX) {
      throw bad(`${what} must be from 0 to ${U64_MAX}`);
    }
    const b = Buffer.allocUnsafe(8);
    b.writeBigUInt64BE(v);
    this.parts.push(b);
    return this;
  }
  raw(b) { this.parts.push(b); return this; }
  done() { return Buffer.concat(this.parts); }
}

/** encodeCache(op, {key, value, flags, ttlMs, cas, delta, delayMs, keys}) -> {key, payload}. */
function encodeCache(op, a = {}) {
  const code = CACHE_OPS[op];
  if (code === undefined) {
    throw bad(`unknown ferry.cache op ${op}`);
  }
  let key = bytes(a.key, 'key');
  const w = new W().u8(code);
  switch (op) {
    case 'get': case 'delete': break;
    case 'getMany': {
      const keys = a.keys || [];
      w.u16(keys.length, 'keys.length');
      for (const k of keys) {
        const kb = bytes(k, 'key');
        w.u16(kb.length, 'key length').raw(kb);
      }
      key = codec.EMPTY;
      break;
    }
    case 'set': case 'add': case 'replace':
      w.u32(a.flags, 'flags').u32(a.ttlMs, 'ttlMs').raw(bytes(a.value, 'value'));
      break;
    case 'append': case 'prepend': w.raw(bytes(a.value, 'value')); break;
    case 'cas':
      w.u32(a.flags, 'flags').u32(a.ttlMs, 'ttlMs').u64(a.cas, 'cas').raw(bytes(a.value, 'value'));
      break;
    case 'incr': case 'decr': w.u64(a.delta, 'delta'); break;
    case 'touch': case 'gat': w.u32(a.ttlMs, 'ttlMs'); break;
    default: w.u32(a.delayMs, 'delayMs'); key = codec.EMPTY; break; // flush
  }
  return { key, payload: w.done() };
}

/** encodeKv(op, key, {value, cond, rev, end, limit, keysOnly, prefix, fromRev, waitMs, maxEvents}). */
function encodeKv(op, key, a = {}) {
  const code = KV_OPS[op];
  if (code === undefined) {
    throw bad(`unknown ferry.kv op ${op}`);
  }
  const w = new W().u8(code);
  switch (op) {
    case 'get': break;
    case 'put': case 'delete': {
      const cond = COND[a.cond || 'any'];
      if (cond === undefined) {
        throw bad(`cond must be any, absent or modRev, not ${a.cond}`);
      }
      w.u8(cond).u64(a.rev, 'rev');
      if (op === 'put') {
        w.raw(bytes(a.value, 'value'));
      }
      break;
    }
    case 'range': case 'count': {
      const hasEnd = a.end !== undefined && a.end !== null;
      const e = hasEnd ? bytes(a.end, 'end') : codec.EMPTY;
      w.u8(hasEnd ? 1 : 0).u16(e.length, 'end length').raw(e);
      if (op === 'range') {
        w.u32(a.limit, 'limit').u8(a.keysOnly ? 1 : 0);
      }
      break;
    }
    default: // watch
      w.u8(a.prefix ? 1 : 0).u64(a.fromRev, 'fromRev').u32(a.waitMs, 'waitMs')
        .u32(a.maxEvents, 'maxEvents');
  }
  return { key: bytes(key, 'key'), payload: w.done() };
}

/** encodeId('next', {count}) or encodeId('decode', {id}). */
function encodeId(op, a = {}) {
  const w = new W();
  if (op === 'next') {
    w.u8(1).u32(a.count === undefined ? 1 : a.count, 'count');
  } else if (op === 'decode') {
    w.u8(2).u64(a.id, 'id');
  } else {
    throw bad(`unknown ferry.id op ${op}`);
  }
  return { key: codec.EMPTY, payload: w.done() };
}

/** A bounds-checked reader of one reply; statuses names its first byte. */
class R {
  constructor(what, buf, statuses = STATUS) { this.what = what; this.b = buf; this.i = 0; this.statuses = statuses; }
  fail(why) { return bad(`${this.what} reply: ${why}`); }
  need(n, name) {
    if (this.b.length - this.i < n) {
      throw this.fail(`${name} needs ${n} bytes, got ${this.b.length - this.i}`);
    }
  }
  u8(name) { this.need(1, name); return this.b[this.i++]; }
  u16(name) { this.need(2, name); const v = this.b.readUInt16BE(this.i); this.i += 2; return v; }
  i16(name) { this.need(2, name); const v = this.b.readInt16BE(this.i); this.i += 2; return v; }
  u32(name) { this.need(4, name); const v = this.b.readUInt32BE(this.i); this.i += 4; return v; }
  u64(name) { this.need(8, name); const v = this.b.readBigUInt64BE(this.i); this.i += 8; return v; }
  bytes(n, name) { this.need(n, name); const v = this.b.subarray(this.i, this.i + n); this.i += n; return v; }
  rest() { const v = this.b.subarray(this.i); this.i = this.b.length; return v; }
  left() { return this.b.length - this.i; }
  status() {
    const s = this.u8('status');
    if (s >= this.statuses.length) {
      throw this.fail(`unknown status ${s}`);
    }
    return this.statuses[s];
  }
  /** The status, refused unless one of allowed. */
  expect(...allowed) {
    const s = this.status();
    if (!allowed.includes(s)) {
      throw this.fail(`status ${s} where ${allowed.join(' or ')} was expected`);
    }
    return s;
  }
  end() {
    if (this.i !== this.b.length) {
      throw this.fail(`${this.b.length - this.i} bytes too many`);
    }
  }
  count(name) {
    const n = this.u32(name);
    if (n > this.left()) {
      throw this.fail(`${name} ${n} larger than the payload`);
    }
    return n;
  }
  entry() {
    const key = this.bytes(this.u16('klen'), 'key');
    const createRev = this.u64('create_rev');
    const modRev = this.u64('mod_rev');
    const version = this.u64('version');
    const value = this.bytes(this.u32('vlen'), 'value');
    return { key, value, createRev, modRev, version };
  }
}

/**
 * decodeCache(op, buf): get/gat -> {value, flags, cas} | null; getMany ->
 * array of those; stores -> {status, ok, cas}; delete/touch/flush ->
 * boolean (OK); incr/decr -> bigint | null.
 */
function decodeCache(op, buf) {
  const r = new R(`${CACHE} ${op}`, buf);
  const s = r.status();
  switch (op) {
    case 'get': case 'gat': {
      if (s !== 'OK') { r.end(); return null; }
      const flags = r.u32('flags');
      const cas = r.u64('cas');
      return { value: r.rest(), flags, cas };
    }
    case 'getMany': {
      const n = r.u16('n');
      const items = [];
      for (let i = 0; i < n; i++) {
        if (r.status() !== 'OK') { items.push(null); continue; }
        const flags = r.u32('flags');
        const cas = r.u64('cas');
        items.push({ value: r.bytes(r.u32('vlen'), 'value'), flags, cas });
      }
      r.end();
      return items;
    }
    case 'set': case 'add': case 'replace': case 'append': case 'prepend': case 'cas': {
      const cas = s === 'OK' ? r.u64('cas') : 0n;
      r.end();
      return { status: s, ok: s === 'OK', cas };
    }
    case 'incr': case 'decr': {
      const v = s === 'OK' ? r.u64('value') : null;
      r.end();
      return v;
    }
    default:
      r.end();
      return s === 'OK';
  }
}

/**
 * decodeKv(op, buf): get -> {rev, entry | null}; put/delete -> {status,
 * ok, rev}; range -> {rev, more, items, nextKey}; count -> {rev, count};
 * watch -> {rev, events: [{type: 'put'|'delete', key, value, ...}]}.
 */
function decodeKv(op, buf) {
  const r = new R(`${KV} ${op}`, buf);
  const s = r.status();
  if (op === 'delete' && s === 'NOT_FOUND' && r.left() === 0) {
    return { status: s, ok: false, rev: 0n };
  }
  const rev = r.u64('rev');
  switch (op) {
    case 'get': {
      if (s !== 'OK') { r.end(); return { rev, entry: null }; }
      const createRev = r.u64('create_rev');
      const modRev = r.u64('mod_rev');
      const version = r.u64('version');
      return { rev, entry: { key: codec.EMPTY, value: r.rest(), createRev, modRev, version } };
    }
    case 'put': case 'delete': r.end(); return { status: s, ok: s === 'OK', rev };
    case 'count': { const count = r.u64('count'); r.end(); return { rev, count }; }
    case 'range': {
      const more = r.u8('more') !== 0;
      const n = r.count('n');
      const items = [];
      for (let i = 0; i < n; i++) items.push(r.entry());
      r.end();
      const nextKey = more && n > 0 ? Buffer.concat([items[n - 1].key, Buffer.from([0])]) : null;
      return { rev, more, items, nextKey };
    }
    case 'watch': {
      const n = r.count('n');
      const events = [];
      for (let i = 0; i < n; i++) {
        const t = r.u8('type');
        if (t > 1) {
          throw r.fail(`unknown event type ${t}`);
        }
        events.push({ type: t === 0 ? 'put' : 'delete', ...r.entry() });
      }
      r.end();
      return { rev, events };
    }
    default: throw bad(`unknown ferry.kv op ${op}`);
  }
}

/** decodeId('next', buf) -> bigint[]; decodeId('decode', buf) -> {unixMs, node, seq}. */
function decodeId(op, buf) {
  const r = new R(`${ID} ${op}`, buf);
  r.status();
  if (op === 'next') {
    const n = r.count('n');
    const ids = [];
    for (let i = 0; i < n; i++) ids.push(r.u64('id'));
    r.end();
    return ids;
  }
  const unixMs = Number(r.u64('unix_ms'));
  const node = r.u16('node');
  const seq = r.u16('seq');
  r.end();
  return { unixMs, node, seq };
}

// ---------------------------------------------------------------- queue

const QUEUE = 'ferry.queue';
const QUEUE_STATUS = ['OK', 'EMPTY', 'STALE', 'NOT_FOUND'];
const QUEUE_OPS = {
  push: 1, reserve: 2, ack: 3, release: 4, touch: 5, bury: 6, peek: 7, stats: 8,
  redrive: 9, pause: 10, resume: 11, purge: 12, delete: 13, configure: 14,
};
const PEEK_WHICH = { ready: 0, delayed: 1, dead: 2, reserved: 3 };
const JOB_STATES = ['ready', 'delayed', 'reserved'];
const RELEASE_BACKOFF = 0xffffffff; // RELEASE's delay: by the queue's backoff_ms

/** The JSON text of CONFIGURE's settings: an object, or JSON already. */
function settingsBytes(v) {
  if (typeof v === 'string' || v instanceof Uint8Array) {
    return codec.toBytes(v, 'settings');
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new TypeError('settings must be an object (or its JSON text)');
  }
  return Buffer.from(JSON.stringify(v), 'utf8');
}

/**
 * encodeQueue(op, queue, {payload, priority, delayMs, visibilityMs,
 * maxDeliveries, dedup, waitMs, id, token, backoff, reason, which, limit,
 * settings}) -> {key, payload}. The queue's name travels as the routing
 * key (stats without one: every queue).
 */
function encodeQueue(op, queue, a = {}) {
  const code = QUEUE_OPS[op];
  if (code === undefined) {
    throw bad(`unknown ferry.queue op ${op}`);
  }
  const w = new W().u8(code);
  switch (op) {
    case 'push': {
      const dedup = bytes(a.dedup, 'dedup');
      w.i16(a.priority, 'priority').u32(a.delayMs, 'delayMs').u32(a.visibilityMs, 'visibilityMs')
        .u16(a.maxDeliveries, 'maxDeliveries').u8(dedup.length, 'dedup length').raw(dedup)
        .raw(bytes(a.payload, 'payload'));
      break;
    }
    case 'reserve': w.u32(a.waitMs, 'waitMs').u32(a.visibilityMs, 'visibilityMs'); break;
    case 'ack': case 'release': case 'touch': case 'bury':
      w.u64(a.id, 'id').u64(a.token, 'token');
      if (op === 'release') {
        const hasDelay = a.delayMs !== undefined && a.delayMs !== null;
        if (a.backoff && hasDelay) {
          throw bad('release takes delayMs or backoff, not both');
        }
        if (hasDelay && a.delayMs === RELEASE_BACKOFF) {
          throw bad(`delayMs must be below ${RELEASE_BACKOFF} (backoff: true releases by the queue's backoff_ms)`);
        }
        w.u32(a.backoff ? RELEASE_BACKOFF : a.delayMs, 'delayMs');
      } else if (op === 'touch') {
        w.u32(a.visibilityMs, 'visibilityMs');
      } else if (op === 'bury') {
        w.raw(bytes(a.reason, 'reason'));
      }
      break;
    case 'peek': {
      const which = PEEK_WHICH[a.which === undefined || a.which === null ? 'ready' : a.which];
      if (which === undefined) {
        throw bad(`which must be ready, delayed, dead or reserved, not ${a.which}`);
      }
      w.u8(which).u16(a.limit, 'limit');
      break;
    }
    case 'redrive': w.u32(a.limit, 'limit'); break;
    case 'configure': w.raw(settingsBytes(a.settings)); break;
    default: break; // stats, pause, resume, purge, delete: the op alone
  }
  const key = queue === undefined || queue === null ? codec.EMPTY : codec.toBytes(queue, 'queue');
  return { key, payload: w.done() };
}

function parseJson(r, what) {
  const text = r.rest().toString('utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw r.fail(`${what} is not JSON: ${err.message}`);
  }
}

/**
 * decodeQueue(op, buf): push -> {id, dup}; reserve -> {id, token,
 * attempts, priority, payload} | null (EMPTY); ack/release/bury ->
 * {status, ok}; touch -> {status, ok, visibilityMs}; peek -> [{id,
 * attempts, priority, state, ageMs, reason, payload}] | null (NOT_FOUND);
 * stats/configure -> the parsed JSON | null; redrive/purge -> bigint |
 * null; pause/resume/delete -> boolean (OK).
 */
function decodeQueue(op, buf) {
  const r = new R(`${QUEUE} ${op}`, buf, QUEUE_STATUS);
  switch (op) {
    case 'push': {
      r.expect('OK');
      const id = r.u64('id');
      const dup = r.u8('dup');
      if (dup > 1) {
        throw r.fail(`dup is ${dup}, not 0 or 1`);
      }
      r.end();
      return { id, dup: dup === 1 };
    }
    case 'reserve': {
      if (r.expect('OK', 'EMPTY') === 'EMPTY') { r.end(); return null; }
      const id = r.u64('id');
      const token = r.u64('token');
      const attempts = r.u32('attempts');
      const priority = r.i16('priority');
      return { id, token, attempts, priority, payload: r.rest() };
    }
    case 'ack': case 'release': case 'bury': {
      const s = r.expect('OK', 'STALE', 'NOT_FOUND');
      r.end();
      return { status: s, ok: s === 'OK' };
    }
    case 'touch': {
      const s = r.expect('OK', 'STALE', 'NOT_FOUND');
      const visibilityMs = s === 'OK' ? r.u32('visibility_ms') : 0;
      r.end();
      return { status: s, ok: s === 'OK', visibilityMs };
    }
    case 'peek': {
      if (r.expect('OK', 'NOT_FOUND') !== 'OK') { r.end(); return null; }
      const n = r.u16('n');
      const entries = [];
      for (let i = 0; i < n; i++) {
        const id = r.u64('id');
        const attempts = r.u32('attempts');
        const priority = r.i16('priority');
        const st = r.u8('state');
        if (st >= JOB_STATES.length) {
          throw r.fail(`unknown job state ${st}`);
        }
        const ageMs = Number(r.u64('age_ms'));
        const rlen = r.u16('reason_len');
        const plen = r.u32('payload_len');
        const reason = r.bytes(rlen, 'reason');
        const payload = r.bytes(plen, 'payload');
        entries.push({ id, attempts, priority, state: JOB_STATES[st], ageMs, reason, payload });
      }
      r.end();
      return entries;
    }
    case 'stats': case 'configure':
      if (r.expect('OK', 'NOT_FOUND') !== 'OK') { r.end(); return null; }
      return parseJson(r, op === 'stats' ? 'the stats' : 'the settings');
    case 'redrive': case 'purge': {
      if (r.expect('OK', 'NOT_FOUND') !== 'OK') { r.end(); return null; }
      const n = r.u64(op === 'redrive' ? 'moved' : 'removed');
      r.end();
      return n;
    }
    case 'pause': case 'resume': case 'delete': {
      const s = r.expect('OK', 'NOT_FOUND');
      r.end();
      return s === 'OK';
    }
    default: throw bad(`unknown ferry.queue op ${op}`);
  }
}

function callOpts(key, opts) {
  const o = { deadlineMs: opts && opts.deadlineMs, signal: opts && opts.signal };
  if (key.length) o.key = key;
  if (o.deadlineMs === undefined) delete o.deadlineMs;
  if (!o.signal) delete o.signal;
  return o;
}

class Cache {
  constructor(client) { this.client = client; }
  async _do(op, a, opts) {
    const { key, payload } = encodeCache(op, a);
    return decodeCache(op, await this.client.call(CACHE, payload, callOpts(key, opts)));
  }
  get(key, opts) { return this._do('get', { key }, opts); }
  gat(key, ttlMs, opts) { return this._do('gat', { key, ttlMs }, opts); }
  getMany(keys, opts) { return this._do('getMany', { keys }, opts); }
  set(key, value, opts = {}) { return this._do('set', { key, value, flags: opts.flags, ttlMs: opts.ttlMs }, opts); }
  add(key, value, opts = {}) { return this._do('add', { key, value, flags: opts.flags, ttlMs: opts.ttlMs }, opts); }
  replace(key, value, opts = {}) { return this._do('replace', { key, value, flags: opts.flags, ttlMs: opts.ttlMs }, opts); }
  append(key, value, opts) { return this._do('append', { key, value }, opts); }
  prepend(key, value, opts) { return this._do('prepend', { key, value }, opts); }
  cas(key, value, cas, opts = {}) {
    return this._do('cas', { key, value, cas, flags: opts.flags, ttlMs: opts.ttlMs }, opts);
  }
  delete(key, opts) { return this._do('delete', { key }, opts); }
  touch(key, ttlMs, opts) { return this._do('touch', { key, ttlMs }, opts); }
  incr(key, delta = 1n, opts) { return this._do('incr', { key, delta }, opts); }
  decr(key, delta = 1n, opts) { return this._do('decr', { key, delta }, opts); }
  async flush(delayMs = 0, opts) { await this._do('flush', { delayMs }, opts); }
}

function cond(opts) {
  if (opts.ifAbsent) return { cond: 'absent', rev: 0n };
  if (opts.ifModRev !== undefined && opts.ifModRev !== null) return { cond: 'modRev', rev: opts.ifModRev };
  return { cond: 'any', rev: 0n };
}

class Kv {
  constructor(client) { this.client = client; }
  async _do(op, key, a, opts) {
    const e = encodeKv(op, key, a);
    return decodeKv(op, await this.client.call(KV, e.payload, callOpts(e.key, opts)));
  }
  /** The entry, or null when absent; getRev() also gives the store's revision. */
  async get(key, opts) {
    const k = bytes(key, 'key');
    const g = await this._do('get', k, {}, opts);
    return g.entry && { ...g.entry, key: k };
  }
  getRev(key, opts) { return this._do('get', key, {}, opts); }
  put(key, value, opts = {}) { return this._do('put', key, { value, ...cond(opts) }, opts); }
  delete(key, opts = {}) { return this._do('delete', key, cond({ ifModRev: opts.ifModRev }), opts); }
  range(key, opts = {}) { return this._do('range', key, { end: opts.end, limit: opts.limit, keysOnly: opts.keysOnly }, opts); }
  async count(key, opts = {}) { return (await this._do('count', key, { end: opts.end }, opts)).count; }
  watch(key, opts = {}) {
    const a = { prefix: opts.prefix, fromRev: opts.fromRev, waitMs: opts.waitMs, maxEvents: opts.maxEvents };
    const o = { ...opts };
    if (o.deadlineMs === undefined) o.deadlineMs = (opts.waitMs || 0) + 5000;
    return this._do('watch', key, a, o);
  }
}

class Id {
  constructor(client) { this.client = client; }
  async next(count = 1, opts) {
    const e = encodeId('next', { count });
    return decodeId('next', await this.client.call(ID, e.payload, callOpts(e.key, opts)));
  }
  async decode(id, opts) {
    const e = encodeId('decode', { id });
    return decodeId('decode', await this.client.call(ID, e.payload, callOpts(e.key, opts)));
  }
}

/** The consume() calls whose failure no retry mends: the consumer stops. */
const CONSUME_FATAL = new Set(['INVALID_ARGUMENT', 'UNKNOWN_SERVICE', 'UNAUTHORIZED', 'VERSION']);
const CONSUME_WAIT_MS = 20000;
const RESERVE_SLACK_MS = 5000; // a reserve's deadline past its wait

/** A queue name, or call options when the queue is left out (stats(opts)). */
function isCallOpts(v) {
  return v !== null && typeof v === 'object' && !(v instanceof Uint8Array);
}

class Queue {
  constructor(client) { this.client = client; }
  async _do(op, queue, a, opts) {
    const e = encodeQueue(op, queue, a);
    return decodeQueue(op, await this.client.call(QUEUE, e.payload, callOpts(e.key, opts)));
  }
  /** Pushes a job; {id, dup} (dup: the dedup id was seen, id is the first push's). */
  push(queue, payload, opts = {}) {
    return this._do('push', queue, {
      payload, priority: opts.priority, delayMs: opts.delayMs, visibilityMs: opts.visibilityMs,
      maxDeliveries: opts.maxDeliveries, dedup: opts.dedup,
    }, opts);
  }
  /** The next job ({id, token, attempts, priority, payload}), or null when
   * none came within waitMs; the call's deadline is waitMs + 5 s. */
  reserve(queue, opts = {}) {
    const o = { ...opts };
    if (o.deadlineMs === undefined) o.deadlineMs = (opts.waitMs || 0) + RESERVE_SLACK_MS;
    return this._do('reserve', queue, { waitMs: opts.waitMs, visibilityMs: opts.visibilityMs }, o);
  }
  ack(queue, id, token, opts) { return this._do('ack', queue, { id, token }, opts); }
  /** Ready again at once, after delayMs, or ({backoff: true}) after the queue's backoff_ms. */
  release(queue, id, token, opts = {}) {
    return this._do('release', queue, { id, token, delayMs: opts.delayMs, backoff: opts.backoff }, opts);
  }
  /** A new visibility time (0 or absent: the job's or the queue's); {status, ok, visibilityMs}. */
  touch(queue, id, token, opts = {}) {
    return this._do('touch', queue, { id, token, visibilityMs: opts.visibilityMs }, opts);
  }
  bury(queue, id, token, reason, opts) { return this._do('bury', queue, { id, token, reason }, opts); }
  /** Up to limit (0: 10) jobs of one kind, or null when there is no such queue. */
  peek(queue, opts = {}) { return this._do('peek', queue, { which: opts.which, limit: opts.limit }, opts); }
  /** One queue's stats, or every queue's ({queues: [...]}; in a cluster every node's, each with its node, and nodes, missing) without a name; null when there is no such queue. */
  stats(queue, opts) {
    if (opts === undefined && isCallOpts(queue)) {
      return this._do('stats', undefined, {}, queue);
    }
    return this._do('stats', queue, {}, opts);
  }
  /** Moves up to limit (0: 10000) dead jobs back; the count, or null. */
  redrive(queue, opts = {}) { return this._do('redrive', queue, { limit: opts.limit }, opts); }
  pause(queue, opts) { return this._do('pause', queue, {}, opts); }
  resume(queue, opts) { return this._do('resume', queue, {}, opts); }
  /** Removes the ready and delayed jobs (at most 10000 a call); the count, or null. */
  purge(queue, opts) { return this._do('purge', queue, {}, opts); }
  delete(queue, opts) { return this._do('delete', queue, {}, opts); }
  /** Changes settings ({max_deliveries: 5, backoff_ms: [1000, 5000]}); the queue's settings now. */
  configure(queue, settings, opts) { return this._do('configure', queue, { settings }, opts); }
  /** Runs handler(job) for each job with credit reserves in flight; see Consumer. */
  consume(queue, handler, opts) { return new Consumer(this, queue, handler, opts); }
}

/**
 * A job handed to a consume() handler: the reserved job's fields, its
 * queue, and ack/release/bury/touch of its reservation. Once the handler
 * acked, released or buried it, the consumer leaves it alone.
 */
class ConsumedJob {
  constructor(consumer, job) {
    this.queue = consumer.queue;
    this.id = job.id;
    this.token = job.token;
    this.attempts = job.attempts;
    this.priority = job.priority;
    this.payload = job.payload;
    this.settled = false;
    this._q = consumer._q;
  }
  _end(p) { this.settled = true; return p; }
  ack(opts) { return this._end(this._q.ack(this.queue, this.id, this.token, opts)); }
  release(opts) { return this._end(this._q.release(this.queue, this.id, this.token, opts)); }
  bury(reason, opts) { return this._end(this._q.bury(this.queue, this.id, this.token, reason, opts)); }
  touch(opts) { return this._q.touch(this.queue, this.id, this.token, opts); }
}

/**
 * client.queue.consume(queue, handler, {credit, waitMs, visibilityMs,
 * release, signal}): keeps credit (default 1) reserves in flight, each a
 * long poll of waitMs (default 20000); each job goes to handler(job);
 * when the handler's promise resolves the job is acked, when it rejects
 * (or throws) it is released, by default after the queue's backoff_ms
 * (release: {delayMs: N} for a fixed delay). stop(), or aborting signal,
 * sends no more reserves, cancels the waiting ones and waits for the
 * handlers running. A failed reserve is retried with backoff (DEADLINE:
 * at once); one that no retry mends (INVALID_ARGUMENT, UNKNOWN_SERVICE,
 * UNAUTHORIZED, ...) stops the consumer and rejects done.
 *
 * Events: 'error' (err, job | null): a reserve, ack or release failed
 * (only emitted with a listener); 'handlerError' (err, job): the handler
 * rejected and the job was released; 'stale' (job, status): an ack or
 * release came back STALE or NOT_FOUND (the reservation ran out first:
 * the job may have gone to another consumer).
 */
class Consumer extends EventEmitter {
  constructor(q, queue, handler, opts = {}) {
    super();
    if (typeof handler !== 'function') {
      throw new TypeError('handler must be a function');
    }
    const credit = opts.credit === undefined ? 1 : opts.credit;
    if (!Number.isInteger(credit) || credit < 1 || credit > 65535) {
      throw bad('credit must be an integer from 1 to 65535');
    }
    this.queue = queue;
    this.credit = credit;
    this.handled = 0; // jobs whose handler settled
    this.held = 0; // jobs in the handler now
    this._q = q;
    this._handler = handler;
    this._waitMs = opts.waitMs === undefined ? CONSUME_WAIT_MS : opts.waitMs;
    if (!Number.isInteger(this._waitMs) || this._waitMs < 1 || this._waitMs > 600000) {
      throw bad('waitMs must be an integer from 1 to 600000'); // 0 would spin on EMPTY
    }
    this._visibilityMs = opts.visibilityMs;
    this._release = opts.release || { backoff: true };
    // Bad options fail here, not at each job's release.
    encodeQueue('release', queue, { id: 0n, token: 0n, ...this._release });
    encodeQueue('reserve', queue, { visibilityMs: this._visibilityMs });
    this._reserves = new Set(); // AbortControllers of the reserves in flight
    this._stopping = false;
    this._wake = null; // resolves the backoff sleeps when stopping
    this._sleep = new Promise((resolve) => { this._wake = resolve; });
    this._fatal = null;
    const c = q.client;
    const backoffs = Array.from({ length: credit }, () => new Backoff(c.opts.reconnectMinMs, c.opts.reconnectMaxMs));
    this.done = Promise.all(backoffs.map((b) => this._slot(b))).then(() => {
      if (this._fatal !== null) throw this._fatal;
    });
    this.done.catch(() => {}); // rejects only for a caller who awaits it
    this._signal = opts.signal || null;
    if (this._signal !== null) {
      this._onAbort = () => { this.stop(); };
      if (this._signal.aborted) {
        this.stop();
      } else {
        this._signal.addEventListener('abort', this._onAbort, { once: true });
      }
    }
  }

  /** Reserves waiting now. */
  get waiting() { return this._reserves.size; }

  get stopped() { return this._stopping; }

  /**
   * Sends no more reserves and cancels the waiting ones; resolves when the
   * handlers running have ended and their jobs are acked or released, or
   * after timeoutMs (default 30000; their jobs then come back after their
   * visibility timeout).
   */
  async stop({ timeoutMs = 30000 } = {}) {
    this._halt();
    let t;
    await Promise.race([
      this.done.catch(() => {}),
      new Promise((resolve) => { t = setTimeout(resolve, timeoutMs); }),
    ]);
    clearTimeout(t);
  }

  _halt() {
    if (this._stopping) {
      return;
    }
    this._stopping = true;
    this._wake();
    for (const ac of this._reserves) {
      ac.abort();
    }
    if (this._signal !== null) {
      this._signal.removeEventListener('abort', this._onAbort);
    }
  }

  _emitError(err, job) {
    if (this.listenerCount('error') > 0) {
      this.emit('error', err, job);
    }
  }

  async _slot(backoff) {
    await null; // the constructor returns before the first reserve
    while (!this._stopping) {
      const ac = new AbortController();
      this._reserves.add(ac);
      let job;
      try {
        job = await this._q.reserve(this.queue, { waitMs: this._waitMs, visibilityMs: this._visibilityMs, signal: ac.signal });
      } catch (err) {
        if (this._stopping) {
          break;
        }
        if (this._q.client._state === 'closed') {
          this._halt();
          break;
        }
        if (err instanceof FerryError && err.code === 'DEADLINE') {
          continue; // ferryd's max_deadline_ms cut the wait short
        }
        if (err instanceof FerryError && CONSUME_FATAL.has(err.code)) {
          if (this._fatal === null) this._fatal = err;
          this._halt();
          break;
        }
        this._emitError(err, null);
        let t;
        await Promise.race([this._sleep, new Promise((resolve) => { t = setTimeout(resolve, backoff.take()); })]);
        clearTimeout(t);
        continue;
      } finally {
        this._reserves.delete(ac);
      }
      backoff.reset();
      if (job !== null) {
        await this._run(new ConsumedJob(this, job));
      }
    }
  }

  async _run(job) {
    this.held++;
    let failed = null;
    try {
      await this._handler(job);
    } catch (err) {
      failed = err === undefined || err === null ? new Error('handler rejected') : err;
    }
    this.held--;
    this.handled++;
    if (failed !== null && this.listenerCount('handlerError') > 0) {
      this.emit('handlerError', failed, job);
    }
    if (job.settled) {
      return;
    }
    const op = failed === null ? 'ack' : 'release';
    try {
      const r = op === 'ack' ? await job.ack() : await job.release(this._release);
      if (!r.ok) {
        this.emit('stale', job, r.status);
      }
    } catch (err) {
      this._emitError(err, job);
    }
  }
}

// ---------------------------------------------------------------- topic

const TOPIC = 'ferry.topic';
// ferry.queue's values; 2 (STALE) is no answer of ferry.topic (expect() refuses it).
const TOPIC_STATUS = ['OK', 'EMPTY', 'STALE', 'NOT_FOUND'];
const TOPIC_OPS = { publish: 1, subscribe: 2, poll: 3, unsubscribe: 4, stats: 5 };
const TOPIC_POLICY = { drop_oldest: 0, close: 1 };
const POLL_SLACK_MS = 5000; // a poll's deadline past its wait
const MESSAGES_WAIT_MS = 25000; // a subscriber's long poll, below topic_idle_ms
const RETRY_MAX_MS = 2000; // a subscriber's longest pause before polling again

/**
 * encodeTopic(op, {subject, payload, pattern, group, maxPending, policy,
 * subId, waitMs, maxMsgs}) -> {key, payload}. publish's subject and
 * subscribe's pattern travel as the routing key (ferryd checks them);
 * stats without a subId: the totals.
 */
function encodeTopic(op, a = {}) {
  const code = TOPIC_OPS[op];
  if (code === undefined) {
    throw bad(`unknown ferry.topic op ${op}`);
  }
  const w = new W().u8(code);
  let key = codec.EMPTY;
  const has = (v) => v !== undefined && v !== null;
  switch (op) {
    case 'publish':
      key = bytes(a.subject, 'subject');
      w.raw(bytes(a.payload, 'payload'));
      break;
    case 'subscribe': {
      key = bytes(a.pattern, 'pattern');
      const group = bytes(a.group, 'group');
      const policy = TOPIC_POLICY[has(a.policy) ? a.policy : 'drop_oldest'];
      if (policy === undefined) {
        throw bad(`policy must be drop_oldest or close, not ${a.policy}`);
      }
      w.u8(group.length, 'group length (at most 255 bytes)').raw(group).u32(a.maxPending, 'maxPending').u8(policy);
      break;
    }
    case 'poll': w.u64(subIdArg(a.subId), 'subId').u32(a.waitMs, 'waitMs').u32(a.maxMsgs, 'maxMsgs'); break;
    case 'unsubscribe': w.u64(subIdArg(a.subId), 'subId'); break;
    default: if (has(a.subId)) w.u64(subIdArg(a.subId), 'subId'); break; // stats
  }
  return { key, payload: w.done() };
}

/** A sub id as given (a bigint, or an integer number) for W.u64. */
function subIdArg(v) {
  if (typeof v === 'number' && !Number.isSafeInteger(v)) {
    throw bad(`subId must be an integer from 0 to ${U64_MAX}`);
  }
  return v === undefined || v === null ? 0n : v;
}

/**
 * decodeTopic(op, buf): publish -> receivers (number); subscribe -> the
 * subId (bigint); poll -> {messages: [{kind: 'message', seq, subject,
 * payload}], dropped} | null (NOT_FOUND), seq and dropped bigint;
 * unsubscribe -> boolean (OK); stats -> the parsed JSON | null. An OK
 * poll without a message is malformed (that is EMPTY).
 */
function decodeTopic(op, buf) {
  const r = new R(`${TOPIC} ${op}`, buf, TOPIC_STATUS);
  switch (op) {
    case 'publish': {
      r.expect('OK');
      const n = r.u32('receivers');
      r.end();
      return n;
    }
    case 'subscribe': {
      r.expect('OK');
      const id = r.u64('sub_id');
      r.end();
      return id;
    }
    case 'poll': {
      const s = r.expect('OK', 'EMPTY', 'NOT_FOUND');
      if (s === 'NOT_FOUND') { r.end(); return null; }
      const dropped = r.u64('dropped');
      const messages = [];
      if (s === 'OK') {
        const n = r.count('n');
        if (n === 0) {
          throw r.fail('OK without a message (that is EMPTY)');
        }
        for (let i = 0; i < n; i++) {
          const seq = r.u64('seq');
          const subject = r.bytes(r.u16('subject_len'), 'subject').toString('utf8');
          const payload = r.bytes(r.u32('len'), 'payload');
          messages.push({ kind: 'message', seq, subject, payload });
        }
      }
      r.end();
      return { messages, dropped };
    }
    case 'unsubscribe': {
      const s = r.expect('OK', 'NOT_FOUND');
      r.end();
      return s === 'OK';
    }
    case 'stats':
      if (r.expect('OK', 'NOT_FOUND') !== 'OK') { r.end(); return null; }
      return parseJson(r, 'the stats');
    default: throw bad(`unknown ferry.topic op ${op}`);
  }
}

function subscribeArgs(pattern, opts) {
  return { pattern, group: opts.group, maxPending: opts.maxPending, policy: opts.policy };
}

function checkWait(waitMs) {
  const w = waitMs === undefined ? MESSAGES_WAIT_MS : waitMs;
  if (!Number.isInteger(w) || w < 1 || w > 600000) {
    throw bad('waitMs must be an integer from 1 to 600000'); // 0 would spin on EMPTY
  }
  return w;
}

function pauseFor(ms, signal) {
  return new Promise((resolve) => {
    if (ms <= 0 || (signal && signal.aborted)) { resolve(); return; }
    const done = () => { clearTimeout(t); if (signal) signal.removeEventListener('abort', done); resolve(); };
    const t = setTimeout(done, ms);
    if (signal) signal.addEventListener('abort', done, { once: true });
  });
}

class Topic {
  constructor(client) { this.client = client; }
  async _do(op, a, opts) {
    const e = encodeTopic(op, a);
    return decodeTopic(op, await this.client.call(TOPIC, e.payload, callOpts(e.key, opts)));
  }
  /** Publishes payload on subject; the subscriptions it reached (a group counts once). */
  publish(subject, payload, opts) { return this._do('publish', { subject, payload }, opts); }
  /**
   * subscribe(pattern, {group, maxPending, policy}) -> the subId; or
   * subscribe(pattern, handler, opts) -> a Subscriber calling handler for
   * each message until stopped.
   */
  subscribe(pattern, handler, opts) {
    if (typeof handler === 'function') {
      return new Subscriber(this, pattern, handler, opts);
    }
    const o = handler || {};
    return this._do('subscribe', subscribeArgs(pattern, o), o);
  }
  /** {messages, dropped} (messages empty when waitMs passed), or null when the subscription is gone; the deadline is waitMs + 5 s. */
  poll(subId, opts = {}) {
    const o = { ...opts };
    if (o.deadlineMs === undefined) o.deadlineMs = (opts.waitMs || 0) + POLL_SLACK_MS;
    return this._do('poll', { subId, waitMs: opts.waitMs, maxMsgs: opts.maxMsgs }, o);
  }
  /** false when the subscription was gone. */
  unsubscribe(subId, opts) { return this._do('unsubscribe', { subId }, opts); }
  /** The totals, or one subscription's object (null when there is no such one). */
  stats(subId, opts) {
    if (opts === undefined && isCallOpts(subId)) {
      return this._do('stats', {}, subId);
    }
    return this._do('stats', { subId }, opts);
  }

  /**
   * An async iterator over pattern's messages: subscribes, keeps one poll
   * of waitMs (default 25000) in flight while it waits, and yields each
   * message ({kind: 'message', seq, subject, payload}), with a gap notice
   * ({kind: 'gap', dropped, resubscribed: false}) before the messages of
   * an answer that tells dropped ones, and {kind: 'gap', dropped: 0n,
   * resubscribed: true} when the subscription had expired and was made
   * again. A lost connection or DEADLINE polls again; other errors end it
   * (SLOW_CONSUMER with policy close). Aborting opts.signal, or leaving the
   * loop (break), ends it and unsubscribes.
   */
  async *messages(pattern, opts = {}) {
    const waitMs = checkWait(opts.waitMs);
    const signal = opts.signal || null;
    encodeTopic('poll', { waitMs, maxMsgs: opts.maxMsgs }); // bad options fail before subscribing
    const sub = subscribeArgs(pattern, opts);
    let subId = await this._do('subscribe', sub, { signal });
    let pause = 0;
    try {
      while (!(signal && signal.aborted)) {
        let got;
        try {
          got = await this.poll(subId, { waitMs, maxMsgs: opts.maxMsgs, signal });
        } catch (err) {
          if ((signal && signal.aborted) || this.client._state === 'closed') return;
          if (!(err instanceof FerryError) || (err.code !== 'DEADLINE' && err.code !== 'CONNECTION')) throw err;
          await pauseFor(pause, signal);
          pause = Math.min(RETRY_MAX_MS, pause * 2 || 50);
          continue;
        }
        pause = 0;
        if (got === null) {
          subId = await this._do('subscribe', sub, { signal });
          yield { kind: 'gap', dropped: 0n, resubscribed: true };
          continue;
        }
        if (got.dropped > 0n) yield { kind: 'gap', dropped: got.dropped, resubscribed: false };
        for (const m of got.messages) yield m;
      }
    } finally {
      if (this.client._state !== 'closed') {
        await this.unsubscribe(subId).catch(() => {}); // gone already: it expires
      }
    }
  }
}

/**
 * client.topic.subscribe(pattern, handler, {group, maxPending, policy,
 * waitMs, maxMsgs, signal}): calls await handler(message) for each
 * message of client.topic.messages(pattern, opts), one at a time, in
 * order. stop() (or aborting signal) cancels the poll in flight and
 * unsubscribes; done resolves then, or rejects with the error that ended
 * it (SLOW_CONSUMER: closed by policy close, INVALID_ARGUMENT, ...).
 *
 * Events: 'gap' (dropped, resubscribed): messages were lost before the
 * next one (dropped of them; resubscribed: the subscription had expired
 * and was made again, a count unknown); 'handlerError' (err, message):
 * the handler rejected (only emitted with a listener; the loop goes on).
 */
class Subscriber extends EventEmitter {
  constructor(t, pattern, handler, opts = {}) {
    super();
    this.pattern = pattern;
    this.received = 0; // messages handed to the handler
    checkWait(opts.waitMs);
    encodeTopic('subscribe', subscribeArgs(pattern, opts));
    this._ac = new AbortController();
    this._signal = opts.signal || null;
    if (this._signal !== null) {
      this._onAbort = () => { this._ac.abort(); };
      if (this._signal.aborted) this._ac.abort();
      else this._signal.addEventListener('abort', this._onAbort, { once: true });
    }
    this._it = t.messages(pattern, { ...opts, signal: this._ac.signal });
    this.done = this._run(handler).finally(() => {
      if (this._signal !== null) this._signal.removeEventListener('abort', this._onAbort);
    });
    this.done.catch(() => {}); // rejects only for a caller who awaits it
  }

  get stopped() { return this._ac.signal.aborted; }

  async _run(handler) {
    await null; // the constructor returns before the subscribe
    try {
      for await (const m of this._it) {
        if (m.kind === 'gap') {
          this.emit('gap', m.dropped, m.resubscribed);
          continue;
        }
        this.received++;
        try {
          await handler(m);
        } catch (err) {
          if (this.listenerCount('handlerError') > 0) this.emit('handlerError', err, m);
        }
        if (this._ac.signal.aborted) break;
      }
    } catch (err) {
      if (!this._ac.signal.aborted) throw err; // stopped while subscribing: no error
    }
  }

  /** Cancels the poll in flight; resolves once unsubscribed. */
  async stop() {
    this._ac.abort();
    await this.done.catch(() => {});
  }
}

/** Adds client.cache, client.kv, client.id, client.queue and client.topic (made on first use) to a class. */
/** ferry.cluster's JSON document; anything but a JSON object: INVALID_ARGUMENT. */
function decodeCluster(reply) {
  let doc;
  try {
    doc = JSON.parse(Buffer.from(reply).toString('utf8'));
  } catch (e) {
    throw bad(`${CLUSTER} reply: not JSON: ${e.message}`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw bad(`${CLUSTER} reply: not an object`);
  }
  return doc;
}

/** client.cluster(opts): this node's view of its cluster (docs/cluster.md). */
async function cluster(opts) {
  return decodeCluster(await this.call(CLUSTER, codec.EMPTY, callOpts(codec.EMPTY, opts)));
}

function install(cls) {
  Object.defineProperty(cls.prototype, 'cluster', { configurable: true, writable: true, value: cluster });
  for (const [name, Helper] of [['cache', Cache], ['kv', Kv], ['id', Id], ['queue', Queue], ['topic', Topic]]) {
    const slot = Symbol(name);
    Object.defineProperty(cls.prototype, name, {
      configurable: true,
      get() {
        if (!this[slot]) this[slot] = new Helper(this);
        return this[slot];
      },
    });
  }
}

module.exports = {
  Cache, Kv, Id, Queue, Consumer, ConsumedJob, Topic, Subscriber, install, encodeCache, encodeKv, encodeId,
  encodeQueue, encodeTopic, decodeCache, decodeKv, decodeId, decodeQueue, decodeTopic, decodeCluster,
};
