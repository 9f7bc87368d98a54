// SPDX-License-Identifier: MIT
'use strict';
// The codec against tests/vectors/frames.json: every valid frame decodes
// to its fields and re-encodes byte for byte; every invalid one is refused
// with its code (or needs more bytes).
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { codec, FerryError } = require('..');
const VECTORS = require('../../../tests/vectors/frames.json');

function encodeFields(v) {
  const f = v.fields;
  const id = BigInt(v.id);
  switch (codec.TYPES[v.type]) {
    case codec.HELLO: return codec.encodeHello({ version: f.version, role: f.role, heartbeatMs: f.heartbeat_ms, name: f.name, token: f.token, maxFrame: f.max_frame });
    case codec.HELLO_OK: return codec.encodeHelloOk({ version: f.version, heartbeatMs: f.heartbeat_ms, maxFrame: f.max_frame, name: f.name, maxDeadlineMs: f.max_deadline_ms, defaultDeadlineMs: f.default_deadline_ms });
    case codec.REQUEST: return codec.encodeRequest(id, f.service, Buffer.from(f.payload_hex, 'hex'), { deadlineMs: f.deadline_ms, key: Buffer.from(f.key_hex, 'hex'), flags: v.flags });
    case codec.REPLY: return codec.encodeReply(id, Buffer.from(f.payload_hex, 'hex'));
    case codec.ERROR: return codec.encodeError(id, f.code, f.message);
    case codec.REGISTER: return codec.encodeRegister(id, f.service, f.credit);
    default: return codec.encodeEmpty(codec.TYPES[v.type], id);
  }
}

test('valid vectors decode and re-encode byte for byte', () => {
  let n = 0;
  for (const v of VECTORS.frames.filter((x) => x.type)) {
    const buf = Buffer.from(v.hex, 'hex');
    const f = codec.decodeFrame(buf, v.max_body || VECTORS.max_body);
    assert.ok(f !== null, v.name);
    assert.equal(codec.TYPE_NAMES[f.type], v.type, v.name);
    assert.equal(f.flags, v.flags, v.name);
    assert.equal(f.id.toString(), v.id, v.name);
    assert.equal(f.size, buf.length, v.name);
    const fl = v.fields;
    if (fl.code !== undefined) {
      assert.equal(f.fields.code, fl.code, v.name);
      assert.equal(f.fields.codeName, fl.code_name, v.name);
    }
    if (fl.credit !== undefined) {
      assert.equal(f.fields.credit, fl.credit, v.name);
    }
    if (fl.version !== undefined) {
      assert.equal(f.fields.version, fl.version, v.name);
      assert.equal(f.fields.maxFrame, fl.max_frame, v.name);
    }
    if (fl.payload_hex !== undefined) {
      assert.equal(f.fields.payload.toString('hex'), fl.payload_hex, v.name);
    }
    if (fl.trailing_hex === undefined) {
      assert.equal(encodeFields(v).toString('hex'), v.hex, v.name);
    } else {
      assert.equal(f.fields.trailing.toString('hex'), fl.trailing_hex, v.name);
    }
    n++;
  }
  assert.ok(n >= 20);
});

test('invalid vectors are refused with their code; short ones need more bytes', () => {
  let n = 0;
  for (const v of VECTORS.frames.filter((x) => !x.type)) {
    const buf = Buffer.from(v.hex, 'hex');
    if (v.incomplete) {
      assert.equal(codec.decodeFrame(buf, v.max_body || VECTORS.max_body), null, v.name);
    } else {
      assert.throws(() => codec.decodeFrame(buf, v.max_body || VECTORS.max_body),
        (e) => e instanceof FerryError && e.code === v.error, v.name);
    }
    n++;
  }
  assert.ok(n >= 20);
});

test('the stream decoder cuts any split of the bytes into the same frames', () => {
  const frames = VECTORS.frames.filter((x) => x.type).map((v) => Buffer.from(v.hex, 'hex'));
  const all = Buffer.concat(frames);
  for (const step of [1, 3, 16, 17, 100, all.length]) {
    const got = [];
    const d = new codec.FrameDecoder(codec.DEFAULT_MAX_BODY, (type, flags, id, body) => got.push([type, String(id), body.toString('hex')]));
    for (let i = 0; i < all.length; i += step) {
      d.push(all.subarray(i, i + step));
    }
    assert.equal(got.length, frames.length, `step ${step}`);
    got.forEach((g, i) => assert.equal(g[2], frames[i].subarray(16).toString('hex')));
  }
});
