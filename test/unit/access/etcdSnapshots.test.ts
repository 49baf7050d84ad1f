/**
 * The parts of `g8s etcd` that are decided without a cluster: what a master's listing and a
 * restore unit's state say, which snapshot names pass, the helper pod, the kubeconfig reached at
 * another address. The commands themselves run against a booted 3-master cluster in
 * test/lab/ha.test.ts.
 */
import * as assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { parse, stringify } from "yaml";
import {
  initialCluster,
  parseSnapshotList,
  parseUnitState,
  snapshotNameProblem,
} from "../../../automation/access/etcdSnapshots";
import { ON_NODE, adminKubeconfigFromState, findKubectl, helperPod } from "../../../automation/access/guestNodes";
import type { StateResource } from "../../../automation/reconciler/types";

describe("g8s etcd: snapshot listings and restore units", () => {
  it("reads a master's listing oldest first, with its last good snapshot", () => {
    const text = [
      "snapshot lab3-master-0-20261202T120000Z.db 2101280 1796212800",
      "snapshot lab3-master-0-20261202T060000Z.db 2097184 1796191200",
      'last-good {"snapshot": "lab3-master-0-20261202T120000Z.db", "time": "2026-12-02T12:00:00Z", "revision": 912, "bytes": 2101280}',
      "",
    ].join("\n");
    const m = parseSnapshotList("master-0", text);
    assert.deepEqual(
      m.snapshots.map((s) => [s.name, s.bytes, s.time.toISOString()]),
      [
        ["lab3-master-0-20261202T060000Z.db", 2097184, "2026-12-02T06:00:00.000Z"],
        ["lab3-master-0-20261202T120000Z.db", 2101280, "2026-12-02T12:00:00.000Z"],
      ],
    );
    assert.equal(m.lastGood?.snapshot, "lab3-master-0-20261202T120000Z.db");
    assert.equal(m.lastGood?.revision, 912);
    assert.deepEqual(parseSnapshotList("master-1", ""), { node: "master-1", snapshots: [] });
    assert.equal(parseSnapshotList("master-1", "last-good {torn").lastGood, undefined);
  });

  it("reads the object store's snapshots, every master's, by time; or why they could not be listed", () => {
    const m = parseSnapshotList(
      "master-0",
      [
        "stored lab3-master-1-20261202T120000Z.db",
        "stored lab3-master-0-20261202T120001Z.db",
        "stored lab3-master-0-20261202T060000Z.db",
        "snapshot lab3-master-0-20261202T120001Z.db 2101280 1796212801",
      ].join("\n"),
    );
    assert.deepEqual(m.stored, [
      "lab3-master-0-20261202T060000Z.db",
      "lab3-master-1-20261202T120000Z.db",
      "lab3-master-0-20261202T120001Z.db",
    ]);
    assert.equal(m.snapshots.length, 1);
    const failed = parseSnapshotList("master-0", "store-error g8s-object-store: GET /etcd: HTTP 403 AccessDenied \n");
    assert.equal(failed.storeError, "g8s-object-store: GET /etcd: HTTP 403 AccessDenied");
    assert.equal(failed.stored, undefined);
  });

  it("restores the masters there are now, each NAME=PEER-URL from its manifest, in a stable order", () => {
    assert.equal(
      initialCluster(["master-1=https://10.0.0.11:2380", "master-0=https://10.0.0.10:2380"]),
      "master-0=https://10.0.0.10:2380,master-1=https://10.0.0.11:2380",
    );
    assert.throws(() => initialCluster(["master-0="]), /not NAME=https:\/\/PEER: restore by hand/);
    assert.throws(() => initialCluster(["master-0=https://a:2380,master-9=https://b:2380"]), /restore by hand/);
  });

  it("tells a running, a finished and a failed restore unit apart", () => {
    assert.deepEqual(parseUnitState("ActiveState=activating\nResult=success\nlog restoring x\n"), { state: "running" });
    assert.deepEqual(
      parseUnitState("ActiveState=active\nResult=success\nlog g8s-etcd-restore: restored from x in 31 s; kept\n"),
      { state: "done", summary: "g8s-etcd-restore: restored from x in 31 s; kept" },
    );
    assert.deepEqual(parseUnitState("ActiveState=failed\nResult=exit-code\nlog etcd is not healthy\n"), {
      state: "failed",
      log: "etcd is not healthy",
    });
    // Not started yet (its timer has not fired): neither done nor failed.
    assert.deepEqual(parseUnitState("ActiveState=inactive\nResult=success\n"), { state: "running" });
  });

  it("takes only snapshot file names (they reach the masters' shell as arguments)", () => {
    assert.equal(snapshotNameProblem("lab3-master-1-20261202T120000Z.db"), undefined);
    for (const bad of ["../etc/shadow.db", "x.db; rm -rf /", "-rf.db", "snapshot", "a/b.db", ""])
      assert.match(snapshotNameProblem(bad) ?? "", /--snapshot .*g8s etcd snapshots lists it/, bad);
  });

  it("makes a helper pod that runs on the named node, in its namespaces, from the node's own tools", () => {
    const pod = helperPod("g8s-etcd-0-x", "master-0", "registry.k8s.io/etcd:3.6.4-0", "etcd") as {
      metadata: { namespace: string; labels: Record<string, string> };
      spec: Record<string, unknown> & {
        containers: { command: string[]; securityContext: { privileged: boolean }; volumeMounts: unknown[] }[];
        volumes: { hostPath: { path: string } }[];
      };
    };
    assert.equal(pod.metadata.namespace, "kube-system");
    assert.equal(pod.metadata.labels["g8s.dev/task"], "etcd");
    assert.equal(pod.spec.nodeName, "master-0");
    assert.equal(pod.spec.hostPID, true);
    assert.deepEqual(pod.spec.tolerations, [{ operator: "Exists" }]);
    assert.equal(pod.spec.automountServiceAccountToken, false);
    assert.ok((pod.spec.activeDeadlineSeconds as number) <= 3600);
    const c = pod.spec.containers[0];
    assert.deepEqual(c.command.slice(3), ["/host/usr/bin/sleep", "3600"]);
    assert.equal(c.command[0], ON_NODE[0], "the node's loader");
    assert.equal(c.securityContext.privileged, true);
    assert.deepEqual(c.volumeMounts, [{ name: "node-root", mountPath: "/host", readOnly: true }]);
    assert.equal(pod.spec.volumes[0].hostPath.path, "/");
    // nsenter runs from the node's root through its loader: the image needs no libc of its own.
    assert.match(ON_NODE[0], /^\/host\/usr\/lib\/x86_64-linux-gnu\/ld-linux-x86-64\.so\.2$/);
    assert.deepEqual(ON_NODE.slice(ON_NODE.indexOf("--target"), ON_NODE.indexOf("--target") + 2), ["--target", "1"]);
  });

  it("reaches the admin kubeconfig at another address and still checks the API server's own name", () => {
    const admin = stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        { name: "c", cluster: { server: "https://api.g8s-lab3.svc:6443", "certificate-authority-data": "Q0E=" } },
      ],
      users: [{ name: "u", user: { "client-certificate-data": "Y2VydA==", "client-key-data": "a2V5" } }],
      contexts: [{ name: "c", context: { cluster: "c", user: "u" } }],
      "current-context": "c",
    });
    const resources = [
      {
        urn: "urn:pulumi:lab3::g8s::pulumi:pulumi:Stack::g8s-lab3",
        type: "pulumi:pulumi:Stack",
        outputs: { adminKubeconfig: admin },
      },
    ] as unknown as StateResource[];
    assert.equal(adminKubeconfigFromState(resources, "lab3"), admin);
    const moved = parse(adminKubeconfigFromState(resources, "lab3", "https://10.77.0.2:6443")) as {
      clusters: { cluster: Record<string, string> }[];
      users: { user: Record<string, string> }[];
    };
    assert.equal(moved.clusters[0].cluster.server, "https://10.77.0.2:6443");
    assert.equal(moved.clusters[0].cluster["tls-server-name"], "api.g8s-lab3.svc");
    assert.equal(moved.clusters[0].cluster["certificate-authority-data"], "Q0E=");
    assert.equal(moved.users[0].user["client-key-data"], "a2V5");
    assert.throws(() => adminKubeconfigFromState([], "lab3"), /exports no adminKubeconfig yet/);
  });

  it("finds kubectl: the override, else an executable on PATH; says what to do when there is none", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "g8s-kubectl-"));
    try {
      const file = path.join(dir, "kubectl");
      writeFileSync(file, "#!/bin/sh\n");
      chmodSync(file, 0o755);
      assert.equal(findKubectl({ G8S_KUBECTL: file }), file);
      assert.throws(() => findKubectl({ G8S_KUBECTL: path.join(dir, "none") }), /G8S_KUBECTL=.* is not an executable/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
