#!/usr/bin/env node
// SPDX-License-Identifier: MIT
'use strict';
/*
 * fib_worker.js - the Fibonacci service in Node.js: serves "fib",
 * answering {"n": N} with {"N": N, "result": "0 1 1 2 3 ..."}, the first
 * N Fibonacci numbers (F0 = 0, F1 = 1) in exact decimal (BigInt).
 *
 *   node fib_worker.js [--addr ADDR] [--max N] [--credit N] [--token TOKEN]
 *
 * The answers of the C worker (examples/fib/fib_worker.c), byte for byte:
 * the numbers are computed once into a growing table and an answer is a
 * prefix of its text; the request is read with JSON.parse and checked as
 * examples/fib/README.md says, and refused with INVALID_ARGUMENT and the
 * same message. SIGTERM or SIGINT: DRAIN, answer what is held, exit 0.
 */
const path = require('path');
const { Worker, InvalidArgumentError } = require(path.join(__dirname, '..', '..', '..', 'clients', 'node'));

const DEFAULT_MAX = 10000;
const MAX_MAX = 1000000;
const MAX_PAYLOAD = 4096; // requests are tiny
const MAX_REPLY = 16 * 1024 * 1024; // ferryd's default frame limit

const USAGE = `usage: fib_worker [--addr ADDR] [--max N] [--credit N] [--token TOKEN]

Serves "fib": {"n": N} -> {"N": N, "result": "0 1 1 2 ..."},
the first N Fibonacci numbers, exact.

  --addr ADDR  ferryd address (default $FERRY_ADDR, else 127.0.0.1:7700)
  --max N      largest n accepted (default ${DEFAULT_MAX})
  --credit N   requests taken at once, 1..65535 (default 16)
  --token TOKEN  access token sent in HELLO (default $FERRY_TOKEN)
`;

/** The numbers computed so far and their text, "0 1 1 2 ...". */
class FibTable {
  constructor() {
    this.a = 0n; // F(count - 2)
    this.b = 0n; // F(count - 1)
    this.count = 0;
    this.parts = [];
    this.text = '';
    this.ends = []; // ends[k]: where F(k)'s text ends
    this.len = 0;
  }

  extend(n) {
    for (let k = this.count; k < n; k++) {
      let f;
      if (k < 2) {
        f = BigInt(k);
      } else {
        f = this.a + this.b;
      }
      this.a = this.b;
      this.b = f;
      const s = (k > 0 ? ' ' : '') + f.toString();
      this.parts.push(s);
      this.len += s.length;
      this.ends.push(this.len);
      this.count = k + 1;
    }
    if (this.parts.length > 0) {
      this.text += this.parts.join('');
      this.parts = [];
    }
  }

  prefix(n) {
    this.extend(n);
    return this.text.slice(0, this.ends[n - 1]);
  }
}

/** An upper bound of the reply's bytes for n, as fib.c's (in doubles). */
function formatSize(n) {
  const digits = 0.20898764024997873 * n * n / 2.0 + 2.0 * n;
  return Math.floor(digits) + 64;
}

const NOT_OBJECT = 'payload must be a JSON object like {"n": 10}';
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const LONE_SURROGATE = /\p{Cs}/u; // a pair is one code point under /u

/** What the C worker's parser refuses but JSON.parse takes: a lone
 * surrogate, NUL in a key; and a number beyond double range (Infinity). */
function faults(root) {
  const f = { refused: false, overflow: false };
  const stack = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'string') {
      f.refused ||= LONE_SURROGATE.test(v);
    } else if (typeof v === 'number') {
      f.overflow ||= !Number.isFinite(v);
    } else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        f.refused ||= k.includes('\0') || LONE_SURROGATE.test(k);
        stack.push(x);
      }
    }
  }
  return f;
}

/** n, or why the payload is refused (examples/fib/README.md). */
function parseN(payload, max) {
  const range = `n must be an integer between 1 and ${max}`;
  if (payload.length > MAX_PAYLOAD) {
    return { why: `payload larger than ${MAX_PAYLOAD} bytes` };
  }
  let root;
  try {
    root = JSON.parse(UTF8.decode(payload));
  } catch {
    return { why: NOT_OBJECT };
  }
  const f = faults(root);
  if (f.refused) {
    return { why: NOT_OBJECT };
  }
  if (f.overflow) {
    return { why: range };
  }
  if (root === null || typeof root !== 'object' || Array.isArray(root)) {
    return { why: NOT_OBJECT };
  }
  const n = Object.hasOwn(root, 'n') ? root.n : undefined;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > max) {
    return { why: range };
  }
  return { n };
}

function parseArg(v, lo, hi) {
  if (!/^[0-9]+$/.test(v)) {
    return -1;
  }
  const x = Number(v);
  return x >= lo && x <= hi ? x : -1;
}

function main(argv) {
  let addr;
  let token = process.env.FERRY_TOKEN;
  let credit = 16;
  let max = DEFAULT_MAX;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE);
      return;
    }
    if (v === undefined) {
      process.stderr.write(USAGE);
      process.exit(2);
    }
    if (a === '--addr') {
      addr = v;
    } else if (a === '--token') {
      token = v;
    } else if (a === '--max') {
      max = parseArg(v, 1, MAX_MAX);
      if (max < 0) {
        process.stderr.write(`fib_worker: --max must be 1..${MAX_MAX}\n`);
        process.exit(2);
      }
    } else if (a === '--credit') {
      credit = parseArg(v, 1, 65535);
      if (credit < 0) {
        process.stderr.write('fib_worker: --credit must be 1..65535\n');
        process.exit(2);
      }
    } else {
      process.stderr.write(USAGE);
      process.exit(2);
    }
    i++;
  }
  let w;
  try {
    w = new Worker({ addr, token, name: `fib-node-${process.pid}` });
  } catch (err) {
    process.stderr.write(`fib_worker: address '${addr || '(default)'}': ${err.message}\n`);
    process.exit(2);
  }
  const table = new FibTable();
  w.handle('fib', (payload) => {
    const p = parseN(payload, max);
    if (p.why !== undefined) {
      throw new InvalidArgumentError(p.why);
    }
    if (formatSize(p.n) > MAX_REPLY) {
      throw new InvalidArgumentError(`the result for n=${p.n} is larger than a frame may be`);
    }
    return `{"N": ${p.n}, "result": "${table.prefix(p.n)}"}`;
  }, { credit });
  w.on('ready', () => process.stdout.write('READY\n'));
  w.on('error', (err) => {
    process.stderr.write(`fib_worker: ${err.code}: ${err.message}\n`);
    process.exit(1);
  });
  const stop = () => {
    w.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  w.start().catch((err) => {
    process.stderr.write(`fib_worker: ${err.code}: ${err.message}\n`);
    process.exit(1);
  });
}

main(process.argv.slice(2));
