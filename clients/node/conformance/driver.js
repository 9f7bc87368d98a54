#!/usr/bin/env node
// SPDX-License-Identifier: MIT
'use strict';
/*
 * driver.js - the Node client's conformance driver
 * (tests/conformance/DRIVER.md): does what tests/conformance/run.py asks
 * with the client's public API and reports what happened.
 *
 *   driver.js caller      JSON commands on stdin, one answer line each
 *   driver.js worker --addr A --service S --credit N [...]
 *                         serves until SIGTERM, event lines on stdout
 *
 * No ferry logic lives here: error names and numbers come from the error
 * objects (.code, .errno), ids from the client.
 */
const readline = require('readline');
const ferry = require('..');
const { codec } = ferry;

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

/** A command the driver cannot run (DRIVER.md: BAD_COMMAND, no code). */
class BadCommand extends Error {}

function failure(err) {
  if (err instanceof BadCommand) {
    return { ok: false, error: 'BAD_COMMAND', message: err.message };
  }
  if (err instanceof ferry.FerryError) {
    return { ok: false, error: err.code, code: err.errno, message: err.message, class: err.constructor.name };
  }
  return { ok: false, error: 'EXCEPTION', message: String(err && err.message ? err.message : err), class: err && err.constructor ? err.constructor.name : 'Error' };
}

function genPayload(size, seed) {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) {
    b[i] = (i * 7 + seed) % 251;
  }
  return b;
}

/* -------------------------------------------------------------- codec */

function fieldsOf(type, f) {
  switch (type) {
    case codec.HELLO: {
      const o = { version: f.version, role: f.role, heartbeat_ms: f.heartbeatMs, name: f.name.toString('utf8'), token: f.token.toString('utf8') };
      if (f.maxFrame !== undefined) {
        o.max_frame = f.maxFrame;
      }
      if (f.trailing !== undefined) {
        o.trailing_hex = f.trailing.toString('hex');
      }
      return o;
    }
    case codec.HELLO_OK: {
      const o = { version: f.version, heartbeat_ms: f.heartbeatMs, max_frame: f.maxFrame, name: f.name.toString('utf8') };
      if (f.maxDeadlineMs !== undefined) {
        o.max_deadline_ms = f.maxDeadlineMs;
        o.default_deadline_ms = f.defaultDeadlineMs;
      }
      if (f.trailing !== undefined) {
        o.trailing_hex = f.trailing.toString('hex');
      }
      return o;
    }
    case codec.REQUEST:
      return { deadline_ms: f.deadlineMs, service: f.service.toString('utf8'), key_hex: f.key.toString('hex'), payload_hex: f.payload.toString('hex') };
    case codec.REPLY:
      return { payload_hex: f.payload.toString('hex') };
    case codec.ERROR:
      return { code: f.code, code_name: f.codeName, message: f.message.toString('utf8') };
    case codec.REGISTER:
      return { credit: f.credit, service: f.service.toString('utf8') };
    default:
      return {};
  }
}

function decode(cmd) {
  const buf = Buffer.from(cmd.hex, 'hex');
  const f = codec.decodeFrame(buf, cmd.max_frame !== undefined ? cmd.max_frame : codec.DEFAULT_MAX_BODY);
  if (f === null) {
    return { ok: false, error: 'INCOMPLETE' };
  }
  return { ok: true, type: codec.TYPE_NAMES[f.type], flags: f.flags, id: f.id.toString(), fields: fieldsOf(f.type, f.fields) };
}

