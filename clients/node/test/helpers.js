// SPDX-License-Identifier: MIT
'use strict';
/*
 * helpers.js - what the tests share: real ferryd processes on free
 * loopback ports (from $FERRY_BIN, default build/ of the repository),
 * started fresh and stopped by PID, and small waits with time limits.
 */
const { spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const FERRY_BIN = path.resolve(process.env.FERRY_BIN || path.join(ROOT, 'build'));

function bin(name) {
  const p = path.join(FERRY_BIN, name);
  fs.accessSync(p, fs.constants.X_OK);
  return p;
}

/** A free TCP port on 127.0.0.1 (bound and released). */
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

/** Waits until fn() is truthy, polling; throws after timeoutMs. */
async function waitFor(fn, timeoutMs = 5000, what = 'condition') {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) {
      return v;
    }
    if (Date.now() > end) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await sleep(20);
  }
}

/** Whether a TCP connection to port succeeds. */
function canConnect(port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    s.on('connect', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

// Every Daemon's folder, removed when the test file's process ends (a
// store's journal takes up to 64 MiB; FERRY_KEEP_TMP=1 keeps them).
const daemonDirs = new Set();
process.on('exit', () => {
  if (process.env.FERRY_KEEP_TMP === '1') {
    return;
  }
  for (const d of daemonDirs) {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

class Daemon {
  constructor(args = []) {
    this.args = args;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferryd-node-'));
    daemonDirs.add(this.dir);
    this.proc = null;
    this.port = 0;
    this.addr = '';
    this.unixAddr = 'unix:' + path.join(this.dir, 'ferryd.sock');
    this.log = '';
  }

  async start(port) {
    this.port = port || this.port || await freePort();
    this.addr = `127.0.0.1:${this.port}`;
    const args = ['--listen', this.addr, '--listen', this.unixAddr, '--data-dir', this.dir, ...this.args];
    const help = Daemon.helpText || (Daemon.helpText = require('child_process')
      .spawnSync(bin('ferryd'), ['--help']).stdout.toString());
    if (help.includes('--http') && !this.args.includes('--http')) {
      args.push('--http', `127.0.0.1:${await freePort()}`);
    }
    this.proc = spawn(bin('ferryd'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout.on('data', (d) => { this.log += d; });
    this.proc.stderr.on('data', (d) => { this.log += d; });
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.exited = exited;
    await waitFor(async () => {
      if (this.proc.exitCode !== null) {
        throw new Error(`ferryd exited at start: ${this.log}`);
      }
      return canConnect(this.port);
    }, 10000, 'ferryd to listen');
    return this;
  }

  /** SIGTERM (or sig), then SIGKILL after 10 s. */
  async stop(sig = 'SIGTERM') {
    const p = this.proc;
    if (p === null || p.exitCode !== null || p.signalCode !== null) {
      return;
    }
    p.kill(sig);
    const t = setTimeout(() => p.kill('SIGKILL'), 10000);
    await this.exited;
    clearTimeout(t);
  }

  async restart() {
    await this.stop();
    await this.start(this.port);
  }
}

/** A child process (a worker) whose stdout lines are collected. */
function spawnLines(cmd, args, opts = {}) {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  p.lines = [];
  p.stderrText = '';
  let buf = '';
  p.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      p.lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  p.stderr.on('data', (d) => { p.stderrText += d; });
  p.exitedP = new Promise((r) => p.once('exit', (code, sig) => r({ code, sig })));
  return p;
}

/** Stops a child by PID: SIGTERM, SIGKILL after ms. */
async function stopChild(p, ms = 5000) {
  if (p.exitCode !== null || p.signalCode !== null) {
    return p.exitedP;
  }
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), ms);
  const r = await p.exitedP;
  clearTimeout(t);
  return r;
}

module.exports = { ROOT, FERRY_BIN, bin, freePort, sleep, waitFor, Daemon, spawnLines, stopChild, canConnect };
