// SPDX-License-Identifier: MIT
'use strict';
/*
 * codec.js - the ferry wire protocol (docs/protocol.md) in JavaScript:
 * frame headers, the body of every frame type, and a stream decoder that
 * cuts a connection's bytes into frames.
 *
 * Encoders write each frame into one Buffer, header in place; the hot
 * writers (writeRequest, writeReply) write into a caller's buffer at an
 * offset so that many frames share one allocation. Decoders check every
 * length against its limit before trusting it and throw a FerryError
 * (PROTO, TOO_BIG, UNKNOWN_TYPE) for a frame a receiver must refuse.
 */
const { FerryError, errname } = require('./errors');

const HEADER_SIZE = 16;
const DEFAULT_MAX_BODY = 16 * 1024 * 1024;
const MAX_NAME = 255;
const MAX_KEY = 1024;
const MAX_ERRMSG = 1024;
const MAX_CREDIT = 65535;
const MAX_U32 = 0xffffffff;

const HELLO = 1;
const HELLO_OK = 2;
const REQUEST = 3;
const REPLY = 4;
const ERROR = 5;
const CANCEL = 6;
const REGISTER = 7;
const REGISTERED = 8;
const PING = 9;
const DRAIN = 10;
const TYPE_MAX = DRAIN;

const TYPE_NAMES = [null, 'HELLO', 'HELLO_OK', 'REQUEST', 'REPLY', 'ERROR',
  'CANCEL', 'REGISTER', 'REGISTERED', 'PING', 'DRAIN'];
const TYPES = Object.fromEntries(TYPE_NAMES.map((n, i) => [n, i]).filter(([n]) => n));

const ROLE_CALLER = 1;
const ROLE_WORKER = 2;
const ROLE_PEER = 3;
const IDEMPOTENT = 0x01;

const TWO32 = 4294967296;
const SAFE_HI = 0x200000; // ids below 2^53 are read as numbers

/* ---------------------------------------------------------------- ids */

/** Writes a u64 id (a number up to 2^53, or a bigint) at off. */
function writeId(buf, off, id) {
  if (typeof id === 'number') {
    const hi = Math.floor(id / TWO32);
    buf.writeUInt32BE(hi, off);
    buf.writeUInt32BE(id - hi * TWO32, off + 4);
  } else {
    buf.writeBigUInt64BE(BigInt.asUintN(64, id), off);
  }
}

/** Reads a u64 id: a number when below 2^53, else a bigint, so the same
 * bytes always give the same key. */
function readId(buf, off) {
  const hi = buf.readUInt32BE(off);
  if (hi < SAFE_HI) {
    return hi * TWO32 + buf.readUInt32BE(off + 4);
  }
  return buf.readBigUInt64BE(off);
}

/* ------------------------------------------------------------ writing */

function writeHeader(buf, off, type, flags, id, bodyLen) {
  buf.writeUInt32BE(bodyLen, off);
  buf[off + 4] = type;
  buf[off + 5] = flags;
  buf[off + 6] = 0;
  buf[off + 7] = 0;
  writeId(buf, off + 8, id);
}

function toBytes(v, what) {
  if (v === undefined || v === null) {
    return EMPTY;
  }
  if (typeof v === 'string') {
    return Buffer.from(v, 'utf8');
  }
  if (Buffer.isBuffer(v)) {
    return v;
  }
  if (v instanceof Uint8Array) {
    return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  }
  throw new TypeError(`${what} must be a Buffer, a Uint8Array or a string`);
}

const EMPTY = Buffer.alloc(0);

function checkLen(n, max, what) {
  if (n > max) {
    throw FerryError.of(11, `${what} is ${n} bytes, more than ${max}`);
  }
}

/**
 * HELLO. Version 1 has no max_frame; version 2 and later carry it (the
 * largest body this client accepts, 0 = no limit of its own).
 */
function encodeHello({ version = 2, role = ROLE_CALLER, heartbeatMs = 0, name = '',
  token = '', maxFrame = 0 } = {}) {
  const n = toBytes(name, 'name');
  const t = toBytes(token, 'token');
  checkLen(n.length, MAX_NAME, 'name');
  checkLen(t.length, MAX_NAME, 'token');
  const body = 12 + n.length + t.length + (version >= 2 ? 4 : 0);
  const b = Buffer.allocUnsafe(HEADER_SIZE + body);
  writeHeader(b, 0, HELLO, 0, 0, body);
  let o = HEADER_SIZE;
  b.writeUInt16BE(version, o); o += 2;
  b[o++] = role;
  b[o++] = 0;
  b.writeUInt32BE(heartbeatMs >>> 0, o); o += 4;
  b.writeUInt16BE(n.length, o); o += 2;
  n.copy(b, o); o += n.length;
  b.writeUInt16BE(t.length, o); o += 2;
  t.copy(b, o); o += t.length;
  if (version >= 2) {
    b.writeUInt32BE(maxFrame >>> 0, o);
  }
  return b;
}

