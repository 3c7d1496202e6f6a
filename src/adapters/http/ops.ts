// The operations listener: /livez, /readyz and /metrics on a port of their own, for kubelets and
// Prometheus. It is plain HTTP on purpose (probes and scrapers carry no client certificate), is not
// traced (a probe every few seconds is not a story), and serves nothing that changes state.
import Fastify, { type FastifyInstance } from 'fastify';

export interface OpsDeps {
  readonly replicaId: string;
  readonly ready: () => { ready: boolean; why: string };
  /** The Prometheus exposition text and its content type. */
  readonly metrics: () => Promise<{ contentType: string; text: string }>;
}

export interface OpsServer {
  readonly app: FastifyInstance;
  /** http://host:port it listens on. */
  readonly address: string;
  close(): Promise<void>;
}

export function buildOpsApp(deps: OpsDeps): FastifyInstance {
  const app = Fastify({ logger: false });
  app.get('/livez', async () => ({ status: 'ok', replica: deps.replicaId }));
  app.get('/readyz', async (_req, reply) => {
    const r = deps.ready();
    return reply.status(r.ready ? 200 : 503).send({ status: r.ready ? 'ready' : 'not ready', why: r.why, replica: deps.replicaId });
  });
  app.get('/metrics', async (_req, reply) => {
    const m = await deps.metrics();
    return reply.type(m.contentType).send(m.text);
  });
  return app;
}

export async function startOpsServer(deps: OpsDeps, listen: { host: string; port: number }): Promise<OpsServer> {
  const app = buildOpsApp(deps);
  const address = await app.listen({ host: listen.host, port: listen.port });
  return { app, address, close: () => app.close() };
}
