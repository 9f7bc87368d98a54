// SPDX-License-Identifier: MIT
'use strict';
/*
 * worker.js - the worker: registers services with ferryd and answers the
 * requests it forwards.
 *
 * A handler is called with (payload, job) for each request and answers by
 * what it returns (a Buffer or string; a promise of one for async work)
 * or throws (a FerryError subclass gives its code, anything else
 * WORKER_ERROR). Returning nothing leaves the job open: answer it later
 * with job.reply() or job.fail(). ferryd never sends more requests of a
 * service than its credit; a job that ferryd cancels (caller gone,
 * cancelled, deadline) or that the connection loses aborts job.signal and
 * its answer is dropped.
 *
 * stop() sends DRAIN (ferryd sends no new requests), waits for the jobs
 * held to be answered and closes. A lost connection is reconnected with
 * backoff and every service registered again.
 */
const { EventEmitter } = require('events');
const codec = require('./codec');
const { Conn, Backoff, commonOpts } = require('./conn');
const { FerryError, errnoOf } = require('./errors');

const COPY_BELOW = 16 * 1024;

class Job {
  constructor(worker, conn, id, flags, service, deadlineMs, key, payload) {
    this.id = typeof id === 'bigint' ? id : BigInt(id);
    this.service = service;
    this.deadlineMs = deadlineMs; // the time the caller had left on arrival
    this.idempotent = (flags & codec.IDEMPOTENT) !== 0;
    this.key = key;
    this.payload = payload;
    this.answered = false;
    this.cancelled = false;
    this._worker = worker;
    this._conn = conn;
    this._wireId = id;
    this._ac = null;
    this._reason = null;
  }

  /** Aborted when ferryd cancels the job or the connection is lost. */
  get signal() {
    if (this._ac === null) {
      this._ac = new AbortController();
      if (this._reason !== null) {
        this._ac.abort(this._reason);
      }
    }
    return this._ac.signal;
  }

  /** Answers with data (Buffer, Uint8Array or string). Returns false when
   * the job had been answered or cancelled already (nothing is sent). */
  reply(data) {
    return this._worker._answer(this, codec.toBytes(data, 'reply'), 0, null);
  }

  /**
   * Fails the job: fail(err) with a FerryError (its code) or any Error
   * (WORKER_ERROR), or fail(code, message) with a name ("INVALID_ARGUMENT")
   * or a number.
   */
  fail(err, message) {
    let errno = 9;
    let msg;
    if (typeof err === 'number') {
      errno = err;
      msg = message;
    } else if (typeof err === 'string') {
      errno = errnoOf(err) || 9;
      msg = message;
    } else if (err instanceof FerryError) {
      errno = err.errno;
      msg = err.message;
    } else if (err instanceof Error) {
      msg = err.message;
    } else {
      msg = String(err);
    }
    return this._worker._answer(this, null, errno, msg || '');
  }

  /**
   * Gives the job up without answering (it no longer counts as held, so
   * stop() does not wait for it); its caller gets ferryd's DEADLINE, or
   * WORKER_LOST once this worker is gone. Returns false when it had been
   * answered or cancelled already.
   */
  abandon() {
    if (this.answered || this.cancelled) {
      return false;
    }
    this.answered = true;
    this.payload = null;
    const w = this._worker;
    if (w._jobs.get(this._wireId) === this) {
      w._jobs.delete(this._wireId);
      w._checkIdle();
    }
    return true;
  }

  _abort(reason) {
    this.cancelled = true;
    this._reason = reason;
    if (this._ac !== null) {
      this._ac.abort(reason);
    }
  }
}

class Worker extends EventEmitter {
  /** new Worker({addr, token, name, heartbeatMs, connectTimeoutMs,
   * reconnectMinMs, reconnectMaxMs, maxFrame}). */
  constructor(opts = {}) {
    super();
    this.opts = commonOpts(opts, codec.ROLE_WORKER);
    this.addr = this.opts.addr.text;
    this.connects = 0;
    this.handled = 0; // jobs answered
    this._services = new Map(); // name -> {handler, credit, regId, bytes}
    this._jobs = new Map(); // wire id -> Job
    this._conn = null;
    this._state = 'idle'; // idle, connecting, ready, backoff, stopping, closed
    this._registered = 0;
    this._regIds = new Map(); // registration id -> service name
    this._nextRegId = 1;
    this._backoff = new Backoff(this.opts.reconnectMinMs, this.opts.reconnectMaxMs);
    this._retryTimer = null;
    this._start = null; // {resolve, reject} of start()
    this._idle = []; // resolvers waiting for no jobs held
    this._ready = false;
  }

  /** Jobs received and not yet answered or cancelled. */
  get held() { return this._jobs.size; }

  /** Whether connected with every service registered. */
  get ready() { return this._ready; }

