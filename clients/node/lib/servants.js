// SPDX-License-Identifier: MIT
'use strict';
/*
 * servants.js - helpers for ferryd's built-in services ferry.cache,
 * ferry.kv and ferry.id (docs/services.md): client.cache, client.kv and
 * client.id encode the request payloads and decode the replies. u64s
 * (cas, revisions, versions, counts, ids) are bigint.
 *
 *   const item = await client.cache.get('user:1');   // {value, flags, cas} | null
 *   const { rev } = await client.kv.put('cfg/a', '1');
 *   const ids = await client.id.next(10);              // bigint[]
 *
 * encodeX / decodeX are the codec (tests/vectors/client_payloads.json);
 * a malformed reply rejects with InvalidArgumentError.
 */
const { FerryError } = require('./errors');
const codec = require('./codec');

const CACHE = 'ferry.cache';
const KV = 'ferry.kv';
const ID = 'ferry.id';
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

/** A bounds-checked reader of one reply. */
class R {
  constructor(what, buf) { this.what = what; this.b = buf; this.i = 0; }
  fail(why) { return bad(`${this.what} reply: ${why}`); }
  need(n, name) {
    if (this.b.length - this.i < n) {
      throw this.fail(`${name} needs ${n} bytes, got ${this.b.length - this.i}`);
    }
  }
  u8(name) { this.need(1, name); return this.b[this.i++]; }
  u16(name) { this.need(2, name); const v = this.b.readUInt16BE(this.i); this.i += 2; return v; }
  u32(name) { this.need(4, name); const v = this.b.readUInt32BE(this.i); this.i += 4; return v; }
  u64(name) { this.need(8, name); const v = this.b.readBigUInt64BE(this.i); this.i += 8; return v; }
  bytes(n, name) { this.need(n, name); const v = this.b.subarray(this.i, this.i + n); this.i += n; return v; }
  rest() { const v = this.b.subarray(this.i); this.i = this.b.length; return v; }
  left() { return this.b.length - this.i; }
  status() {
    const s = this.u8('status');
    if (s >= STATUS.length) {
      throw this.fail(`unknown status ${s}`);
    }
    return STATUS[s];
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

/** Adds client.cache, client.kv and client.id (made on first use) to a class. */
function install(cls) {
  for (const [name, Helper] of [['cache', Cache], ['kv', Kv], ['id', Id]]) {
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
  Cache, Kv, Id, install, encodeCache, encodeKv, encodeId, decodeCache, decodeKv, decodeId,
};
