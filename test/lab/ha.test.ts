/**
 * Three masters (the slower lab test): kubeadm init on the first, `join --control-plane` on the
 * others with g8s's per-master etcd certificates, one stacked etcd member each. Then etcd's
 * quorum must survive losing one master: the API keeps reading and writing with two of three
 * members, and the stopped master, booted again by a second `g8s lab up`, rejoins. Then etcd is
 * restored from a snapshot, and the cluster upgraded one minor (`g8s upgrade`) node by node while
 * a Deployment behind a Service answers throughout. Needs root.
 */
import * as assert from "node:assert/strict";
import { appendFileSync } from "node:fs";
import { sleep, useLab, waitUntil, webDocuments, type LabStack } from "./harness";

const STACK: LabStack = { id: "lab3", masters: 3, workers: 1, serviceCidr: "172.28.0.0/16", podCidr: "10.64.0.0/16" };
const MASTERS = ["master-0", "master-1", "master-2"];
const NODES = [...MASTERS, "pool-default-0"];
/** The node image holds its own Kubernetes and the next minor's (tools/kubernetes-next). */
const FROM = "1.34.12";
const TO = "1.35.4";

/**
 * GETs http://IP:PORT/health over a new connection every 50 ms until the file STOP exists. It
 * counts from the first 3 s of answers in a row on (then it writes READY): a Service made
 * moments ago, or whose endpoints the controllers are still settling after the etcd restore
 * before, is not yet the steady state the upgrade must keep. Prints {"ok", "failed", "failures"
 * (the first 20 errors with their time), "seconds", "warmup" (failures before READY)}.
 */
const PROBE_PY = `
import json, os, sys, time, urllib.request
url, stop, ready = f"http://{sys.argv[1]}:8080/health", sys.argv[2], sys.argv[3]
ok, failed, failures, streak, warmup, t0 = 0, 0, [], 0, 0, None
while not os.path.exists(stop):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            r.read()
        ok, streak = ok + 1, streak + 1
    except Exception as e:
        failed, streak = failed + 1, 0
        if t0 is not None and len(failures) < 20:
            failures.append(f"{time.time() - t0:.1f}s {e}")
    if t0 is None and streak >= 60:
        warmup, ok, failed, t0 = failed, 0, 0, time.time()
        open(ready, "w").close()
    time.sleep(0.05)
if t0 is None:
    print(json.dumps({"ok": 0, "failed": failed, "failures": ["never 3 s of answers in a row"], "seconds": 0, "warmup": failed}))
else:
    print(json.dumps({"ok": ok, "failed": failed, "failures": failures, "seconds": round(time.time() - t0, 1), "warmup": warmup}))
`;

/** etcd's member list over its v3 HTTP gateway, from a master, with the health-check client certificate. */
const MEMBERS_PY = `
import json, ssl, urllib.request
pki = "/etc/kubernetes/pki/etcd/"
ctx = ssl.create_default_context(cafile=pki + "ca.crt")
ctx.load_cert_chain(pki + "healthcheck-client.crt", pki + "healthcheck-client.key")
req = urllib.request.Request("https://127.0.0.1:2379/v3/cluster/member/list", data=b"{}", method="POST")
members = json.load(urllib.request.urlopen(req, context=ctx, timeout=10))["members"]
print(" ".join(sorted(m["name"] for m in members)))
`;