function encode(cmd) {
  const type = codec.TYPES[cmd.type];
  const id = BigInt(cmd.id || '0');
  const f = cmd.fields || {};
  let b;
  switch (type) {
    case codec.HELLO:
      b = codec.encodeHello({ version: f.version, role: f.role, heartbeatMs: f.heartbeat_ms, name: f.name, token: f.token, maxFrame: f.max_frame || 0 });
      break;
    case codec.HELLO_OK:
      b = codec.encodeHelloOk({ version: f.version, heartbeatMs: f.heartbeat_ms, maxFrame: f.max_frame, name: f.name, maxDeadlineMs: f.max_deadline_ms || 0, defaultDeadlineMs: f.default_deadline_ms || 0 });
      break;
    case codec.REQUEST:
      b = codec.encodeRequest(id, f.service, Buffer.from(f.payload_hex || '', 'hex'), { deadlineMs: f.deadline_ms || 0, key: Buffer.from(f.key_hex || '', 'hex'), flags: cmd.flags || 0 });
      break;
    case codec.REPLY:
      b = codec.encodeReply(id, Buffer.from(f.payload_hex || '', 'hex'));
      break;
    case codec.ERROR:
      b = codec.encodeError(id, f.code, f.message || '');
      break;
    case codec.REGISTER:
      b = codec.encodeRegister(id, f.service, f.credit);
      break;
    case undefined:
      throw new BadCommand(`unknown frame type '${cmd.type}'`);
    default:
      b = codec.encodeEmpty(type, id);
  }
  return { ok: true, hex: b.toString('hex') };
}

/* ------------------------------------------------------------- caller */

let client = null;
const sent = new Map(); // tag -> {promise of the answer, controller}

function callArgs(cmd) {
  let payload;
  let gen = null;
  if (cmd.payload_gen) {
    gen = genPayload(cmd.payload_gen.size, cmd.payload_gen.seed || 0);
    payload = gen;
  } else {
    payload = Buffer.from(cmd.payload_hex || '', 'hex');
  }
  const opts = {};
  if (cmd.deadline_ms !== undefined) {
    opts.deadlineMs = cmd.deadline_ms;
  }
  if (cmd.key_hex) {
    opts.key = Buffer.from(cmd.key_hex, 'hex');
  }
  if (cmd.idempotent) {
    opts.idempotent = true;
  }
  return { payload, gen, opts };
}

function answerOf(promise, gen) {
  return promise.then((reply) => (gen !== null
    ? { ok: true, reply_len: reply.length, echo_ok: reply.equals(gen) }
    : { ok: true, reply_hex: reply.toString('hex') }), failure);
}

function needClient() {
  if (client === null) {
    throw new BadCommand('no client (no connect command yet)');
  }
  return client;
}

// ------------------------------------------------------------ servants

const hexOf = (b) => Buffer.from(b).toString('hex');
const item = (i) => (i === null ? { status: 'NOT_FOUND' }
  : { status: 'OK', flags: i.flags, cas: String(i.cas), value_hex: hexOf(i.value) });
const entry = (e, withKey = true) => ({
  ...(withKey ? { key_hex: hexOf(e.key) } : {}),
  create_rev: String(e.createRev), mod_rev: String(e.modRev), version: String(e.version),
  value_hex: hexOf(e.value),
});

const peekEntry = (e) => ({
  id: String(e.id), attempts: e.attempts, priority: e.priority, state: e.state, age_ms: String(e.ageMs),
  reason_hex: hexOf(e.reason), payload_hex: hexOf(e.payload),
});

