// SPDX-License-Identifier: MIT
'use strict';
// conformance/driver.js by hand (tests/conformance/run.py plays the full
// scenarios): caller commands and answers, worker events, SIGTERM.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('child_process');
const path = require('path');
const readline = require('readline');
const { Daemon, spawnLines, stopChild, waitFor } = require('./helpers');

const DRIVER = path.resolve(__dirname, '..', 'conformance', 'driver.js');
const VECTORS = require('../../../tests/vectors/frames.json');

let d;
before(async () => { d = await new Daemon().start(); });
after(async () => { await d.stop(); });

/** A caller driver: ask(cmd) sends one line and resolves with the answer. */
function callerDriver() {
  const p = spawn(process.execPath, [DRIVER, 'caller'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting = [];
  readline.createInterface({ input: p.stdout }).on('line', (l) => waiting.shift()(JSON.parse(l)));
  p.ask = (cmd) => new Promise((r) => {
    waiting.push(r);
    p.stdin.write((typeof cmd === 'string' ? cmd : JSON.stringify(cmd)) + '\n');
  });
  return p;
}

test('caller mode: codec, calls, pipeline, errors, stats, quit', async () => {
  const p = callerDriver();
  const exited = new Promise((r) => p.on('exit', r));
  try {
    const v = VECTORS.frames.find((f) => f.name === 'request_idempotent_with_key');
    const dec = await p.ask({ op: 'decode', hex: v.hex });
    assert.deepEqual(dec, { ok: true, type: v.type, flags: v.flags, id: v.id, fields: v.fields });
    const enc = await p.ask({ op: 'encode', type: v.type, flags: v.flags, id: v.id, fields: v.fields });
    assert.equal(enc.hex, v.hex);
    assert.deepEqual(await p.ask({ op: 'decode', hex: v.hex.slice(0, 20) }), { ok: false, error: 'INCOMPLETE' });
    const bad = await p.ask({ op: 'decode', hex: '0000000000000000000000000000000000' });
    assert.equal(bad.error, 'UNKNOWN_TYPE');
    assert.equal(bad.code, 4);
    assert.equal((await p.ask({ op: 'call', service: 'echo', payload_hex: '00' })).error, 'BAD_COMMAND');
    assert.deepEqual(await p.ask({ op: 'connect', addr: d.addr }), { ok: true });
    assert.deepEqual(await p.ask({ op: 'call', service: 'echo', payload_hex: '6869' }), { ok: true, reply_hex: '6869' });
    assert.deepEqual(await p.ask({ op: 'call', service: 'echo', payload_gen: { size: 100000, seed: 3 } }), { ok: true, reply_len: 100000, echo_ok: true });
    const unk = await p.ask({ op: 'call', service: 'nope', payload_hex: '', deadline_ms: 100 });
    assert.deepEqual([unk.ok, unk.error, unk.code, unk.class], [false, 'UNKNOWN_SERVICE', 5, 'UnknownServiceError']);
    const pl = await p.ask({ op: 'pipeline', service: 'echo', count: 1000, payload_size: 16 });
    assert.deepEqual(pl, { ok: true, replied: 1000, mismatched: 0, errors: {} });
    assert.deepEqual(await p.ask({ op: 'send', tag: 'a', service: 'echo', payload_hex: '01' }), { ok: true });
    assert.equal((await p.ask({ op: 'send', tag: 'a', service: 'echo', payload_hex: '01' })).error, 'BAD_COMMAND');
    assert.deepEqual(await p.ask({ op: 'await', tag: 'a' }), { ok: true, reply_hex: '01' });
    assert.equal((await p.ask({ op: 'await', tag: 'a' })).error, 'BAD_COMMAND');
    assert.equal((await p.ask('not json')).error, 'BAD_COMMAND');
    assert.deepEqual(await p.ask({ op: 'stats' }), { ok: true, connects: 1 });
    assert.deepEqual(await p.ask({ op: 'close' }), { ok: true });
    assert.deepEqual(await p.ask({ op: 'quit' }), { ok: true });
    assert.equal(await exited, 0);
  } finally {
    p.kill();
  }
});

test('worker mode: ready, start/end with held, cancel, SIGTERM drains and exits 0', async () => {
  const w = spawnLines(process.execPath, [DRIVER, 'worker', '--addr', d.addr, '--service', 'dw', '--credit', '2', '--name', 'drv']);
  const events = () => w.lines.map((l) => JSON.parse(l));
  const c = callerDriver();
  try {
    await waitFor(() => events().some((e) => e.event === 'ready'), 5000, 'ready');
    await c.ask({ op: 'connect', addr: d.addr });
    assert.deepEqual(await c.ask({ op: 'call', service: 'dw', payload_hex: Buffer.from('name').toString('hex') }), { ok: true, reply_hex: Buffer.from('drv').toString('hex') });
    const f = await c.ask({ op: 'call', service: 'dw', payload_hex: Buffer.from('invalid:no').toString('hex') });
    assert.deepEqual([f.error, f.code, f.message], ['INVALID_ARGUMENT', 11, 'no']);
    await c.ask({ op: 'send', tag: 'h', service: 'dw', payload_hex: Buffer.from('hang').toString('hex'), deadline_ms: 10000 });
    await waitFor(() => events().filter((e) => e.event === 'start').length === 3, 5000, 'the hang job');
    await c.ask({ op: 'cancel', tag: 'h' });
    assert.equal((await c.ask({ op: 'await', tag: 'h' })).error, 'CANCELLED');
    await waitFor(() => events().some((e) => e.event === 'cancel'), 5000, 'the cancel event');
    await c.ask({ op: 'send', tag: 's', service: 'dw', payload_hex: Buffer.from('sleep:300:late').toString('hex') });
    await waitFor(() => events().filter((e) => e.event === 'start').length === 4, 5000, 'the sleep job');
    w.kill('SIGTERM');
    assert.deepEqual(await c.ask({ op: 'await', tag: 's' }), { ok: true, reply_hex: Buffer.from('late').toString('hex') });
    const r = await w.exitedP;
    assert.equal(r.code, 0);
    const ev = events();
    const starts = ev.filter((e) => e.event === 'start');
    assert.equal(starts[0].held, 1);
    assert.equal(starts[0].service, 'dw');
    const hang = starts[2];
    const ci = ev.findIndex((e) => e.event === 'cancel' && e.id === hang.id);
    const ei = ev.findIndex((e) => e.event === 'end' && e.id === hang.id);
    assert.ok(ci >= 0 && ei > ci, 'end follows cancel');
    assert.deepEqual(ev[ev.length - 1], { event: 'exit', handled: 3 });
  } finally {
    c.kill();
    await stopChild(w);
  }
});
