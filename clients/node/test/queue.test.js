// SPDX-License-Identifier: MIT
'use strict';
// client.queue against a real ferryd: a job's round trip, a held reserve
// woken by a push, and consume(): credit honoured, every job acked once,
// a rejected job released and delivered again, stop() withdrawing the
// waiting reserves.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const ferry = require('../lib');
const { Daemon, sleep, waitFor } = require('./helpers');

let d;
let c;
before(async () => {
  d = await new Daemon().start();
  c = new ferry.Client({ addr: d.addr });
  await c.connect();
});
after(async () => {
  await c.close();
  await d.stop();
});

test('push, reserve, touch, ack; a second ack is NOT_FOUND', async () => {
  const p = await c.queue.push('t.round', 'hello', { priority: 3 });
  assert.equal(typeof p.id, 'bigint');
  const job = await c.queue.reserve('t.round');
  assert.equal(job.id, p.id);
  assert.equal(job.payload.toString(), 'hello');
  assert.equal(job.priority, 3);
  assert.equal(job.attempts, 1);
  assert.equal(typeof job.token, 'bigint');
  const t = await c.queue.touch('t.round', job.id, job.token, { visibilityMs: 5000 });
  assert.deepEqual(t, { status: 'OK', ok: true, visibilityMs: 5000 });
  assert.deepEqual(await c.queue.ack('t.round', job.id, job.token), { status: 'OK', ok: true });
  assert.deepEqual(await c.queue.ack('t.round', job.id, job.token), { status: 'NOT_FOUND', ok: false });
  const st = await c.queue.stats('t.round');
  assert.equal(st.acks, 1);
  assert.ok((await c.queue.stats()).queues.some((q) => q.name === 't.round'));
  assert.equal(await c.queue.stats('t.never'), null);
});

test('a reserve held with waitMs is woken by another caller\'s push', async () => {
  const other = new ferry.Client({ addr: d.addr });
  try {
    const held = c.queue.reserve('t.wait', { waitMs: 10000 });
    await waitFor(async () => (await other.queue.stats('t.wait') || {}).waiters === 1, 5000, 'the waiter');
    const p = await other.queue.push('t.wait', 'wake');
    const job = await held;
    assert.equal(job.id, p.id);
    assert.equal((await c.queue.ack('t.wait', job.id, job.token)).status, 'OK');
    assert.equal(await c.queue.reserve('t.wait', { waitMs: 100 }), null);
  } finally {
    await other.close();
  }
});

test('consume: credit reserves, each job acked once, a rejected one released and delivered again', async () => {
  const Q = 't.consume';
  for (let i = 0; i < 20; i++) {
    await c.queue.push(Q, `job-${i}`);
  }
  const done = new Map();
  let inHandler = 0;
  let most = 0;
  let failedOnce = false;
  const cons = c.queue.consume(Q, async (job) => {
    inHandler++;
    most = Math.max(most, inHandler);
    await sleep(5);
    inHandler--;
    const text = job.payload.toString();
    if (text === 'job-7' && !failedOnce) {
      failedOnce = true;
      throw new Error('transient');
    }
    done.set(text, job.attempts);
  }, { credit: 4, waitMs: 2000 });
  const errors = [];
  cons.on('error', (err) => errors.push(err));
  await waitFor(() => done.size === 20, 10000, 'all 20 jobs');
  assert.ok(most <= 4 && most >= 2, `at most the credit in the handler at once (${most})`);
  assert.equal(done.get('job-7'), 2, 'the rejected job came back, attempt 2');
  assert.equal(done.get('job-0'), 1);
  await waitFor(async () => (await c.queue.stats(Q)).waiters === 4, 5000, 'four reserves waiting');
  await cons.stop();
  await cons.done;
  assert.equal(cons.handled, 21);
  const st = await waitFor(async () => {
    const s = await c.queue.stats(Q);
    return s.waiters === 0 && s;
  }, 5000, 'the reserves withdrawn');
  assert.equal(st.acks, 20);
  assert.equal(st.releases, 1);
  assert.equal(st.ready + st.reserved + st.delayed, 0);
  assert.deepEqual(errors, []);
});

test('consume: a handler may bury its own job; an invalid queue name stops the consumer', async () => {
  const Q = 't.bury';
  await c.queue.push(Q, 'poison');
  const buried = [];
  const cons = c.queue.consume(Q, async (job) => {
    buried.push((await job.bury('poison pill')).status);
  }, { waitMs: 500 });
  await waitFor(() => buried.length === 1, 5000, 'the bury');
  await cons.stop();
  assert.deepEqual(buried, ['OK']);
  const dead = await c.queue.peek(Q, { which: 'dead' });
  assert.equal(dead.length, 1);
  assert.equal(dead[0].reason.toString(), 'poison pill');
  const st = await c.queue.stats(Q);
  assert.equal(st.acks, 0, 'nothing acked after the bury');

  const bad = c.queue.consume('bad name!', () => {});
  await assert.rejects(bad.done, ferry.InvalidArgumentError);
});
