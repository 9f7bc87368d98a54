// SPDX-License-Identifier: MIT
// Compiled by tsc --noEmit (test/types.test.js): the types of index.d.ts
// used as a program would use them. Never run.
import { Client, Worker, FerryError, DeadlineError, CancelledError, Job, codec } from '../../index';

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

void caller;
void worker;
