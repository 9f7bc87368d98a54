// SPDX-License-Identifier: MIT
'use strict';
// client.cache / client.kv / client.id: the codec against
// tests/vectors/client_payloads.json (shared with every client),
// and the helpers through a stub call.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const ferry = require('../lib');
const S = ferry.servants;

const VEC = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../../tests/vectors/client_payloads.json'), 'utf8'));
const hx = (h) => Buffer.from(h, 'hex');
const OPS = { get_many: 'getMany' };

function encode(service, op, a) {
  const o = OPS[op] || op;
  if (service === 'cache') {
    return S.encodeCache(o, {
      key: a.key_hex !== undefined ? hx(a.key_hex) : undefined,
      value: a.value_hex !== undefined ? hx(a.value_hex) : undefined,
      flags: a.flags, ttlMs: a.ttl_ms, delayMs: a.delay_ms,
      cas: a.cas !== undefined ? BigInt(a.cas) : undefined,
      delta: a.delta !== undefined ? BigInt(a.delta) : undefined,
      keys: a.keys_hex && a.keys_hex.map(hx),
    });
  }
  if (service === 'kv') {
    return S.encodeKv(o, hx(a.key_hex), {
      value: a.value_hex !== undefined ? hx(a.value_hex) : undefined,
      cond: a.cond === 'mod_rev' ? 'modRev' : a.cond,
      rev: a.rev !== undefined ? BigInt(a.rev) : undefined,
      end: a.end_hex !== undefined ? hx(a.end_hex) : undefined,
      limit: a.limit, keysOnly: a.keys_only, prefix: a.prefix,
      fromRev: a.from_rev !== undefined ? BigInt(a.from_rev) : undefined,
      waitMs: a.wait_ms, maxEvents: a.max_events,
    });
  }
  return S.encodeId(o, { count: a.count, id: a.id !== undefined ? BigInt(a.id) : undefined });
}

const item = (i) => (i === null ? { status: 'NOT_FOUND' }
  : { status: 'OK', flags: i.flags, cas: String(i.cas), value_hex: i.value.toString('hex') });
const entry = (e, withKey = true) => ({
  ...(withKey ? { key_hex: e.key.toString('hex') } : {}),
  create_rev: String(e.createRev), mod_rev: String(e.modRev), version: String(e.version),
  value_hex: e.value.toString('hex'),
});

/** A decoded reply as client_payloads.json writes it. */
function canonical(service, op, r) {
  if (service === 'cache') {
    if (op === 'get' || op === 'gat') return item(r);
    if (op === 'get_many') return { status: 'OK', items: r.map(item) };
    if (r && typeof r === 'object' && 'status' in r) return r.ok ? { status: r.status, cas: String(r.cas) } : { status: r.status };
    if (op === 'incr' || op === 'decr') return r === null ? { status: 'NOT_FOUND' } : { status: 'OK', value: String(r) };
    return { status: r ? 'OK' : 'NOT_FOUND' };
  }
  if (service === 'kv') {
    if (op === 'get') return { status: r.entry ? 'OK' : 'NOT_FOUND', rev: String(r.rev), ...(r.entry ? entry(r.entry, false) : {}) };
    if (op === 'put' || op === 'delete') return { status: r.status, rev: String(r.rev) };
    if (op === 'count') return { status: 'OK', rev: String(r.rev), count: String(r.count) };
    if (op === 'range') return { status: 'OK', rev: String(r.rev), more: r.more, items: r.items.map((e) => entry(e)) };
    return { status: 'OK', rev: String(r.rev), events: r.events.map((e) => ({ type: e.type, ...entry(e) })) };
  }
  if (op === 'next') return { status: 'OK', ids: r.map(String) };
  return { status: 'OK', unix_ms: String(r.unixMs), node: r.node, seq: r.seq };
}

const DECODE = { cache: S.decodeCache, kv: S.decodeKv, id: S.decodeId };

test('requests encode as the shared vectors', () => {
  assert.ok(VEC.requests.length > 20);
  for (const v of VEC.requests) {
    const { key, payload } = encode(v.service, v.op, v.args);
    assert.equal(payload.toString('hex'), v.payload_hex, JSON.stringify(v));
    assert.equal(key.toString('hex'), v.key_hex, JSON.stringify(v));
  }
});

test('replies decode as the shared vectors; malformed ones are INVALID_ARGUMENT', () => {
  assert.ok(VEC.replies.length > 40);
  for (const v of VEC.replies) {
    const dec = () => DECODE[v.service](OPS[v.op] || v.op, hx(v.reply_hex));
    if (v.error) {
      assert.throws(dec, (e) => e instanceof ferry.InvalidArgumentError && e.code === v.error, JSON.stringify(v));
    } else {
      assert.deepEqual(canonical(v.service, v.op, dec()), v.result, JSON.stringify(v));
    }
  }
});

test('every truncated reply decodes or is INVALID_ARGUMENT', () => {
  for (const v of VEC.replies) {
    const b = hx(v.reply_hex);
    for (let n = 0; n < b.length; n++) {
      try {
        DECODE[v.service](OPS[v.op] || v.op, b.subarray(0, n));
      } catch (e) {
        assert.ok(e instanceof ferry.InvalidArgumentError, `${v.op} ${n}: ${e}`);
      }
    }
  }
});

test('out-of-range arguments are refused before sending', () => {
  assert.throws(() => S.encodeCache('incr', { key: 'k', delta: 1n << 64n }), ferry.InvalidArgumentError);
  assert.throws(() => S.encodeCache('set', { key: 'k', flags: -1 }), ferry.InvalidArgumentError);
  assert.throws(() => S.encodeKv('put', 'k', { cond: 'sometimes' }), ferry.InvalidArgumentError);
});

test('helpers on a Client call the service with the key and decode', async () => {
  const c = new ferry.Client();
  const calls = [];
  const u64 = (s, v) => { const b = Buffer.alloc(9); b[0] = s; b.writeBigUInt64BE(v, 1); return b; };
  const replies = [u64(0, 5n), Buffer.concat([hx('0000000009000000000000002a'), Buffer.from('v')]), hx('01'),
    u64(0, 11n), u64(3, 11n), Buffer.concat([hx('00000000020000000000000001'), hx('0000000000000002')])];
  c.call = async (service, payload, opts) => { calls.push([service, payload, opts]); return replies.shift(); };
  const w = await c.cache.set('k', 'v', { ttlMs: 10 });
  assert.deepEqual(w, { status: 'OK', ok: true, cas: 5n });
  assert.equal(calls[0][0], 'ferry.cache');
  assert.equal(calls[0][2].key.toString(), 'k');
  const it = await c.cache.get('k');
  assert.deepEqual([it.value.toString(), it.flags, it.cas], ['v', 9, 42n]);
  assert.equal(await c.cache.get('k'), null);
  assert.equal((await c.kv.put('a', '1')).rev, 11n);
  const refused = await c.kv.put('a', '2', { ifModRev: 10n });
  assert.deepEqual(refused, { status: 'EXISTS', ok: false, rev: 11n });
  assert.deepEqual(await c.id.next(2), [1n, 2n]);
  assert.equal(calls[5][2].key, undefined);
});
