// SPDX-License-Identifier: MIT
'use strict';
// The Client against a real ferryd (and, for what ferryd will not do on
// demand, a scripted server on a loopback port).
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('net');
const ferry = require('..');
const { codec } = ferry;
const { Daemon, sleep, waitFor, freePort } = require('./helpers');

let d;
before(async () => { d = await new Daemon().start(); });
after(async () => { await d.stop(); });

test('a call returns the reply as a Buffer', async () => {
  const c = new ferry.Client({ addr: d.addr });
  try {
    await c.connect();
    assert.equal(c.server.version, ferry.PROTOCOL_VERSION);
    assert.equal(ferry.PROTOCOL_VERSION, 2);
    assert.equal(c.server.defaultDeadlineMs, 5000);
    assert.equal(c.server.maxDeadlineMs, 60000);
    const r = await c.call('echo', 'hello');
    assert.ok(Buffer.isBuffer(r));
    assert.equal(r.toString(), 'hello');
    assert.deepEqual(await c.call('echo', Buffer.from([0, 255, 1])), Buffer.from([0, 255, 1]));
    assert.equal((await c.call('echo', '')).length, 0);
    assert.equal(c.connects, 1);
    assert.equal(c.pending, 0);
  } finally {
    await c.close();
  }
});

test('cluster() on a single node is { enabled: false }', async () => {
  const c = new ferry.Client({ addr: d.addr });
  try {
    assert.deepEqual(await c.cluster(), { enabled: false });
    assert.deepEqual(await c.cluster({ deadlineMs: 5000 }), { enabled: false });
  } finally {
    await c.close();
  }
});

test('a unix socket address works', async () => {
  const c = new ferry.Client({ addr: d.unixAddr });
  try {
    assert.equal((await c.call('echo', 'over unix')).toString(), 'over unix');
  } finally {
    await c.close();
  }
});

test('1000 pipelined calls on one connection are matched by id', async () => {
  const c = new ferry.Client({ addr: d.addr });
  try {
    const ps = [];
    for (let i = 0; i < 1000; i++) {
      ps.push(c.call('echo', `payload-${i}`));
    }
    assert.equal(c.pending, 1000);
    const rs = await Promise.all(ps);
    rs.forEach((r, i) => assert.equal(r.toString(), `payload-${i}`));
    assert.equal(c.connects, 1);
  } finally {
    await c.close();
  }
});

