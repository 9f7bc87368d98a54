// SPDX-License-Identifier: MIT
'use strict';
// client.cache / kv / id / queue / topic: the codec against
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
  if (service === 'queue') {
    const opt = (k) => (a[k] !== undefined ? hx(a[k]) : undefined);
    return S.encodeQueue(o, a.queue, {
      payload: opt('payload_hex'), priority: a.priority, delayMs: a.delay_ms, visibilityMs: a.visibility_ms,
      maxDeliveries: a.max_deliveries, dedup: opt('dedup_hex'), waitMs: a.wait_ms,
      id: a.id !== undefined ? BigInt(a.id) : undefined, token: a.token !== undefined ? BigInt(a.token) : undefined,
      backoff: a.backoff, reason: opt('reason_hex'), which: a.which, limit: a.limit, settings: a.settings,
    });
  }
  if (service === 'topic') {
    return S.encodeTopic(o, {
      subject: a.subject, pattern: a.pattern, group: a.group, maxPending: a.max_pending, policy: a.policy,
      payload: a.message_hex !== undefined ? hx(a.message_hex) : undefined,
      subId: a.sub_id !== undefined ? BigInt(a.sub_id) : undefined, waitMs: a.wait_ms, maxMsgs: a.max_msgs,
    });
  }
  return S.encodeId(o, { count: a.count, id: a.id !== undefined ? BigInt(a.id) : undefined });
}

/** A decoded ferry.topic reply as client_payloads.json writes it. */
function canonicalTopic(op, r) {
  switch (op) {
    case 'publish': return { status: 'OK', receivers: r };
    case 'subscribe': return { status: 'OK', sub_id: String(r) };
    case 'unsubscribe': return { status: r ? 'OK' : 'NOT_FOUND' };
    case 'stats': return r === null ? { status: 'NOT_FOUND' } : { status: 'OK', stats: r };
    default: // poll
      if (r === null) return { status: 'NOT_FOUND' };
      if (r.messages.length === 0) return { status: 'EMPTY', dropped: String(r.dropped) };
      return {
        status: 'OK', dropped: String(r.dropped),
        messages: r.messages.map((m) => ({ seq: String(m.seq), subject: m.subject, payload_hex: m.payload.toString('hex') })),
      };
  }
}

const peekEntry = (e) => ({
  id: String(e.id), attempts: e.attempts, priority: e.priority, state: e.state, age_ms: String(e.ageMs),
  reason_hex: e.reason.toString('hex'), payload_hex: e.payload.toString('hex'),
});

/** A decoded ferry.queue reply as client_payloads.json writes it. */
function canonicalQueue(op, r) {
  switch (op) {
    case 'push': return { status: 'OK', id: String(r.id), dup: r.dup };
    case 'reserve':
      return r === null ? { status: 'EMPTY' } : {
        status: 'OK', id: String(r.id), token: String(r.token), attempts: r.attempts, priority: r.priority,
        payload_hex: r.payload.toString('hex'),
      };
    case 'touch': return r.ok ? { status: r.status, visibility_ms: r.visibilityMs } : { status: r.status };
    case 'peek': return r === null ? { status: 'NOT_FOUND' } : { status: 'OK', entries: r.map(peekEntry) };
    case 'stats': return r === null ? { status: 'NOT_FOUND' } : { status: 'OK', stats: r };
    case 'configure': return r === null ? { status: 'NOT_FOUND' } : { status: 'OK', settings: r };
    case 'redrive': return r === null ? { status: 'NOT_FOUND' } : { status: 'OK', moved: String(r) };
    case 'purge': return r === null ? { status: 'NOT_FOUND' } : { status: 'OK', removed: String(r) };
    case 'pause': case 'resume': case 'delete': return { status: r ? 'OK' : 'NOT_FOUND' };
    default: return { status: r.status }; // ack, release, bury
  }
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
  if (service === 'queue') return canonicalQueue(op, r);
  if (service === 'topic') return canonicalTopic(op, r);
  if (op === 'next') return { status: 'OK', ids: r.map(String) };
  return { status: 'OK', unix_ms: String(r.unixMs), node: r.node, seq: r.seq };
}