/** DRIVER.md's queue.* servant calls through client.queue. */
async function queueCall(h, op, a, o) {
  const hexArg = (k) => (a[k] !== undefined ? Buffer.from(a[k], 'hex') : undefined);
  const id = a.id !== undefined ? BigInt(a.id) : 0n;
  const token = a.token !== undefined ? BigInt(a.token) : 0n;
  const orNf = (v, f) => (v === null ? { status: 'NOT_FOUND' } : { status: 'OK', ...f(v) });
  switch (op) {
    case 'push': {
      const p = await h.push(a.queue, hexArg('payload_hex'), {
        ...o, priority: a.priority, delayMs: a.delay_ms, visibilityMs: a.visibility_ms,
        maxDeliveries: a.max_deliveries, dedup: hexArg('dedup_hex'),
      });
      return { status: 'OK', id: String(p.id), dup: p.dup };
    }
    case 'reserve': {
      const j = await h.reserve(a.queue, { ...o, waitMs: a.wait_ms, visibilityMs: a.visibility_ms });
      return j === null ? { status: 'EMPTY' } : {
        status: 'OK', id: String(j.id), token: String(j.token), attempts: j.attempts, priority: j.priority,
        payload_hex: hexOf(j.payload),
      };
    }
    case 'ack': return { status: (await h.ack(a.queue, id, token, o)).status };
    case 'release':
      return { status: (await h.release(a.queue, id, token, { ...o, delayMs: a.delay_ms, backoff: a.backoff })).status };
    case 'touch': {
      const t = await h.touch(a.queue, id, token, { ...o, visibilityMs: a.visibility_ms });
      return t.ok ? { status: t.status, visibility_ms: t.visibilityMs } : { status: t.status };
    }
    case 'bury': return { status: (await h.bury(a.queue, id, token, hexArg('reason_hex'), o)).status };
    case 'peek':
      return orNf(await h.peek(a.queue, { ...o, which: a.which, limit: a.limit }), (es) => ({ entries: es.map(peekEntry) }));
    case 'stats':
      return orNf(await (a.queue === undefined ? h.stats(o) : h.stats(a.queue, o)), (st) => ({ stats: st }));
    case 'redrive': return orNf(await h.redrive(a.queue, { ...o, limit: a.limit }), (n) => ({ moved: String(n) }));
    case 'purge': return orNf(await h.purge(a.queue, o), (n) => ({ removed: String(n) }));
    case 'pause': case 'resume': case 'delete': return { status: (await h[op](a.queue, o)) ? 'OK' : 'NOT_FOUND' };
    case 'configure': return orNf(await h.configure(a.queue, a.settings || {}, o), (st) => ({ settings: st }));
    default: return null;
  }
}

/** DRIVER.md's topic.* servant calls through client.topic. */
async function topicCall(h, op, a, o) {
  const subId = a.sub_id !== undefined ? BigInt(a.sub_id) : undefined;
  switch (op) {
    case 'publish':
      return { status: 'OK', receivers: await h.publish(a.subject, Buffer.from(a.message_hex || '', 'hex'), o) };
    case 'subscribe': {
      const id = await h.subscribe(a.pattern, { ...o, group: a.group, maxPending: a.max_pending, policy: a.policy });
      return { status: 'OK', sub_id: String(id) };
    }
    case 'poll': {
      const got = await h.poll(subId, { ...o, waitMs: a.wait_ms, maxMsgs: a.max_msgs });
      if (got === null) return { status: 'NOT_FOUND' };
      if (got.messages.length === 0) return { status: 'EMPTY', dropped: String(got.dropped) };
      return {
        status: 'OK', dropped: String(got.dropped),
        messages: got.messages.map((m) => ({ seq: String(m.seq), subject: m.subject, payload_hex: hexOf(m.payload) })),
      };
    }
    case 'unsubscribe': return { status: (await h.unsubscribe(subId, o)) ? 'OK' : 'NOT_FOUND' };
    case 'stats': {
      const st = await (subId === undefined ? h.stats(o) : h.stats(subId, o));
      return st === null ? { status: 'NOT_FOUND' } : { status: 'OK', stats: st };
    }
    default: return null;
  }
}