/** HELLO_OK; version 2 and later carry max_deadline_ms and
 * default_deadline_ms. */
function encodeHelloOk({ version = 2, heartbeatMs = 0, maxFrame = DEFAULT_MAX_BODY,
  name = '', maxDeadlineMs = 0, defaultDeadlineMs = 0 } = {}) {
  const n = toBytes(name, 'name');
  checkLen(n.length, MAX_NAME, 'name');
  const body = 14 + n.length + (version >= 2 ? 8 : 0);
  const b = Buffer.allocUnsafe(HEADER_SIZE + body);
  writeHeader(b, 0, HELLO_OK, 0, 0, body);
  let o = HEADER_SIZE;
  b.writeUInt16BE(version, o); o += 2;
  b.writeUInt16BE(0, o); o += 2;
  b.writeUInt32BE(heartbeatMs >>> 0, o); o += 4;
  b.writeUInt32BE(maxFrame >>> 0, o); o += 4;
  b.writeUInt16BE(n.length, o); o += 2;
  n.copy(b, o); o += n.length;
  if (version >= 2) {
    b.writeUInt32BE(maxDeadlineMs >>> 0, o); o += 4;
    b.writeUInt32BE(defaultDeadlineMs >>> 0, o);
  }
  return b;
}

/** Bytes of a REQUEST frame, header included. */
function requestSize(serviceLen, keyLen, payloadLen) {
  return HEADER_SIZE + 8 + serviceLen + keyLen + payloadLen;
}

/**
 * Writes a REQUEST's header and fixed fields, service and key at off; the
 * payload follows at the returned offset (the caller copies it there, or
 * sends it as a Buffer of its own right after).
 */
function writeRequestHead(buf, off, id, flags, deadlineMs, service, key, payloadLen) {
  const body = 8 + service.length + key.length + payloadLen;
  writeHeader(buf, off, REQUEST, flags, id, body);
  off += HEADER_SIZE;
  buf.writeUInt32BE(deadlineMs, off);
  buf.writeUInt16BE(service.length, off + 4);
  buf.writeUInt16BE(key.length, off + 6);
  off += 8;
  off += service.copy(buf, off);
  if (key.length > 0) {
    off += key.copy(buf, off);
  }
  return off;
}

function encodeRequest(id, service, payload, { deadlineMs = 0, key, flags = 0 } = {}) {
  const s = toBytes(service, 'service');
  const k = toBytes(key, 'key');
  const p = toBytes(payload, 'payload');
  if (s.length < 1 || s.length > MAX_NAME) {
    throw FerryError.of(11, `service name must be 1 to ${MAX_NAME} bytes`);
  }
  checkLen(k.length, MAX_KEY, 'key');
  const b = Buffer.allocUnsafe(requestSize(s.length, k.length, p.length));
  const o = writeRequestHead(b, 0, id, flags, deadlineMs >>> 0, s, k, p.length);
  p.copy(b, o);
  return b;
}

function encodeReply(id, payload) {
  const p = toBytes(payload, 'payload');
  const b = Buffer.allocUnsafe(HEADER_SIZE + p.length);
  writeHeader(b, 0, REPLY, 0, id, p.length);
  p.copy(b, HEADER_SIZE);
  return b;
}

/** ERROR; a message longer than 1024 bytes is cut (at a byte). */
function encodeError(id, errno, message) {
  let m = toBytes(message, 'message');
  if (m.length > MAX_ERRMSG) {
    m = m.subarray(0, MAX_ERRMSG);
  }
  const b = Buffer.allocUnsafe(HEADER_SIZE + 4 + m.length);
  writeHeader(b, 0, ERROR, 0, id, 4 + m.length);
  b.writeUInt16BE(errno, HEADER_SIZE);
  b.writeUInt16BE(m.length, HEADER_SIZE + 2);
  m.copy(b, HEADER_SIZE + 4);
  return b;
}

function encodeRegister(id, service, credit) {
  const s = toBytes(service, 'service');
  const b = Buffer.allocUnsafe(HEADER_SIZE + 6 + s.length);
  writeHeader(b, 0, REGISTER, 0, id, 6 + s.length);
  b.writeUInt32BE(credit >>> 0, HEADER_SIZE);
  b.writeUInt16BE(s.length, HEADER_SIZE + 4);
  s.copy(b, HEADER_SIZE + 6);
  return b;
}

