// SPDX-License-Identifier: MIT
'use strict';
/*
 * client.js - the caller: names a service, sends a REQUEST to ferryd and
 * settles the promise with the REPLY or ERROR.
 *
 * Calls are pipelined on one connection: each takes the next id, goes
 * into the call table and into the connection's output arena, and every
 * call of a tick leaves in one write. Replies are matched by id in any
 * order. Every call ends exactly once: with ferryd's answer; with
 * DeadlineError when nothing came by its local safety time (its deadline,
 * or ferryd's default, capped by ferryd's max, plus slack; the request is
 * then cancelled); with CancelledError when its AbortSignal fires; or with
 * ConnectionError when the connection drops while it is at ferryd.
 *
 * While there is no connection (ferryd restarting) calls wait and are sent
 * once the client has reconnected, still within their deadlines.
 */
const { EventEmitter } = require('events');
const { performance } = require('perf_hooks');
const codec = require('./codec');
const { Conn, Backoff, commonOpts } = require('./conn');
const { FerryError } = require('./errors');

const SLACK_MS = 250; // local timers fire this long after ferryd's deadline
const V1_DEFAULT_DEADLINE_MS = 5000; // ferryd's defaults, for a v1 HELLO_OK
const V1_MAX_DEADLINE_MS = 60000;
const COPY_BELOW = 16 * 1024; // replies smaller than this are copied out
const SERVICE_CACHE_MAX = 1024;

const WAITING = 0; // not sent yet (no connection, or back-pressure)
const SENT = 1; // at ferryd
const DONE = 2;

/** One call in flight: the call table entry, its timer list node and
 * the promise's settle functions. */
class Call {
  constructor(id, service, key, payload, flags, deadlineMs, signal) {
    this.id = id;
    this.service = service; // Buffer
    this.key = key; // Buffer
    this.payload = payload; // Buffer or string
    this.flags = flags;
    this.deadlineMs = deadlineMs;
    this.signal = signal;
    this.onAbort = null;
    this.state = WAITING;
    this.conn = null; // the connection it was queued on
    this.seq = 0; // it leaves with that connection's write number seq
    this.queuedLen = -1; // bytes counted in _waitingBytes while it waits
    this.start = 0;
    this.expireAt = 0;
    this.list = null; // Timers list while armed
    this.prev = null;
    this.next = null;
    this.resolve = null;
    this.reject = null;
  }
}

/**
 * Local safety timers without an OS timer per call: one doubly linked list
 * per duration (calls of one duration expire in the order they were
 * armed) and one setTimeout at the earliest head.
 */
class Timers {
  constructor(onExpire) {
    this.lists = new Map();
    this.onExpire = onExpire;
    this.timer = null;
    this.at = Infinity;
    this.fireBound = () => this.fire();
  }

  add(call, durMs, now) {
    call.expireAt = now + durMs;
    let l = this.lists.get(durMs);
    if (l === undefined) {
      l = { head: null, tail: null };
      this.lists.set(durMs, l);
    }
    call.list = l;
    call.prev = l.tail;
    call.next = null;
    if (l.tail !== null) {
      l.tail.next = call;
    } else {
      l.head = call;
    }
    l.tail = call;
    if (call.expireAt < this.at) {
      this.arm(call.expireAt, now);
    }
  }

  remove(call) {
    const l = call.list;
    if (l === null) {
      return;
    }
    if (call.prev !== null) {
      call.prev.next = call.next;
    } else {
      l.head = call.next;
    }
    if (call.next !== null) {
      call.next.prev = call.prev;
    } else {
      l.tail = call.prev;
    }
    call.list = call.prev = call.next = null;
  }

  arm(at, now) {
    if (this.timer !== null) {
      clearTimeout(this.timer);
    }
    this.at = at;
    this.timer = setTimeout(this.fireBound, Math.max(0, Math.ceil(at - now)));
  }

