// Checks HTTP responses against openapi.yaml, the REST contract: the status must be documented for
// the path and method, and the body must validate against the documented schema.
//
// OpenAPI 3.0 schemas are not JSON Schema: $refs point into the document, and `nullable` is its own
// keyword. Per OpenAPI 3.0.3, `nullable: true` only adds null to a `type` declared in the same
// schema object (it does nothing without one, and does not reach through allOf/oneOf), so it
// becomes a type array here; OpenAPI-only annotations are dropped and Ajv runs in strict mode (but
// without strictTypes: `allOf: [.., {required: [..]}]` is normal OpenAPI).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import { parse } from 'yaml';

export const OPENAPI_FILE = fileURLToPath(new URL('../../openapi.yaml', import.meta.url));

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const OPENAPI_ONLY = new Set(['nullable', 'example', 'discriminator', 'readOnly', 'writeOnly', 'xml', 'externalDocs', 'deprecated']);
export const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const;

export interface Response {
  statusCode: number;
  headers: Record<string, unknown>;
  body: string;
}

export class OpenApiContract {
  readonly doc: JsonObject;
  private readonly ajv = new Ajv({ strict: true, strictTypes: false, allowUnionTypes: true, allErrors: true });
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(file: string = OPENAPI_FILE) {
    this.doc = parse(readFileSync(file, 'utf8')) as JsonObject;
    // The one format the document uses; checked here independently of the app's own parser.
    this.ajv.addFormat('date-time', { type: 'string', validate: (s: string) => RFC3339.test(s) && !Number.isNaN(Date.parse(s)) });
  }

  /** Documented paths, e.g. `/v1/chains/{id}`. */
  paths(): string[] {
    return Object.keys(this.doc.paths as JsonObject);
  }

  /** Documented methods of a path, lower case. */
  methods(path: string): string[] {
    const item = (this.doc.paths as JsonObject)[path] as JsonObject | undefined;
    return item ? Object.keys(item).filter((k) => (METHODS as readonly string[]).includes(k)) : [];
  }

  /** The documented path template a concrete URL falls under (literal segments win over templates). */
  templateOf(url: string): string | undefined {
    const path = url.split('?')[0]!;
    const candidates = this.paths().filter((p) => new RegExp(`^${p.replace(/\{[^}]+\}/g, '[^/]+')}$`).test(path));
    candidates.sort((a, b) => (a.match(/\{/g)?.length ?? 0) - (b.match(/\{/g)?.length ?? 0));
    return candidates[0];
  }

  /**
   * Problems of a response against the contract for (method, template): [] when it conforms.
   * An undocumented status is a problem; so is a body that does not match the documented media type
   * and schema, or a body where none is documented.
   */
  check(method: string, template: string, res: Response): string[] {
    const op = ((this.doc.paths as JsonObject)[template] as JsonObject | undefined)?.[method.toLowerCase()] as JsonObject | undefined;
    if (!op) return [`${method} ${template} is not documented`];
    const documented = (op.responses as JsonObject)[String(res.statusCode)];
    if (!documented) return [`${method} ${template}: status ${res.statusCode} is not documented (body ${res.body.slice(0, 300)})`];
    const response = this.resolve(documented) as JsonObject;
    const content = response.content as JsonObject | undefined;
    if (!content) return res.body === '' ? [] : [`${method} ${template} ${res.statusCode}: documented without a body, got ${res.body.slice(0, 200)}`];
    const contentType = String(res.headers['content-type'] ?? '').split(';')[0]!.trim();
    const media = content[contentType] as JsonObject | undefined;
    if (!media) return [`${method} ${template} ${res.statusCode}: content type "${contentType}" not documented (${Object.keys(content).join(', ')})`];
    let body: unknown = res.body;
    if (contentType === 'application/json') {
      try {
        body = JSON.parse(res.body);
      } catch {
        return [`${method} ${template} ${res.statusCode}: body is not JSON: ${res.body.slice(0, 200)}`];
      }
    }
    const key = `${template} ${method} ${res.statusCode} ${contentType}`;
    let validate = this.compiled.get(key);
    if (!validate) {
      validate = this.ajv.compile(toJsonSchema(this.resolve(media.schema ?? {})) as object);
      this.compiled.set(key, validate);
    }
    if (validate(body)) return [];
    return (validate.errors ?? []).map((e) => `${method} ${template} ${res.statusCode}: ${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
  }

  /** The value with every local $ref replaced by what it points to (the document has no cycles). */
  resolve(value: Json, depth = 0): Json {
    if (depth > 64) throw new Error('openapi.yaml: $ref nesting too deep (a cycle?)');
    if (Array.isArray(value)) return value.map((v) => this.resolve(v, depth + 1));
    if (value === null || typeof value !== 'object') return value;
    if (typeof value.$ref === 'string') {
      const ref = value.$ref;
      if (!ref.startsWith('#/')) throw new Error(`openapi.yaml: only local $refs are supported, got ${ref}`);
      let target: Json = this.doc;
      for (const part of ref.slice(2).split('/')) {
        target = (target as JsonObject | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')] as Json;
        if (target === undefined) throw new Error(`openapi.yaml: dangling $ref ${ref}`);
      }
      return this.resolve(target, depth + 1);
    }
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.resolve(v, depth + 1)]));
  }
}

/** An OpenAPI 3.0 schema object (refs resolved) as a JSON Schema Ajv validates strictly. */
export function toJsonSchema(schema: Json): Json {
  if (Array.isArray(schema)) return schema.map(toJsonSchema);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(schema)) {
    if (OPENAPI_ONLY.has(k)) continue;
    // `properties` maps names to schemas; its keys are property names, not keywords.
    if (k === 'properties') out[k] = Object.fromEntries(Object.entries(v as JsonObject).map(([p, s]) => [p, toJsonSchema(s)]));
    else if (k === 'enum' || k === 'required' || k === 'default') out[k] = v;
    else out[k] = toJsonSchema(v);
  }
  if (schema.nullable === true && typeof schema.type === 'string') out.type = [schema.type, 'null'];
  return out;
}