/** DRIVER.md's servant command through client.cache / kv / id / queue / topic. */
async function servant(c, cmd) {
  const [service, op] = String(cmd.call || '').split('.');
  const a = cmd.args || {};
  const o = cmd.deadline_ms !== undefined ? { deadlineMs: cmd.deadline_ms } : {};
  const key = Buffer.from(a.key_hex || '', 'hex');
  const value = Buffer.from(a.value_hex || '', 'hex');
  const big = (v, d) => BigInt(v === undefined ? d : v);
  if (service === 'cache') {
    const h = c.cache;
    const store = { ...o, flags: a.flags, ttlMs: a.ttl_ms };
    switch (op) {
      case 'get': return item(await h.get(key, o));
      case 'gat': return item(await h.gat(key, a.ttl_ms || 0, o));
      case 'get_many':
        return { status: 'OK', items: (await h.getMany((a.keys_hex || []).map((k) => Buffer.from(k, 'hex')), o)).map(item) };
      case 'set': case 'add': case 'replace': case 'append': case 'prepend': case 'cas': {
        const w = op === 'cas' ? await h.cas(key, value, big(a.cas, 0), store)
          : op === 'append' || op === 'prepend' ? await h[op](key, value, o) : await h[op](key, value, store);
        return w.ok ? { status: w.status, cas: String(w.cas) } : { status: w.status };
      }
      case 'incr': case 'decr': {
        const v = await h[op](key, big(a.delta, 1), o);
        return v === null ? { status: 'NOT_FOUND' } : { status: 'OK', value: String(v) };
      }
      case 'delete': return { status: (await h.delete(key, o)) ? 'OK' : 'NOT_FOUND' };
      case 'touch': return { status: (await h.touch(key, a.ttl_ms || 0, o)) ? 'OK' : 'NOT_FOUND' };
      case 'flush': await h.flush(a.delay_ms || 0, o); return { status: 'OK' };
      default: break;
    }
  } else if (service === 'kv') {
    const h = c.kv;
    const end = a.end_hex !== undefined ? Buffer.from(a.end_hex, 'hex') : undefined;
    const ifModRev = a.cond === 'mod_rev' ? big(a.rev, 0) : undefined;
    switch (op) {
      case 'get': {
        const g = await h.getRev(key, o);
        return { status: g.entry ? 'OK' : 'NOT_FOUND', rev: String(g.rev), ...(g.entry ? entry(g.entry, false) : {}) };
      }
      case 'put': case 'delete': {
        const w = op === 'put' ? await h.put(key, value, { ...o, ifAbsent: a.cond === 'absent', ifModRev })
          : await h.delete(key, { ...o, ifModRev });
        return { status: w.status, rev: String(w.rev) };
      }
      case 'range': {
        const r = await h.range(key, { ...o, end, limit: a.limit, keysOnly: a.keys_only });
        return { status: 'OK', rev: String(r.rev), more: r.more, items: r.items.map((e) => entry(e)) };
      }
      case 'count': return { status: 'OK', count: String(await h.count(key, { ...o, end })) };
      case 'watch': {
        const w = await h.watch(key, {
          ...o, prefix: a.prefix, fromRev: big(a.from_rev, 0), waitMs: a.wait_ms, maxEvents: a.max_events,
        });
        return { status: 'OK', rev: String(w.rev), events: w.events.map((e) => ({ type: e.type, ...entry(e) })) };
      }
      default: break;
    }
  } else if (service === 'queue') {
    const r = await queueCall(c.queue, op, a, o);
    if (r !== null) return r;
  } else if (service === 'topic') {
    const r = await topicCall(c.topic, op, a, o);
    if (r !== null) return r;
  } else if (service === 'id') {
    if (op === 'next') return { status: 'OK', ids: (await c.id.next(a.count === undefined ? 1 : a.count, o)).map(String) };
    if (op === 'decode') {
      const p = await c.id.decode(big(a.id, 0), o);
      return { status: 'OK', unix_ms: String(p.unixMs), node: p.node, seq: p.seq };
    }
  }
  throw new BadCommand(`unknown servant call '${cmd.call}'`);
}