  fire() {
    this.timer = null;
    this.at = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const [dur, l] of this.lists) {
      while (l.head !== null && l.head.expireAt <= now + 1) {
        const c = l.head;
        this.remove(c);
        this.onExpire(c);
      }
      if (l.head !== null) {
        next = Math.min(next, l.head.expireAt);
      } else {
        this.lists.delete(dur);
      }
    }
    if (next !== Infinity && next < this.at) {
      this.arm(next, performance.now());
    }
  }

  clear() {
    if (this.timer !== null) {
      clearTimeout(this.timer);
    }
    this.timer = null;
    this.at = Infinity;
    this.lists.clear();
  }
}

class Client extends EventEmitter {
  /**
   * new Client({addr, token, name, heartbeatMs, connectTimeoutMs,
   * reconnectMinMs, reconnectMaxMs, maxFrame, maxQueuedBytes}).
   * Connects on connect() or on the first call.
   */
  constructor(opts = {}) {
    super();
    this.opts = commonOpts(opts, codec.ROLE_CALLER);
    this.addr = this.opts.addr.text;
    this.maxQueuedBytes = opts.maxQueuedBytes || 32 * 1024 * 1024;
    this.connects = 0; // HELLO_OKs received
    this.server = null; // the last HELLO_OK's fields
    this._conn = null;
    this._state = 'idle'; // idle, connecting, ready, backoff, closed
    this._calls = new Map(); // id -> Call, waiting or sent
    this._waiting = []; // calls to send once connected, in order
    this._waitingHead = 0;
    this._waitingBytes = 0;
    this._nextId = 1;
    this._everReady = false;
    this._lastError = null;
    this._connectWaiters = [];
    this._backoff = new Backoff(this.opts.reconnectMinMs, this.opts.reconnectMaxMs);
    this._retryTimer = null;
    this._defaultDeadline = V1_DEFAULT_DEADLINE_MS;
    this._maxDeadline = V1_MAX_DEADLINE_MS;
    this._services = new Map(); // service name -> its bytes
    this._timers = new Timers((c) => this._expire(c));
  }

  /** Calls not yet answered. */
  get pending() { return this._calls.size; }

  /** Whether a connection is up (HELLO_OK received). */
  get connected() { return this._state === 'ready'; }

  /** Connects now; resolves once HELLO_OK came, rejects with the first
   * failure (ConnectionError, UnauthorizedError, ...). */
  connect() {
    if (this._state === 'ready') {
      return Promise.resolve();
    }
    if (this._state === 'closed') {
      return Promise.reject(FerryError.of(16, 'client closed'));
    }
    return new Promise((resolve, reject) => {
      this._connectWaiters.push({ resolve, reject });
      if (this._state === 'idle' || this._state === 'backoff') {
        this._open();
      }
    });
  }

  /**
   * call(service, payload, {deadlineMs, key, idempotent, signal}) ->
   * Promise<Buffer>. payload and key: Buffer, Uint8Array or string
   * (UTF-8); a Buffer is sent as it is, so do not change it before the
   * call settles.
   */
  call(service, payload, opts) {
    let deadlineMs = 0;
    let key = codec.EMPTY;
    let flags = 0;
    let signal = null;
    try {
      if (opts !== undefined && opts !== null) {
        if (opts.deadlineMs !== undefined) {
          deadlineMs = opts.deadlineMs;
          if (!Number.isInteger(deadlineMs) || deadlineMs < 0 || deadlineMs > codec.MAX_U32) {
            throw FerryError.of(11, `deadlineMs must be an integer from 0 to ${codec.MAX_U32}`);
          }
        }
        if (opts.key !== undefined && opts.key !== null) {
          key = codec.toBytes(opts.key, 'key');
          if (key.length > codec.MAX_KEY) {
            throw FerryError.of(11, `key is ${key.length} bytes, more than ${codec.MAX_KEY}`);
          }
        }
        if (opts.idempotent) {
          flags = codec.IDEMPOTENT;
        }
        if (opts.signal) {
          signal = opts.signal;
        }
      }
      if (typeof payload !== 'string') {
        payload = codec.toBytes(payload, 'payload');
      }
      service = this._service(service);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this._state === 'closed') {
      return Promise.reject(FerryError.of(16, 'client closed'));
    }
    if (signal !== null && signal.aborted) {
      return Promise.reject(FerryError.of(12, 'call cancelled', { cause: signal.reason }));
    }
    const c = new Call(this._nextId++, service, key, payload, flags, deadlineMs, signal);
    const p = new Promise((resolve, reject) => {
      c.resolve = resolve;
      c.reject = reject;
    });
    const now = performance.now();
    c.start = now;
    this._calls.set(c.id, c);
    this._timers.add(c, this._safetyMs(deadlineMs), now);
    if (signal !== null) {
      c.onAbort = () => this._abort(c);
      signal.addEventListener('abort', c.onAbort, { once: true });
    }
    const conn = this._conn;
    if (this._state === 'ready' && this._waitingHead === this._waiting.length &&
        conn.queuedBytes < this.maxQueuedBytes) {
      this._send(conn, c, now);
    } else {
      this._wait(c);
    }
    return p;
  }