const DECODE = { cache: S.decodeCache, kv: S.decodeKv, id: S.decodeId, queue: S.decodeQueue, topic: S.decodeTopic };

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

test('cluster() calls ferry.cluster and parses its object', async () => {
  const c = new ferry.Client();
  const calls = [];
  const replies = [Buffer.from('{"enabled":true,"epoch":3}'), Buffer.from('[1]'), Buffer.from('{no')];
  c.call = async (service, payload, opts) => { calls.push([service, payload, opts]); return replies.shift(); };
  assert.deepEqual(await c.cluster(), { enabled: true, epoch: 3 });
  assert.equal(calls[0][0], 'ferry.cluster');
  assert.equal(calls[0][1].length, 0);
  assert.equal(calls[0][2].key, undefined);
  await assert.rejects(c.cluster(), ferry.InvalidArgumentError);
  await assert.rejects(c.cluster(), ferry.InvalidArgumentError);
});

test('the shared vectors cover every ferry.queue op', () => {
  const ops = ['push', 'reserve', 'ack', 'release', 'touch', 'bury', 'peek', 'stats', 'redrive', 'pause',
    'resume', 'purge', 'delete', 'configure'];
  for (const kind of ['requests', 'replies']) {
    const seen = new Set(VEC[kind].filter((v) => v.service === 'queue').map((v) => v.op));
    assert.deepEqual(ops.filter((o) => !seen.has(o)), [], kind);
  }
  assert.ok(VEC.replies.some((v) => v.service === 'queue' && v.error), 'malformed queue replies');
});

