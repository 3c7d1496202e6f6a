// fetch over HTTPS with a client certificate (Node's global fetch cannot present one): enough of
// fetch for the CLI's REST client, including streamed bodies (the event stream) and abort signals.
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { Readable } from 'node:stream';
import { CtlFailure } from './api.js';

export function mtlsFetch(files: { caFile: string; certFile: string; keyFile: string }): typeof fetch {
  let tls: { ca: Buffer; cert: Buffer; key: Buffer } | undefined;
  // Read at the first request, so that a missing file is a failure of the command, not a crash.
  const material = () => {
    try {
      tls ??= { ca: readFileSync(files.caFile), cert: readFileSync(files.certFile), key: readFileSync(files.keyFile) };
      return tls;
    } catch (err) {
      throw new CtlFailure(3, 'TLS_FILES', `cannot read the mTLS files: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  return ((input: string | URL | Request, init: RequestInit = {}) =>
    new Promise<Response>((resolve, reject) => {
      const tls = material();
      const headers = Object.fromEntries(new Headers(init.headers).entries());
      const req = request(String(input), { method: init.method ?? 'GET', headers, ...tls, signal: init.signal ?? undefined }, (res) => {
        const responseHeaders = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) responseHeaders.set(k, Array.isArray(v) ? v.join(', ') : v);
        const status = res.statusCode ?? 0;
        const body = status === 204 || status === 304 ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>);
        resolve(new Response(body, { status, headers: responseHeaders }));
      });
      req.on('error', reject);
      req.end(typeof init.body === 'string' ? init.body : undefined);
    })) as typeof fetch;
}
