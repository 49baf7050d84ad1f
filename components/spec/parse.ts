import type { z } from "zod";
import { ClusterSpecError, formatPath, type SpecIssue } from "./errors";
import { checkRules } from "./rules";
import { unknownKeyMessage } from "./suggest";
import {
  IMPLEMENTED_PROVIDERS,
  PROVIDERS,
  clusterSchemas,
  reconcileSchema,
  type ClusterSpec,
  type ReconcileSpec,
} from "./schema";

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (isPlainObject(value)) return "a mapping";
  if (typeof value === "string") return `'${value}'`;
  return `${typeof value} ${String(value)}`;
}

const TYPE_NAMES: Record<string, string> = {
  object: "a mapping",
  array: "a list",
  string: "a string",
  number: "a number",
  int: "a whole number",
  boolean: "true or false",
  record: "a mapping",
};

interface ZodDef {
  type: string;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  innerType?: z.ZodType;
  in?: z.ZodType;
}

/** The keys an object schema allows at `path`, to suggest a fix for an unknown key. */
function allowedKeys(schema: z.ZodType, path: ReadonlyArray<PropertyKey>): string[] {
  let node: z.ZodType | undefined = schema;
  let rest = [...path];
  while (node) {
    const def: ZodDef = (node as unknown as { _zod: { def: ZodDef } })._zod.def;
    if (def.innerType) node = def.innerType;
    else if (def.in) node = def.in;
    else if (def.type === "array" && typeof rest[0] === "number") {
      node = def.element;
      rest = rest.slice(1);
    } else if (def.type === "object" && def.shape) {
      if (rest.length === 0) return Object.keys(def.shape);
      node = def.shape[String(rest[0])];
      rest = rest.slice(1);
    } else return [];
  }
  return [];
}

/** Turns zod's issues into located, actionable SpecIssues. */
export function fromZodIssues(issues: readonly z.core.$ZodIssue[], schema: z.ZodType): SpecIssue[] {
  const out: SpecIssue[] = [];
  for (const issue of issues) {
    const input = (issue as { input?: unknown }).input;
    const path = issue.path;
    switch (issue.code) {
      case "unrecognized_keys": {
        const allowed = allowedKeys(schema, path);
        for (const key of issue.keys) {
          out.push({ path: formatPath([...path, key]), message: unknownKeyMessage(key, allowed) });
        }
        break;
      }
      case "invalid_type": {
        const expected = TYPE_NAMES[issue.expected] ?? issue.expected;
        out.push({
          path: formatPath(path),
          message:
            input === undefined
              ? "is required"
              : issue.expected === "int"
                ? `must be a whole number (got ${describe(input)})`
                : `must be ${expected} (got ${describe(input)})`,
        });
        break;
      }
      case "too_small":
      case "too_big": {
        const bound = issue.code === "too_small" ? issue.minimum : issue.maximum;
        const op = issue.code === "too_small" ? "≥" : "≤";
        const message =
          issue.origin === "array"
            ? `must have ${issue.code === "too_small" ? "at least" : "at most"} ${String(bound)} entries`
            : issue.origin === "string"
              ? `must be ${issue.code === "too_small" ? "at least" : "at most"} ${String(bound)} characters long`
              : `must be ${op} ${String(bound)} (got ${describe(input)})`;
        out.push({ path: formatPath(path), message });
        break;
      }
      case "invalid_value":
        out.push({
          path: formatPath(path),
          message: `must be one of ${issue.values.map(String).join(", ")} (got ${describe(input)})`,
        });
        break;
      case "invalid_key":
        // A record key failed its own check: report the check's message, not zod's wrapper.
        out.push({ path: formatPath(path), message: issue.issues[0]?.message ?? issue.message });
        break;
      default:
        out.push({ path: formatPath(path), message: issue.message });
    }
  }
  return out;
}

/** Checks provider and provider blocks before the provider's schema is chosen. */
function checkProvider(raw: Record<string, unknown>): SpecIssue[] {
  const provider = raw.provider;
  if (provider === undefined) {
    return [{ path: "provider", message: `is required: one of ${IMPLEMENTED_PROVIDERS.join(", ")}` }];
  }
  if (typeof provider !== "string" || !(PROVIDERS as readonly string[]).includes(provider)) {
    return [{ path: "provider", message: `must be one of ${PROVIDERS.join(", ")} (got ${describe(provider)})` }];
  }
  if (!(IMPLEMENTED_PROVIDERS as readonly string[]).includes(provider)) {
    return [
      {
        path: "provider",
        message: `${provider} is reserved and not implemented yet: use ${IMPLEMENTED_PROVIDERS.join(" or ")}`,
      },
    ];
  }
  const issues: SpecIssue[] = [];
  for (const other of PROVIDERS) {
    if (other !== provider && raw[other] !== undefined) {
      issues.push({
        path: other,
        message: `is only allowed with provider ${other} (this cluster's provider is ${provider}): remove it`,
      });
    }
  }
  if (raw[provider] === undefined) {
    issues.push({
      path: provider,
      message:
        provider === "aws"
          ? "is required with provider aws: set at least aws.region"
          : `is required with provider ${provider}: an empty block (${provider}: {}) takes every default`,
    });
  }
  return issues;
}

/**
 * Validates the raw `g8s:cluster` value and returns the fully defaulted spec.
 * @param source the stack file it came from, named in every error line
 * @throws ClusterSpecError with every problem found, each with its config path
 */
export function parseClusterSpec(raw: unknown, source?: string): ClusterSpec {
  if (!isPlainObject(raw)) {
    throw new ClusterSpecError([{ path: "", message: `g8s:cluster must be a mapping (got ${describe(raw)})` }], source);
  }
  const providerIssues = checkProvider(raw);
  const provider = raw.provider as keyof typeof clusterSchemas;
  // The one place a value becomes a ClusterSpec (the type marks what only this parser returns).
  const schema = clusterSchemas[provider] as unknown as z.ZodType<ClusterSpec> | undefined;
  if (!schema) throw new ClusterSpecError(providerIssues, source);

  // Blocks already reported by checkProvider are left out of the schema's view.
  const reported = new Set(providerIssues.map((i) => i.path));
  const input = Object.fromEntries(Object.entries(raw).filter(([key]) => !reported.has(key)));
  const result = schema.safeParse(input, { reportInput: true });
  const structural = result.success ? [] : fromZodIssues(result.error.issues, schema);
  const issues = [...providerIssues, ...structural.filter((i) => !reported.has(i.path.split(/[.[]/)[0]))];
  if (issues.length > 0 || !result.success) throw new ClusterSpecError(issues, source);

  const ruleIssues = checkRules(result.data);
  if (ruleIssues.length > 0) throw new ClusterSpecError(ruleIssues, source);
  return result.data;
}

/**
 * Validates `g8s:reconcile` (absent means every default).
 * @throws ClusterSpecError with paths relative to `g8s:reconcile`
 */
export function parseReconcileSpec(raw: unknown, source?: string): ReconcileSpec {
  const result = reconcileSchema.safeParse(raw, { reportInput: true });
  if (result.success) return result.data;
  throw new ClusterSpecError(fromZodIssues(result.error.issues, reconcileSchema), source);
}
