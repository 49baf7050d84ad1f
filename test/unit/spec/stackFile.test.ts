import * as assert from "node:assert/strict";
import { ClusterSpecError, parseStackFile, parseStackSettings, stackNameOf } from "../../../components/spec";

const VALID = `config:
  g8s:cluster:
    id: edge7
    provider: kvm
    baseDomain: k8s.corp.internal
    kvm: {}
    nodePools: [{ name: default, count: 2 }]
    pki: { backend: tls }
`;

function issuesOf(fn: () => unknown): Array<{ path: string; message: string }> {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ClusterSpecError, String(err));
    return [...err.issues];
  }
  return assert.fail("accepted");
}

describe("stack files", () => {
  it("names the stack after the file", () => {
    assert.equal(stackNameOf("stacks/Pulumi.eu1prod.yaml"), "eu1prod");
    assert.equal(stackNameOf("stacks/Pulumi.eu1prod.yml"), "eu1prod");
    assert.equal(stackNameOf("stacks/eu1prod.yaml"), undefined);
  });

  it("parses a valid file with default reconcile settings", () => {
    const parsed = parseStackFile(VALID, "stacks/Pulumi.edge7.yaml");
    assert.equal(parsed.stack, "edge7");
    assert.equal(parsed.cluster.id, "edge7");
    assert.deepEqual(parsed.reconcile, { mode: "correct", interval: "5m" });
    assert.equal(parsed.decommission, false);
  });

  it("needs the cluster id to equal the stack name", () =>
    assert.deepEqual(
      issuesOf(() => parseStackFile(VALID, "stacks/Pulumi.other.yaml")),
      [
        {
          path: "id",
          message: "must equal the stack name 'other': one stack per cluster, named by its id",
        },
      ],
    ));

  it("reports malformed YAML with its line", () => {
    const issues = issuesOf(() =>
      parseStackFile("config:\n  g8s:cluster:\n    id: x\n     provider: aws\n", "stacks/Pulumi.x.yaml"),
    );
    assert.deepEqual(issues, [
      { path: "line 3, column 9", message: "invalid YAML: Nested mappings are not allowed in compact mappings" },
    ]);
  });

  it("reports duplicate keys as YAML errors", () => {
    const issues = issuesOf(() => parseStackSettings("config:\n  a:b: 1\n  a:b: 2\n", "stacks/Pulumi.x.yaml"));
    assert.match(issues[0].message, /^invalid YAML: .*unique/i);
  });

  it("reports a missing g8s:cluster", () =>
    assert.deepEqual(
      issuesOf(() => parseStackFile("config:\n  aws:region: eu-central-1\n", "stacks/Pulumi.x.yaml")),
      [{ path: "g8s:cluster", message: "is missing: every g8s stack file describes one cluster" }],
    ));

  it("reports an empty file", () =>
    assert.deepEqual(
      issuesOf(() => parseStackFile("", "stacks/Pulumi.x.yaml")),
      [{ path: "config", message: "is missing: the file is empty" }],
    ));

  it("rejects unknown g8s keys and suggests the right one", () =>
    assert.deepEqual(
      issuesOf(() => parseStackFile(`${VALID}  g8s:Reconcile: {}\n`, "stacks/Pulumi.edge7.yaml")),
      [{ path: "g8s:Reconcile", message: "unknown key: did you mean 'g8s:reconcile'?" }],
    ));

  it("leaves other providers' config keys alone", () => {
    assert.equal(parseStackFile(`${VALID}  aws:region: eu-west-1\n`, "stacks/Pulumi.edge7.yaml").cluster.id, "edge7");
  });

  it("needs a namespace on every config key", () =>
    assert.deepEqual(
      issuesOf(() => parseStackSettings("config:\n  cluster: {}\n", "stacks/Pulumi.x.yaml")),
      [{ path: "cluster", message: "config keys need a namespace: write g8s:cluster (or <provider>:cluster)" }],
    ));

  it("requires credentials to be Pulumi secrets", () => {
    assert.deepEqual(
      issuesOf(() => parseStackSettings('config:\n  g8s:vaultToken: "s.abc"\n', "stacks/Pulumi.x.yaml")),
      [
        {
          path: "g8s:vaultToken",
          message:
            "must be a secret: set it with 'pulumi config set --secret g8s:vaultToken …' (and rotate the exposed value)",
        },
      ],
    );
    const ok = parseStackSettings("config:\n  g8s:vaultToken:\n    secure: v1:abc\n", "stacks/Pulumi.x.yaml");
    assert.equal(ok.decommission, false);
  });

  it("parses g8s:reconcile and reports its problems under that key", () => {
    const settings = parseStackSettings(
      "config:\n  g8s:reconcile: { mode: detect, interval: 30s }\n",
      "stacks/Pulumi.x.yaml",
    );
    assert.deepEqual(settings.reconcile, { mode: "detect", interval: "30s" });
    assert.deepEqual(
      issuesOf(() =>
        parseStackSettings("config:\n  g8s:reconcile: { mode: fix, interval: 1s }\n", "stacks/Pulumi.x.yaml"),
      ),
      [
        { path: "g8s:reconcile.mode", message: "must be one of correct, detect, off (got 'fix')" },
        { path: "g8s:reconcile.interval", message: "must be between 10s and 24h (got 1s)" },
      ],
    );
  });

  it("decommissions only when g8s:decommission repeats the stack's name", () => {
    const settings = (value: string) =>
      parseStackSettings(`config:\n  g8s:decommission: ${value}\n`, "stacks/Pulumi.x.yaml");
    assert.equal(settings("x").decommission, true);
    assert.equal(settings("false").decommission, false);
    assert.equal(parseStackSettings("config: {}\n", "stacks/Pulumi.x.yaml").decommission, false);
    const refused = (value: string) => issuesOf(() => settings(value));
    assert.deepEqual(refused("true"), [
      {
        path: "g8s:decommission",
        message:
          "true alone destroys nothing: repeat the stack's name to confirm (g8s:decommission: x); the reconciler then " +
          "lifts the protection of the cluster's etcd volumes, CA, key and namespace and destroys all of it",
      },
    ]);
    assert.deepEqual(refused("y"), [
      { path: "g8s:decommission", message: "names 'y', not this stack: g8s:decommission: x destroys this one" },
    ]);
    assert.deepEqual(refused("1"), [
      { path: "g8s:decommission", message: "must be the stack's name, to destroy it (g8s:decommission: x), or false" },
    ]);
  });

  it("collects settings and cluster problems of one file together", () => {
    const issues = issuesOf(() =>
      parseStackFile(`${VALID.replace("count: 2", "count: -2")}  g8s:decommission: 1\n`, "stacks/Pulumi.edge7.yaml"),
    );
    assert.deepEqual(
      issues.map((i) => i.path),
      ["g8s:decommission", "nodePools[0].count"],
    );
  });
});
