// Throwaway X.509 material for tests and the demo, minted with the openssl command line into a
// directory: one CA, and leaf certificates for servers (Baton replicas, simulated nodes) and
// clients (operators, nodes). Never for production: keys are unencrypted files.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const OPENSSL_TIMEOUT_MS = 20_000;

export interface CertFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface IssueOptions {
  /** Subject CN; omitted for a SAN-only certificate. */
  readonly cn?: string;
  /** subjectAltName entries, e.g. `DNS:localhost`, `IP:127.0.0.1`, `URI:spiffe://x/y`. */
  readonly sans?: readonly string[];
  /** Extended key usage: client, server, both (default), or none at all. */
  readonly usage?: 'client' | 'server' | 'both' | 'none';
  readonly notBefore?: Date;
  readonly notAfter?: Date;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: OPENSSL_TIMEOUT_MS });
}

/** openssl ca's date form (YYYYMMDDHHMMSSZ, UTC). */
function asn1Time(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z');
}

export class CertificateAuthority {
  private constructor(
    readonly dir: string,
    readonly name: string,
    readonly caFile: string,
  ) {}

  /** A fresh CA (EC P-256, valid ±1 day around now) in `dir`. */
  static create(dir: string, name = 'baton-test-ca'): CertificateAuthority {
    mkdirSync(dir, { recursive: true });
    const caKey = join(dir, `${name}.key`);
    const caFile = join(dir, `${name}.crt`);
    openssl(
      [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', caKey, '-out', caFile, '-days', '2', '-subj', `/CN=${name}`,
        '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
      ],
      dir,
    );
    writeFileSync(join(dir, `${name}.index`), '');
    writeFileSync(join(dir, `${name}.serial`), '1000\n');
    writeFileSync(
      join(dir, `${name}.cnf`),
      [
        '[ca]', 'default_ca = local', '[local]',
        `database = ${join(dir, `${name}.index`)}`, `serial = ${join(dir, `${name}.serial`)}`,
        `new_certs_dir = ${dir}`, `certificate = ${caFile}`, `private_key = ${caKey}`,
        'default_md = sha256', 'policy = any', 'unique_subject = no', 'copy_extensions = none',
        '[any]', 'commonName = optional', '',
      ].join('\n'),
    );
    return new CertificateAuthority(dir, name, caFile);
  }

  /** A leaf certificate signed by this CA; `file` names the .crt/.key pair. */
  issue(file: string, opts: IssueOptions = {}): CertFiles {
    const keyFile = join(this.dir, `${file}.key`);
    const certFile = join(this.dir, `${file}.crt`);
    const csr = join(this.dir, `${file}.csr`);
    const ext = join(this.dir, `${file}.ext`);
    const usage = opts.usage ?? 'both';
    const eku = { client: 'clientAuth', server: 'serverAuth', both: 'serverAuth,clientAuth', none: '' }[usage];
    const sans = opts.sans ?? ['DNS:localhost', 'IP:127.0.0.1'];
    writeFileSync(
      ext,
      [
        'basicConstraints = CA:FALSE',
        'keyUsage = critical,digitalSignature,keyAgreement',
        ...(eku ? [`extendedKeyUsage = ${eku}`] : []),
        ...(sans.length > 0 ? [`subjectAltName = ${sans.join(',')}`] : []),
        '',
      ].join('\n'),
    );
    // An empty subject is allowed for SAN-only certificates; openssl wants at least "/".
    const subj = opts.cn ? `/CN=${opts.cn}` : '/';
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', csr, '-subj', subj], this.dir);
    const now = Date.now();
    const notBefore = opts.notBefore ?? new Date(now - 3600_000);
    const notAfter = opts.notAfter ?? new Date(now + 24 * 3600_000);
    openssl(
      [
        'ca', '-batch', '-config', join(this.dir, `${this.name}.cnf`), '-in', csr, '-out', certFile, '-notext',
        '-startdate', asn1Time(notBefore), '-enddate', asn1Time(notAfter), '-extfile', ext,
        '-subj', subj, '-preserveDN',
      ],
      this.dir,
    );
    return { certFile, keyFile };
  }
}
