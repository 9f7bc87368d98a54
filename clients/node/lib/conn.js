// SPDX-License-Identifier: MIT
'use strict';
/*
 * conn.js - one connection to ferryd, shared by Client and Worker: the
 * socket, the HELLO exchange, heartbeats both ways, and the output path.
 *
 * Output: frames are written into a shared arena Buffer (header in
 * place, no Buffer per frame for small ones) and leave in one write per
 * turn of the event loop (setImmediate: after the I/O of the turn, so a
 * close that came in the same turn is seen before we write). When socket.write() returns false nothing more
 * is written until 'drain'; the bytes waiting meanwhile are counted
 * (queuedBytes) so that callers can bound them. flushes counts the writes
 * made, so a caller can tell whether a frame it queued ever reached the
 * socket. Input: every chunk goes
 * through a FrameDecoder; each frame is handed to the owner.
 *
 * A Conn lives for one socket. Its owner (Client or Worker) makes a new
 * one to reconnect, and gets four calls: _connReady(conn, helloOk),
 * _connFrame(conn, type, flags, id, buf, start, end) (the body is
 * buf[start..end)), _connFailed(conn, err) when the
 * handshake did not succeed, _connLost(conn, err) when a ready connection
 * ended, and _connDrain(conn) when a blocked socket drained.
 */
const net = require('net');
const { performance } = require('perf_hooks');
const codec = require('./codec');
const { FerryError, errname } = require('./errors');

/** The protocol version this client sends in HELLO. */
const PROTOCOL_VERSION = 2;

const ARENA_SIZE = 64 * 1024;
const ARENA_MAX_FRAME = 16 * 1024; // larger frames get their own Buffer
const DEFAULT_ADDR = '127.0.0.1:7700';
const MIN_MAX_FRAME = 4 + codec.MAX_ERRMSG; // the largest ERROR body

/**
 * Parses "host:port", "[v6]:port" or "unix:/path" into net.connect
 * options; throws an InvalidArgumentError for anything else.
 */
function parseAddr(addr) {
  if (addr === undefined || addr === null || addr === '') {
    addr = process.env.FERRY_ADDR || DEFAULT_ADDR;
  }
  if (typeof addr !== 'string') {
    throw new TypeError('addr must be a string');
  }
  if (addr.startsWith('unix:')) {
    const path = addr.slice(5);
    if (path === '') {
      throw FerryError.of(11, `bad address '${addr}': no socket path`);
    }
    return { text: addr, opts: { path } };
  }
  let host;
  let port;
  const m6 = /^\[([^\]]+)\]:(\d+)$/.exec(addr);
  if (m6) {
    [, host, port] = m6;
  } else {
    const i = addr.lastIndexOf(':');
    if (i <= 0) {
      throw FerryError.of(11, `bad address '${addr}': want host:port, [v6]:port or unix:/path`);
    }
    host = addr.slice(0, i);
    port = addr.slice(i + 1);
  }
  const p = /^\d{1,5}$/.test(port) ? Number(port) : -1;
  if (p < 0 || p > 65535) {
    throw FerryError.of(11, `bad address '${addr}': port must be 0..65535`);
  }
  return { text: addr, opts: { host, port: p } };
}

/** Reconnect delays: doubling from min to max, with jitter (half to all
 * of the delay), as libferry. */
class Backoff {
  constructor(minMs, maxMs) {
    this.min = minMs;
    this.max = maxMs;
    this.next = minMs;
  }

  reset() { this.next = this.min; }

  take() {
    const d = this.next;
    this.next = Math.min(this.max, d * 2);
    return d / 2 + Math.random() * (d / 2);
  }
}

/** Options common to Client and Worker, with their defaults. */
function commonOpts(o, role) {
  const opts = {
    addr: parseAddr(o.addr),
    token: o.token !== undefined ? o.token : (process.env.FERRY_TOKEN || ''),
    name: o.name !== undefined ? o.name : `node-${process.pid}`,
    heartbeatMs: o.heartbeatMs !== undefined ? o.heartbeatMs : 2500,
    connectTimeoutMs: o.connectTimeoutMs || 2000,
    reconnectMinMs: o.reconnectMinMs || 50,
    reconnectMaxMs: o.reconnectMaxMs || 2000,
    maxFrame: o.maxFrame !== undefined ? o.maxFrame : codec.DEFAULT_MAX_BODY,
    role,
  };
  for (const k of ['heartbeatMs', 'connectTimeoutMs', 'reconnectMinMs', 'reconnectMaxMs', 'maxFrame']) {
    const v = opts[k];
    if (!Number.isInteger(v) || v < 0 || v > codec.MAX_U32) {
      throw FerryError.of(11, `${k} must be an integer from 0 to ${codec.MAX_U32}`);
    }
  }
  if (opts.maxFrame !== 0 && opts.maxFrame < MIN_MAX_FRAME) {
    // ferryd refuses it: its own ERROR frames must fit.
    throw FerryError.of(11, `maxFrame must be 0 (no limit) or at least ${MIN_MAX_FRAME}`);
  }
  if (Buffer.byteLength(String(opts.token)) > codec.MAX_NAME ||
      Buffer.byteLength(String(opts.name)) > codec.MAX_NAME) {
    throw FerryError.of(11, `token and name must be at most ${codec.MAX_NAME} bytes`);
  }
  return opts;
}

