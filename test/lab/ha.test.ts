/**
 * Three masters (the slower lab test): kubeadm init on the first, `join --control-plane` on the
 * others with g8s's per-master etcd certificates, one stacked etcd member each. Then etcd's
 * quorum must survive losing one master: the API keeps reading and writing with two of three
 * members, and the stopped master, booted again by a second `g8s lab up`, rejoins. Needs root.
 */
import * as assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { sleep, useLab, waitUntil, type LabStack } from "./harness";

const STACK: LabStack = { id: "lab3", masters: 3, workers: 1, serviceCidr: "172.28.0.0/16", podCidr: "10.64.0.0/16" };
const MASTERS = ["master-0", "master-1", "master-2"];

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

  it("restores all three etcd members from one snapshot at once: the deleted object back, three members, every node Ready", async function () {
    const dir = "/var/lib/etcd-disk/snapshots";
    assert.equal(lab.kubectl("create", "configmap", "ha-probe", "--from-literal=written=before-snapshot").code, 0);
    const snap = lab.onNode("master-0", "systemctl", "start", "g8s-etcd-snapshot.service");
    assert.equal(snap.code, 0, snap.err);
    const name = (
      JSON.parse(readFileSync(lab.nodePath("master-0", `${dir}/last-good.json`), "utf8")) as { snapshot: string }
    ).snapshot;
    // The runbook's step 2: the same file on every master, with its member list and checksum.
    for (const master of MASTERS.slice(1)) {
      mkdirSync(lab.nodePath(master, dir), { recursive: true, mode: 0o700 });
      for (const suffix of ["", ".sha256", ".members.json"]) {
        copyFileSync(
          lab.nodePath("master-0", `${dir}/${name}${suffix}`),
          lab.nodePath(master, `${dir}/${name}${suffix}`),
        );
      }
    }
    assert.equal(lab.kubectl("delete", "configmap", "ha-probe").code, 0);
    assert.equal(lab.kubectl("create", "configmap", "after-snapshot", "--from-literal=written=after").code, 0);

    const started = Date.now();
    const restores = await Promise.all(
      MASTERS.map((m) => lab.onNodeAsync(m, "/usr/local/sbin/g8s-etcd-restore", `${dir}/${name}`)),
    );
    restores.forEach((r, i) => assert.equal(r.code, 0, `${MASTERS[i]}: ${r.out}\n${r.err}`));
    const back = await waitUntil(
      "the deleted object through the restored API",
      () => lab.kubectl("get", "configmap", "ha-probe", "-o", "jsonpath={.data.written}").out === "before-snapshot",
      300_000,
    );
    const restoreSeconds = (Date.now() - started) / 1000;
    assert.match(lab.kubectl("get", "configmap", "after-snapshot").err, /NotFound/);
    for (const master of MASTERS) {
      const members = lab.onNode(master, "python3", "-c", MEMBERS_PY);
      assert.equal(members.code, 0, `${master}: ${members.err}`);
      assert.equal(members.out, MASTERS.join(" "), master);
    }
    const ready = await waitUntil(
      "every readyz check and every node Ready",
      () =>
        lab.kubectl("get", "--raw", "/readyz").out === "ok" && [...lab.readiness().values()].every((v) => v === "True"),
      300_000,
    );
    const write = lab.kubectl("create", "configmap", "after-restore", "--from-literal=written=3");
    assert.equal(write.code, 0, write.err);
    const scripts = restores.map((r, i) => `${MASTERS[i]} ${/in (\d+) s;/.exec(r.err)?.[1] ?? "?"} s`).join(", ");
    process.stdout.write(
      `      etcd restore of 3 members at once: ${scripts}; the object readable after ${restoreSeconds.toFixed(1)} s ` +
        `(${back.toFixed(0)} s after the scripts), every check and node Ready ${ready.toFixed(0)} s later\n`,
    );
  });
});