/** A frame with an empty body: CANCEL, REGISTERED, PING, DRAIN. */
function encodeEmpty(type, id = 0) {
  const b = Buffer.allocUnsafe(HEADER_SIZE);
  writeHeader(b, 0, type, 0, id, 0);
  return b;
}

/* ------------------------------------------------------------ reading */

function proto(why) {
  return FerryError.of(1, why);
}

/** A cursor over a frame body; every take checks the bytes left. */
class Reader {
  constructor(body) {
    this.b = body;
    this.o = 0;
  }

  need(n, what) {
    if (this.b.length - this.o < n) {
      throw proto(`${what} past the end of the body`);
    }
  }

  u8(what) { this.need(1, what); return this.b[this.o++]; }

  u16(what) {
    this.need(2, what);
    const v = this.b.readUInt16BE(this.o);
    this.o += 2;
    return v;
  }

  u32(what) {
    this.need(4, what);
    const v = this.b.readUInt32BE(this.o);
    this.o += 4;
    return v;
  }

  bytes(n, what) {
    this.need(n, what);
    const v = this.b.subarray(this.o, this.o + n);
    this.o += n;
    return v;
  }

  str16(max, what) {
    const n = this.u16(what + '_len');
    if (n > max) {
      throw proto(`${what}_len ${n} is more than ${max}`);
    }
    return this.bytes(n, what);
  }

  rest() {
    const v = this.b.subarray(this.o);
    this.o = this.b.length;
    return v;
  }

  end(what) {
    if (this.o !== this.b.length) {
      throw proto(`${this.b.length - this.o} trailing bytes after ${what}`);
    }
  }
}

/**
 * Checks a frame header at buf[off..]: returns the body length, or throws
 * TOO_BIG (above maxBody; checked before the body arrives) or
 * UNKNOWN_TYPE.
 */
function checkHeader(buf, off, maxBody) {
  const bodyLen = buf.readUInt32BE(off);
  const type = buf[off + 4];
  if (maxBody > 0 && bodyLen > maxBody) {
    throw FerryError.of(2, `frame body of ${bodyLen} bytes is larger than ${maxBody}`);
  }
  if (type === 0 || type > TYPE_MAX) {
    throw FerryError.of(4, `unknown frame type ${type}`);
  }
  return bodyLen;
}

/** HELLO's body, laid out by the version it carries. */
function parseHello(body) {
  const r = new Reader(body);
  const h = {};
  h.version = r.u16('version');
  h.role = r.u8('role');
  r.u8('reserved');
  h.heartbeatMs = r.u32('heartbeat_ms');
  h.name = r.str16(MAX_NAME, 'name');
  h.token = r.str16(MAX_NAME, 'token');
  if (h.version >= 2) {
    h.maxFrame = r.u32('max_frame');
  }
  if (h.version <= 2) {
    r.end('HELLO');
  } else {
    h.trailing = r.rest(); // a later version's fields, ignored
  }
  if (h.role < ROLE_CALLER || h.role > ROLE_PEER) {
    throw proto(`role ${h.role} is not 1, 2 or 3`);
  }
  return h;
}

/** HELLO_OK's body, laid out by the version it answers. */
function parseHelloOk(body) {
  const r = new Reader(body);
  const h = {};
  h.version = r.u16('version');
  r.u16('reserved');
  h.heartbeatMs = r.u32('heartbeat_ms');
  h.maxFrame = r.u32('max_frame');
  h.name = r.str16(MAX_NAME, 'name');
  if (h.version >= 2) {
    h.maxDeadlineMs = r.u32('max_deadline_ms');
    h.defaultDeadlineMs = r.u32('default_deadline_ms');
  }
  if (h.version <= 2) {
    r.end('HELLO_OK');
  } else {
    h.trailing = r.rest();
  }
  return h;
}

function parseRequest(body) {
  const r = new Reader(body);
  const q = {};
  q.deadlineMs = r.u32('deadline_ms');
  const sl = r.u16('service_len');
  const kl = r.u16('key_len');
  if (sl === 0 || sl > MAX_NAME) {
    throw proto(`service_len ${sl} is not 1..${MAX_NAME}`);
  }
  if (kl > MAX_KEY) {
    throw proto(`key_len ${kl} is more than ${MAX_KEY}`);
  }
  q.service = r.bytes(sl, 'service');
  q.key = r.bytes(kl, 'key');
  q.payload = r.rest();
  return q;
}

function parseError(body) {
  const r = new Reader(body);
  const code = r.u16('code');
  const message = r.str16(MAX_ERRMSG, 'msg');
  r.end('ERROR');
  return { code, message };
}

function parseRegister(body) {
  const r = new Reader(body);
  const credit = r.u32('credit');
  const service = r.str16(MAX_NAME, 'service');
  r.end('REGISTER');
  // A credit of 0 or above 65535 and an empty name are well formed: the
  // receiver refuses them with INVALID_ARGUMENT, keeping the connection.
  return { credit, service };
}

