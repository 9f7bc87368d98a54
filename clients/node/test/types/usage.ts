// SPDX-License-Identifier: MIT
// Compiled by tsc --noEmit (test/types.test.js): the types of index.d.ts
// used as a program would use them. Never run.
import { Client, Worker, FerryError, DeadlineError, CancelledError, Job, codec,
  CacheWrite, CacheItem, KvWrite, KvRange, KvWatch, IdParts } from '../../index';

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

void caller;
void servantsUse;
void worker;