class Conn {
  constructor(owner, opts) {
    this.owner = owner;
    this.opts = opts;
    this.addr = opts.addr.text;
    this.state = 'connecting'; // connecting, hello, ready, closed
    this.peer = null; // HELLO_OK fields once ready
    this.peerMaxFrame = codec.DEFAULT_MAX_BODY;
    this.blocked = false; // write() said false; waiting for 'drain'
    this.queuedBytes = 0; // bytes handed to us but not yet to the socket
    this.arena = null; // shared output Buffer
    this.arenaOff = 0; // first free byte of the arena
    this.sealed = 0; // arena bytes before this are in out
    this.out = []; // Buffers waiting for the next flush
    this.flushScheduled = false;
    this.flushes = 0; // writes handed to the socket
    this.lastSend = 0;
    this.lastRecv = 0;
    this.hbTimer = null;
    this.connectTimer = null;
    this.error = null; // why it closed
    this.flushBound = () => this.flush();
    this.decoder = new codec.FrameDecoder(opts.maxFrame,
      (t, f, id, buf, start, end) => this.onFrame(t, f, id, buf, start, end), true);

    const s = net.connect(opts.addr.opts);
    this.socket = s;
    s.setNoDelay(true);
    this.connectTimer = setTimeout(() => {
      this.fail(FerryError.of(16, `connecting to '${this.addr}': timed out after ${opts.connectTimeoutMs} ms`));
    }, opts.connectTimeoutMs);
    s.on('connect', () => {
      this.state = 'hello';
      this.push(codec.encodeHello({
        version: PROTOCOL_VERSION, role: opts.role, heartbeatMs: opts.heartbeatMs,
        name: opts.name, token: opts.token, maxFrame: opts.maxFrame,
      }));
    });
    s.on('data', (chunk) => {
      this.lastRecv = performance.now();
      try {
        this.decoder.push(chunk);
      } catch (err) {
        this.abort(err.errno || 1, err.message);
      }
    });
    s.on('drain', () => {
      this.blocked = false;
      this.flush();
    });
    s.on('error', (err) => {
      const what = this.state === 'connecting' ? 'connecting to' : 'connection to';
      this.fail(FerryError.of(16, `${what} '${this.addr}': ${err.message}`));
    });
    s.on('end', () => {
      // ferryd closed its side: nothing more will come, and what we would
      // write now is lost.
      this.fail(FerryError.of(16, `ferryd at '${this.addr}' closed the connection`));
    });
    s.on('close', () => {
      this.fail(FerryError.of(16, `ferryd at '${this.addr}' closed the connection`));
    });
  }

  get isReady() { return this.state === 'ready'; }

  /* ------------------------------------------------------------ output */

