/**
 * Shared Pulumi mocks for unit tests (STYLE.md 9–10). Call `installMocks()` before importing
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

export function installMocks(
  options: { project?: string; stack?: string; config?: Record<string, string> } = {},
): MockRecorder {
  const recorder = new MockRecorder();
  pulumi.runtime.setAllConfig(
    options.config ?? {},
    Object.keys(options.config ?? {}).filter((k) => k.endsWith("secret")),
  );
  void pulumi.runtime.setMocks(
    {
      newResource(args: pulumi.runtime.MockResourceArgs): { id: string; state: Record<string, unknown> } {
        recorder.resources.push({
          type: args.type,
          name: args.name,
          inputs: args.inputs as Record<string, unknown>,
          provider: args.provider,
          custom: args.custom ?? true,
        });
        return { id: `${args.name}-id`, state: args.inputs as Record<string, unknown> };
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
  return recorder;
}

/** The value of an Output, for assertions. */
export function promiseOf<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => output.apply(resolve));
}
