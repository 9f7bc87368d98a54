// SPDX-License-Identifier: MIT
'use strict';
// The package as a program installs it: "ferry-client" resolves through
// package.json's exports for require() and for import, to the same
// classes, with no runtime dependencies.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const PKG = path.resolve(__dirname, '..');

test('require and import of ferry-client give the same API', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-pkg-'));
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(PKG, path.join(dir, 'node_modules', 'ferry-client'));
  const script = `
    import ferryEsm, { Client, DeadlineError, Worker } from 'ferry-client';
    import { createRequire } from 'module';
    const ferryCjs = createRequire(import.meta.url)('ferry-client');
    if (Client !== ferryCjs.Client || Worker !== ferryCjs.Worker || DeadlineError !== ferryCjs.DeadlineError) throw new Error('two copies');
    if (ferryEsm.Client !== Client) throw new Error('default export');
    console.log(new DeadlineError('x').code, Object.keys(ferryCjs).length);
  `;
  fs.writeFileSync(path.join(dir, 'main.mjs'), script);
  const r = spawnSync(process.execPath, ['main.mjs'], { cwd: dir, encoding: 'utf8', timeout: 20000 });
  fs.rmSync(dir, { recursive: true });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^DEADLINE \d+/);
  const pkg = JSON.parse(fs.readFileSync(path.join(PKG, 'package.json'), 'utf8'));
  assert.equal(pkg.engines.node, '>=18');
  assert.equal(pkg.dependencies, undefined);
});