  /** Closes the connection; calls not answered yet reject with
   * CancelledError ("client closed"). Resolves once the socket is closed. */
  close() {
    if (this._state === 'closed') {
      return Promise.resolve();
    }
    this._state = 'closed';
    clearTimeout(this._retryTimer);
    this._timers.clear();
    const calls = [...this._calls.values()];
    this._calls.clear();
    this._waiting = [];
    this._waitingHead = 0;
    this._waitingBytes = 0;
    for (const c of calls) {
      this._settleError(c, FerryError.of(12, 'client closed'));
    }
    for (const w of this._connectWaiters.splice(0)) {
      w.reject(FerryError.of(16, 'client closed'));
    }
    const conn = this._conn;
    this._conn = null;
    return conn !== null ? conn.end() : Promise.resolve();
  }

  /* ----------------------------------------------------------- inside */

  _service(name) {
    let b = this._services.get(name);
    if (b !== undefined) {
      return b;
    }
    if (typeof name !== 'string') {
      throw new TypeError('service must be a string');
    }
    b = Buffer.from(name, 'utf8');
    if (b.length < 1 || b.length > codec.MAX_NAME) {
      throw FerryError.of(11, `service name must be 1 to ${codec.MAX_NAME} bytes`);
    }
    if (this._services.size < SERVICE_CACHE_MAX) {
      this._services.set(name, b);
    }
    return b;
  }

  /** The local safety time of a call: its deadline (or ferryd's default)
   * capped by ferryd's max, plus slack. */
  _safetyMs(deadlineMs) {
    let d = deadlineMs || this._defaultDeadline;
    if (this._maxDeadline > 0 && d > this._maxDeadline) {
      d = this._maxDeadline;
    }
    return d + SLACK_MS;
  }

  _payloadLen(c) {
    return typeof c.payload === 'string' ? Buffer.byteLength(c.payload) : c.payload.length;
  }

  _wait(c) {
    this._waiting.push(c);
    c.queuedLen = this._payloadLen(c);
    this._waitingBytes += c.queuedLen;
    if (this._waitingBytes > this.maxQueuedBytes && this._waiting.length - this._waitingHead > 1) {
      this._waiting.pop();
      this._finish(c);
      c.reject(FerryError.of(10, `client: more than ${this.maxQueuedBytes} bytes of calls wait to be sent to ferryd`));
      return;
    }
    if (this._state === 'idle') {
      this._open();
    }
  }

  /** Encodes c into the connection's output; the payload is copied into
   * the arena when small, else sent as its own Buffer. */
  _send(conn, c, now) {
    const plen = typeof c.payload === 'string' ? Buffer.byteLength(c.payload) : c.payload.length;
    const s = c.service;
    const k = c.key;
    const body = 8 + s.length + k.length + plen;
    if (body > conn.peerMaxFrame) {
      this._finish(c);
      c.reject(FerryError.of(2, `request of ${body} bytes is larger than ferryd's max_frame ${conn.peerMaxFrame}`));
      return;
    }
    let deadline = c.deadlineMs;
    if (deadline > 0 && now - c.start >= 1) {
      deadline = Math.max(1, deadline - Math.floor(now - c.start));
    }
    const size = codec.HEADER_SIZE + body;
    const off = conn.reserve(size);
    if (off >= 0) {
      const a = conn.arena;
      const o = codec.writeRequestHead(a, off, c.id, c.flags, deadline, s, k, plen);
      if (typeof c.payload === 'string') {
        a.write(c.payload, o, 'utf8');
      } else {
        c.payload.copy(a, o);
      }
    } else {
      const head = Buffer.allocUnsafe(size - plen);
      codec.writeRequestHead(head, 0, c.id, c.flags, deadline, s, k, plen);
      conn.push(head);
      conn.push(typeof c.payload === 'string' ? Buffer.from(c.payload, 'utf8') : c.payload);
    }
    c.state = SENT;
    c.conn = conn;
    c.seq = conn.flushes + 1;
  }

