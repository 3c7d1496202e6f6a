// The standard services next to baton.v1, called the way standard tools call them: the health
// service (SERVING once the replica is ready) and server reflection v1 and v1alpha (the services
// listed, the descriptors with their dependencies, errors answered in-stream).
import { credentials, Metadata, status, type ClientDuplexStream } from '@grpc/grpc-js';
import { createFileRegistry, fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, type FileDescriptorProto } from '@bufbuild/protobuf/wkt';
import t from 'tap';
import { HealthCheckResponse_ServingStatus, HealthClient } from '../../../src/gen/grpc/health/v1/health.js';
import * as v1 from '../../../src/gen/grpc/reflection/v1/reflection.js';
import * as v1alpha from '../../../src/gen/grpc/reflection/v1alpha/reflection.js';
import { call, DEADLINE_MS, failure, startService } from './harness.js';

const { service } = await startService(t, 'grpc-std');
const health = new HealthClient(service.grpcAddress, credentials.createInsecure());
const reflection = new v1.ServerReflectionClient(service.grpcAddress, credentials.createInsecure());
const reflectionAlpha = new v1alpha.ServerReflectionClient(service.grpcAddress, credentials.createInsecure());
t.teardown(() => {
  health.close();
  reflection.close();
  reflectionAlpha.close();
});

t.test('health: SERVING once ready, for the server and for baton.v1.BatonService', async (t) => {
  const deadline = Date.now() + 15_000;
  let last: HealthCheckResponse_ServingStatus | undefined;
  while (Date.now() < deadline) {
    last = (await call(health.check.bind(health), { service: '' })).status;
    if (last === HealthCheckResponse_ServingStatus.SERVING) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  t.equal(last, HealthCheckResponse_ServingStatus.SERVING, 'the whole server');
  t.equal((await call(health.check.bind(health), { service: 'baton.v1.BatonService' })).status, HealthCheckResponse_ServingStatus.SERVING);
  t.equal((await failure(call(health.check.bind(health), { service: 'no.such.Service' }))).code, status.NOT_FOUND, 'an unknown service');
});

type Request = v1.ServerReflectionRequest;
type Response = v1.ServerReflectionResponse;

/** One reflection stream (deadline as any call): each request answered in order. */
async function reflect(client: v1.ServerReflectionClient | v1alpha.ServerReflectionClient, requests: Request[]): Promise<Response[]> {
  const stream: ClientDuplexStream<Request, Response> = client.serverReflectionInfo(new Metadata(), { deadline: Date.now() + DEADLINE_MS });
  const answers: Response[] = [];
  const done = new Promise<Response[]>((resolve, reject) => {
    stream.on('data', (r: Response) => answers.push(r));
    stream.on('error', reject);
    stream.on('end', () => resolve(answers));
  });
  for (const r of requests) stream.write(r);
  stream.end();
  return done;
}

function files(r: Response | undefined): FileDescriptorProto[] {
  return (r?.fileDescriptorResponse?.fileDescriptorProto ?? []).map((b) => fromBinary(FileDescriptorProtoSchema, b));
}

const SERVED = ['baton.v1.BatonService', 'grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection'];

t.test('reflection v1: services, descriptors with dependencies, errors in-stream', async (t) => {
  const [list, bySymbol, byMethod, byFile, unknown, afterError] = await reflect(reflection, [
    { host: '', listServices: '' },
    { host: '', fileContainingSymbol: 'baton.v1.BatonService' },
    { host: '', fileContainingSymbol: 'baton.v1.BatonService.WatchEvents' },
    { host: '', fileByFilename: 'grpc/health/v1/health.proto' },
    { host: '', fileContainingSymbol: 'baton.v1.NoSuchThing' },
    { host: '', fileContainingSymbol: 'baton.v1.ChainSpec' },
  ]);
  t.same(list?.listServicesResponse?.service.map((s) => s.name).sort(), SERVED, 'exactly the served services (not the node protocol)');
  t.same(list?.originalRequest, { host: '', listServices: '' }, 'the request echoed');

  const [baton, ...deps] = files(bySymbol);
  t.equal(baton?.name, 'baton/v1/baton.proto');
  t.equal(baton?.package, 'baton.v1');
  t.same(baton?.dependency, ['google/protobuf/struct.proto', 'google/protobuf/timestamp.proto']);
  t.same(deps.map((f) => f.name).sort(), ['google/protobuf/struct.proto', 'google/protobuf/timestamp.proto'], 'dependencies sent along');
  const svc = baton?.service.find((s) => s.name === 'BatonService');
  t.ok(svc?.method.some((m) => m.name === 'WatchEvents' && m.serverStreaming && m.outputType === '.baton.v1.WatchEventsResponse'), 'the stream described');
  t.ok(svc?.method.some((m) => m.name === 'Failover' && m.inputType === '.baton.v1.FailoverRequest'));
  // What a client does with the answer: build descriptors from it, every import found in it.
  const pool = createFileRegistry(baton!, (name) => deps.find((f) => f.name === name));
  const watchEvents = pool.getService('baton.v1.BatonService')?.methods.find((m) => m.name === 'WatchEvents');
  t.equal(watchEvents?.output.field.event?.message?.field.data?.message?.typeName, 'google.protobuf.Struct', 'self-contained: types resolve');

  t.equal(files(byMethod)[0]?.name, 'baton/v1/baton.proto', 'a method resolves to its file');
  t.same(files(byFile).map((f) => f.name), ['grpc/health/v1/health.proto']);
  t.equal(files(byFile)[0]?.service[0]?.name, 'Health');
  t.equal(unknown?.errorResponse?.errorCode, status.NOT_FOUND, 'an unknown symbol');
  t.equal(files(afterError)[0]?.name, 'baton/v1/baton.proto', 'the stream goes on after an error');
});

t.test('reflection v1alpha: the same answers', async (t) => {
  const [list, bySymbol] = await reflect(reflectionAlpha, [
    { host: '', listServices: '' },
    { host: '', fileContainingSymbol: 'grpc.reflection.v1alpha.ServerReflection' },
  ]);
  t.same(list?.listServicesResponse?.service.map((s) => s.name).sort(), SERVED);
  t.equal(files(bySymbol)[0]?.name, 'grpc/reflection/v1alpha/reflection.proto', 'the reflection service describes itself');
});
