// SPDX-License-Identifier: MIT
'use strict';
// bin/ferry-call.js against the C "ferry call" (build/ferry): the same
// arguments give the same exit status and stdout, and the same first
// word on stderr.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('child_process');
const path = require('path');
const ferry = require('..');
const { Daemon, bin, freePort } = require('./helpers');

const CALL = path.resolve(__dirname, '..', 'bin', 'ferry-call.js');

function run(cmd, args, input) {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, FERRY_ADDR: '', FERRY_TOKEN: '' } });
    let out = Buffer.alloc(0);
    let err = '';
    p.stdout.on('data', (d) => { out = Buffer.concat([out, d]); });
    p.stderr.on('data', (d) => { err += d; });
    const t = setTimeout(() => p.kill('SIGKILL'), 20000);
    p.on('exit', (code) => { clearTimeout(t); resolve({ code, out, err }); });
    p.stdin.on('error', () => {});
    p.stdin.end(input || '');
  });
}

let d;
let dt;
let w;
before(async () => {
  d = await new Daemon().start();
  dt = await new Daemon(['--caller-token', 'tok']).start();
  w = new ferry.Worker({ addr: d.addr });
  w.handle('cli.fail', () => { throw new Error('it broke'); });
  w.handle('cli.nl', () => 'ends with newline\n');
  w.handle('cli.key', (p, job) => `${job.key}|${job.idempotent}|${p}`);
  await w.start();
});
after(async () => {
  await w.stop({ timeoutMs: 100 });
  await d.stop();
  await dt.stop();
});

test('ferry-call.js exits and prints as ferry call', async () => {
  const dead = `127.0.0.1:${await freePort()}`;
  const cases = [
    [['echo', 'hello', '--addr', d.addr]],
    [['echo', '--addr', d.addr]],
    [['--addr', d.addr, 'echo', '-'], 'from stdin'],
    [['echo', 'x', `--addr=${d.unixAddr}`]],
    [['cli.nl', '--addr', d.addr]],
    [['cli.key', 'p', '--key', 'k9', '--idempotent', '--addr', d.addr]],
    [['cli.key', '--addr', d.addr, '--', '-dash']],
    [['cli.fail', 'x', '--addr', d.addr]],
    [['no.such', 'x', '--timeout', '100', '--addr', d.addr]],
    [['echo', 'x', '--addr', dead]],
    [['echo', 'x', '--addr', 'nohostnoport']],
    [['echo', 'x', '--addr', '']],
    [['echo', 'x', '--addr', dt.addr]],
    [['echo', 'x', '--addr', dt.addr, '--token', 'wrong']],
    [['echo', 'x', '--addr', dt.addr, '--token', 'tok']],
    [['echo', 'x', '--timeout', '0', '--addr', d.addr]],
    [['echo', 'x', '--timeout', 'soon', '--addr', d.addr]],
    [['echo', 'x', '--timeout', '--addr', d.addr]],
    [['echo', 'x', '--bogus', '--addr', d.addr]],
    [['a', 'b', 'c', '--addr', d.addr]],
    [['--addr', d.addr]],
    [['x'.repeat(256), '--addr', d.addr]],
    [['echo', 'x', '--key', 'k'.repeat(1025), '--addr', d.addr]],
    [['echo', 'x', '--token', 't'.repeat(256), '--addr', d.addr]],
  ];
  for (const [args, input] of cases) {
    const [n, c] = await Promise.all([run(process.execPath, [CALL, ...args], input), run(bin('ferry'), ['call', ...args], input)]);
    const what = `args ${JSON.stringify(args).slice(0, 120)}: node ${n.code} ${n.err.trim()} | C ${c.code} ${c.err.trim()}`;
    assert.equal(n.code, c.code, what);
    assert.deepEqual(n.out, c.out, what);
    assert.equal(n.err.split(/[ :]/)[0], c.err.split(/[ :]/)[0], what);
  }
});

test('--help prints the usage and exits 0', async () => {
  const r = await run(process.execPath, [CALL, '--help']);
  assert.equal(r.code, 0);
  assert.match(r.out.toString(), /^usage: ferry-call\.js SERVICE/);
});
