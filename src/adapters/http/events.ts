// GET /v1/events: Baton's events as Server-Sent Events. Each event's id is its place in etcd's
// history, so a client that reconnects with Last-Event-ID (header, or ?lastEventId=) gets exactly
// what it missed, no duplicates. The etcd watch behind a stream lives exactly as long as the
// client's connection (and no longer than the app: closing the app ends every stream).
import { PassThrough } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { BatonError, isBatonError } from '../../core/errors.js';
import type { BatonEvent, EventSubscription } from '../etcd/event-feed.js';
import { eventsHeaders, eventsQuery } from './schemas.js';

/** Where events come from (the etcd EventFeed). */
export interface EventSource {
  subscribe(afterId: string | undefined, onEvent: (e: BatonEvent) => void): Promise<EventSubscription>;
}

export const SSE_HEARTBEAT_MS = 15_000;
/** A client this far behind is dropped; it reconnects with its Last-Event-ID and loses nothing. */
const MAX_BUFFERED_BYTES = 1024 * 1024;
const RECONNECT_MS = 2000;

/** One event in the SSE wire format; data is the whole event as one line of JSON. */
export function formatEvent(e: BatonEvent): string {
  const data = JSON.stringify({ id: e.id, type: e.type, chainId: e.chainId ?? null, data: e.data });
  return `id: ${e.id}\nevent: ${e.type}\ndata: ${data}\n\n`;
}

export function registerEventRoutes(app: FastifyInstance, events: EventSource, heartbeatMs: number): void {
  const open = new Set<() => void>();
  // An open stream would hold app.close() (and a graceful shutdown) until its client goes away.
  app.addHook('preClose', async () => {
    for (const end of [...open]) end();
  });

  app.get<{ Querystring: { chain?: string; lastEventId?: string } }>(
    '/v1/events',
    { schema: { querystring: eventsQuery, headers: eventsHeaders } },
    async (req, reply) => {
      const header = req.headers['last-event-id'];
      const after = req.query.lastEventId ?? (typeof header === 'string' ? header : undefined);
      const chain = req.query.chain;
      const stream = new PassThrough();
      let ended = false;
      let heartbeat: NodeJS.Timeout | undefined;
      const subscribed = events.subscribe(after, (e) => {
        if (ended || (chain !== undefined && e.chainId !== chain && e.type !== 'resync')) return;
        stream.write(formatEvent(e));
        // After a resync (etcd compacted past the client's position) the watch is over: the client
        // reconnects, re-reads state, and continues from now.
        if (e.type === 'resync' || stream.writableLength > MAX_BUFFERED_BYTES) end();
      });
      const end = (): void => {
        if (ended) return;
        ended = true;
        open.delete(end);
        clearInterval(heartbeat);
        stream.end();
        void subscribed.then((s) => s.close()).catch(() => undefined);
      };
      open.add(end);
      reply.raw.once('close', end);
      stream.once('close', end);
      try {
        await subscribed;
      } catch (err) {
        end();
        if (isBatonError(err)) throw err;
        throw new BatonError('STORE_UNAVAILABLE', `cannot watch etcd for events: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (!ended) {
        stream.write(`retry: ${RECONNECT_MS}\n\n`);
        heartbeat = setInterval(() => stream.write(': heartbeat\n\n'), heartbeatMs);
      }
      return reply
        .header('content-type', 'text/event-stream; charset=utf-8')
        .header('cache-control', 'no-cache')
        .header('x-accel-buffering', 'no')
        .send(stream);
    },
  );
}
