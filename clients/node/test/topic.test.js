// SPDX-License-Identifier: MIT
'use strict';
// client.topic against a real ferryd: publish and poll across two
// clients (a wildcard, two subscriptions, a group, the gap notice, policy
// close, unsubscribe), a held poll woken by a publish, and the subscriber
// loops: messages() (a gap, re-subscribing after expiry, break
// unsubscribing) and subscribe(pattern, handler) (stop()).
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const ferry = require('../lib');
const { Daemon, sleep, waitFor } = require('./helpers');

let d;
let c;
let p;
before(async () => {
  d = await new Daemon(['--topic-idle-ms', '500']).start();
  c = new ferry.Client({ addr: d.addr });
  p = new ferry.Client({ addr: d.addr });
  await c.connect();
  await p.connect();
});
after(async () => {
  await c.close();
  await p.close();
  await d.stop();
});

const texts = (got) => got.messages.map((m) => m.payload.toString());

test('publish reaches the subscriptions that match; poll gets subject, seq and the gap', async () => {
  const a = await c.topic.subscribe('t.orders.*');
  const b = await c.topic.subscribe('t.orders.>', { maxPending: 2 });
  assert.equal(typeof a, 'bigint');
  assert.equal(await p.topic.publish('t.orders.eu', 'o1'), 2);
  assert.equal(await p.topic.publish('t.orders.eu.vip', 'o2'), 1);
  assert.equal(await p.topic.publish('t.none', 'x'), 0);
  const got = await c.topic.poll(a, { waitMs: 1000 });
  assert.deepEqual(got.messages.map((m) => [m.seq, m.subject, m.payload.toString()]), [[1n, 't.orders.eu', 'o1']]);
  assert.equal(got.dropped, 0n);
  assert.deepEqual(await c.topic.poll(a), { messages: [], dropped: 0n });
  for (let i = 0; i < 3; i++) await p.topic.publish('t.orders.x.y', String(i));
  const gap = await c.topic.poll(b, { maxMsgs: 10 });
  assert.equal(gap.dropped, 3n);
  assert.deepEqual(gap.messages.map((m) => [m.seq, m.payload.toString()]), [[4n, '1'], [5n, '2']]);
  assert.equal(await c.topic.unsubscribe(a), true);
  assert.equal(await c.topic.unsubscribe(a), false);
  assert.equal(await c.topic.poll(a), null);
  assert.equal(await c.topic.stats(a), null);
  assert.equal(await c.topic.unsubscribe(b), true);
});

test('a group of two shares the messages, each once and in turn', async () => {
  const g1 = await c.topic.subscribe('t.jobs', { group: 'w' });
  const g2 = await p.topic.subscribe('t.jobs', { group: 'w' });
  for (let i = 0; i < 4; i++) assert.equal(await p.topic.publish('t.jobs', String(i)), 1);
  assert.deepEqual(texts(await c.topic.poll(g1, { maxMsgs: 10 })), ['0', '2']);
  assert.deepEqual(texts(await p.topic.poll(g2)), ['1', '3']);
  const st = await c.topic.stats(g1);
  assert.deepEqual([st.pattern, st.group, st.delivered], ['t.jobs', 'w', 2]);
  assert.ok((await c.topic.stats()).subscriptions >= 2);
  await c.topic.unsubscribe(g1);
  await p.topic.unsubscribe(g2);
});

test('policy close: SlowConsumerError once, then null; bad subjects are INVALID_ARGUMENT', async () => {
  const s = await c.topic.subscribe('t.slow', { maxPending: 1, policy: 'close' });
  assert.equal(await p.topic.publish('t.slow', '1'), 1);
  assert.equal(await p.topic.publish('t.slow', '2'), 0);
  await assert.rejects(c.topic.poll(s), (e) => e instanceof ferry.SlowConsumerError && /slow subscriber/.test(e.message));
  assert.equal(await c.topic.poll(s), null);
  await assert.rejects(p.topic.publish('ferry.x', 'no'), ferry.InvalidArgumentError);
  await assert.rejects(c.topic.subscribe('t.>.x'), ferry.InvalidArgumentError);
});