test('ferry.queue arguments out of range are refused before sending', () => {
  const bad = (op, a) => assert.throws(() => S.encodeQueue(op, 'q', a), ferry.InvalidArgumentError, `${op} ${JSON.stringify(a, (k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
  bad('push', { priority: 32768 });
  bad('push', { priority: -32769 });
  bad('push', { priority: 1.5 });
  bad('push', { delayMs: 2 ** 32 });
  bad('push', { maxDeliveries: 65536 });
  bad('push', { dedup: Buffer.alloc(256) });
  bad('reserve', { waitMs: -1 });
  bad('ack', { id: -1n, token: 1n });
  bad('ack', { id: 1n, token: 1n << 64n });
  bad('release', { id: 1n, token: 1n, delayMs: 5, backoff: true });
  bad('release', { id: 1n, token: 1n, delayMs: 0xffffffff });
  bad('peek', { which: 'gone' });
  bad('peek', { limit: 65536 });
  bad('redrive', { limit: 2 ** 32 });
  assert.throws(() => S.encodeQueue('nope', 'q'), ferry.InvalidArgumentError);
  assert.throws(() => S.encodeQueue('configure', 'q', { settings: 5 }), TypeError);
  assert.throws(() => S.decodeQueue('nope', hx('00')), ferry.InvalidArgumentError);
  // u64s may come as bigint, number or decimal string
  assert.equal(S.encodeQueue('ack', 'q', { id: 7, token: '9' }).payload.toString('hex'), '0300000000000000070000000000000009');
  // settings as JSON text are sent as they are
  assert.equal(S.encodeQueue('configure', 'q', { settings: '{"paused": true}' }).payload.toString(), '\x0e{"paused": true}');
  // stats of every queue: no routing key
  assert.equal(S.encodeQueue('stats', undefined).key.length, 0);
});

test('ferry.queue replies with a status the op never gets are INVALID_ARGUMENT', () => {
  for (const [op, st] of [['push', 1], ['reserve', 2], ['reserve', 3], ['ack', 1], ['peek', 1], ['stats', 2],
    ['pause', 1], ['purge', 2]]) {
    assert.throws(() => S.decodeQueue(op, Buffer.from([st])), ferry.InvalidArgumentError, `${op} ${st}`);
  }
  assert.throws(() => S.decodeQueue('stats', Buffer.from('\x00{nope')), ferry.InvalidArgumentError);
});

/** A Client whose call() answers from a list and records what it was asked. */
function stubClient(replies) {
  const c = new ferry.Client();
  c.calls = [];
  c.call = async (service, payload, opts) => {
    c.calls.push([service, payload, opts]);
    const r = typeof replies === 'function' ? await replies(payload, opts) : replies.shift();
    if (r instanceof Error) throw r;
    return r;
  };
  return c;
}

const u64 = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(v)); return b; };
const jobReply = (id, token, attempts, prio, payload) => {
  const h = Buffer.alloc(23);
  h[0] = 0;
  h.writeBigUInt64BE(BigInt(id), 1);
  h.writeBigUInt64BE(BigInt(token), 9);
  h.writeUInt32BE(attempts, 17);
  h.writeInt16BE(prio, 21);
  return Buffer.concat([h, Buffer.from(payload)]);
};

test('client.queue calls ferry.queue with the queue as the key and decodes', async () => {
  const c = stubClient([Buffer.concat([hx('00'), u64(7), hx('01')]), jobReply(7, 99, 1, -3, 'hi'), hx('01'),
    hx('00'), hx('02'), Buffer.concat([hx('00'), hx('00007530')]), hx('00'), hx('000000'), hx('03'),
    Buffer.from('\x00{"queues":[]}'), Buffer.concat([hx('00'), u64(4)]), hx('00'), hx('03'),
    Buffer.concat([hx('00'), u64(2)]), hx('00'), Buffer.from('\x00{"paused":false}')]);
  const q = c.queue;
  assert.deepEqual(await q.push('jobs', 'x', { priority: -1, dedup: 'd' }), { id: 7n, dup: true });
  assert.equal(c.calls[0][0], 'ferry.queue');
  assert.equal(c.calls[0][1].toString('hex'), '01ffff0000000000000000000001' + '64' + '78');
  assert.equal(c.calls[0][2].key.toString(), 'jobs');
  const job = await q.reserve('jobs', { waitMs: 1500 });
  assert.deepEqual({ ...job, payload: job.payload.toString() }, { id: 7n, token: 99n, attempts: 1, priority: -3, payload: 'hi' });
  assert.equal(c.calls[1][2].deadlineMs, 6500, 'a reserve outlives its wait');
  assert.equal(await q.reserve('jobs'), null);
  assert.equal(c.calls[2][2].deadlineMs, 5000);
  assert.deepEqual(await q.ack('jobs', 7n, 99n), { status: 'OK', ok: true });
  assert.deepEqual(await q.release('jobs', 7n, 99n, { backoff: true }), { status: 'STALE', ok: false });
  assert.equal(c.calls[4][1].subarray(17).toString('hex'), 'ffffffff');
  assert.deepEqual(await q.touch('jobs', 7n, 99n, { visibilityMs: 30000 }), { status: 'OK', ok: true, visibilityMs: 30000 });
  assert.deepEqual(await q.bury('jobs', 7n, 99n, 'bad input'), { status: 'OK', ok: true });
  assert.equal(c.calls[6][1].subarray(17).toString(), 'bad input');
  assert.deepEqual(await q.peek('jobs', { which: 'dead', limit: 5 }), []);
  assert.equal(c.calls[7][1].toString('hex'), '07020005');
  assert.equal(await q.peek('nope'), null);
  assert.deepEqual(await q.stats(), { queues: [] });
  assert.equal(c.calls[9][2].key, undefined, 'stats of every queue has no key');
  assert.equal(await q.redrive('jobs', { limit: 4 }), 4n);
  assert.equal(await q.pause('jobs'), true);
  assert.equal(await q.resume('gone'), false);
  assert.equal(await q.purge('jobs'), 2n);
  assert.equal(await q.delete('jobs'), true);
  assert.deepEqual(await q.configure('jobs', { paused: false }), { paused: false });
  assert.equal(c.calls[15][1].toString(), '\x0e{"paused":false}');
  assert.equal(c.queue, q);
});

test('consume keeps credit reserves in flight, acks on resolve, releases on reject', async () => {
  const jobs = [jobReply(1, 11, 1, 0, 'ok'), jobReply(2, 12, 1, 0, 'fail'), jobReply(3, 13, 1, 0, 'self')];
  const waiting = [];
  let maxWaiting = 0;
  const c = stubClient((payload, opts) => {
    switch (payload[0]) {
      case 2: { // reserve: a job while there are some, then a long poll that ends with the signal
        if (jobs.length > 0) return jobs.shift();
        return new Promise((resolve, reject) => {
          waiting.push(opts);
          maxWaiting = Math.max(maxWaiting, waiting.length);
          opts.signal.addEventListener('abort', () => reject(new ferry.CancelledError('call cancelled')));
        });
      }
      case 3: return hx('00'); // ack
      case 4: return hx('02'); // release: STALE
      case 6: return hx('00'); // bury
      default: throw new Error(`op ${payload[0]}`);
    }
  });
  const seen = [];
  const stale = [];
  const failed = [];
  const cons = c.queue.consume('jobs', async (job) => {
    seen.push(job.payload.toString());
    if (job.payload.toString() === 'fail') throw new Error('no');
    if (job.payload.toString() === 'self') await job.bury('mine');
  }, { credit: 2, waitMs: 1000 });
  cons.on('stale', (job, status) => stale.push([job.id, status]));
  cons.on('handlerError', (err, job) => failed.push([err.message, job.id]));
  const t0 = Date.now();
  while (waiting.length < 2 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 5));
  assert.equal(cons.waiting, 2);
  assert.equal(maxWaiting, 2, 'never more reserves than the credit');
  assert.deepEqual(seen.sort(), ['fail', 'ok', 'self']);
  assert.equal(cons.handled, 3);
  const ops = c.calls.map(([, p]) => p[0]);
  assert.equal(ops.filter((o) => o === 3).length, 1, 'one ack');
  assert.equal(ops.filter((o) => o === 6).length, 1, 'one bury (by the handler), nothing after it');
  const rel = c.calls.find(([, p]) => p[0] === 4)[1];
  assert.equal(rel.readBigUInt64BE(1), 2n);
  assert.equal(rel.readUInt32BE(17), 0xffffffff, 'released by the queue\'s backoff');
  assert.deepEqual(stale, [[2n, 'STALE']]);
  assert.deepEqual(failed, [['no', 2n]]);
  assert.equal(waiting[0].deadlineMs, 6000);
  await cons.stop();
  assert.equal(cons.stopped, true);
  assert.equal(cons.waiting, 0);
  await cons.done;
});

test('consume stops on an error no retry mends; retries the others', async () => {
  let n = 0;
  const c = stubClient(() => {
    n++;
    if (n === 1) throw new ferry.NoSpaceError('full');
    if (n === 2) throw new ferry.DeadlineError('cut short');
    throw new ferry.InvalidArgumentError('not a queue name');
  });
  const errors = [];
  const cons = c.queue.consume('bad name', async () => {}, { waitMs: 10 });
  cons.on('error', (err) => errors.push(err.code));
  await assert.rejects(cons.done, ferry.InvalidArgumentError);
  assert.deepEqual(errors, ['NO_SPACE']);
  assert.equal(n, 3);
  assert.equal(cons.stopped, true);
  assert.throws(() => c.queue.consume('q', () => {}, { credit: 0 }), ferry.InvalidArgumentError);
  assert.throws(() => c.queue.consume('q', () => {}, { waitMs: 0 }), ferry.InvalidArgumentError);
  assert.throws(() => c.queue.consume('q', () => {}, { release: { delayMs: -1 } }), ferry.InvalidArgumentError);
  assert.throws(() => c.queue.consume('q', () => {}, { visibilityMs: 2 ** 32 }), ferry.InvalidArgumentError);
  assert.throws(() => c.queue.consume('q', null), TypeError);
});

test('consume stops when its signal aborts, and when the client closes', async () => {
  const c = stubClient((payload, opts) => new Promise((resolve, reject) => {
    opts.signal.addEventListener('abort', () => reject(new ferry.CancelledError('call cancelled')));
  }));
  const ac = new AbortController();
  const cons = c.queue.consume('q', () => {}, { signal: ac.signal, credit: 3 });
  await new Promise((r) => setImmediate(r));
  assert.equal(cons.waiting, 3);
  ac.abort();
  await cons.done;
  assert.equal(cons.waiting, 0);
  const c2 = new ferry.Client({ addr: '127.0.0.1:1' });
  await c2.close();
  const cons2 = c2.queue.consume('q', () => {});
  await cons2.done;
  assert.equal(cons2.stopped, true);
});

test('the shared vectors cover every ferry.topic op and status', () => {
  const ops = ['publish', 'subscribe', 'poll', 'unsubscribe', 'stats'];
  for (const kind of ['requests', 'replies']) {
    const seen = new Set(VEC[kind].filter((v) => v.service === 'topic').map((v) => v.op));
    assert.deepEqual(ops.filter((o) => !seen.has(o)), [], kind);
  }
  const st = new Set(VEC.replies.filter((v) => v.service === 'topic' && v.result).map((v) => v.result.status));
  assert.deepEqual([...st].sort(), ['EMPTY', 'NOT_FOUND', 'OK']);
});

test('ferry.topic arguments out of range are refused before sending', () => {
  const bad = (op, a) => assert.throws(() => S.encodeTopic(op, a), ferry.InvalidArgumentError,
    `${op} ${JSON.stringify(a, (k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
  bad('subscribe', { pattern: 'a', group: 'g'.repeat(256) });
  bad('subscribe', { pattern: 'a', policy: 'block' });
  bad('subscribe', { pattern: 'a', maxPending: 2 ** 32 });
  bad('poll', { subId: -1 });
  bad('poll', { subId: 1.5 });
  bad('poll', { subId: 1, waitMs: 2 ** 32 });
  bad('unsubscribe', { subId: 2n ** 64n });
  assert.throws(() => S.encodeTopic('nope'), ferry.InvalidArgumentError);
  assert.throws(() => S.decodeTopic('nope', hx('00')), ferry.InvalidArgumentError);
  for (const op of ['publish', 'subscribe', 'poll', 'unsubscribe', 'stats']) {
    assert.throws(() => S.decodeTopic(op, hx('02')), ferry.InvalidArgumentError, `${op} STALE`);
  }
  // sub ids come as numbers or bigints; stats without one has no sub id
  assert.equal(S.encodeTopic('unsubscribe', { subId: 7 }).payload.toString('hex'), '040000000000000007');
  assert.equal(S.encodeTopic('stats', { subId: 7n }).payload.toString('hex'), '050000000000000007');
  assert.equal(S.encodeTopic('stats').payload.toString('hex'), '05');
  // u64s are bigint, all of them
  assert.equal(S.decodeTopic('subscribe', Buffer.concat([hx('00'), u64(2n ** 64n - 1n)])), 2n ** 64n - 1n);
});

test('client.topic calls ferry.topic with the subject or pattern as the key and decodes', async () => {
  const msg = (seq, subject, payload) => {
    const h = Buffer.alloc(10);
    h.writeBigUInt64BE(BigInt(seq));
    h.writeUInt16BE(subject.length, 8);
    const l = Buffer.alloc(4);
    l.writeUInt32BE(payload.length);
    return Buffer.concat([h, Buffer.from(subject), l, Buffer.from(payload)]);
  };
  const c = stubClient([hx('0000000002'), Buffer.concat([hx('00'), u64(9)]),
    Buffer.concat([hx('00'), u64(2), hx('00000002'), msg(3, 'a.b', 'x'), msg(4, 'a.c', '')]),
    Buffer.concat([hx('01'), u64(5)]), hx('03'), hx('00'), hx('03'), Buffer.from('\x00{"subscriptions":1}'), hx('03')]);
  const t = c.topic;
  assert.equal(await t.publish('a.b', 'x'), 2);
  assert.equal(c.calls[0][0], 'ferry.topic');
  assert.equal(c.calls[0][2].key.toString(), 'a.b');
  assert.equal(await t.subscribe('a.*', { group: 'g', maxPending: 2, policy: 'close' }), 9n);
  assert.equal(c.calls[1][2].key.toString(), 'a.*');
  assert.equal(c.calls[1][1].toString('hex'), '0201670000000201');
  const got = await t.poll(9, { waitMs: 1000, maxMsgs: 10 });
  assert.equal(got.dropped, 2n);
  assert.deepEqual(got.messages.map((m) => [m.kind, m.seq, m.subject, m.payload.toString()]),
    [['message', 3n, 'a.b', 'x'], ['message', 4n, 'a.c', '']]);
  assert.equal(c.calls[2][2].key, undefined);
  assert.equal(c.calls[2][2].deadlineMs, 6000);
  assert.deepEqual(await t.poll(9n), { messages: [], dropped: 5n });
  assert.equal(c.calls[3][2].deadlineMs, 5000);
  assert.equal(await t.poll(9), null);
  assert.equal(await t.unsubscribe(9), true);
  assert.equal(await t.unsubscribe(9), false);
  assert.deepEqual(await t.stats(), { subscriptions: 1 });
  assert.equal(c.calls[7][1].toString('hex'), '05');
  assert.equal(await t.stats(9, { deadlineMs: 100 }), null);
  assert.equal(c.calls[8][2].deadlineMs, 100);
  assert.equal(c.topic, t);
});

test('client.topic.messages yields messages and gaps, re-subscribes after NOT_FOUND, unsubscribes at the end', async () => {
  const seen = [];
  let subs = 0;
  const c = stubClient(async (payload) => {
    seen.push(payload[0]);
    switch (payload[0]) {
      case 2: subs++; return Buffer.concat([hx('00'), u64(subs)]);
      case 3:
        if (subs === 1 && seen.filter((o) => o === 3).length === 1) {
          return Buffer.concat([hx('00'), u64(4), hx('00000001'), hx('0000000000000005000178'), hx('0000000179')]);
        }
        if (subs === 1) return hx('03'); // expired
        return Buffer.concat([hx('00'), u64(0), hx('00000001'), hx('0000000000000001000178'), hx('00000000')]);
      case 4: return hx('00');
      default: throw new Error(`op ${payload[0]}`);
    }
  });
  const out = [];
  for await (const m of c.topic.messages('x', { waitMs: 100 })) {
    out.push(m.kind === 'gap' ? ['gap', m.dropped, m.resubscribed] : [m.seq, m.subject, m.payload.toString()]);
    if (out.length === 4) break;
  }
  assert.deepEqual(out, [['gap', 4n, false], [5n, 'x', 'y'], ['gap', 0n, true], [1n, 'x', '']]);
  assert.deepEqual(seen, [2, 3, 3, 2, 3, 4]);
  assert.equal(c.calls[5][1].readBigUInt64BE(1), 2n, 'the second subscription is unsubscribed');
  assert.throws(() => c.topic.subscribe('x', () => {}, { waitMs: 0 }), ferry.InvalidArgumentError);
  await assert.rejects(c.topic.messages('x', { waitMs: 0 }).next(), ferry.InvalidArgumentError);
});
