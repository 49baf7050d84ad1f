/**
 * Runs CrossGuard policy objects in-process over the resources of a preview. The Pulumi engine
 * built here cannot host a Node.js policy pack (its language host predates RunPlugin; see
 * tools/pulumi/README.md), so g8s evaluates the pack's own policies itself: the same
 * `validateResource` / `validateStack` functions, the same enforcement levels.
 */
import type {
  PolicyProviderResource,
  PolicyResource,
  ResourceValidationPolicy,
  StackValidationPolicy,
} from "@pulumi/policy";

/** A resource as the preview would leave it: its new inputs and options. */
export interface PreviewResource {
  readonly urn: string;
  readonly type: string;
  readonly name: string;
  readonly props: Record<string, unknown>;
  readonly protect: boolean;
  /** `urn::id` of its provider, when it has an explicit one. */
  readonly provider?: string;
  readonly parent?: string;
}

export interface Violation {
  readonly policy: string;
  readonly enforcementLevel: string;
  readonly message: string;
  readonly urn?: string;
}

type AnyPolicy = ResourceValidationPolicy | StackValidationPolicy;

class NotApplicable extends Error {}

/** The provider a reference `urn::id` names: by URN, else by its type and name (the URN's last parts). */
function providerOf(
  resource: PreviewResource,
  byUrn: Map<string, PreviewResource>,
  all: readonly PreviewResource[],
): PolicyProviderResource | undefined {
  if (!resource.provider) return undefined;
  const parts = resource.provider.split("::");
  const urn = parts.slice(0, -1).join("::");
  const [typeChain, name] = parts.slice(-3, -1);
  const type = typeChain?.split("$").pop();
  const p = byUrn.get(urn) ?? all.find((r) => r.type === type && r.name === name);
  return p ? { type: p.type, props: p.props, urn: p.urn, name: p.name } : undefined;
}

export async function evaluatePolicies(
  policies: readonly AnyPolicy[],
  resources: readonly PreviewResource[],
  config: object,
): Promise<Violation[]> {
  const byUrn = new Map(resources.map((r) => [r.urn, r]));
  const violations: Violation[] = [];
  const common = {
    stackTags: new Map<string, string>(),
    getConfig: <T extends object>() => config as T,
    notApplicable: (reason?: string): never => {
      throw new NotApplicable(reason);
    },
  };
  const asPolicyResource = (r: PreviewResource): PolicyResource =>
    ({
      type: r.type,
      props: r.props,
      urn: r.urn,
      name: r.name,
      opts: { protect: r.protect, ignoreChanges: [], aliases: [], additionalSecretOutputs: [] },
      provider: providerOf(r, byUrn, resources),
      parent: r.parent ? (byUrn.get(r.parent) as unknown as PolicyResource) : undefined,
      dependencies: [],
      propertyDependencies: {},
      isType: () => false,
      asType: () => undefined,
    }) as unknown as PolicyResource;
  for (const policy of policies) {
    if (policy.enforcementLevel === "disabled") continue;
    const level = policy.enforcementLevel ?? "advisory";
    const validations =
      "validateResource" in policy && policy.validateResource
        ? Array.isArray(policy.validateResource)
          ? policy.validateResource
          : [policy.validateResource]
        : [];
    for (const resource of resources) {
      const args = { ...asPolicyResource(resource), ...common };
      for (const validate of validations) {
        try {
          await validate(args as never, (message, urn) =>
            violations.push({ policy: policy.name, enforcementLevel: level, message, urn: urn ?? resource.urn }),
          );
        } catch (err) {
          if (!(err instanceof NotApplicable)) throw err;
        }
      }
    }
    if ("validateStack" in policy && policy.validateStack) {
      try {
        await policy.validateStack({ resources: resources.map(asPolicyResource), ...common } as never, (message, urn) =>
          violations.push({ policy: policy.name, enforcementLevel: level, message, urn }),
        );
      } catch (err) {
        if (!(err instanceof NotApplicable)) throw err;
      }
    }
  }
  return violations;
}

export function mandatory(violations: readonly Violation[]): Violation[] {
  return violations.filter((v) => v.enforcementLevel === "mandatory");
}

export function formatViolation(v: Violation): string {
  const where = v.urn ? ` (${v.urn.split("::").pop()})` : "";
  return `[${v.enforcementLevel}] ${v.policy}: ${v.message}${where}`;
}