test('a held poll is woken by another caller\'s publish', async () => {
  const s = await c.topic.subscribe('t.wake');
  const held = c.topic.poll(s, { waitMs: 10000 });
  await waitFor(async () => (await p.topic.stats(s)).polling, 5000, 'the held poll');
  const t0 = Date.now();
  await p.topic.publish('t.wake', 'now');
  assert.deepEqual(texts(await held), ['now']);
  assert.ok(Date.now() - t0 < 4000);
  await c.topic.unsubscribe(s);
});

test('messages(): a gap notice, re-subscribing after expiry, break unsubscribes', async () => {
  const it = c.topic.messages('t.feed.*', { maxPending: 2, waitMs: 200 });
  const first = it.next();
  await waitFor(async () => (await p.topic.stats()).polls_waiting === 1, 5000, 'the subscriber');
  await p.topic.publish('t.feed.a', 'first');
  const m = (await first).value;
  assert.deepEqual([m.kind, m.seq, m.subject, m.payload.toString()], ['message', 1n, 't.feed.a', 'first']);
  for (let i = 0; i < 5; i++) await p.topic.publish('t.feed.b', String(i));
  assert.deepEqual((await it.next()).value, { kind: 'gap', dropped: 3n, resubscribed: false });
  assert.equal((await it.next()).value.payload.toString(), '3');
  assert.equal((await it.next()).value.payload.toString(), '4');
  await sleep(1200); // paused past topic_idle_ms: ferryd forgets it
  assert.ok((await p.topic.stats()).expired >= 1);
  assert.deepEqual((await it.next()).value, { kind: 'gap', dropped: 0n, resubscribed: true });
  const again = it.next();
  await waitFor(async () => (await p.topic.stats()).polls_waiting === 1, 5000, 'the new subscription');
  await p.topic.publish('t.feed.c', 'again');
  const a = (await again).value;
  assert.deepEqual([a.seq, a.payload.toString()], [1n, 'again']);
  await it.return();
  assert.equal((await p.topic.stats()).subscriptions, 0);
});

test('subscribe(pattern, handler): each message in order, gap events, stop() unsubscribes', async () => {
  const got = [];
  const gaps = [];
  const sub = c.topic.subscribe('t.h', async (m) => {
    got.push(m.payload.toString());
    if (got.length === 1) await sleep(250); // the next ones wait in the buffer
  }, { maxPending: 2, waitMs: 5000 });
  sub.on('gap', (dropped, resubscribed) => gaps.push([dropped, resubscribed]));
  await waitFor(async () => (await p.topic.stats()).polls_waiting === 1, 5000, 'the subscriber');
  await p.topic.publish('t.h', 'a');
  await waitFor(() => got.length === 1, 5000, 'the first message');
  for (const x of ['b', 'c', 'd']) await p.topic.publish('t.h', x);
  await waitFor(() => got.length === 3, 5000, 'the rest');
  assert.deepEqual(got, ['a', 'c', 'd']);
  assert.deepEqual(gaps, [[1n, false]]);
  assert.equal(sub.received, 3);
  const t0 = Date.now();
  await sub.stop();
  assert.ok(Date.now() - t0 < 4000, 'stop cancels the poll held');
  assert.equal(sub.stopped, true);
  await sub.done;
  const st = await p.topic.stats();
  assert.deepEqual([st.subscriptions, st.polls_waiting], [0, 0]);
  // A subscriber that cannot subscribe ends with the error.
  const badSub = c.topic.subscribe('t.>.x', () => {});
  await assert.rejects(badSub.done, ferry.InvalidArgumentError);
  // Aborting the signal stops it too.
  const ac = new AbortController();
  const s2 = c.topic.subscribe('t.sig', () => {}, { signal: ac.signal });
  await waitFor(async () => (await p.topic.stats()).polls_waiting === 1, 5000, 'the second subscriber');
  ac.abort();
  await s2.done;
  assert.equal((await p.topic.stats()).subscriptions, 0);
});