  /**
   * Serves service with handler(payload, job), up to credit jobs at once
   * (1..65535, default 16). Call before or after start().
   */
  handle(service, handler, { credit = 16 } = {}) {
    if (typeof handler !== 'function') {
      throw new TypeError('handler must be a function');
    }
    const bytes = Buffer.from(String(service), 'utf8');
    if (bytes.length < 1 || bytes.length > codec.MAX_NAME) {
      throw FerryError.of(11, `service name must be 1 to ${codec.MAX_NAME} bytes`);
    }
    if (!Number.isInteger(credit) || credit < 1 || credit > codec.MAX_CREDIT) {
      throw FerryError.of(11, `credit must be an integer from 1 to ${codec.MAX_CREDIT}`);
    }
    const s = { name: String(service), handler, credit, bytes, registered: false };
    this._services.set(s.name, s);
    if (this._conn !== null && this._conn.isReady) {
      this._ready = false;
      this._register(this._conn, s);
    }
    return this;
  }

  /** Connects and registers; resolves once every service is registered
   * (retrying while ferryd cannot be reached), rejects when ferryd
   * refuses the worker (token, a refused REGISTER). */
  start() {
    if (this._state === 'closed' || this._state === 'stopping') {
      return Promise.reject(FerryError.of(16, 'worker stopped'));
    }
    if (this._ready) {
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      this._start = { resolve, reject };
      if (this._state === 'idle') {
        this._open();
      }
    });
  }

  /**
   * Graceful stop: DRAIN, then waits up to timeoutMs (default 30000) for
   * the jobs held to be answered, then closes. Resolves when closed.
   */
  async stop({ timeoutMs = 30000 } = {}) {
    if (this._state === 'closed') {
      return;
    }
    const conn = this._conn;
    this._state = 'stopping';
    clearTimeout(this._retryTimer);
    if (conn !== null && conn.isReady) {
      conn.sendEmpty(codec.DRAIN, 0);
      if (this._jobs.size > 0) {
        await new Promise((resolve) => {
          const t = setTimeout(resolve, timeoutMs);
          this._idle.push(() => { clearTimeout(t); resolve(); });
        });
      }
    }
    this._close(FerryError.of(16, 'worker stopped'));
    if (conn !== null) {
      await conn.end();
    }
  }

  /* ----------------------------------------------------------- inside */

  _close(err) {
    this._state = 'closed';
    this._ready = false;
    clearTimeout(this._retryTimer);
    this._loseJobs(err);
    if (this._start !== null) {
      this._start.reject(err);
      this._start = null;
    }
    const conn = this._conn;
    this._conn = null;
    if (conn !== null) {
      conn.end();
    }
  }

  _open() {
    this._retryTimer = null;
    this._state = 'connecting';
    this._conn = new Conn(this, this.opts);
  }

  _register(conn, s) {
    const id = this._nextRegId++;
    this._regIds.set(id, s.name);
    s.registered = false;
    conn.push(codec.encodeRegister(id, s.bytes, s.credit));
  }

  _connReady(conn) {
    if (conn !== this._conn) {
      return;
    }
    this.connects++;
    this._backoff.reset();
    if (this._state !== 'stopping') {
      this._state = 'ready';
    }
    this._regIds.clear();
    for (const s of this._services.values()) {
      this._register(conn, s);
    }
    this._checkReady();
  }

  _checkReady() {
    for (const s of this._services.values()) {
      if (!s.registered) {
        return;
      }
    }
    if (this._ready) {
      return;
    }
    this._ready = true;
    if (this._start !== null) {
      this._start.resolve();
      this._start = null;
    }
    this.emit('ready');
  }

  _connDrain() {}

  _connFailed(conn, err) {
    if (conn !== this._conn) {
      return;
    }
    this._conn = null;
    if (err.fromPeer && (err.errno === 15 || err.errno === 3)) {
      this._fatal(err); // a wrong token or version does not get better
      return;
    }
    this._retryLater();
  }

  _connLost(conn, err) {
    if (conn !== this._conn) {
      return;
    }
    this._conn = null;
    this._ready = false;
    this._loseJobs(err);
    this.emit('disconnect', err);
    this._retryLater();
  }

  _fatal(err) {
    const hadStart = this._start !== null;
    this._close(err);
    if (!hadStart) {
      if (this.listenerCount('error') > 0) {
        this.emit('error', err);
      } else {
        process.emitWarning(`ferry worker stopped: ${err.code}: ${err.message}`);
      }
    }
  }

  _loseJobs(err) {
    const jobs = [...this._jobs.values()];
    this._jobs.clear();
    for (const j of jobs) {
      j._abort(err);
    }
    this._checkIdle();
  }

  _checkIdle() {
    if (this._jobs.size === 0 && this._idle.length > 0) {
      for (const f of this._idle.splice(0)) {
        f();
      }
    }
  }

  _retryLater() {
    if (this._state === 'stopping' || this._state === 'closed') {
      if (this._state === 'stopping') {
        this._checkIdle();
      }
      return;
    }
    this._state = 'backoff';
    this._retryTimer = setTimeout(() => this._open(), this._backoff.take());
  }

  _connFrame(conn, type, flags, id, buf, start, end) {
    const body = buf.subarray(start, end);
    switch (type) {
      case codec.REQUEST:
        this._request(conn, flags, id, body);
        return;
      case codec.CANCEL: {
        const j = this._jobs.get(id);
        if (j !== undefined) {
          this._jobs.delete(id);
          this.emit('cancel', j);
          j._abort(FerryError.of(12, 'cancelled by ferryd'));
          this._checkIdle();
        }
        return;
      }
      case codec.REGISTERED: {
        const name = this._regIds.get(id);
        this._regIds.delete(id);
        const s = name !== undefined ? this._services.get(name) : undefined;
        if (s !== undefined) {
          s.registered = true;
          this._checkReady();
        }
        return;
      }
      case codec.ERROR: {
        let e;
        try {
          e = codec.parseError(body);
        } catch (err) {
          conn.abort(1, `bad ERROR: ${err.message}`);
          return;
        }
        const err = FerryError.of(e.code, e.message.toString('utf8') || undefined);
        if (id === 0) {
          conn.fail(FerryError.of(16, `ferryd at '${this.addr}' closed the connection: ${err.code}: ${err.message}`, { cause: err }));
          return;
        }
        const name = this._regIds.get(id);
        if (name !== undefined) {
          this._regIds.delete(id);
          err.message = `REGISTER '${name}': ${err.message}`;
          this._fatal(err);
        }
        return;
      }
      case codec.PING:
        return;
      default:
        conn.abort(1, `unexpected ${codec.TYPE_NAMES[type]} frame for a worker`);
    }
  }

  _request(conn, flags, id, body) {
    let q;
    try {
      q = codec.parseRequest(body);
    } catch (err) {
      conn.abort(1, `bad REQUEST: ${err.message}`);
      return;
    }
    const name = q.service.toString('utf8');
    const s = this._services.get(name);
    if (s === undefined) {
      conn.sendError(id, 5, `this worker does not serve '${name}'`);
      return;
    }
    if (this._jobs.has(id)) {
      return; // ferryd's ids are unique among our jobs; ignore a repeat
    }
    const payload = q.payload.length < COPY_BELOW ? Buffer.from(q.payload) : q.payload;
    const key = q.key.length > 0 ? Buffer.from(q.key) : codec.EMPTY;
    const job = new Job(this, conn, id, flags, name, q.deadlineMs, key, payload);
    this._jobs.set(id, job);
    let r;
    try {
      r = s.handler(payload, job);
    } catch (err) {
      job.fail(err);
      return;
    }
    if (r !== null && typeof r === 'object' && typeof r.then === 'function') {
      r.then((v) => { if (v !== undefined) this._answerValue(job, v); },
        (err) => job.fail(err));
    } else if (r !== undefined) {
      this._answerValue(job, r);
    }
  }

  _answerValue(job, v) {
    let data;
    try {
      data = codec.toBytes(v, 'reply');
    } catch (err) {
      job.fail(err);
      return;
    }
    this._answer(job, data, 0, null);
  }

  /** Sends a job's REPLY (data) or ERROR (errno, msg), once. */
  _answer(job, data, errno, msg) {
    if (job.answered) {
      return false;
    }
    job.answered = true;
    job.payload = null;
    const conn = job._conn;
    if (job.cancelled || this._jobs.get(job._wireId) !== job || conn !== this._conn || !conn.isReady) {
      return false; // cancelled or lost: ferryd no longer waits for it
    }
    this._jobs.delete(job._wireId);
    this.handled++;
    if (data !== null) {
      if (data.length > conn.peerMaxFrame) {
        conn.sendError(job._wireId, 2, `reply of ${data.length} bytes is larger than ferryd's max_frame ${conn.peerMaxFrame}`);
      } else {
        const size = codec.HEADER_SIZE + data.length;
        const off = conn.reserve(size);
        if (off >= 0) {
          codec.writeHeader(conn.arena, off, codec.REPLY, 0, job._wireId, data.length);
          data.copy(conn.arena, off + codec.HEADER_SIZE);
        } else {
          const head = Buffer.allocUnsafe(codec.HEADER_SIZE);
          codec.writeHeader(head, 0, codec.REPLY, 0, job._wireId, data.length);
          conn.push(head);
          conn.push(data);
        }
      }
    } else {
      conn.sendError(job._wireId, errno, msg);
    }
    this._checkIdle();
    return true;
  }
}

module.exports = { Worker, Job };
