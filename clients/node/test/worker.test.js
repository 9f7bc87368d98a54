// SPDX-License-Identifier: MIT
'use strict';
// The Worker against a real ferryd: credit, later answers, failures with
// codes, cancellation, DRAIN, reconnect and re-register.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const ferry = require('..');
const { Daemon, sleep, waitFor } = require('./helpers');

let d;
before(async () => { d = await new Daemon().start(); });
after(async () => { await d.stop(); });

async function withBoth(fn, wopts = {}) {
  const w = new ferry.Worker({ addr: d.addr, ...wopts });
  const c = new ferry.Client({ addr: d.addr });
  try {
    await fn(w, c);
  } finally {
    await c.close();
    await w.stop({ timeoutMs: 100 });
  }
}

test('async handlers answer; string, Buffer and thrown errors', () => withBoth(async (w, c) => {
  w.handle('t.upper', async (p) => p.toString().toUpperCase());
  w.handle('t.bytes', (p) => Buffer.concat([p, Buffer.from([0])]));
  w.handle('t.fail', () => { throw new Error('broken'); });
  w.handle('t.invalid', async () => { throw new ferry.InvalidArgumentError('want a number'); });
  w.handle('t.job', (p, job) => `${job.service}:${job.deadlineMs > 0}:${job.key.toString()}:${job.idempotent}`);
  await w.start();
  assert.ok(w.ready);
  assert.equal((await c.call('t.upper', 'abc')).toString(), 'ABC');
  assert.deepEqual(await c.call('t.bytes', Buffer.from([1, 2])), Buffer.from([1, 2, 0]));
  await assert.rejects(c.call('t.fail', ''), (e) => e instanceof ferry.WorkerError && e.code === 'WORKER_ERROR' && e.message === 'broken');
  await assert.rejects(c.call('t.invalid', ''), { code: 'INVALID_ARGUMENT', errno: 11, message: 'want a number' });
  assert.equal((await c.call('t.job', '', { key: 'k1', idempotent: true, deadlineMs: 3000 })).toString(), 't.job:true:k1:true');
  assert.equal(w.handled, 5);
}));

test('credit: a worker with credit 2 never holds more than 2', () => withBoth(async (w, c) => {
  let max = 0;
  w.handle('t.credit', async (p) => {
    max = Math.max(max, w.held);
    await sleep(20);
    return p;
  }, { credit: 2 });
  await w.start();
  const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => c.call('t.credit', String(i), { deadlineMs: 10000 })));
  rs.forEach((r, i) => assert.equal(r.toString(), String(i)));
  assert.equal(max, 2);
}));

test('a job answered later with job.reply(), after the handler returned', () => withBoth(async (w, c) => {
  const held = [];
  w.handle('t.later', (p, job) => { held.push(job); });
  await w.start();
  const p1 = c.call('t.later', 'a');
  const p2 = c.call('t.later', 'b');
  await waitFor(() => held.length === 2, 5000, 'two jobs');
  assert.equal(w.held, 2);
  assert.equal(held[1].reply('second'), true);
  assert.equal(held[1].reply('again'), false);
  assert.equal(held[0].fail('OVERLOADED', 'busy'), true);
  assert.equal((await p2).toString(), 'second');
  await assert.rejects(p1, { code: 'OVERLOADED', message: 'busy' });
  assert.equal(w.held, 0);
}));

test('a deadline cancels the job at the worker: its signal aborts, the credit comes back', () => withBoth(async (w, c) => {
  const aborted = [];
  let n = 0;
  w.handle('t.hang', (p, job) => {
    n++;
    if (p.toString() === 'hang') {
      job.signal.addEventListener('abort', () => aborted.push(job.signal.reason));
      return undefined;
    }
    return 'quick';
  }, { credit: 1 });
  await w.start();
  await assert.rejects(c.call('t.hang', 'hang', { deadlineMs: 200 }), { code: 'DEADLINE' });
  await waitFor(() => aborted.length === 1, 3000, 'the cancel');
  assert.ok(aborted[0] instanceof ferry.CancelledError);
  assert.equal(w.held, 0);
  // Credit 1 came back: the next job gets through.
  assert.equal((await c.call('t.hang', 'x', { deadlineMs: 2000 })).toString(), 'quick');
  assert.equal(n, 2);
}));

