/** The example stacks (stacks/) under mocks: their config as the engine passes it, and mocks that answer every lookup. */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { GET_ZONE_TOKEN, fakeAwsOutputs, stubZones } from "./aws/helpers";
import { installMocks, type MockRecorder } from "./mocks";
import { fakePkiOutputs } from "./pki/helpers";

const ROOT = path.resolve(__dirname, "../..");

/** The config of `stacks/Pulumi.<stack>.yaml`, values as strings (objects JSON-encoded), as the engine passes them. */
export function stackConfig(stack: string): Record<string, string> {
  const file = parse(readFileSync(path.join(ROOT, `stacks/Pulumi.${stack}.yaml`), "utf8")) as {
    config: Record<string, unknown>;
  };
  return Object.fromEntries(
    Object.entries(file.config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
  );
}

/** Mocks that answer the AWS data sources and compute provider outputs (ARNs, PEMs). */
export function mocksFor(stack: string, config?: Record<string, string>): MockRecorder {
  const recorder = installMocks({
    stack,
    config,
    outputs: (args) => ({ ...fakePkiOutputs(args), ...fakeAwsOutputs(args) }),
  });
  stubZones(recorder);
  recorder.calls.set(GET_ZONE_TOKEN, (args) => ({ zoneId: "Z0EXAMPLE", name: args.inputs.name }));
  return recorder;
}
