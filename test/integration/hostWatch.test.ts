/**
 * The host watch against a real kube-apiserver (`g8s host up`, KWOK nodes that run pods): what
 * the provider applies (as field manager `pulumi-kubernetes-…`, the name the Kubernetes provider
 * gives itself under Server-Side Apply) and what controllers write to status is not reported;
 * what a person does with kubectl is, attributed to kubectl's field manager, and a deletion
 * unattributed. The whole loop with the real provider is in kvm.test.ts.
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import pino from "pino";
import { kubeApiFor, targetFromEnvironment } from "../../automation/coordination/kubeClient";
import { HostWatch, type HostChange } from "../../automation/events/hostWatch";
import type { KubeApi } from "../../automation/host/https";
import { systemClock } from "../../automation/reconciler/clock";
import { hostDown, hostUp } from "./harness";
import { waitFor } from "./daemon";

const KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33";
const NS = "g8s-w1";
const LABELS = { "g8s.io/cluster": "w1" };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("host watch on a real kube-apiserver", function () {
  this.timeout(600_000);
  let dir: string;
  let hostDir: string;
  let kubeconfig: string;
  let api: KubeApi;
  let watch: HostWatch;
  const changes: HostChange[] = [];

  const kubectl = (...args: string[]) => {
    const r = spawnSync(KUBECTL, ["--kubeconfig", kubeconfig, "-n", NS, ...args], { encoding: "utf8" });
    assert.equal(r.status, 0, `kubectl ${args.join(" ")}: ${r.stderr}`);
  };
  /** Server-Side Apply as the provider does it. */
  const providerApply = (p: string, object: Record<string, unknown>) =>
    api.request(
      "PATCH",
      `${p}?fieldManager=pulumi-kubernetes-5f1e2d3c&force=true`,
      object,
      "application/apply-patch+yaml",
    );

  const objects = {
    namespace: () =>
      providerApply(`/api/v1/namespaces/${NS}`, {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: NS, labels: LABELS },
      }),
    secret: (value: string) =>
      providerApply(`/api/v1/namespaces/${NS}/secrets/master-secrets`, {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "master-secrets", labels: LABELS },
        data: { "ca.crt": Buffer.from(value).toString("base64") },
      }),
    statefulSet: () =>
      providerApply(`/apis/apps/v1/namespaces/${NS}/statefulsets/master`, {
        apiVersion: "apps/v1",
        kind: "StatefulSet",
        metadata: { name: "master", labels: LABELS },
        spec: {
          replicas: 1,
          serviceName: "master",
          selector: { matchLabels: { app: "master" } },
          template: {
            metadata: { labels: { app: "master", ...LABELS } },
            spec: { containers: [{ name: "qemu", image: "g8s.local/node:1" }] },
          },
        },
      }),
  };
  /** The changes reported from now on, once `ms` passed without a new one. */
  async function reportedAfter(action: () => unknown, quietMs = 2500): Promise<HostChange[]> {
    const from = changes.length;
    await action();
    let seen = -1;
    while (seen !== changes.length) {
      seen = changes.length;
      await sleep(quietMs);
    }
    return changes.slice(from);
  }

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "g8s-watch-it-"));
    hostDir = path.join(dir, "host");
    kubeconfig = hostUp(hostDir);
    const target = targetFromEnvironment({ KUBECONFIG: kubeconfig });
    api = kubeApiFor(target);
    watch = new HostWatch({
      api,
      server: target.server,
      tls: target.tls,
      clock: systemClock,
      log: pino({ level: "silent" }),
      onChange: (c) => changes.push(c),
      watchSeconds: 5, // watches resumed several times during the test: nothing lost or reported twice across them
    });
    await watch.start();
  });

  after(async () => {
    await watch?.stop();
    if (hostDir) hostDown(hostDir);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("reports nothing for what the provider applies and what controllers write to status", async () => {
    const reported = await reportedAfter(async () => {
      await objects.namespace();
      await objects.secret("ca-1");
      await objects.statefulSet();
      // The StatefulSet's pod runs on a KWOK node: the controller writes its status meanwhile.
      await waitFor(
        "the StatefulSet's pod ready",
        async () =>
          (await api.get<{ status?: { readyReplicas?: number } }>(`/apis/apps/v1/namespaces/${NS}/statefulsets/master`))
            .status?.readyReplicas === 1
            ? true
            : undefined,
        120_000,
      );
      await objects.secret("ca-2"); // the provider changing its own object
    }, 6000);
    assert.deepEqual(reported, []);
  });

  it("reports kubectl's changes attributed to kubectl, one per change", async () => {
    const scaled = await reportedAfter(() => kubectl("scale", "statefulset", "master", "--replicas=3"));
    assert.deepEqual(scaled, [
      { stack: "w1", attributed: true, what: `StatefulSet ${NS}/master changed by ${path.basename(KUBECTL)}` },
    ]);
    const patched = await reportedAfter(() =>
      kubectl(
        "patch",
        "secret",
        "master-secrets",
        "--type=merge",
        "-p",
        `{"data":{"ca.crt":"${Buffer.from("forged").toString("base64")}"}}`,
      ),
    );
    assert.deepEqual(patched, [
      { stack: "w1", attributed: true, what: `Secret ${NS}/master-secrets changed by kubectl-patch` },
    ]);
  });

  it("reports the provider putting it back as nothing", async () => {
    const reported = await reportedAfter(async () => {
      await objects.secret("ca-2");
      await objects.statefulSet();
    }, 4000);
    assert.deepEqual(reported, []);
  });

  it("reports a deletion, and the loss of the cluster label, unattributed", async () => {
    const deleted = await reportedAfter(() => kubectl("delete", "secret", "master-secrets", "--wait=true"));
    assert.deepEqual(deleted, [{ stack: "w1", attributed: false, what: `Secret ${NS}/master-secrets deleted` }]);
    const unlabelled = await reportedAfter(() =>
      spawnSync(KUBECTL, ["--kubeconfig", kubeconfig, "label", "namespace", NS, "g8s.io/cluster-"]),
    );
    assert.deepEqual(unlabelled, [{ stack: "w1", attributed: false, what: `Namespace ${NS} deleted` }]);
  });
});
