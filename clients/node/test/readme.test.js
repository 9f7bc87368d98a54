// SPDX-License-Identifier: MIT
'use strict';
// The caller and the worker that open README.md, run as written (ESM,
// importing the installed package) against a real ferryd: the worker
// serves, the caller prints its answer, SIGTERM stops the worker cleanly.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { Daemon, spawnLines, stopChild, waitFor } = require('./helpers');

const PKG = path.resolve(__dirname, '..');

let d;
before(async () => { d = await new Daemon().start(); });
after(async () => { await d.stop(); });

test('README: the 10-line caller and worker work as written', async () => {
  const text = fs.readFileSync(path.join(PKG, 'README.md'), 'utf8');
  const blocks = [...text.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1].replaceAll('127.0.0.1:7700', d.addr));
  assert.ok(blocks.length >= 2);
  const [caller, worker] = blocks;
  assert.ok(caller.split('\n').length <= 14 && worker.split('\n').length <= 14);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-readme-'));
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(PKG, path.join(dir, 'node_modules', 'ferry-client'));
  fs.writeFileSync(path.join(dir, 'caller.mjs'), caller);
  fs.writeFileSync(path.join(dir, 'worker.mjs'), worker + "\nconsole.log('ready');\n");
  const w = spawnLines(process.execPath, ['worker.mjs'], { cwd: dir });
  try {
    await waitFor(() => w.lines.includes('ready'), 10000, 'the worker');
    const r = spawnSync(process.execPath, ['caller.mjs'], { cwd: dir, encoding: 'utf8', timeout: 20000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'HELLO\n');
  } finally {
    const st = await stopChild(w);
    assert.equal(st.code, 0, w.stderrText);
    fs.rmSync(dir, { recursive: true });
  }
});