async function caller(cmd) {
  switch (cmd.op) {
    case 'decode': return decode(cmd);
    case 'encode': return encode(cmd);
    case 'connect': {
      if (client !== null) {
        await client.close();
      }
      const opts = { addr: cmd.addr };
      if (cmd.token !== undefined) opts.token = cmd.token;
      if (cmd.name !== undefined) opts.name = cmd.name;
      if (cmd.heartbeat_ms !== undefined) opts.heartbeatMs = cmd.heartbeat_ms;
      if (cmd.max_frame !== undefined) opts.maxFrame = cmd.max_frame;
      client = new ferry.Client(opts);
      try {
        await client.connect();
      } catch (err) {
        await client.close();
        client = null;
        throw err;
      }
      return { ok: true };
    }
    case 'call': {
      const { payload, gen, opts } = callArgs(cmd);
      return answerOf(needClient().call(cmd.service, payload, opts), gen);
    }
    case 'send': {
      if (sent.has(cmd.tag)) {
        throw new BadCommand(`tag '${cmd.tag}' is in use`);
      }
      needClient();
      const { payload, gen, opts } = callArgs(cmd);
      const ac = new AbortController();
      opts.signal = ac.signal;
      sent.set(cmd.tag, { answer: answerOf(needClient().call(cmd.service, payload, opts), gen), ac });
      return { ok: true };
    }
    case 'cancel': {
      const s = sent.get(cmd.tag);
      if (s === undefined) {
        throw new BadCommand(`no call sent with tag '${cmd.tag}'`);
      }
      s.ac.abort(); // nothing to ask when it has ended already
      return { ok: true };
    }
    case 'await': {
      const s = sent.get(cmd.tag);
      if (s === undefined) {
        throw new BadCommand(`no call sent with tag '${cmd.tag}'`);
      }
      let t;
      const hung = new Promise((r) => { t = setTimeout(() => r({ ok: false, error: 'HUNG' }), cmd.timeout_ms || 30000); });
      const a = await Promise.race([s.answer, hung]);
      clearTimeout(t);
      if (a.error !== 'HUNG') {
        sent.delete(cmd.tag);
      }
      return a;
    }
    case 'pipeline': {
      const c = needClient();
      const size = cmd.payload_size || 0;
      const opts = cmd.deadline_ms !== undefined ? { deadlineMs: cmd.deadline_ms } : undefined;
      const payloads = [];
      const ps = [];
      for (let i = 0; i < cmd.count; i++) {
        const p = Buffer.from(String(i).padEnd(size, 'x'));
        payloads.push(p);
        ps.push(c.call(cmd.service, p, opts));
      }
      const rs = await Promise.allSettled(ps);
      let replied = 0;
      let mismatched = 0;
      const errors = {};
      rs.forEach((r, i) => {
        if (r.status === 'fulfilled') {
          replied++;
          if (!r.value.equals(payloads[i])) {
            mismatched++;
          }
        } else {
          const name = r.reason instanceof ferry.FerryError ? r.reason.code : 'EXCEPTION';
          errors[name] = (errors[name] || 0) + 1;
        }
      });
      return { ok: true, replied, mismatched, errors };
    }
    case 'stats':
      return { ok: true, connects: needClient().connects };
    case 'servant':
      return { ok: true, ...(await servant(needClient(), cmd)) };
    case 'cluster':
      return { ok: true, ...(await needClient().cluster()) };
    case 'close':
      if (client !== null) {
        await client.close();
        client = null;
      }
      return { ok: true };
    case 'quit':
      return { ok: true, quit: true };
    default:
      throw new BadCommand(`unknown op '${cmd.op}'`);
  }
}

async function runCaller() {
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) {
    if (line.trim() === '') {
      continue;
    }
    let ans;
    try {
      let cmd;
      try {
        cmd = JSON.parse(line);
      } catch (err) {
        throw new BadCommand(`not JSON: ${err.message}`);
      }
      ans = await caller(cmd);
    } catch (err) {
      ans = failure(err);
    }
    const quit = ans.quit;
    delete ans.quit;
    emit(ans);
    if (quit) {
      break;
    }
  }
  if (client !== null) {
    await client.close();
  }
  process.exit(0);
}

/* ------------------------------------------------------------- worker */

