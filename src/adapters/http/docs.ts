// GET /docs: Swagger UI over openapi.yaml (served as a static spec), with the UI's assets bundled
// in the package: the page loads nothing from outside (no CDN, no online validator).
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { dirname } from 'node:path';

export const DOCS_PREFIX = '/docs';

export async function registerDocs(app: FastifyInstance, openapiPath: string): Promise<void> {
  await app.register(fastifySwagger, { mode: 'static', specification: { path: openapiPath, baseDir: dirname(openapiPath) } });
  await app.register(fastifySwaggerUi, {
    routePrefix: DOCS_PREFIX,
    uiConfig: { deepLinking: true, validatorUrl: null },
    staticCSP: true,
    // The default policy upgrades every request to https, which breaks the page in insecure dev mode.
    transformStaticCSP: (header) => header.replace(/\s*upgrade-insecure-requests;?/, '').replace(/ validator\.swagger\.io/, ''),
  });
}
