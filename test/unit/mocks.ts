/**
 * Shared Pulumi mocks for unit tests. Call `installMocks()` before importing
 * the code under test; every resource it registers is recorded, and any data-source call
 * without a stub throws, so a new one cannot pass silently.
 */
import * as pulumi from "@pulumi/pulumi";

export interface RecordedResource {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, unknown>;
  readonly provider?: string;
  readonly custom: boolean;
  /** URN of the parent, as the engine receives it ("" for the stack). */
  readonly parent?: string;
  /** The `replacementTrigger` resource option as serialized for the engine, when set. */
  readonly replacementTrigger?: unknown;
  /** `additionalSecretOutputs` as sent to the engine (the class's own list plus the caller's). */
  readonly additionalSecretOutputs?: readonly string[];
  /** The `protect` resource option (true only when set). */
  readonly protect?: boolean;
  /** The `retainOnDelete` resource option (true only when set). */
  readonly retainOnDelete?: boolean;
  /** The `ignoreChanges` resource option as sent to the engine. */
  readonly ignoreChanges?: readonly string[];
  /** Top-level inputs sent to the engine as secrets (encrypted in the state). */
  readonly secretInputs?: readonly string[];
}

/** Resource options the engine sees but `newResource` does not: read off the register request. */
interface RequestOptions {
  readonly parent: string;
  readonly replacementTrigger?: unknown;
  readonly additionalSecretOutputs: readonly string[];
  readonly protect: boolean;
  readonly retainOnDelete: boolean;
  readonly ignoreChanges: readonly string[];
  readonly secretInputs: readonly string[];
}

/** The parts of a RegisterResourceRequest the recorder reads. */
interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  hasReplacementTrigger(): boolean;
  getReplacementTrigger(): { toJavaScript(): unknown } | undefined;
  getAdditionalsecretoutputsList(): string[];
  getProtect(): boolean | undefined;
  getRetainondelete(): boolean | undefined;
  getIgnorechangesList(): string[];
  getObject(): { toJavaScript(): Record<string, unknown> } | undefined;
}

/** How the SDK marks a secret value on the wire (`rpc.specialSigKey` / `rpc.specialSecretSig`). */
const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

function secretKeys(object: Record<string, unknown> | undefined): string[] {
  return Object.entries(object ?? {})
    .filter(([, v]) => typeof v === "object" && v !== null && (v as Record<string, unknown>)[SIG_KEY] === SECRET_SIG)
    .map(([k]) => k);
}

export type CallStub = (args: pulumi.runtime.MockCallArgs) => Record<string, unknown>;

export class MockRecorder {
  readonly resources: RecordedResource[] = [];
  readonly calls = new Map<string, CallStub>();

  reset(): void {
    this.resources.length = 0;
  }

  byType(type: string): RecordedResource[] {
    return this.resources.filter((r) => r.type === type);
  }

  one(type: string, name: string): RecordedResource {
    const found = this.resources.filter((r) => r.type === type && r.name === name);
    if (found.length !== 1) {
      const seen = this.resources.map((r) => `${r.type} ${r.name}`).join("\n  ");
      throw new Error(`expected one ${type} named ${name}, found ${found.length}; registered:\n  ${seen}`);
    }
    return found[0];
  }
}

export interface MockOptions {
  project?: string;
  stack?: string;
  config?: Record<string, string>;
  /** Provider-computed outputs of a resource (a certificate's PEM), merged over its inputs in the state. */
  outputs?: (args: pulumi.runtime.MockResourceArgs) => Record<string, unknown>;
}

export function installMocks(options: MockOptions = {}): MockRecorder {
  const recorder = new MockRecorder();
  const pending = new Map<string, RequestOptions>();
  pulumi.runtime.setAllConfig(
    options.config ?? {},
    Object.keys(options.config ?? {}).filter((k) => k.endsWith("secret")),
  );
  void pulumi.runtime.setMocks(
    {
      newResource(args: pulumi.runtime.MockResourceArgs): { id: string; state: Record<string, unknown> } {
        const key = `${args.type}::${args.name}`;
        const seen = pending.get(key);
        pending.delete(key);
        recorder.resources.push({
          type: args.type,
          name: args.name,
          inputs: args.inputs as Record<string, unknown>,
          provider: args.provider,
          custom: args.custom ?? true,
          ...seen,
        });
        const state = { ...(args.inputs as Record<string, unknown>), ...options.outputs?.(args) };
        return { id: `${args.name}-id`, state };
      },
      call(args: pulumi.runtime.MockCallArgs): Record<string, unknown> {
        const stub = recorder.calls.get(args.token);
        if (!stub) throw new Error(`Mock not implemented: ${args.token}`);
        return stub(args);
      },
    },
    options.project ?? "g8s",
    options.stack ?? "test",
    false,
  );
  recordRequestOptions(pending);
  return recorder;
}

/**
 * Wraps the mock monitor's registerResource to keep the options `newResource` is not given
 * (parent, replacementTrigger, additionalSecretOutputs, protect, ignoreChanges, which inputs are
 * secret), exactly as serialized for the engine.
 */
function recordRequestOptions(pending: Map<string, RequestOptions>): void {
  const monitor = pulumi.runtime.getMonitor() as unknown as {
    registerResource(req: RegisterRequest, callback: (...args: unknown[]) => void): unknown;
  };
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, callback) => {
    pending.set(`${req.getType()}::${req.getName()}`, {
      parent: req.getParent(),
      ...(req.hasReplacementTrigger() ? { replacementTrigger: req.getReplacementTrigger()?.toJavaScript() } : {}),
      additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
      protect: req.getProtect() === true,
      retainOnDelete: req.getRetainondelete() === true,
      ignoreChanges: req.getIgnorechangesList(),
      secretInputs: secretKeys(req.getObject()?.toJavaScript()),
    });
    return register(req, callback);
  };
}

/**
 * Resolves once every resource registration and RPC started so far has finished, so a test
 * sees children that no output of the component depends on (policies, URL configs).
 */
export async function settle(): Promise<void> {
  const runtime = pulumi.runtime as unknown as { waitForRPCs?: () => Promise<void> };
  if (typeof runtime.waitForRPCs !== "function") throw new Error("@pulumi/pulumi no longer exports waitForRPCs");
  await runtime.waitForRPCs();
}

/** The value of an Output, for assertions. */
export function promiseOf<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => output.apply(resolve));
}