  /** Sends the calls that waited, in order, while the connection takes
   * them. */
  _sendWaiting() {
    const conn = this._conn;
    const q = this._waiting;
    const now = performance.now();
    while (this._waitingHead < q.length && conn.isReady && conn.queuedBytes < this.maxQueuedBytes) {
      const c = q[this._waitingHead];
      q[this._waitingHead++] = undefined;
      if (c.state !== WAITING) {
        continue;
      }
      this._unqueue(c);
      this._send(conn, c, now);
    }
    if (this._waitingHead === q.length) {
      this._waiting = [];
      this._waitingHead = 0;
      this._waitingBytes = 0;
    }
  }

  _unqueue(c) {
    if (c.queuedLen >= 0) {
      this._waitingBytes -= c.queuedLen;
      c.queuedLen = -1;
    }
  }

  /** Takes c out of the table and its timer list. */
  _finish(c) {
    this._unqueue(c);
    c.state = DONE;
    c.payload = null;
    c.conn = null;
    this._calls.delete(c.id);
    this._timers.remove(c);
    if (c.onAbort !== null) {
      c.signal.removeEventListener('abort', c.onAbort);
      c.onAbort = null;
    }
  }

  _settleError(c, err) {
    this._finish(c);
    c.reject(err);
  }

  _abort(c) {
    if (c.state === DONE) {
      return;
    }
    if (c.state === SENT && this._conn !== null && this._conn.isReady) {
      this._conn.sendEmpty(codec.CANCEL, c.id);
    }
    c.onAbort = null;
    this._settleError(c, FerryError.of(12, 'call cancelled', { cause: c.signal.reason }));
  }

  _expire(c) {
    if (c.state === DONE) {
      return;
    }
    const waited = Math.round(performance.now() - c.start);
    if (c.state === SENT) {
      if (this._conn !== null && this._conn.isReady) {
        this._conn.sendEmpty(codec.CANCEL, c.id);
      }
      this._settleError(c, FerryError.of(7, `no answer from ferryd at '${this.addr}' within ${waited} ms`));
      return;
    }
    const why = this._lastError ? `: ${this._lastError.message}` : '';
    this._settleError(c, FerryError.of(16, `not connected to ferryd at '${this.addr}' within ${waited} ms${why}`));
  }

  _open() {
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    this._state = 'connecting';
    this._conn = new Conn(this, this.opts);
  }

  _connReady(conn, h) {
    if (conn !== this._conn) {
      return;
    }
    this._state = 'ready';
    this._everReady = true;
    this._lastError = null;
    this._backoff.reset();
    this.connects++;
    this.server = {
      version: h.version, name: h.name.toString('utf8'), heartbeatMs: h.heartbeatMs,
      maxFrame: h.maxFrame, maxDeadlineMs: h.maxDeadlineMs, defaultDeadlineMs: h.defaultDeadlineMs,
    };
    if (h.version >= 2) {
      this._defaultDeadline = h.defaultDeadlineMs || V1_DEFAULT_DEADLINE_MS;
      this._maxDeadline = h.maxDeadlineMs;
    }
    for (const w of this._connectWaiters.splice(0)) {
      w.resolve();
    }
    this._sendWaiting();
    this.emit('connect', this.server);
  }

  _connDrain(conn) {
    if (conn === this._conn && this._waitingHead < this._waiting.length) {
      this._sendWaiting();
    }
  }

