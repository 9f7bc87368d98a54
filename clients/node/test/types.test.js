// SPDX-License-Identifier: MIT
'use strict';
// index.d.ts: tsc --noEmit accepts a program using the API as documented
// (test/types/usage.ts) and refuses one that misuses it, so the check is
// live.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const PKG = path.resolve(__dirname, '..');
const TSC = path.join(PKG, 'node_modules', 'typescript', 'bin', 'tsc');

function tsc(args) {
  return spawnSync(process.execPath, [TSC, ...args], { cwd: PKG, encoding: 'utf8', timeout: 60000 });
}

test('tsc --noEmit accepts index.d.ts and its documented use', () => {
  assert.ok(fs.existsSync(TSC), 'typescript is installed (npm ci)');
  const r = tsc(['--noEmit', '-p', '.']);
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('tsc refuses a misuse of the types', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-ts-'));
  const bad = path.join(dir, 'bad.ts');
  fs.writeFileSync(bad, [
    `import { Client } from ${JSON.stringify(path.join(PKG, 'index'))};`,
    'const c = new Client();',
    'const n: number = c.call("echo", "x");', // a Promise, not a number
    'c.call("echo", "x", { deadlineMs: "soon" });',
    '',
  ].join('\n'));
  const r = tsc(['--noEmit', '--strict', '--types', 'node', '--typeRoots', path.join(PKG, 'node_modules', '@types'), bad]);
  assert.notEqual(r.status, 0);
  assert.match(r.stdout, /bad\.ts\(3,/);
  assert.match(r.stdout, /bad\.ts\(4,/);
  fs.rmSync(dir, { recursive: true });
});
