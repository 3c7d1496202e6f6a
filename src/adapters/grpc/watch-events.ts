// WatchEvents: Baton's event feed as a server stream. Each stream is one subscription to the feed
// (etcd's own history), so a client that lost its stream resumes on any replica from the last id it
// saw. A stream ends with UNAVAILABLE when the server shuts down or the client reads too slowly
// (both: resume with after_id), and with OK after a `resync` event (re-read state, then resubscribe).
// Response headers are sent as soon as the subscription is in place, so a client knows from when on
// it misses nothing.
import { Metadata, type handleServerStreamingCall, type ServerWritableStream } from '@grpc/grpc-js';
import { BatonError } from '../../core/errors.js';
import { CHAIN_ID_PATTERN } from '../../core/spec.js';
import { parseEventId, type EventFeed, type EventSubscription } from '../etcd/event-feed.js';
import type { Logger } from '../telemetry/log.js';
import type { WatchEventsRequest, WatchEventsResponse } from '../../gen/baton/v1/baton.js';
import { toWireEvent } from './convert.js';
import { toServiceError } from './errors.js';

/** Events queued for a client that does not read before its stream is ended. */
const MAX_BUFFERED_EVENTS = 1000;

type Call = ServerWritableStream<WatchEventsRequest, WatchEventsResponse>;

export class EventStreams {
  /** Ends each open stream with the given error. */
  private readonly open = new Set<(err: BatonError) => void>();

  constructor(
    private readonly feed: Pick<EventFeed, 'subscribe'>,
    private readonly log: Logger,
  ) {}

  readonly handler: handleServerStreamingCall<WatchEventsRequest, WatchEventsResponse> = (call) => {
    void this.stream(call);
  };

  /** Ends every open stream (server shutdown): clients resume on another replica with after_id. */
  closeAll(): void {
    for (const end of [...this.open]) end(new BatonError('UNAVAILABLE', 'server is shutting down; resume with after_id'));
  }

  get openStreams(): number {
    return this.open.size;
  }

  private async stream(call: Call): Promise<void> {
    let sub: EventSubscription | undefined;
    let done = false;
    const finish = (err?: BatonError): void => {
      if (done) return;
      done = true;
      this.open.delete(finish);
      void sub?.close();
      if (call.cancelled) return;
      if (err) call.emit('error', toServiceError(err));
      else call.end();
    };
    this.open.add(finish);
    call.on('cancelled', () => finish());

    try {
      const { afterId, chainId } = call.request;
      if (afterId && !parseEventId(afterId)) throw new BatonError('INVALID_ARGUMENT', `after_id: ${JSON.stringify(afterId)} is not an event id (<revision>-<index>)`);
      if (chainId && !CHAIN_ID_PATTERN.test(chainId)) throw new BatonError('INVALID_ARGUMENT', `chain_id: ${JSON.stringify(chainId)} must match ${CHAIN_ID_PATTERN}`);
      sub = await this.feed
        .subscribe(afterId || undefined, (e) => {
          if (done || (chainId && e.chainId !== undefined && e.chainId !== chainId)) return;
          call.write({ event: toWireEvent(e) });
          if (e.type === 'resync') finish();
          else if (call.writableLength > MAX_BUFFERED_EVENTS) {
            finish(new BatonError('UNAVAILABLE', `client fell more than ${MAX_BUFFERED_EVENTS} events behind; resume with after_id ${e.id}`));
          }
        })
        .catch((err: unknown) => {
          if (err instanceof BatonError) throw err;
          throw new BatonError('STORE_UNAVAILABLE', `event feed: ${err instanceof Error ? err.message : String(err)}`);
        });
      if (done) await sub.close(); // cancelled while subscribing
      // Response headers tell the client that every event from now on will reach it.
      else call.sendMetadata(new Metadata());
    } catch (err) {
      if (!(err instanceof BatonError)) this.log.error({ err }, 'event stream failed');
      finish(err instanceof BatonError ? err : new BatonError('INTERNAL', 'event stream failed'));
    }
  }
}
