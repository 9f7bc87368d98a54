#!/usr/bin/env node
// SPDX-License-Identifier: MIT
'use strict';
/*
 * ferry-call.js - "ferry call" in Node: one call through the Client.
 *
 *   ferry-call.js SERVICE [PAYLOAD | -] [--timeout MS] [--key KEY]
 *                 [--idempotent] [--addr ADDR] [--token TOKEN]
 *
 * The reply goes to stdout as is (plus a newline when it lacks one); a
 * failure goes to stderr as "NAME: message". Exit status as ferry call:
 * 0 success, 1 error from ferryd or the worker, 2 usage error, 3
 * connection error.
 */
const dns = require('dns');
const fs = require('fs');
const { Client, FerryError, parseAddr, codec } = require('../lib');

const EXIT_OK = 0;
const EXIT_FERRY = 1;
const EXIT_USAGE = 2;
const EXIT_CONN = 3;

const USAGE = `usage: ferry-call.js SERVICE [PAYLOAD | -] [--timeout MS] [--key KEY]
                     [--idempotent] [--addr ADDR] [--token TOKEN]

Calls SERVICE with PAYLOAD (- reads all of stdin, none sends an empty
payload) and prints the reply on stdout.

  --timeout MS    deadline of the call (default: the daemon's)
  --key KEY       routing key
  --idempotent    mark the request safe to run twice
  --addr ADDR     ferryd's address (default $FERRY_ADDR, else 127.0.0.1:7700)
  --token TOKEN   access token (default $FERRY_TOKEN)

Exit status: 0 success, 1 error from ferryd or the worker (NAME: message
on stderr), 2 usage error, 3 connection error.
`;

function usageError(msg) {
  process.stderr.write(`ferry call: ${msg}\n`);
  return EXIT_USAGE;
}

/** Parses argv as ferry call does: options anywhere before "--", as
 * "--opt VALUE" or "--opt=VALUE". Returns {opts} or an exit code. */
function parseArgs(argv) {
  const o = { positional: [], timeout: 0, key: null, idempotent: false, addr: undefined, token: undefined };
  let done = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!done && a.length > 1 && a[0] === '-') {
      if (a === '--') {
        done = true;
        continue;
      }
      if (a === '--help' || a === '-h') {
        process.stdout.write(USAGE);
        return EXIT_OK;
      }
      if (a === '--idempotent') {
        o.idempotent = true;
        continue;
      }
      const m = /^(--timeout|--key|--addr|--token)(=(.*))?$/s.exec(a);
      if (m === null) {
        return usageError(`unknown option '${a}'`);
      }
      let v = m[3];
      if (m[2] === undefined) {
        if (i + 1 >= argv.length) {
          process.stderr.write(`ferry: option ${m[1]} needs a value\n`);
          return EXIT_USAGE;
        }
        v = argv[++i];
      }
      if (m[1] === '--timeout') {
        const n = /^[0-9]+$/.test(v) ? Number(v) : NaN;
        if (!(n >= 1 && n <= codec.MAX_U32)) {
          process.stderr.write(`ferry call: --timeout must be a number from 1 to ${codec.MAX_U32}, not '${v}'\n`);
          return EXIT_USAGE;
        }
        o.timeout = n;
      } else if (m[1] === '--key') {
        o.key = v;
      } else if (m[1] === '--addr') {
        o.addr = v;
      } else {
        o.token = v;
      }
      continue;
    }
    if (o.positional.length === 2) {
      return usageError(`unexpected argument '${a}'`);
    }
    o.positional.push(a);
  }
  return o;
}

function report(err, addr) {
  const name = err instanceof FerryError ? err.code : 'CONNECTION';
  let msg = err.message;
  if (name === 'CONNECTION' && !msg.includes(addr)) {
    msg += ` (${addr})`;
  }
  process.stderr.write(`${name}: ${msg}\n`);
  return name === 'CONNECTION' ? EXIT_CONN : EXIT_FERRY;
}

async function main(argv) {
  const o = parseArgs(argv);
  if (typeof o === 'number') {
    return o;
  }
  if (o.positional.length === 0) {
    process.stderr.write(USAGE);
    return EXIT_USAGE;
  }
  const addrText = o.addr !== undefined ? o.addr : (process.env.FERRY_ADDR || '127.0.0.1:7700');
  if (addrText === '') {
    process.stderr.write('ferry: --addr must not be empty\n');
    return EXIT_USAGE;
  }
  const token = o.token !== undefined ? o.token : process.env.FERRY_TOKEN;
  if (token !== undefined && Buffer.byteLength(token) > codec.MAX_NAME) {
    process.stderr.write(`ferry: --token must be at most ${codec.MAX_NAME} bytes\n`);
    return EXIT_USAGE;
  }
  const [service, payloadArg] = o.positional;
  const serviceLen = Buffer.byteLength(service);
  if (serviceLen === 0 || serviceLen > codec.MAX_NAME) {
    return usageError(`SERVICE must be 1 to ${codec.MAX_NAME} bytes`);
  }
  const key = o.key !== null ? Buffer.from(o.key) : null;
  if (key !== null && key.length > codec.MAX_KEY) {
    return usageError(`--key must be at most ${codec.MAX_KEY} bytes`);
  }
  const maxPayload = codec.DEFAULT_MAX_BODY - (8 + serviceLen + (key ? key.length : 0));
  let payload = Buffer.alloc(0);
  if (payloadArg === '-') {
    try {
      payload = fs.readFileSync(0);
    } catch (err) {
      process.stderr.write(`ferry call: reading stdin: ${err.message}\n`);
      return EXIT_USAGE;
    }
    if (payload.length > maxPayload) {
      return usageError(`payload on stdin is larger than ${maxPayload} bytes`);
    }
  } else if (payloadArg !== undefined) {
    payload = Buffer.from(payloadArg);
    if (payload.length > maxPayload) {
      return usageError(`PAYLOAD is larger than ${maxPayload} bytes`);
    }
  }
  let addr;
  try {
    addr = parseAddr(addrText);
    if (addr.opts.host !== undefined) {
      await dns.promises.lookup(addr.opts.host);
    }
  } catch (err) {
    return usageError(`bad address '${addrText}'`);
  }
  const client = new Client({ addr: addrText, token: token || '', heartbeatMs: 0, name: 'ferry-call' });
  try {
    await client.connect();
    const reply = await client.call(service, payload, {
      deadlineMs: o.timeout, key: key || undefined, idempotent: o.idempotent,
    });
    const out = reply.length === 0 || reply[reply.length - 1] !== 0x0a
      ? Buffer.concat([reply, Buffer.from('\n')]) : reply;
    await new Promise((resolve, reject) => process.stdout.write(out, (e) => (e ? reject(e) : resolve())));
    return EXIT_OK;
  } catch (err) {
    if (err && err.code === 'EPIPE') {
      return EXIT_FERRY;
    }
    return report(err, addrText);
  } finally {
    await client.close();
  }
}

main(process.argv.slice(2)).then((rc) => { process.exitCode = rc; });
