// gRPC server reflection (grpc.reflection.v1 and v1alpha, one implementation: the two are the same
// protocol under two names), answered from the buf image that `npm run proto` writes: the exact
// FileDescriptorProtos protoc-compatible tools expect, with their comments, and every transitive
// dependency. Only the services this server actually serves are listed.
import { readFileSync } from 'node:fs';
import { status as S, type handleBidiStreamingCall } from '@grpc/grpc-js';
import { createFileRegistry, fromBinary, toBinary, type DescFile, type FileRegistry } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import type { ServerReflectionRequest, ServerReflectionResponse } from '../../gen/grpc/reflection/v1/reflection.js';

/** The image, found from src/ and from dist/ alike (both sit one level below the package root). */
export const IMAGE_PATH = new URL('../../../src/gen/image.binpb', import.meta.url);

export const REFLECTION_SERVICES = ['grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection'] as const;

type Answer = Omit<ServerReflectionResponse, 'validHost' | 'originalRequest'>;

export class ReflectionService {
  private readonly registry: FileRegistry;
  /** Serialized FileDescriptorProto of a file followed by those of all it imports, transitively. */
  private readonly closures = new Map<string, Buffer[]>();

  /** Throws when a served service is missing from the image: reflection would lie about it. */
  constructor(
    private readonly services: readonly string[],
    image: Uint8Array = readFileSync(IMAGE_PATH),
  ) {
    this.registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, image));
    const missing = services.filter((name) => !this.registry.getService(name));
    if (missing.length > 0) throw new Error(`reflection: ${missing.join(', ')} not in the proto image (run npm run proto)`);
  }

  readonly handler: handleBidiStreamingCall<ServerReflectionRequest, ServerReflectionResponse> = (call) => {
    call.on('data', (req: ServerReflectionRequest) => {
      call.write({ validHost: req.host, originalRequest: req, ...this.answer(req) });
    });
    call.on('end', () => call.end());
  };

  private answer(req: ServerReflectionRequest): Answer {
    if (req.listServices !== undefined) {
      return { listServicesResponse: { service: this.services.map((name) => ({ name })) } };
    }
    if (req.fileByFilename !== undefined) {
      return this.files(this.registry.getFile(req.fileByFilename), `file ${req.fileByFilename}`);
    }
    if (req.fileContainingSymbol !== undefined) {
      return this.files(this.fileOfSymbol(req.fileContainingSymbol), `symbol ${req.fileContainingSymbol}`);
    }
    if (req.fileContainingExtension !== undefined) {
      const { containingType, extensionNumber } = req.fileContainingExtension;
      const extendee = this.registry.getMessage(containingType);
      const ext = extendee && this.registry.getExtensionFor(extendee, extensionNumber);
      return this.files(ext?.file, `extension ${extensionNumber} of ${containingType}`);
    }
    if (req.allExtensionNumbersOfType !== undefined) {
      const type = req.allExtensionNumbersOfType;
      if (!this.registry.getMessage(type)) return notFound(`type ${type}`);
      const numbers: number[] = [];
      for (const d of this.registry) if (d.kind === 'extension' && d.extendee.typeName === type) numbers.push(d.number);
      return { allExtensionNumbersResponse: { baseTypeName: type, extensionNumber: numbers } };
    }
    return { errorResponse: { errorCode: S.INVALID_ARGUMENT, errorMessage: 'no request set' } };
  }

  /** A message, enum, service, extension or method (`pkg.Service.Method`) by its full name. */
  private fileOfSymbol(symbol: string): DescFile | undefined {
    const name = symbol.replace(/^\./, '');
    const found = this.registry.get(name);
    if (found) return found.file;
    const dot = name.lastIndexOf('.');
    const service = dot > 0 ? this.registry.getService(name.slice(0, dot)) : undefined;
    return service?.methods.some((m) => m.name === name.slice(dot + 1)) ? service.file : undefined;
  }

  private files(file: DescFile | undefined, what: string): Answer {
    if (!file) return notFound(what);
    let closure = this.closures.get(file.proto.name);
    if (!closure) {
      const seen = new Set<string>();
      const order: DescFile[] = [];
      const visit = (f: DescFile): void => {
        if (seen.has(f.proto.name)) return;
        seen.add(f.proto.name);
        order.push(f);
        f.dependencies.forEach(visit);
      };
      visit(file);
      closure = order.map((f) => Buffer.from(toBinary(FileDescriptorProtoSchema, f.proto)));
      this.closures.set(file.proto.name, closure);
    }
    return { fileDescriptorResponse: { fileDescriptorProto: closure } };
  }
}

function notFound(what: string): Answer {
  return { errorResponse: { errorCode: S.NOT_FOUND, errorMessage: `${what} not found` } };
}
