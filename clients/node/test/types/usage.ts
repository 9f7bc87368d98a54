// SPDX-License-Identifier: MIT
// Compiled by tsc --noEmit (test/types.test.js): the types of index.d.ts
// used as a program would use them. Never run.
import { Client, Worker, FerryError, DeadlineError, CancelledError, Job, codec,
  CacheWrite, CacheItem, KvWrite, KvRange, KvWatch, IdParts, QueueJob, QueuePush, QueueResult,
  QueueTouch, QueuePeekEntry, QueueStats, QueueSettings, Consumer, ConsumedJob } from '../../index';

async function caller(): Promise<string> {
  const c = new Client({ addr: '127.0.0.1:7700', heartbeatMs: 1000 });
  await c.connect();
  const ac = new AbortController();
  const reply: Buffer = await c.call('echo', 'hi', { deadlineMs: 500, key: 'k', idempotent: true, signal: ac.signal });
  const n: number = c.connects + c.pending;
  try {
    await c.call('fib', Buffer.from('{"n": 10}'));
  } catch (err) {
    if (err instanceof DeadlineError) {
      const e: 'DEADLINE' = err.code;
      const x: 7 = err.errno;
      return e + x;
    }
    if (err instanceof FerryError && err.code === 'CANCELLED') {
      return err.message;
    }
  }
  c.on('connect', (s) => s.maxFrame);
  await c.close();
  return reply.toString() + n;
}

async function worker(): Promise<void> {
  const w = new Worker({ name: 'w' });
  w.handle('upper', async (payload: Buffer) => payload.toString().toUpperCase(), { credit: 4 });
  w.handle('later', (_p, job: Job) => {
    setTimeout(() => job.reply('done'), 10);
    job.signal.addEventListener('abort', () => undefined);
  });
  w.handle('bad', () => { throw new CancelledError('no'); });
  await w.start();
  const held: number = w.held;
  await w.stop({ timeoutMs: held });
  const b: Buffer = codec.encodeRequest(1n, 'echo', 'x', { deadlineMs: 5 });
  codec.decodeFrame(b);
}

async function servantsUse(): Promise<bigint> {
  const c = new Client();
  const w: CacheWrite = await c.cache.set('k', 'v', { ttlMs: 1000, flags: 2 });
  const it: CacheItem | null = await c.cache.get('k');
  const ok: boolean = await c.cache.delete('k');
  const put: KvWrite = await c.kv.put('a', 'b', { ifModRev: w.cas });
  const r: KvRange = await c.kv.range('a/', { limit: 10 });
  const ev: KvWatch = await c.kv.watch('a', { prefix: true, fromRev: put.rev, waitMs: 100 });
  const ids: bigint[] = await c.id.next(3);
  const p: IdParts = await c.id.decode(ids[0]);
  return (it ? it.cas : 0n) + r.rev + ev.rev + BigInt(p.node + (ok ? 1 : 0));
}

async function queueUse(): Promise<bigint> {
  const c = new Client();
  const p: QueuePush = await c.queue.push('jobs', 'payload', { priority: -5, delayMs: 10, dedup: 'order-1', maxDeliveries: 3 });
  const job: QueueJob | null = await c.queue.reserve('jobs', { waitMs: 5000, visibilityMs: 1000 });
  if (job !== null) {
    const t: QueueTouch = await c.queue.touch('jobs', job.id, job.token, { visibilityMs: 60000 });
    const r: QueueResult = t.ok ? await c.queue.ack('jobs', job.id, job.token)
      : await c.queue.release('jobs', job.id, job.token, { backoff: true });
    await c.queue.release('jobs', job.id, job.token, { delayMs: 500 });
    await c.queue.bury('jobs', job.id, job.token, 'bad input');
    void r;
  }
  const dead: QueuePeekEntry[] | null = await c.queue.peek('jobs', { which: 'dead', limit: 10 });
  const one: QueueStats | null = await c.queue.stats('jobs');
  const all: { queues: QueueStats[] } = await c.queue.stats();
  const set: QueueSettings = await c.queue.configure('jobs', { max_deliveries: 5, backoff_ms: [1000, 5000] });
  const moved: bigint | null = await c.queue.redrive('jobs', { limit: 100 });
  const paused: boolean = await c.queue.pause('jobs') && await c.queue.resume('jobs');
  const removed: bigint | null = await c.queue.purge('jobs');
  await c.queue.delete('jobs');
  const ac = new AbortController();
  const cons: Consumer = c.queue.consume('jobs', async (j: ConsumedJob) => {
    if (j.attempts > 3) await j.bury('too many');
    await j.touch({ visibilityMs: 1000 });
  }, { credit: 4, waitMs: 10000, release: { delayMs: 100 }, signal: ac.signal });
  cons.on('stale', (j, status) => void [j.id, status]);
  cons.on('error', (err) => void err.code);
  await cons.stop({ timeoutMs: 1000 });
  await cons.done;
  return p.id + (moved || 0n) + (removed || 0n) + BigInt((dead ? dead.length : 0) + (one ? one.ready : 0)
    + all.queues.length + (set.max_deliveries || 0) + (paused ? 1 : 0) + cons.handled);
}

void caller;
void queueUse;
void servantsUse;
void worker;