function parseWorkerArgs(argv) {
  const o = { services: [], token: undefined, name: undefined, heartbeatMs: undefined, addr: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (v === undefined) {
      throw new Error(`option ${a} needs a value`);
    }
    i++;
    switch (a) {
      case '--addr': o.addr = v; break;
      case '--service': o.services.push({ name: v, credit: 16 }); break;
      case '--credit':
        if (o.services.length === 0) {
          throw new Error('--credit comes after a --service');
        }
        o.services[o.services.length - 1].credit = Number(v);
        break;
      case '--token': o.token = v; break;
      case '--name': o.name = v; break;
      case '--heartbeat-ms': o.heartbeatMs = Number(v); break;
      default: throw new Error(`unknown option ${a}`);
    }
  }
  return o;
}

async function runWorker(argv) {
  const o = parseWorkerArgs(argv);
  const opts = { addr: o.addr };
  if (o.token !== undefined) opts.token = o.token;
  if (o.name !== undefined) opts.name = o.name;
  if (o.heartbeatMs !== undefined) opts.heartbeatMs = o.heartbeatMs;
  const w = new ferry.Worker(opts);
  const myName = w.opts.name;
  const hanging = new Set(); // 'hang' jobs: not waited for at SIGTERM
  const ended = (job) => emit({ event: 'end', id: job.id.toString(), held: w.held });

  const handler = (payload, job) => {
    const start = { event: 'start', id: job.id.toString(), service: job.service, payload_hex: payload.subarray(0, 1024).toString('hex'), held: w.held };
    if (payload.length > 1024) {
      start.payload_len = payload.length;
    }
    emit(start);
    const text = payload.toString('latin1');
    let m;
    if ((m = /^sleep:(\d+):([\s\S]*)$/.exec(text)) !== null) {
      const rest = payload.subarray(payload.indexOf(':', 6) + 1);
      const t = setTimeout(() => { job.reply(rest); ended(job); }, Number(m[1]));
      job.signal.addEventListener('abort', () => { clearTimeout(t); ended(job); });
      return undefined;
    }
    if (text.startsWith('fail:')) {
      job.fail(new ferry.WorkerError(payload.subarray(5).toString('utf8')));
    } else if (text.startsWith('invalid:')) {
      job.fail(new ferry.InvalidArgumentError(payload.subarray(8).toString('utf8')));
    } else if (text === 'hang') {
      hanging.add(job);
      job.signal.addEventListener('abort', () => { hanging.delete(job); ended(job); });
      return undefined;
    } else if (text === 'exit') {
      process.exit(3);
    } else if (text === 'name') {
      job.reply(myName);
    } else if ((m = /^size:(\d+)$/.exec(text)) !== null) {
      job.reply(Buffer.alloc(Number(m[1]), 'x'));
    } else {
      job.reply(payload);
    }
    ended(job);
    return undefined;
  };
  for (const s of o.services) {
    w.handle(s.name, handler, { credit: s.credit });
  }
  const fatal = (err) => {
    emit({ event: 'failed', error: err.code || 'EXCEPTION', code: err.errno, message: err.message });
    process.exit(1);
  };
  w.on('ready', () => emit({ event: 'ready' }));
  w.on('cancel', (job) => emit({ event: 'cancel', id: job.id.toString() }));
  w.on('error', fatal);
  let stopping = false;
  process.on('SIGTERM', () => {
    if (stopping) {
      return;
    }
    stopping = true;
    for (const job of hanging) {
      job.abandon();
    }
    w.stop({ timeoutMs: 20000 }).then(() => {
      emit({ event: 'exit', handled: w.handled });
      process.exit(0);
    });
  });
  try {
    await w.start();
  } catch (err) {
    if (!stopping) {
      fatal(err);
    }
  }
}

const mode = process.argv[2];
if (mode === 'caller') {
  runCaller();
} else if (mode === 'worker') {
  runWorker(process.argv.slice(3)).catch((err) => {
    process.stderr.write(`driver: ${err.message}\n`);
    process.exit(2);
  });
} else {
  process.stderr.write('usage: driver.js caller | driver.js worker --addr A --service S --credit N ...\n');
  process.exit(2);
}