test('errors are FerryError subclasses with .code and .errno', async () => {
  const c = new ferry.Client({ addr: d.addr });
  try {
    await assert.rejects(c.call('no.such.service', 'x', { deadlineMs: 200 }), (err) => {
      assert.ok(err instanceof ferry.UnknownServiceError);
      assert.ok(err instanceof ferry.FerryError);
      assert.ok(err instanceof Error);
      assert.equal(err.code, 'UNKNOWN_SERVICE');
      assert.equal(err.errno, 5);
      return true;
    });
    await assert.rejects(c.call('', 'x'), { code: 'INVALID_ARGUMENT', errno: 11 });
    await assert.rejects(c.call('echo', 'x', { key: Buffer.alloc(1025) }), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(c.call('echo', 'x', { deadlineMs: -1 }), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(c.call('echo', 42), TypeError);
    assert.throws(() => new ferry.Client({ addr: d.addr, maxFrame: 1027 }), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => new ferry.Client({ addr: 'nocolon' }), { code: 'INVALID_ARGUMENT' });
    // The connection survived all of that.
    assert.equal((await c.call('echo', 'still')).toString(), 'still');
    assert.equal(c.connects, 1);
  } finally {
    await c.close();
  }
});

test('a request larger than max_frame is refused locally; the connection stays', async () => {
  const c = new ferry.Client({ addr: d.addr });
  try {
    await c.connect();
    const max = c.server.maxFrame;
    const fits = max - 8 - 'echo'.length;
    await assert.rejects(c.call('echo', Buffer.alloc(fits + 1)), (err) => {
      assert.ok(err instanceof ferry.TooBigError);
      assert.match(err.message, new RegExp(String(max)));
      return true;
    });
    const big = Buffer.alloc(fits, 0x61);
    const r = await c.call('echo', big, { deadlineMs: 20000 });
    assert.equal(r.length, fits);
    assert.ok(r.equals(big));
    assert.equal(c.connects, 1);
  } finally {
    await c.close();
  }
});

test('1 MiB payloads come back whole', async () => {
  const c = new ferry.Client({ addr: d.addr });
  try {
    const p = Buffer.alloc(1 << 20);
    for (let i = 0; i < p.length; i++) {
      p[i] = (i * 7 + 3) % 251;
    }
    const rs = await Promise.all([c.call('echo', p), c.call('echo', p), c.call('echo', 'small')]);
    assert.ok(rs[0].equals(p));
    assert.ok(rs[1].equals(p));
    assert.equal(rs[2].toString(), 'small');
  } finally {
    await c.close();
  }
});

test('an AbortSignal cancels a call: CancelledError named AbortError, CANCEL sent', async () => {
  const w = new ferry.Worker({ addr: d.addr });
  let cancelled = 0;
  w.handle('hang', (_p, job) => { job.signal.addEventListener('abort', () => { cancelled++; }); }, { credit: 4 });
  await w.start();
  const c = new ferry.Client({ addr: d.addr });
  try {
    const ac = new AbortController();
    const p = c.call('hang', 'x', { signal: ac.signal, deadlineMs: 10000 });
    await waitFor(() => w.held === 1, 5000, 'the job at the worker');
    const t0 = Date.now();
    ac.abort(new Error('changed my mind'));
    await assert.rejects(p, (err) => {
      assert.ok(err instanceof ferry.CancelledError);
      assert.equal(err.code, 'CANCELLED');
      assert.equal(err.errno, 12);
      assert.equal(err.name, 'AbortError');
      assert.equal(err.cause.message, 'changed my mind');
      return true;
    });
    assert.ok(Date.now() - t0 < 1000);
    // ferryd passed the CANCEL on: the worker's job was aborted.
    await waitFor(() => cancelled === 1 && w.held === 0, 5000, 'the worker to see the cancel');
    // An already aborted signal rejects at once.
    await assert.rejects(c.call('echo', 'x', { signal: AbortSignal.abort() }), { code: 'CANCELLED' });
    assert.equal(c.pending, 0);
  } finally {
    await c.close();
    await w.stop();
  }
});

test('deadline: ferryd answers DEADLINE for a job that takes too long', async () => {
  const w = new ferry.Worker({ addr: d.addr });
  w.handle('slow', () => undefined, { credit: 2 });
  await w.start();
  const c = new ferry.Client({ addr: d.addr });
  try {
    const t0 = Date.now();
    await assert.rejects(c.call('slow', 'x', { deadlineMs: 300 }), { code: 'DEADLINE', errno: 7 });
    const took = Date.now() - t0;
    assert.ok(took >= 250 && took < 3000, `took ${took} ms`);
  } finally {
    await c.close();
    await w.stop({ timeoutMs: 100 });
  }
});

test('a call made while ferryd restarts succeeds once it is back', async () => {
  const d2 = await new Daemon().start();
  const c = new ferry.Client({ addr: d2.addr, reconnectMaxMs: 200 });
  try {
    assert.equal((await c.call('echo', 'one')).toString(), 'one');
    assert.equal(c.connects, 1);
    const lost = new Promise((r) => c.once('disconnect', r));
    await d2.stop();
    await lost;
    const p = c.call('echo', 'two', { deadlineMs: 10000 });
    await sleep(300);
    await d2.start(d2.port);
    assert.equal((await p).toString(), 'two');
    assert.equal(c.connects, 2);
  } finally {
    await c.close();
    await d2.stop();
  }
});

test('calls at ferryd when the connection drops fail with ConnectionError', async () => {
  const d2 = await new Daemon().start();
  const w = new ferry.Worker({ addr: d2.addr });
  w.handle('hang', () => undefined);
  await w.start();
  const c = new ferry.Client({ addr: d2.addr });
  try {
    const p = assert.rejects(c.call('hang', 'x', { deadlineMs: 20000 }),
      (err) => err instanceof ferry.ConnectionError && err.errno === 16);
    await waitFor(() => w.held === 1, 5000, 'the job');
    await d2.stop('SIGKILL');
    await p;
  } finally {
    await c.close();
    await w.stop({ timeoutMs: 10 });
  }
});

test('connect() fails with CONNECTION when nothing listens, UNAUTHORIZED on a wrong token', async () => {
  const port = await freePort();
  const c = new ferry.Client({ addr: `127.0.0.1:${port}` });
  await assert.rejects(c.connect(), { code: 'CONNECTION' });
  // A client that never connected does not wait for a ferryd to appear.
  const t0 = Date.now();
  await assert.rejects(c.call('echo', 'x', { deadlineMs: 10000 }), (e) => e.code === 'CONNECTION' && /ECONNREFUSED/.test(e.message));
  assert.ok(Date.now() - t0 < 2000);
  await c.close();
  const d2 = await new Daemon(['--caller-token', 's3cret']).start();
  try {
    const bad = new ferry.Client({ addr: d2.addr, token: 'wrong' });
    await assert.rejects(bad.connect(), { code: 'UNAUTHORIZED', errno: 15 });
    await assert.rejects(bad.call('echo', 'x'), { code: 'UNAUTHORIZED' });
    await bad.close();
    const good = new ferry.Client({ addr: d2.addr, token: 's3cret' });
    assert.equal((await good.call('echo', 'ok')).toString(), 'ok');
    await good.close();
  } finally {
    await d2.stop();
  }
});

test('close() rejects what is pending and later calls', async () => {
  const w = new ferry.Worker({ addr: d.addr });
  w.handle('hang2', () => undefined);
  await w.start();
  const c = new ferry.Client({ addr: d.addr });
  const p = assert.rejects(c.call('hang2', 'x', { deadlineMs: 5000 }), { code: 'CANCELLED' });
  await waitFor(() => w.held === 1, 5000, 'the job');
  await c.close();
  await p;
  await assert.rejects(c.call('echo', 'x'), { code: 'CONNECTION' });
  await w.stop({ timeoutMs: 10 });
});

/**
 * A scripted server: answers HELLO with HELLO_OK (heartbeat hb) and
 * then does what script(socket, frames) says.
 */
async function scripted(hb, onFrame, opts = {}) {
  const frames = [];
  const srv = net.createServer((s) => {
    let buf = Buffer.alloc(0);
    s.on('error', () => {});
    if (opts.noRead) {
      // Read the HELLO only, then stop reading.
    }
    s.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      let f;
      while ((f = codec.decodeFrame(buf)) !== null) {
        buf = buf.subarray(f.size);
        frames.push(f);
        if (f.type === codec.HELLO) {
          s.write(codec.encodeHelloOk({ version: opts.version || 1, heartbeatMs: hb, maxFrame: codec.DEFAULT_MAX_BODY,
            name: 'fake', maxDeadlineMs: opts.maxDeadlineMs || 0, defaultDeadlineMs: opts.defaultDeadlineMs || 0 }));
          if (opts.noRead) {
            s.pause();
          }
        } else if (onFrame) {
          onFrame(s, f);
        }
      }
    });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return { srv, frames, addr: `127.0.0.1:${srv.address().port}` };
}

test('heartbeats: pings when idle, and a silent ferryd is taken for dead after 3 x its heartbeat', async () => {
  const s = await scripted(100, null);
  const c = new ferry.Client({ addr: s.addr, heartbeatMs: 100, reconnectMinMs: 5000, reconnectMaxMs: 5000 });
  try {
    await c.connect();
    const p = c.call('anything', 'x', { deadlineMs: 20000 });
    const t0 = Date.now();
    await assert.rejects(p, (err) => {
      assert.equal(err.code, 'CONNECTION');
      assert.match(err.message, /silent/);
      return true;
    });
    const took = Date.now() - t0;
    assert.ok(took >= 250 && took < 2000, `took ${took} ms`);
    const pings = s.frames.filter((f) => f.type === codec.PING).length;
    assert.ok(pings >= 2, `${pings} pings`);
    const hello = s.frames.find((f) => f.type === codec.HELLO);
    assert.equal(hello.fields.heartbeatMs, 100);
  } finally {
    await c.close();
    s.srv.close();
  }
});

test('ferryd pings a client that announced a heartbeat, and it stays connected', async () => {
  const d2 = await new Daemon(['--heartbeat-ms', '100']).start();
  const c = new ferry.Client({ addr: d2.addr, heartbeatMs: 100 });
  try {
    await c.connect();
    assert.equal(c.server.heartbeatMs, 100);
    await sleep(700); // well past 3 x 100 ms both ways
    assert.equal((await c.call('echo', 'alive')).toString(), 'alive');
    assert.equal(c.connects, 1);
  } finally {
    await c.close();
    await d2.stop();
  }
});

test('back-pressure: a peer that does not read stops the writes; the queue is bounded', async () => {
  const s = await scripted(0, null, { noRead: true });
  const c = new ferry.Client({ addr: s.addr, heartbeatMs: 0, maxQueuedBytes: 1 << 20 });
  try {
    await c.connect();
    const chunk = Buffer.alloc(64 * 1024, 1);
    const ps = [];
    let overloaded = 0;
    for (let i = 0; i < 400; i++) {
      ps.push(c.call('x', chunk, { deadlineMs: 60000 }).catch((e) => {
        if (e.code === 'OVERLOADED') {
          overloaded++;
        }
      }));
      if (i % 8 === 0) {
        await sleep(1);
      }
    }
    await sleep(200);
    // 400 x 64 KiB = 25 MiB asked for; the socket's buffer, the kernel
    // and our 1 MiB queue hold far less, so most calls were refused.
    assert.ok(overloaded > 100, `${overloaded} refused`);
    const sock = c._conn.socket;
    assert.ok(c._conn.blocked, 'writes stopped');
    assert.ok(sock.writableLength < 8 << 20, `socket holds ${sock.writableLength}`);
  } finally {
    await c.close();
    s.srv.close();
  }
});

test('a REPLY for an unknown id is ignored, a frame a caller must not get closes', async () => {
  const s = await scripted(0, (sock, f) => {
    if (f.type === codec.REQUEST) {
      sock.write(codec.encodeReply(999999, 'stray'));
      sock.write(codec.encodeReply(f.id, 'real'));
    }
  });
  const c = new ferry.Client({ addr: s.addr, heartbeatMs: 0 });
  try {
    assert.equal((await c.call('svc', 'x')).toString(), 'real');
  } finally {
    await c.close();
    s.srv.close();
  }
});

test('safety timers follow HELLO_OK v2: default_deadline_ms for deadline 0, capped by max_deadline_ms', async () => {
  const s = await scripted(0, null, { version: 2, defaultDeadlineMs: 200, maxDeadlineMs: 400 });
  const c = new ferry.Client({ addr: s.addr, heartbeatMs: 0 });
  try {
    await c.connect();
    const t0 = Date.now();
    const r1 = assert.rejects(c.call('never', 'x'), { code: 'DEADLINE' }).then(() => Date.now() - t0);
    const r2 = assert.rejects(c.call('never', 'y', { deadlineMs: 100000 }), { code: 'DEADLINE' }).then(() => Date.now() - t0);
    const [a, b] = await Promise.all([r1, r2]);
    assert.ok(a >= 400 && a < 2000, `default: ${a} ms`); // 200 + 250 slack
    assert.ok(b >= 600 && b < 2500, `capped: ${b} ms`); // 400 + 250 slack
    // Each expired call was cancelled at the server.
    await waitFor(() => s.frames.filter((f) => f.type === codec.CANCEL).length === 2, 2000, 'two CANCELs');
    const hello = s.frames.find((f) => f.type === codec.HELLO);
    assert.equal(hello.fields.version, 2);
    assert.equal(hello.fields.maxFrame, codec.DEFAULT_MAX_BODY);
  } finally {
    await c.close();
    s.srv.close();
  }
});

test('a reply larger than our announced max_frame comes as TOO_BIG; the connection stays', async () => {
  const c = new ferry.Client({ addr: d.addr, maxFrame: 2048 });
  try {
    await assert.rejects(c.call('echo', Buffer.alloc(5000)), (e) => e instanceof ferry.TooBigError && /2048/.test(e.message));
    assert.equal((await c.call('echo', 'small')).toString(), 'small');
    assert.equal(c.connects, 1);
  } finally {
    await c.close();
  }
});

test('calls beyond the write queue wait and all go once the socket takes them', async () => {
  const c = new ferry.Client({ addr: d.addr, maxQueuedBytes: 256 * 1024 });
  try {
    await c.connect();
    const p = Buffer.alloc(32 * 1024, 7);
    // 64 x 32 KiB in one tick: 2 MiB, eight times the queue bound.
    const rs = await Promise.allSettled(Array.from({ length: 64 }, () => c.call('echo', p, { deadlineMs: 20000 })));
    const ok = rs.filter((r) => r.status === 'fulfilled' && r.value.equals(p)).length;
    const over = rs.filter((r) => r.status === 'rejected' && r.reason.code === 'OVERLOADED').length;
    assert.equal(ok + over, 64);
    assert.ok(ok >= 8, `${ok} answered`);
    assert.equal(c.pending, 0);
  } finally {
    await c.close();
  }
});

test('an error code this client does not know is a FerryError UNKNOWN_ERROR with its number', async () => {
  const s = await scripted(0, (sock, f) => {
    if (f.type === codec.REQUEST) {
      sock.write(codec.encodeError(f.id, 999, 'from the future'));
    }
  });
  const c = new ferry.Client({ addr: s.addr, heartbeatMs: 0 });
  try {
    await assert.rejects(c.call('svc', 'x'), (e) => e.constructor === ferry.FerryError &&
      e.code === 'UNKNOWN_ERROR' && e.errno === 999 && e.message === 'from the future');
  } finally {
    await c.close();
    s.srv.close();
  }
});

test('ERROR with id 0 closes the connection: calls in flight fail with CONNECTION naming it', async () => {
  const s = await scripted(0, (sock, f) => {
    if (f.type === codec.REQUEST) {
      sock.end(codec.encodeError(0, 22, 'silent for 3012 ms, 3 x heartbeat 1000 ms'));
    }
  });
  const c = new ferry.Client({ addr: s.addr, heartbeatMs: 0, reconnectMinMs: 5000, reconnectMaxMs: 5000 });
  try {
    await assert.rejects(c.call('svc', 'x', { deadlineMs: 5000 }), (e) => e instanceof ferry.ConnectionError &&
      /TIMED_OUT: silent for 3012 ms/.test(e.message));
  } finally {
    await c.close();
    s.srv.close();
  }
});