test('stop(): DRAIN, the held jobs are answered, then the worker is gone', async () => {
  const w = new ferry.Worker({ addr: d.addr });
  const c = new ferry.Client({ addr: d.addr });
  try {
    w.handle('t.drain', async (p) => { await sleep(300); return `done ${p}`; }, { credit: 4 });
    await w.start();
    const ps = [c.call('t.drain', '1'), c.call('t.drain', '2')];
    await waitFor(() => w.held === 2, 5000, 'two jobs');
    const stopped = w.stop();
    assert.deepEqual((await Promise.all(ps)).map(String), ['done 1', 'done 2']);
    await stopped;
    assert.equal(w.held, 0);
    // No worker left: the service has none now.
    await assert.rejects(c.call('t.drain', '3', { deadlineMs: 300 }), (e) => ['NO_WORKER', 'UNKNOWN_SERVICE', 'DEADLINE'].includes(e.code));
  } finally {
    await c.close();
  }
});

test('reconnects after ferryd restarts and registers again', async () => {
  const d2 = await new Daemon().start();
  const w = new ferry.Worker({ addr: d2.addr, reconnectMaxMs: 200 });
  w.handle('t.re', (p) => `re:${p}`);
  const c = new ferry.Client({ addr: d2.addr, reconnectMaxMs: 200 });
  try {
    await w.start();
    assert.equal((await c.call('t.re', '1')).toString(), 're:1');
    const readyAgain = new Promise((r) => w.once('disconnect', () => w.once('ready', r)));
    await d2.restart();
    await readyAgain;
    assert.equal(w.connects, 2);
    assert.equal((await c.call('t.re', '2', { deadlineMs: 5000 })).toString(), 're:2');
  } finally {
    await c.close();
    await w.stop({ timeoutMs: 100 });
    await d2.stop();
  }
});

test('a wrong token fails start() with UnauthorizedError', async () => {
  const d2 = await new Daemon(['--worker-token', 'wt']).start();
  try {
    const w = new ferry.Worker({ addr: d2.addr, token: 'nope' });
    w.handle('x', () => 'x');
    await assert.rejects(w.start(), (e) => e instanceof ferry.UnauthorizedError);
    const ok = new ferry.Worker({ addr: d2.addr, token: 'wt' });
    ok.handle('x', () => 'x');
    await ok.start();
    await ok.stop();
  } finally {
    await d2.stop();
  }
});

test('a lost worker: its callers get WORKER_LOST, its job signals abort', async () => {
  const w = new ferry.Worker({ addr: d.addr });
  const c = new ferry.Client({ addr: d.addr });
  let reason = null;
  try {
    w.handle('t.lost', (p, job) => { job.signal.addEventListener('abort', () => { reason = job.signal.reason; }); });
    await w.start();
    const p = assert.rejects(c.call('t.lost', 'x', { deadlineMs: 5000 }), { code: 'WORKER_LOST' });
    await waitFor(() => w.held === 1, 5000, 'the job');
    w._conn.socket.destroy(); // the connection dies under the worker
    await p;
    await waitFor(() => reason !== null, 3000, 'the abort');
    assert.ok(reason instanceof ferry.ConnectionError);
  } finally {
    await c.close();
    await w.stop({ timeoutMs: 10 });
  }
});

test('registering a built-in service is refused: start() rejects with InvalidArgumentError', async () => {
  const w = new ferry.Worker({ addr: d.addr });
  w.handle('echo', (p) => p);
  await assert.rejects(w.start(), (e) => e instanceof ferry.InvalidArgumentError && /echo/.test(e.message));
  await w.stop();
});