function checkEmpty(type, body) {
  if (body.length !== 0) {
    throw proto(`${TYPE_NAMES[type]} with a ${body.length}-byte body`);
  }
}

/**
 * Decodes one whole frame at the start of buf: {type, flags, id, body,
 * size}, or null when buf holds less than a frame. Throws on a bad header
 * or body (the body is parsed by its type: .fields).
 */
function decodeFrame(buf, maxBody = DEFAULT_MAX_BODY) {
  if (buf.length < HEADER_SIZE) {
    return null;
  }
  const bodyLen = checkHeader(buf, 0, maxBody);
  if (buf.length - HEADER_SIZE < bodyLen) {
    return null;
  }
  const type = buf[4];
  const body = buf.subarray(HEADER_SIZE, HEADER_SIZE + bodyLen);
  return {
    type, flags: buf[5], id: buf.readBigUInt64BE(8), body,
    size: HEADER_SIZE + bodyLen, fields: parseBody(type, body),
  };
}

/** The fields of a body by type, as plain values. */
function parseBody(type, body) {
  switch (type) {
    case HELLO: return parseHello(body);
    case HELLO_OK: return parseHelloOk(body);
    case REQUEST: return parseRequest(body);
    case REPLY: return { payload: body };
    case ERROR: {
      const e = parseError(body);
      return { code: e.code, codeName: errname(e.code), message: e.message };
    }
    case REGISTER: return parseRegister(body);
    default:
      checkEmpty(type, body);
      return {};
  }
}

/**
 * Cuts a byte stream into frames. push(chunk) calls
 * onFrame(type, flags, id, body) for every whole frame, in order; a body
 * is a view into the chunk it came in (valid as long as it is held). With
 * raw set it calls onFrame(type, flags, id, buf, start, end) instead, the
 * body being buf[start..end), and makes no view. A bad header throws from
 * push() (the stream is then unusable).
 */
class FrameDecoder {
  constructor(maxBody, onFrame, raw = false) {
    this.maxBody = maxBody;
    this.onFrame = onFrame;
    this.raw = raw;
    this.parts = null; // chunks of an incomplete frame
    this.have = 0; // bytes in parts
    this.want = 0; // bytes of the whole frame, once the header is in
  }

  push(chunk) {
    if (this.parts !== null) {
      this.parts.push(chunk);
      this.have += chunk.length;
      if (this.want === 0 && this.have >= HEADER_SIZE) {
        const head = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts);
        this.parts = [head];
        this.want = HEADER_SIZE + checkHeader(head, 0, this.maxBody);
      }
      if (this.want === 0 || this.have < this.want) {
        return;
      }
      chunk = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.have);
      this.parts = null;
      this.have = 0;
      this.want = 0;
    }
    const len = chunk.length;
    let off = 0;
    while (len - off >= HEADER_SIZE) {
      const bodyLen = checkHeader(chunk, off, this.maxBody);
      const end = off + HEADER_SIZE + bodyLen;
      if (end > len) {
        break;
      }
      if (this.raw) {
        this.onFrame(chunk[off + 4], chunk[off + 5], readId(chunk, off + 8), chunk, off + HEADER_SIZE, end);
      } else {
        this.onFrame(chunk[off + 4], chunk[off + 5], readId(chunk, off + 8),
          chunk.subarray(off + HEADER_SIZE, end));
      }
      off = end;
    }
    if (off < len) {
      const rest = off === 0 ? chunk : chunk.subarray(off);
      this.parts = [rest];
      this.have = rest.length;
      this.want = rest.length >= HEADER_SIZE
        ? HEADER_SIZE + rest.readUInt32BE(0) : 0;
    }
  }
}

module.exports = {
  HEADER_SIZE, DEFAULT_MAX_BODY, MAX_NAME, MAX_KEY, MAX_ERRMSG, MAX_CREDIT, MAX_U32,
  HELLO, HELLO_OK, REQUEST, REPLY, ERROR, CANCEL, REGISTER, REGISTERED, PING, DRAIN,
  TYPE_NAMES, TYPES, ROLE_CALLER, ROLE_WORKER, ROLE_PEER, IDEMPOTENT,
  EMPTY, writeId, readId, writeHeader, toBytes, requestSize, writeRequestHead,
  encodeHello, encodeHelloOk, encodeRequest, encodeReply, encodeError,
  encodeRegister, encodeEmpty, checkHeader, parseHello, parseHelloOk,
  parseRequest, parseError, parseRegister, checkEmpty, decodeFrame, parseBody,
  FrameDecoder,
};
