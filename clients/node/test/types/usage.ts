// SPDX-License-Identifier: MIT
// Compiled by tsc --noEmit (test/types.test.js): the types of index.d.ts
// used as a program would use them. Never run.
import { Client, Worker, FerryError, DeadlineError, CancelledError, Job, codec,
  CacheWrite, CacheItem, KvWrite, KvRange, KvWatch, IdParts, QueueJob, QueuePush, QueueResult,
  QueueTouch, QueuePeekEntry, QueueStats, QueueSettings, Consumer, ConsumedJob, TopicPoll, TopicMessage, TopicGap,
  TopicStats, TopicSubStats, Subscriber, ClusterView, ClusterMember } from '../../index';

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
  const cv: ClusterView = await c.cluster({ deadlineMs: 1000 });
  const ms: ClusterMember[] = cv.enabled ? (cv.members ?? []) : [];
  const vb: number = ms.length ? ms[0].vbuckets : 0;
  const p: IdParts = await c.id.decode(ids[0]);
  return (it ? it.cas : 0n) + r.rev + ev.rev + BigInt(p.node + (ok ? 1 : 0) + vb);
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

async function topicUse(): Promise<bigint> {
  const c = new Client();
  const n: number = await c.topic.publish('orders.eu', 'o-17');
  const id: bigint = await c.topic.subscribe('orders.*', { group: 'billing', maxPending: 100, policy: 'close' });
  const got: TopicPoll | null = await c.topic.poll(id, { waitMs: 25000, maxMsgs: 10 });
  const first: TopicMessage | undefined = got ? got.messages[0] : undefined;
  const gone: boolean = await c.topic.unsubscribe(id);
  const all: TopicStats = await c.topic.stats();
  const one: TopicSubStats | null = await c.topic.stats(id);
  const ac = new AbortController();
  for await (const m of c.topic.messages('orders.>', { waitMs: 1000, signal: ac.signal })) {
    const item: TopicMessage | TopicGap = m;
    if (item.kind === 'gap') {
      void [item.dropped, item.resubscribed];
      continue;
    }
    void [item.seq, item.subject, item.payload.length];
    break;
  }
  const sub: Subscriber = c.topic.subscribe('orders.*', async (m: TopicMessage) => { void m.payload; }, { maxPending: 10 });
  sub.on('gap', (dropped, resubscribed) => void [dropped, resubscribed]);
  await sub.stop();
  await sub.done;
  return (got ? got.dropped : 0n) + (first ? first.seq : 0n) + BigInt(n + (gone ? 1 : 0) + (all.subscriptions || 0)
    + (one ? one.pending : 0) + sub.received);
}

void caller;
void queueUse;
void topicUse;
void servantsUse;
void worker;
