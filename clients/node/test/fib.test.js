// SPDX-License-Identifier: MIT
'use strict';
// examples/fib/node/fib_worker.js beside the C fib_worker: each serves
// "fib" on a ferryd of its own and every request, good or bad, must get
// byte-identical answers (the reply, or the error's code and message).
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const ferry = require('..');
const { Daemon, bin, spawnLines, stopChild, waitFor, ROOT } = require('./helpers');

const NODE_FIB = path.join(ROOT, 'examples', 'fib', 'node', 'fib_worker.js');

let dc;
let dn;
let wc;
let wn;
let cc;
let cn;
before(async () => {
  [dc, dn] = await Promise.all([new Daemon().start(), new Daemon().start()]);
  wc = spawnLines(bin('fib_worker'), ['--addr', dc.addr]);
  wn = spawnLines(process.execPath, [NODE_FIB, '--addr', dn.addr]);
  await waitFor(() => wc.lines.includes('READY') && wn.lines.includes('READY'), 10000, 'both fib workers');
  cc = new ferry.Client({ addr: dc.addr });
  cn = new ferry.Client({ addr: dn.addr });
});
after(async () => {
  await Promise.all([cc.close(), cn.close()]);
  const [rc, rn] = await Promise.all([stopChild(wc), stopChild(wn)]);
  assert.equal(rn.code, 0, 'the Node worker stops cleanly on SIGTERM');
  assert.equal(rc.code, 0);
  await Promise.all([dc.stop(), dn.stop()]);
});

function outcome(p) {
  return p.then((r) => ({ reply: r }), (e) => ({ code: e.code, message: e.message }));
}

function show(o) {
  return o.reply !== undefined ? `${o.reply.length}-byte reply ${o.reply.subarray(0, 60).toString('latin1')}...` : `${o.code}: ${o.message}`;
}

/** Both workers' answers to each payload, a few at a time (big replies
 * are megabytes: all at once would pile up in ferryd's output). */
async function compare(payloads) {
  const opts = { deadlineMs: 30000 };
  const got = [];
  for (let i = 0; i < payloads.length; i += 8) {
    const batch = payloads.slice(i, i + 8);
    got.push(...await Promise.all(batch.map((p) => Promise.all([outcome(cc.call('fib', p, opts)), outcome(cn.call('fib', p, opts))]))));
  }
  got.forEach(([c, n], i) => {
    const same = c.reply !== undefined ? n.reply !== undefined && n.reply.equals(c.reply)
      : n.reply === undefined && n.code === c.code && n.message === c.message;
    assert.ok(same, `payload ${JSON.stringify(payloads[i].toString('latin1')).slice(0, 100)}: C ${show(c)} | node ${show(n)}`);
  });
  return got;
}

test('every N from 1 to 300, and more up to the max, give the same bytes', async () => {
  const ns = [];
  for (let n = 1; n <= 300; n++) ns.push(n);
  for (let n = 301; n < 10000; n += 487) ns.push(n);
  ns.push(9999, 10000);
  const got = await compare(ns.map((n) => Buffer.from(`{"n": ${n}}`)));
  assert.ok(got.every(([c]) => c.reply !== undefined));
  assert.equal(got[9][1].reply.toString(), '{"N": 10, "result": "0 1 1 2 3 5 8 13 21 34"}');
});

test('bad inputs get the same refusals', async () => {
  const bad = [
    '', ' ', 'x', '10', '"n"', 'null', '[]', '[1]', '{}', '{"n"}', '{"n":}', '{"n": 0}', '{"n": -1}', '{"n": 10001}',
    '{"n": 1.0}', '{"n": 1e1}', '{"n": "10"}', '{"n": true}', '{"n": null}', '{"n": [1]}', '{"N": 10}',
    '{"n": 99999999999999999999}', '{"n": -99999999999999999999}', '{"n": 9223372036854775807}',
    '{"n": 9223372036854775808}', '{"n": -9223372036854775808}', '{"n": 1e400}', '{"n": -0}', '{"n": 01}',
    '{"n": 10', '{"n": 10}}', '{"n": 10} x', '{"n": 10}\n', '\t{"n":\r\n 10 }', '{"n": 5, "n": 7}',
    '{"n": 7, "x": [1, {"y": null}]}', '{"\\u006e": 8}', '{"n\\u0000": 1, "n": 5}', '{"n": "\\u0000"}',
    '{"n": 5}\u0000', '{"n":5\u0000}', '{"n" "too big"}', '{"too big": 1', '{"n": 1, "too big"}',
    '{"n": "\\ud800"}', '{"n": "\\udc00"}', '{"n": "\\ud800\\u0041"}', '{"n": "\\x"}', '{"n": "a\nb"}',
    '{"n": tru}', '{"n": -}', '{"n": 1.}', '{"n": 1e}', '{"n": 1e+}', '[' .repeat(2040) + '"too big"',
    '{"n": 3, "a": ' + '['.repeat(2047) + ']'.repeat(2047) + '}', 'x'.repeat(4097), ' '.repeat(4090) + '{"n":1}',
  ].map((s) => Buffer.from(s, 'latin1'));
  bad.push(Buffer.from([0x7b, 0x22, 0x6e, 0x22, 0x3a, 0x20, 0x31, 0x2c, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]));
  bad.push(Buffer.from('{"n": 4, "é": "日本"}', 'utf8'));
  bad.push(Buffer.from([0x7b, 0x22, 0x74, 0x6f, 0x6f, 0x20, 0x62, 0x69, 0x67, 0xc3]));
  bad.push(Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x22, 0x6e, 0x22, 0x3a, 0x31, 0x7d]));
  const got = await compare(bad);
  const refused = got.filter(([c]) => c.code === 'INVALID_ARGUMENT').length;
  assert.ok(refused > 40, `${refused} refused`);
});
