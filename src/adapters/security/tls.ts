// Transport security of every surface: the mTLS material read once from the configured files,
// and the principal named by a verified client certificate. The TLS handshake itself (Node's,
// under Fastify and grpc-js) refuses a missing certificate, one from another CA, one outside its
// validity period and one not meant for client authentication; principalName checks the last two
// again so that a misconfigured listener cannot let them through.
import { readFileSync } from 'node:fs';
import type { PeerCertificate } from 'node:tls';
import type { TlsFiles } from '../../config/config.js';
import { BatonError } from '../../core/errors.js';

export interface TlsMaterial {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
}

export function readTlsFiles(files: TlsFiles): TlsMaterial {
  const read = (what: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new BatonError('INVALID_ARGUMENT', `security: cannot read ${what} ${file}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  return { ca: read('CA file', files.caFile), cert: read('certificate file', files.certFile), key: read('key file', files.keyFile) };
}

const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';

/**
 * The principal a client certificate names: its subject CN, else its first SAN (URI, DNS, email,
 * in that order of preference), or undefined when it names none or is not usable for client auth.
 */
export function principalName(cert: PeerCertificate | undefined, nowMs: number): string | undefined {
  if (!cert || Object.keys(cert).length === 0) return undefined;
  const validFrom = Date.parse(cert.valid_from);
  const validTo = Date.parse(cert.valid_to);
  if (!(validFrom <= nowMs && nowMs <= validTo)) return undefined;
  const eku = (cert as PeerCertificate & { ext_key_usage?: string[] }).ext_key_usage;
  if (eku && !eku.includes(CLIENT_AUTH_OID)) return undefined;
  const cn = cert.subject?.CN;
  if (typeof cn === 'string' && cn.length > 0) return cn;
  if (Array.isArray(cn) && typeof cn[0] === 'string') return cn[0];
  const sans = (cert.subjectaltname ?? '').split(/,\s*/).filter(Boolean);
  for (const kind of ['URI:', 'DNS:', 'email:']) {
    const san = sans.find((s) => s.startsWith(kind));
    if (san) return san.slice(kind.length);
  }
  return undefined;
}
