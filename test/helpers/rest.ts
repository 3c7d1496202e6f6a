// REST calls the scenario tests make by hand (raw status, body and request id, as an operator's
// automation sees them), and waiting for an accepted operation to end.
import type { DevStack } from '../../src/devstack/stack.js';
import { waitFor } from '../../src/devstack/process.js';

export interface Answer<B> {
  status: number;
  body: B;
  requestId: string;
}

/** POST a JSON body to a replica's REST API. */
export async function postJson<B>(baseUrl: string, path: string, body: unknown): Promise<Answer<B>> {
  const res = await fetch(`${baseUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  return { status: res.status, body: (await res.json()) as B, requestId: res.headers.get('x-request-id') ?? '' };
}

/** Polls the operation until it has ended (succeeded, failed or cancelled). */
export function operationEnded<B extends { state?: string }>(stack: DevStack, id: string, timeoutMs = 30_000): Promise<B> {
  return waitFor(`operation ${id} to end`, async () => {
    const op = (await stack.api().request<B>('GET', `/v1/operations/${id}`)).body;
    return ['succeeded', 'failed', 'cancelled'].includes(op.state ?? '') ? op : undefined;
  }, timeoutMs, 100);
}
