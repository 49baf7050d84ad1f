/**
 * The Helm chart (charts/g8s) against the real thing: rendered and linted by helm (built from
 * its pinned Go module by the toolchain), applied with server-side dry-run to the host cluster
 * (`g8s host up`), its RBAC applied for real and asked with `kubectl auth can-i` whether the
 * reconciler's ServiceAccount may do what the Leases and the KVM platform need, and nothing
 * more; bad values refused with a message that names the value.
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { parseAllDocuments } from "yaml";
import { PROJECT_ROOT } from "../../automation/engine";
import { WATCHED_KINDS } from "../../automation/events/hostWatch";
import { hostDown, hostUp } from "./harness";

const KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33";
const HELM = path.join(PROJECT_ROOT, ".tools/bin/helm");
const CHART = path.join(PROJECT_ROOT, "charts/g8s");
const NS = "g8s-system";
const SECRET_VALUES = [
  "--set",
  "secret.backendUrl=postgres://g8s:pw@db.example:5432/state",
  "--set",
  "secret.passphrase=not-a-real-passphrase",
  "--set",
  "secret.apiToken=0123456789abcdef0123",
];

interface Manifest {
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: Record<string, unknown>;
}

function helm(...args: string[]) {
  return spawnSync(HELM, args, { encoding: "utf8", timeout: 120_000 });
}

/** The host cluster's Kubernetes version, which the chart is rendered for. */
let kubeVersion = "";

/** `helm template g8s charts/g8s -n g8s-system <args>`: the manifest text; throws with helm's message. */
function render(...args: string[]): string {
  const r = helm("template", "g8s", CHART, "--namespace", NS, "--kube-version", kubeVersion, ...args);
  if (r.status !== 0) throw new Error(r.stderr.trim());
  return r.stdout;
}

/** `group/version` path of a watched kind → what `kubectl auth can-i` names: `statefulsets.apps`. */
function resourceOf(apiPath: string): string {
  const parts = apiPath.split("/").filter(Boolean);
  const resource = parts[parts.length - 1];
  return parts[0] === "api" ? resource : `${resource}.${parts[1]}`;
}

