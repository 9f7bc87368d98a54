#!/usr/bin/env node
// SPDX-License-Identifier: MIT
'use strict';
/*
 * node_bench.js - the ferry Node client beside the npm redis client, in
 * one run: pipelined round trips per second on one connection and on 16,
 * ferry calling ferryd's built-in echo, redis sending ECHO to a
 * redis-server this script starts on a free port. Each connection keeps
 * DEPTH requests in flight (a new one as each answer comes) for SECONDS;
 * the two clients take turns, ROUNDS times, and the best round counts.
 *
 *   node bench/clients/node_bench.js [--seconds S] [--depth D] [--size B]
 *        [--rounds R]
 *
 * FERRY_BIN (default build/) gives ferryd. The redis package comes from
 * bench/clients/node/ (npm ci there first). Nothing here is a test.
 */
const { spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const ROOT = path.resolve(__dirname, '..', '..');
const ferry = require(path.join(ROOT, 'clients', 'node'));
let redis;
try {
  redis = require(path.join(__dirname, 'node', 'node_modules', 'redis'));
} catch (err) {
  process.stderr.write('node_bench: the redis package is missing: run "npm ci" in bench/clients/node\n');
  process.exit(2);
}

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
const SECONDS = arg('--seconds', 3);
const DEPTH = arg('--depth', 128);
const SIZE = arg('--size', 16);
const ROUNDS = arg('--rounds', 2);

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitPort(port) {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((r) => {
      const s = net.connect({ port, host: '127.0.0.1' });
      s.on('connect', () => { s.destroy(); r(true); });
      s.on('error', () => r(false));
    });
    if (ok) return;
    await sleep(25);
  }
  throw new Error(`nothing listens on ${port}`);
}

/** Keeps DEPTH calls in flight on each of conns for ms; round trips/s. */
async function drive(conns, callOne, ms) {
  let done = 0;
  let stop = false;
  let errors = 0;
  const lanes = conns.map((c) => new Promise((resolve) => {
    let inFlight = 0;
    const next = () => {
      inFlight--;
      done++;
      if (!stop) {
        fire();
      } else if (inFlight === 0) {
        resolve();
      }
    };
    const fail = () => { errors++; next(); };
    const fire = () => {
      inFlight++;
      callOne(c).then(next, fail);
    };
    for (let i = 0; i < DEPTH; i++) fire();
  }));
  const t0 = process.hrtime.bigint();
  const start = done;
  await sleep(ms);
  const n = done - start;
  const t = Number(process.hrtime.bigint() - t0) / 1e9;
  stop = true;
  await Promise.all(lanes);
  if (errors > 0) {
    throw new Error(`${errors} calls failed`);
  }
  return n / t;
}

async function main() {
  const ferryBin = path.resolve(process.env.FERRY_BIN || path.join(ROOT, 'build'));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'node-bench-'));
  const fport = await freePort();
  const rport = await freePort();
  const ferryd = spawn(path.join(ferryBin, 'ferryd'), ['--listen', `127.0.0.1:${fport}`, '--data-dir', dir,
    '--http', `127.0.0.1:${await freePort()}`, '--log-level', 'warn'], { stdio: 'ignore' });
  const rs = spawn('redis-server', ['--port', String(rport), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const payload = Buffer.alloc(SIZE, 'p');
  const payloadStr = payload.toString();
  const rows = [];
  try {
    await Promise.all([waitPort(fport), waitPort(rport)]);
    for (const nconn of [1, 16]) {
      const fc = [];
      const rc = [];
      for (let i = 0; i < nconn; i++) {
        const c = new ferry.Client({ addr: `127.0.0.1:${fport}` });
        await c.connect();
        fc.push(c);
        const r = redis.createClient({ socket: { host: '127.0.0.1', port: rport } });
        await r.connect();
        rc.push(r);
      }
      const best = { ferry: 0, redis: 0 };
      await drive(fc, (c) => c.call('echo', payload), 300); // warm up
      await drive(rc, (r) => r.echo(payloadStr), 300);
      for (let round = 0; round < ROUNDS; round++) {
        best.ferry = Math.max(best.ferry, await drive(fc, (c) => c.call('echo', payload), SECONDS * 1000));
        best.redis = Math.max(best.redis, await drive(rc, (r) => r.echo(payloadStr), SECONDS * 1000));
      }
      rows.push({ nconn, ...best });
      await Promise.all(fc.map((c) => c.close()));
      await Promise.all(rc.map((r) => r.quit()));
    }
  } finally {
    ferryd.kill('SIGTERM');
    rs.kill('SIGTERM');
  }
  const fmt = (x) => Math.round(x).toLocaleString('en-US');
  console.log(`node ${process.version}, ${os.cpus().length} cores (${os.cpus()[0].model.trim()}), payload ${SIZE} B, ` +
    `${DEPTH} in flight per connection, best of ${ROUNDS} x ${SECONDS} s`);
  console.log('| connections | ferry (echo), calls/s | redis (ECHO), calls/s | ferry / redis |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const r of rows) {
    console.log(`| ${r.nconn} | ${fmt(r.ferry)} | ${fmt(r.redis)} | ${(r.ferry / r.redis).toFixed(2)} |`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