  /**
   * Room for an n-byte frame in the arena: returns the offset in
   * this.arena to write it at (and counts it as queued), or -1 when the
   * frame is too large for the arena (then use push()).
   */
  reserve(n) {
    if (n > ARENA_MAX_FRAME) {
      return -1;
    }
    let a = this.arena;
    if (a === null || a.length - this.arenaOff < n) {
      this.seal();
      a = this.arena = Buffer.allocUnsafe(ARENA_SIZE);
      this.arenaOff = 0;
      this.sealed = 0;
    }
    const off = this.arenaOff;
    this.arenaOff = off + n;
    this.queuedBytes += n;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushBound);
    }
    return off;
  }

  /** Moves the arena's new bytes to the output list. */
  seal() {
    if (this.arena !== null && this.arenaOff > this.sealed) {
      this.out.push(this.arena.subarray(this.sealed, this.arenaOff));
      this.sealed = this.arenaOff;
    }
  }

  /** Queues a Buffer of its own (kept, not copied). */
  push(buf) {
    this.seal();
    this.out.push(buf);
    this.queuedBytes += buf.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushBound);
    }
  }

  /** Writes what is queued, unless the socket asked us to wait. */
  flush() {
    this.flushScheduled = false;
    if (this.state === 'closed' || this.state === 'connecting' || this.blocked) {
      return;
    }
    this.seal();
    const out = this.out;
    if (out.length === 0) {
      if (this.state === 'ready') {
        this.owner._connDrain(this);
      }
      return;
    }
    this.out = [];
    this.queuedBytes = 0;
    this.flushes++;
    this.lastSend = performance.now();
    const s = this.socket;
    let ok;
    if (out.length === 1) {
      ok = s.write(out[0]);
    } else {
      s.cork();
      for (let i = 0; i < out.length; i++) {
        ok = s.write(out[i]);
      }
      s.uncork();
      ok = s.writableLength < s.writableHighWaterMark;
    }
    if (!ok) {
      this.blocked = true;
    } else if (this.state === 'ready') {
      this.owner._connDrain(this); // room again: calls that waited may go
    }
  }

  sendEmpty(type, id) {
    const off = this.reserve(codec.HEADER_SIZE);
    codec.writeHeader(this.arena, off, type, 0, id, 0);
  }

  sendError(id, errno, message) {
    this.push(codec.encodeError(id, errno, message));
  }

  /* ------------------------------------------------------------- input */

  onFrame(type, flags, id, buf, start, end) {
    if (this.state === 'ready') {
      this.owner._connFrame(this, type, flags, id, buf, start, end);
      return;
    }
    if (this.state !== 'hello') {
      return;
    }
    const body = buf.subarray(start, end);
    if (type === codec.HELLO_OK) {
      let h;
      try {
        h = codec.parseHelloOk(body);
      } catch (err) {
        this.abort(1, `bad HELLO_OK: ${err.message}`);
        return;
      }
      this.ready(h);
    } else if (type === codec.ERROR) {
      let e;
      try {
        e = codec.parseError(body);
      } catch (err) {
        this.abort(1, `bad ERROR: ${err.message}`);
        return;
      }
      // As libferry: VERSION and UNAUTHORIZED keep their code, any other
      // refusal is a failed connection that names it.
      const text = `ferryd at '${this.addr}' refused the connection: ${errname(e.code)}: ${e.message.toString('utf8')}`;
      const err = FerryError.of(e.code === 3 || e.code === 15 ? e.code : 16, text);
      err.fromPeer = true;
      this.fail(err);
    } else {
      this.abort(1, `${codec.TYPE_NAMES[type]} before HELLO_OK`);
    }
  }

  ready(h) {
    clearTimeout(this.connectTimer);
    this.connectTimer = null;
    this.state = 'ready';
    this.peer = h;
    this.peerMaxFrame = h.maxFrame || codec.DEFAULT_MAX_BODY;
    const out = this.opts.heartbeatMs;
    // ferryd pings us only when we announced a heartbeat.
    const inb = out > 0 ? h.heartbeatMs : 0;
    const now = performance.now();
    this.lastRecv = now;
    if (out > 0 || inb > 0) {
      const period = Math.max(10, Math.min(out || Infinity, inb || Infinity) / 4);
      this.hbTimer = setInterval(() => this.beat(out, inb), period);
      this.hbTimer.unref();
    }
    this.owner._connReady(this, h);
  }

  /** Heartbeats: a PING when we sent nothing for our interval; ferryd is
   * taken for dead after 3 x its interval without a byte from it. */
  beat(out, inb) {
    if (this.state !== 'ready') {
      return;
    }
    const now = performance.now();
    if (inb > 0 && now - this.lastRecv >= 3 * inb) {
      const silent = Math.round(now - this.lastRecv);
      this.fail(FerryError.of(16, `ferryd at '${this.addr}' silent for ${silent} ms (3 x heartbeat ${inb} ms)`));
      return;
    }
    if (out > 0 && now - this.lastSend >= out && !this.blocked) {
      this.sendEmpty(codec.PING, 0);
    }
  }

  /* ------------------------------------------------------------- close */

  /** Sends ERROR (id 0) for a protocol violation of ferryd's, then closes. */
  abort(errno, why) {
    if (this.state === 'closed') {
      return;
    }
    try {
      if (this.state === 'hello' || this.state === 'ready') {
        this.out = [];
        this.arena = null;
        this.blocked = false;
        this.socket.write(codec.encodeError(0, errno, why));
      }
    } catch (e) {
      // The socket is going anyway.
    }
    this.fail(FerryError.of(16, `protocol error from ferryd at '${this.addr}': ${errname(errno)}: ${why}`));
  }

  /** Closes at once; the owner hears of it once. */
  fail(err) {
    if (this.state === 'closed') {
      return;
    }
    const was = this.state;
    this.state = 'closed';
    this.error = err;
    clearTimeout(this.connectTimer);
    clearInterval(this.hbTimer);
    this.socket.destroy();
    this.out = [];
    this.arena = null;
    this.queuedBytes = 0;
    if (was === 'ready') {
      this.owner._connLost(this, err);
    } else {
      this.owner._connFailed(this, err);
    }
  }

  /** Flushes what is queued, then ends the socket (FIN); resolves once it
   * is closed. */
  end() {
    if (this.state === 'closed') {
      return Promise.resolve();
    }
    this.flush();
    const s = this.socket;
    const was = this.state;
    this.state = 'closed';
    clearTimeout(this.connectTimer);
    clearInterval(this.hbTimer);
    return new Promise((resolve) => {
      const t = setTimeout(() => s.destroy(), 1000);
      t.unref();
      s.once('close', () => { clearTimeout(t); resolve(); });
      if (was === 'connecting') {
        s.destroy();
      } else {
        s.end();
      }
    });
  }
}

module.exports = { Conn, Backoff, parseAddr, commonOpts, PROTOCOL_VERSION, DEFAULT_ADDR };