describe("lab: three masters keep etcd's quorum when one stops (system containers)", function () {
  this.timeout(2_400_000);
  const lab = useLab(STACK, 20);

  it("forms one cluster: every node Ready, one etcd member per master", () => {
    const ready = lab.readiness();
    assert.deepEqual([...ready.keys()].sort(), [...MASTERS, "pool-default-0"]);
    assert.ok(
      [...ready.values()].every((s) => s === "True"),
      JSON.stringify([...ready]),
    );
    const members = lab.onNode("master-0", "python3", "-c", MEMBERS_PY);
    assert.equal(members.code, 0, members.err);
    assert.equal(members.out, MASTERS.join(" "));
  });

  it("reads and writes with one master stopped, and the master rejoins when booted again", async function () {
    const stopped = lab.stopNode("master-2");
    assert.equal(stopped.code, 0, stopped.err);
    // Writes need a quorum: 2 of 3 members. The API answers through master-0 (the lab's API name).
    const write = lab.kubectl("create", "configmap", "quorum", "--from-literal", "members=2");
    assert.equal(write.code, 0, write.err);
    assert.equal(lab.kubectl("get", "configmap", "quorum", "-o", "jsonpath={.data.members}").out, "2");
    let state = lab.readiness().get("master-2");
    for (let i = 0; i < 60 && state === "True"; i++) {
      await sleep(2000);
      state = lab.readiness().get("master-2");
    }
    assert.notEqual(state, "True", "the control plane notices the stopped master (its kubelet stopped reporting)");
    const health = lab.kubectl("get", "--raw", "/readyz/etcd");
    assert.equal(health.code, 0, health.err);
    assert.equal(health.out, "ok");

    await lab.up(15); // boots master-2 again from its disk; waits for every node Ready
    const members = lab.onNode("master-2", "python3", "-c", MEMBERS_PY);
    assert.equal(members.code, 0, members.err);
    assert.equal(members.out, MASTERS.join(" "));
    const write2 = lab.kubectl("create", "configmap", "quorum-again", "--from-literal", "members=3");
    assert.equal(write2.code, 0, write2.err);
  });

  it("g8s etcd restore: every member from one snapshot at once, the deleted object back, three members, every node Ready", async function () {
    // The operator's way: the API as the host reaches it (the stack's own name resolves only in the host cluster).
    const server = lab.kubectl("config", "view", "-o", "jsonpath={.clusters[0].cluster.server}").out;
    assert.equal(lab.kubectl("create", "configmap", "ha-probe", "--from-literal=written=before-snapshot").code, 0);
    const took = lab.g8s("etcd", "snapshot", STACK.id, "--server", server);
    assert.equal(took.code, 0, took.err);
    // One snapshot per master now; restore master-1's (master-0 and master-2 get a copy).
    const name = new RegExp(`last good (${STACK.id}-master-1-\\S+\\.db)`).exec(took.out)?.[1] as string;
    assert.ok(name, took.out);
    // Each master's last good snapshot is on its Node too, for whoever watches the API (the daemon's gauge).
    for (const master of MASTERS) {
      const at = new RegExp(`^${master}: .*; last good \\S+ at (\\S+)$`, "m").exec(took.out)?.[1];
      const annotation = lab.kubectl(
        "get",
        "node",
        master,
        "-o",
        "jsonpath={.metadata.annotations.g8s\\.dev/etcd-last-good-snapshot}",
      );
      assert.equal(annotation.out, at, `${master}: ${annotation.err}`);
    }
    assert.equal(lab.kubectl("delete", "configmap", "ha-probe").code, 0);
    assert.equal(lab.kubectl("create", "configmap", "after-snapshot", "--from-literal=written=after").code, 0);

    const args = ["etcd", "restore", STACK.id, "--snapshot", name, "--server", server];
    const refused = lab.g8s(...args, "--yes");
    assert.equal(refused.code, 1, "refused while the stack file lets the reconciler act");
    assert.match(refused.err, /g8s:reconcile.mode is correct: set it to off/);
    lab.write({ ...STACK, reconcileMode: "off" });
    // A damaged file is refused before anything changes: master-2's own snapshot, one byte longer.
    const damaged = new RegExp(`last good (${STACK.id}-master-2-\\S+\\.db)`).exec(took.out)?.[1] as string;
    appendFileSync(lab.nodePath("master-2", `/var/lib/etcd-disk/snapshots/${damaged}`), "x");
    const refusedDamaged = lab.g8s("etcd", "restore", STACK.id, "--snapshot", damaged, "--server", server, "--yes");
    assert.equal(refusedDamaged.code, 1, refusedDamaged.err);
    assert.match(refusedDamaged.err, /master-2: checking .* does not match .*\.sha256/);
    assert.equal(lab.kubectl("get", "configmap", "after-snapshot").code, 0, "nothing restored");

    const started = Date.now();
    const restored = await lab.g8sAsync(...args, "--yes");
    const seconds = (Date.now() - started) / 1000;
    assert.equal(restored.code, 0, `${restored.out}\n${restored.err}`);
    assert.match(restored.err, /copied .* to master-0, checksum good/);
    assert.match(restored.err, /copied .* to master-2, checksum good/);
    // The members restored are the masters as their manifests name them now.
    assert.match(
      restored.err,
      /as members master-0=https:\/\/[\d.]+:2380,master-1=https:\/\/[\d.]+:2380,master-2=https:\/\/[\d.]+:2380:/,
    );
    assert.equal(lab.kubectl("get", "configmap", "ha-probe", "-o", "jsonpath={.data.written}").out, "before-snapshot");
    assert.match(lab.kubectl("get", "configmap", "after-snapshot").err, /NotFound/);
    for (const master of MASTERS) {
      const members = lab.onNode(master, "python3", "-c", MEMBERS_PY);
      assert.equal(members.code, 0, `${master}: ${members.err}`);
      assert.equal(members.out, MASTERS.join(" "), master);
    }
    assert.ok(
      [...lab.readiness().values()].every((v) => v === "True"),
      "every node Ready",
    );
    const write = lab.kubectl("create", "configmap", "after-restore", "--from-literal=written=3");
    assert.equal(write.code, 0, write.err);
    await waitUntil(
      "the helper pods gone",
      () => lab.kubectl("get", "pods", "-n", "kube-system", "-l", "g8s.dev/task=etcd", "-o", "name").out === "",
      60_000,
    );
    const scripts = MASTERS.map(
      (m) => `${m} ${new RegExp(`${m}: .*restored from .* in (\\d+) s;`).exec(restored.err)?.[1] ?? "?"} s`,
    );
    process.stdout.write(
      `      g8s etcd restore of 3 members: ${seconds.toFixed(1)} s in all (${restored.out.split("\n").pop()}); scripts ${scripts.join(", ")}\n`,
    );
  });

  it(`g8s upgrade ${FROM} → ${TO}: one node at a time, etcd healthy between nodes, the Service answering throughout`, async function () {
    const server = lab.kubectl("config", "view", "-o", "jsonpath={.clusters[0].cluster.server}").out;
    // Two web replicas on different nodes, a budget of one, a pause before each stops (the
    // endpoint is gone from every node's rules before the server is).
    const applied = lab.apply([
      ...webDocuments({ spread: "ScheduleAnyway", drainSafe: true }),
      {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: "web", namespace: "default" },
        spec: { selector: { app: "web" }, ports: [{ port: 8080, targetPort: 8080 }] },
      },
    ]);
    assert.equal(applied.code, 0, applied.err);
    const rollout = lab.kubectl("rollout", "status", "deployment/web", "--timeout=300s");
    assert.equal(rollout.code, 0, rollout.err);
    const clusterIp = lab.kubectl("get", "service", "web", "-o", "jsonpath={.spec.clusterIP}").out;

    // The stack file names the next minor; a skipped one is refused before anything happens.
    lab.write({ ...STACK, reconcileMode: "off", kubernetesVersion: "1.36.0" });
    const skipped = lab.g8s("upgrade", STACK.id, "--server", server);
    assert.equal(skipped.code, 1, skipped.out);
    assert.match(skipped.err, /kubernetes\.version/);
    lab.write({ ...STACK, reconcileMode: "off", kubernetesVersion: TO });
    // The probe runs on the worker (a process of the node, not a pod: the drains leave it be).
    const stop = "/run/g8s-probe-stop";
    lab.onNode("pool-default-0", "rm", "-f", stop);
    const ready = "/run/g8s-probe-ready";
    lab.onNode("pool-default-0", "rm", "-f", ready);
    const probe = lab.onNodeAsync("pool-default-0", "python3", "-c", PROBE_PY, clusterIp, stop, ready);
    await waitUntil(
      "3 s of answers in a row through the Service",
      () => lab.onNode("pool-default-0", "test", "-e", ready).code === 0,
      120_000,
    );

    const started = Date.now();
    const upgraded = await lab.g8sAsync("upgrade", STACK.id, "--server", server);
    const seconds = (Date.now() - started) / 1000;
    await sleep(3000);
    lab.onNode("pool-default-0", "touch", stop);
    const probed = await probe;
    assert.equal(upgraded.code, 0, `${upgraded.out}\n${upgraded.err}`);
    assert.equal(probed.code, 0, probed.err);
    const counts = JSON.parse(probed.out) as {
      ok: number;
      failed: number;
      failures: string[];
      seconds: number;
      warmup: number;
    };

    // Master-0 first with upgrade apply, then the others, then the worker; one at a time.
    const order = [...upgraded.err.matchAll(/\] (\S+): on v1\.35\.4 in ([\d.]+) s/g)].map((m) => m[1]);
    assert.deepEqual(order, NODES, upgraded.err);
    assert.match(upgraded.err, /master-0: kubeadm upgrade apply started/);
    const versions = lab.kubectl(
      "get",
      "nodes",
      "-o",
      "jsonpath={range .items[*]}{.metadata.name}={.status.nodeInfo.kubeletVersion} {end}",
    );
    assert.equal(versions.out.trim(), NODES.map((n) => `${n}=v${TO}`).join(" "));
    const apiVersion = lab.kubectl("version", "-o", "json");
    assert.match(apiVersion.out, new RegExp(`"gitVersion": "v${TO.replace(/\./g, "\\.")}"`));
    for (const master of MASTERS) {
      const members = lab.onNode(master, "python3", "-c", MEMBERS_PY);
      assert.equal(members.out, MASTERS.join(" "), `${master}: ${members.err}`);
    }
    // CoreDNS stays the node image's (pinned), running; nothing is left cordoned.
    const dns = lab.kubectl(
      "get",
      "deployment",
      "coredns",
      "-n",
      "kube-system",
      "-o",
      "jsonpath={.spec.template.spec.containers[0].image} {.status.readyReplicas}",
    );
    assert.equal(dns.out, "registry.k8s.io/coredns/coredns:v1.12.1 2");
    assert.equal(lab.kubectl("get", "nodes", "-o", "jsonpath={.items[*].spec.unschedulable}").out, "");
    // Run again: nothing left to do.
    const again = lab.g8s("upgrade", STACK.id, "--server", server);
    assert.equal(again.code, 0, again.err);
    assert.match(again.out, /nothing to upgrade/);

    process.stdout.write(
      `      g8s upgrade ${FROM} → ${TO} of 3 masters + 1 worker: ${seconds.toFixed(1)} s; per node: ` +
        `${upgraded.out
          .split("\n")
          .slice(1)
          .map((l) => l.trim())
          .join("; ")}\n` +
        `      probe through the Service: ${counts.ok} answered, ${counts.failed} failed in ${counts.seconds} s ${counts.failures.join(" | ")} (before: ${counts.warmup} failed until 3 s in a row answered)\n`,
    );
    assert.equal(counts.failed, 0, `failed requests during the upgrade: ${counts.failures.join(" | ")}`);
    assert.ok(counts.ok > 100, `the probe ran (${counts.ok} answers)`);
  });

  it("a node-pool change (memory) restarts the worker on its new pod template: drained first, the Service answering throughout", async function () {
    // The web Deployment and Service of the upgrade above; the probe runs on master-0 now (the worker restarts).
    const clusterIp = lab.kubectl("get", "service", "web", "-o", "jsonpath={.spec.clusterIP}").out;
    assert.match(clusterIp, /^[\d.]+$/, "the Service of the upgrade test");
    const worker = "pool-default-0";
    const bootBefore = lab.kubectl("get", "node", worker, "-o", "jsonpath={.status.nodeInfo.bootID}").out;
    const namespace = lab.plan().namespace;
    const revision = (what: string) =>
      lab.hostKubectl(
        "get",
        ...what.split(" "),
        "-n",
        namespace,
        "-o",
        what.startsWith("pod")
          ? "jsonpath={.metadata.labels.controller-revision-hash}"
          : "jsonpath={.status.updateRevision}",
      ).out;
    const revisionBefore = revision(`statefulset pool-default`);
    assert.equal(revision(`pod ${worker}`), revisionBefore);

    const stop = "/run/g8s-probe-stop";
    const ready = "/run/g8s-probe-ready";
    lab.onNode("master-0", "rm", "-f", stop, ready);
    const probe = lab.onNodeAsync("master-0", "python3", "-c", PROBE_PY, clusterIp, stop, ready);
    await waitUntil(
      "3 s of answers in a row through the Service",
      () => lab.onNode("master-0", "test", "-e", ready).code === 0,
      120_000,
    );
    // The pool's memory changes: the StatefulSet's template (OnDelete: no VM restarts by itself).
    lab.write({ ...STACK, kubernetesVersion: TO, reconcileMode: "correct", workerMemoryGiB: 3 });
    const follow = lab.followPodRestarts();
    const started = Date.now();
    const pass = await lab.g8sInHostDns("reconcile", STACK.id, "--json");
    const seconds = (Date.now() - started) / 1000;
    const restarted = await follow.stop();
    await sleep(3000);
    lab.onNode("master-0", "touch", stop);
    const probed = await probe;
    assert.equal(pass.code, 0, `${pass.out}\n${pass.err}`);
    const record = JSON.parse(pass.out.split("\n")[0]) as {
      outcome: string;
      rolled?: { nodes: { node: string; seconds: number }[]; seconds: number };
    };
    assert.equal(record.outcome, "corrected", pass.out);
    assert.deepEqual(
      record.rolled?.nodes.map((n) => n.node),
      [worker],
      pass.out,
    );
    assert.deepEqual(restarted, [worker]);
    // The worker runs the new template: a new revision, booted again, Ready and schedulable.
    const revisionAfter = revision(`statefulset pool-default`);
    assert.notEqual(revisionAfter, revisionBefore);
    assert.equal(revision(`pod ${worker}`), revisionAfter);
    assert.equal(
      lab.hostKubectl(
        "get",
        "statefulset",
        "pool-default",
        "-n",
        namespace,
        "-o",
        "jsonpath={.spec.template.spec.containers[0].resources.limits.memory}",
      ).code,
      0,
    );
    assert.notEqual(lab.kubectl("get", "node", worker, "-o", "jsonpath={.status.nodeInfo.bootID}").out, bootBefore);
    assert.equal(lab.readiness().get(worker), "True");
    assert.equal(lab.kubectl("get", "node", worker, "-o", "jsonpath={.spec.unschedulable}").out, "");
    // The masters' pods were not touched.
    assert.equal(revision("pod master-0"), revision("statefulset master"));

    const counts = JSON.parse(probed.out) as { ok: number; failed: number; failures: string[]; seconds: number };
    process.stdout.write(
      `      node-pool change (memory) of ${worker}: the pass ${seconds.toFixed(1)} s, the roll ${record.rolled?.seconds} s ` +
        `(${worker} ${record.rolled?.nodes[0].seconds} s); probe: ${counts.ok} answered, ${counts.failed} failed ${counts.failures.join(" | ")}\n`,
    );
    assert.equal(counts.failed, 0, `failed requests during the roll: ${counts.failures.join(" | ")}`);
    assert.ok(counts.ok > 100, `the probe ran (${counts.ok} answers)`);
  });
});