describe("Helm chart charts/g8s on the host cluster", function () {
  this.timeout(600_000);
  let dir: string;
  let hostDir: string;
  let kubeconfig: string;
  let manifest: string;

  const kubectl = (args: readonly string[], input?: string) =>
    spawnSync(KUBECTL, ["--kubeconfig", kubeconfig, ...args], { encoding: "utf8", input, timeout: 120_000 });

  before(function () {
    assert.ok(existsSync(HELM), `${HELM} is missing: npm run toolchain builds it`);
    dir = mkdtempSync(path.join(tmpdir(), "g8s-chart-"));
    hostDir = path.join(dir, "host");
    kubeconfig = hostUp(hostDir);
    const version = kubectl(["version", "-o", "json"]);
    kubeVersion = (JSON.parse(version.stdout) as { serverVersion: { gitVersion: string } }).serverVersion.gitVersion;
  });

  after(() => {
    if (hostDir) hostDown(hostDir);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("lints and renders every object a reconciler deployment needs", () => {
    const lint = helm("lint", CHART, "--strict", ...SECRET_VALUES);
    assert.equal(lint.status, 0, lint.stdout + lint.stderr);
    manifest = render(...SECRET_VALUES);
    const objects = parseAllDocuments(manifest)
      .map((d) => d.toJS() as Manifest | null)
      .filter((o): o is Manifest => o !== null);
    assert.deepEqual(objects.map((o) => o.kind).sort(), [
      "ClusterRole",
      "ClusterRoleBinding",
      "Deployment",
      "PodDisruptionBudget",
      "Role",
      "RoleBinding",
      "Secret",
      "Service",
      "ServiceAccount",
    ]);
    const deployment = objects.find((o) => o.kind === "Deployment") as Manifest;
    assert.equal(deployment.spec?.replicas, 3);
    const text = JSON.stringify(deployment);
    for (const expected of ['"path":"/healthz"', '"path":"/readyz"', '"G8S_COORDINATION","value":"kubernetes"'])
      assert.ok(text.includes(expected), expected);
    assert.ok(!text.includes("not-a-real-passphrase"), "the passphrase is in the Secret only");
  });

  it("applies to the host cluster with server-side dry-run", () => {
    assert.equal(kubectl(["create", "namespace", NS]).status, 0);
    const applied = kubectl(["apply", "--dry-run=server", "-f", "-"], manifest);
    assert.equal(applied.status, 0, applied.stderr);
    const lines = applied.stdout.trim().split("\n");
    assert.equal(lines.length, 9, applied.stdout);
    assert.ok(
      lines.every((l) => l.endsWith("(server dry run)")),
      applied.stdout,
    );
    assert.equal(kubectl(["-n", NS, "get", "deployment", "g8s"]).status, 1, "a dry run creates nothing");
  });

  it("lets the ServiceAccount use Leases, its status ConfigMaps and the KVM platform's host objects, and nothing else", () => {
    // The RBAC objects for real: `auth can-i` asks the authorizer about what exists.
    const rbac = render(
      ...SECRET_VALUES,
      "--show-only",
      "templates/serviceaccount.yaml",
      "--show-only",
      "templates/rbac.yaml",
    );
    const applied = kubectl(["apply", "-f", "-"], rbac);
    assert.equal(applied.status, 0, applied.stderr);
    const can = (verb: string, resource: string, namespace?: string) => {
      const r = kubectl([
        "auth",
        "can-i",
        verb,
        resource,
        `--as=system:serviceaccount:${NS}:g8s`,
        ...(namespace ? ["-n", namespace] : ["--all-namespaces"]),
      ]);
      return r.stdout.trim();
    };
    for (const verb of ["get", "list", "watch", "create", "update", "delete"])
      assert.equal(can(verb, "leases.coordination.k8s.io", NS), "yes", `${verb} leases`);
    assert.equal(can("create", "leases.coordination.k8s.io", "kube-system"), "no", "Leases of its own namespace only");
    // The status board: a ConfigMap per replica, applied (create or patch), listed, a gone one deleted.
    for (const verb of ["list", "create", "patch", "delete"])
      assert.equal(can(verb, "configmaps", NS), "yes", `${verb} configmaps`);
    assert.equal(can("patch", "configmaps", "kube-system"), "no", "ConfigMaps of its own namespace only");
    // Every kind the host watch follows: listed and watched cluster-wide, and managed.
    for (const { kind, path: apiPath } of WATCHED_KINDS) {
      for (const verb of ["list", "watch", "create", "patch", "delete"])
        assert.equal(can(verb, resourceOf(apiPath)), "yes", `${verb} ${kind}`);
    }
    assert.equal(can("create", "pods"), "no");
    assert.equal(can("delete", "pods"), "yes", "a node-pool change restarts a guest node's QEMU pod");
    assert.equal(can("create", "clusterroles.rbac.authorization.k8s.io"), "no");
    assert.equal(can("delete", "nodes"), "no");
  });

  it("refuses values it cannot run with, naming the value and the fix", () => {
    assert.throws(() => render(), /secret: set secret\.existing to a Secret with keys backend-url, passphrase/);
    assert.throws(
      () => render(...SECRET_VALUES, "--set", "secret.backendUrl=file:///var/lib/g8s/backend"),
      /secret\.backendUrl: replicas share one backend/,
    );
    assert.throws(() => render(...SECRET_VALUES, "--set", "secret.apiToken=short"), /secret\.apiToken: at least 16/);
    // An existing Secret needs no values.
    assert.match(render("--set", "secret.existing=g8s-credentials"), /secretKeyRef:\n\s+name: g8s-credentials/);
  });
});