  _connFailed(conn, err) {
    if (conn !== this._conn) {
      return;
    }
    this._conn = null;
    this._lastError = err;
    for (const w of this._connectWaiters.splice(0)) {
      w.reject(err);
    }
    if (!this._everReady || (err.fromPeer && (err.errno === 15 || err.errno === 3))) {
      // Never connected (nothing there, as libferry) or refused (a wrong
      // token, VERSION): waiting calls fail now rather than at their
      // deadline. Only a client that was connected waits for ferryd to
      // come back.
      this._failWaiting(err);
    }
    this._retryLater();
  }

  _connLost(conn, err) {
    if (conn !== this._conn) {
      return;
    }
    this._conn = null;
    this._lastError = err;
    // Calls at ferryd may or may not have run: they fail. Calls whose
    // bytes never reached the socket wait, with those that waited
    // already, for the next connection.
    const again = [];
    for (const c of [...this._calls.values()]) {
      if (c.state !== SENT) {
        continue;
      }
      if (c.conn === conn && c.seq > conn.flushes) {
        c.state = WAITING;
        c.conn = null;
        again.push(c);
      } else {
        this._settleError(c, FerryError.of(16, err.message));
      }
    }
    if (again.length > 0) {
      again.sort((a, b) => a.id - b.id);
      const rest = this._waiting.slice(this._waitingHead);
      this._waiting = [];
      this._waitingHead = 0;
      this._waitingBytes = 0;
      for (const c of again) {
        this._waiting.push(c);
        c.queuedLen = this._payloadLen(c);
        this._waitingBytes += c.queuedLen;
      }
      for (const c of rest) {
        if (c !== undefined && c.state === WAITING) {
          this._waiting.push(c);
          this._waitingBytes += c.queuedLen;
        }
      }
    }
    this.emit('disconnect', err);
    this._retryLater();
  }

  _failWaiting(err) {
    const q = this._waiting;
    for (let i = this._waitingHead; i < q.length; i++) {
      const c = q[i];
      if (c !== undefined && c.state === WAITING) {
        this._settleError(c, FerryError.of(err.errno, err.message));
      }
    }
    this._waiting = [];
    this._waitingHead = 0;
    this._waitingBytes = 0;
  }

  _retryLater() {
    if (this._state === 'closed') {
      return;
    }
    if (!this._everReady && this._waitingHead === this._waiting.length) {
      this._state = 'idle'; // nobody needs a connection yet
      return;
    }
    this._state = 'backoff';
    this._retryTimer = setTimeout(() => this._open(), this._backoff.take());
  }

  /* ------------------------------------------------------- from ferryd */

  _connFrame(conn, type, flags, id, buf, start, end) {
    if (type === codec.REPLY) {
      const c = this._calls.get(id);
      if (c === undefined) {
        return; // ended here already (cancelled, timed out)
      }
      this._finish(c);
      const len = end - start;
      let reply;
      if (len < COPY_BELOW) {
        // Small replies are copied so that they do not hold the whole
        // 64 KiB read chunk.
        reply = Buffer.allocUnsafe(len);
        buf.copy(reply, 0, start, end);
      } else {
        reply = buf.subarray(start, end);
      }
      c.resolve(reply);
      return;
    }
    const body = buf.subarray(start, end);
    if (type === codec.ERROR) {
      let e;
      try {
        e = codec.parseError(body);
      } catch (err) {
        conn.abort(1, `bad ERROR: ${err.message}`);
        return;
      }
      const msg = e.message.toString('utf8');
      if (id === 0) {
        const err = FerryError.of(e.code, msg || undefined);
        conn.fail(FerryError.of(16, `ferryd at '${this.addr}' closed the connection: ${err.code}: ${err.message}`, { cause: err }));
        return;
      }
      const c = this._calls.get(id);
      if (c !== undefined) {
        this._settleError(c, FerryError.of(e.code, msg || undefined));
      }
      return;
    }
    if (type === codec.PING) {
      return;
    }
    conn.abort(1, `unexpected ${codec.TYPE_NAMES[type]} frame for a caller`);
  }
}

module.exports = { Client };
