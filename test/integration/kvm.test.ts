/**
 * The KVM platform for real: a running daemon reconciles a guest cluster's host objects on a real
 * host cluster (`g8s host up`: etcd, kube-apiserver, controller manager, scheduler, KWOK nodes)
 * through the real Kubernetes provider plugin, and puts back every out-of-band change a person
 * makes with kubectl. Also: detect mode reports and changes nothing; the daemon survives the API
 * server going away mid-pass; decommissioning removes every object.
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { parse, stringify } from "yaml";
import { kvmStackFile } from "./kvmStack";
import { PROJECT_ROOT } from "../../automation/engine";
import { endEngineProcesses, startDaemon, waitFor, type DaemonProcess } from "./daemon";
import { createSandbox, hostDown, hostUp, TEST_PASSPHRASE, type Sandbox } from "./harness";

const KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33";
/** Debian's libfaketime (package faketime): shifts the clock of dynamically linked processes. */
const FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
const STACK = "it7";
const NS = `g8s-${STACK}`;
/** Every daemon here watches the host objects: changes by people start a pass at once. */
const WATCH = ["--watch", "kubernetes"];

describe("real host cluster: the KVM platform applied, drifted and corrected", function () {
  this.timeout(1_800_000);
  let sandbox: Sandbox;
  let hostDir: string;
  let kubeconfig: string;
  let daemon: DaemonProcess | undefined;

  const kubectl = (...args: string[]) => {
    const r = spawnSync(KUBECTL, ["--kubeconfig", kubeconfig, ...args], { encoding: "utf8" });
    return { code: r.status, out: r.stdout.trim(), err: r.stderr.trim() };
  };
  const get = (kind: string, name: string, jsonpath: string) =>
    kubectl("-n", NS, "get", kind, name, "-o", `jsonpath=${jsonpath}`);
  const writeStack = (extra: Record<string, unknown> = {}) =>
    writeFileSync(
      path.join(sandbox.projectDir, "stacks", `Pulumi.${STACK}.yaml`),
      kvmStackFile(STACK, "10.62.0.0/16", "correct", extra),
    );

  /** Waits until the daemon's pass that started after `since` ended with `outcome`. */
  const passAfter = (since: number, outcome: string, timeoutMs = 180_000) =>
    waitFor(
      `a pass of ${STACK} ending ${outcome}`,
      async () => {
        const s = await (daemon as DaemonProcess).stack(STACK);
        const last = s.lastPass;
        return last && Date.parse(last.startedAt) >= since && last.outcome === outcome ? s : undefined;
      },
      timeoutMs,
    );

  before(async function () {
    sandbox = await createSandbox("g8s-kvm", { project: "g8s" });
    hostDir = path.join(sandbox.root, "host");
    kubeconfig = hostUp(hostDir);
    writeStack();
    const started = Date.now();
    daemon = await startDaemon(sandbox, ["--offline", "--pass-timeout", "60s", ...WATCH], {
      env: { KUBECONFIG: kubeconfig },
    });
    const d = daemon;
    await waitFor(
      `${STACK} created and in sync`,
      async () => {
        const s = await d.stack(STACK);
        return s.phase === "in-sync" && s.lastPass?.outcome === "in-sync" ? s : undefined;
      },
      600_000,
    );
    process.stdout.write(
      `      guest cluster ${STACK} created and in sync after ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
    );
  });

  after(async () => {
    if (daemon && daemon.proc.exitCode === null) await daemon.stop();
    if (hostDir) hostDown(hostDir);
    if (sandbox) endEngineProcesses(sandbox);
    sandbox?.dispose();
  });

  it("created the host objects: namespace, StatefulSets with Ready pods, Services, Secrets, NetworkPolicies", () => {
    assert.equal(kubectl("get", "namespace", NS, "-o", "jsonpath={.metadata.labels.g8s\\.io/cluster}").out, STACK);
    assert.equal(get("statefulset", "master", "{.status.readyReplicas}").out, "1");
    assert.equal(get("statefulset", "pool-default", "{.status.readyReplicas}").out, "1");
    for (const svc of ["api", "etcd", "workers"]) assert.equal(get("service", svc, "{.metadata.name}").out, svc);
    for (const secret of ["master-secrets", "worker-secrets", "master-user-data"]) {
      assert.equal(get("secret", secret, "{.type}").out, "Opaque");
    }
    const policies = kubectl("-n", NS, "get", "networkpolicy", "-o", "jsonpath={.items[*].metadata.name}").out.split(
      " ",
    );
    assert.ok(policies.includes("default-deny") && policies.includes("same-cluster"), policies.join(","));
    const pods = kubectl("-n", NS, "get", "pods", "-o", "jsonpath={.items[*].status.phase}").out.split(" ");
    assert.deepEqual(pods, ["Running", "Running"]);
  });

  it("puts back every out-of-band change a person makes with kubectl", async () => {
    const image = get("statefulset", "pool-default", "{.spec.template.spec.containers[0].image}").out;
    const caCert = get("secret", "master-secrets", "{.data.ca\\.crt}").out;
    const sameCluster = get("networkpolicy", "same-cluster", "{.spec}").out;
    assert.ok(image && caCert && sameCluster);
    const changes: Array<[string, string[]]> = [
      ["delete the API Service", ["-n", NS, "delete", "service", "api", "--wait=false"]],
      ["scale the masters", ["-n", NS, "scale", "statefulset", "master", "--replicas=3"]],
      ["change the workers' image", ["-n", NS, "set", "image", "statefulset/pool-default", "qemu=example.org/other:1"]],
      ["delete a NetworkPolicy", ["-n", NS, "delete", "networkpolicy", "default-deny", "--wait=false"]],
      [
        // Opens it to every namespace: a field g8s set. (A field g8s never set, such as an added
        // selector label, is not its to take back under Server-Side Apply.)
        "edit a NetworkPolicy",
        [
          "-n",
          NS,
          "patch",
          "networkpolicy",
          "same-cluster",
          "--type=merge",
          "-p",
          '{"spec":{"ingress":[{"from":[{"namespaceSelector":{}}]}]}}',
        ],
      ],
      [
        "change Secret data",
        [
          "-n",
          NS,
          "patch",
          "secret",
          "master-secrets",
          "--type=merge",
          "-p",
          `{"data":{"ca.crt":"${Buffer.from("forged").toString("base64")}"}}`,
        ],
      ],
      ["remove the namespace's cluster label", ["label", "namespace", NS, "g8s.io/cluster-"]],
    ];
    const injectedAt = Date.now();
    for (const [what, args] of changes) {
      const r = kubectl(...args);
      assert.equal(r.code, 0, `${what}: ${r.err}`);
    }
    const restored = {
      "the API Service": () => get("service", "api", "{.metadata.name}").out === "api",
      "1 master": () => get("statefulset", "master", "{.spec.replicas}").out === "1",
      "the workers' image": () =>
        get("statefulset", "pool-default", "{.spec.template.spec.containers[0].image}").out === image,
      "default-deny": () => get("networkpolicy", "default-deny", "{.metadata.name}").out === "default-deny",
      "same-cluster": () => get("networkpolicy", "same-cluster", "{.spec}").out === sameCluster,
      "the Secret data": () => get("secret", "master-secrets", "{.data.ca\\.crt}").out === caCert,
      "the namespace label": () =>
        kubectl("get", "namespace", NS, "-o", "jsonpath={.metadata.labels.g8s\\.io/cluster}").out === STACK,
    };
    const d = daemon as DaemonProcess;
    await waitFor(
      "every change put back",
      async () => {
        const s = await d.stack(STACK);
        const corrected = s.lastDrift && Date.parse(s.lastDrift.startedAt) >= injectedAt - 1000;
        const missing = Object.entries(restored)
          .filter(([, ok]) => !ok())
          .map(([what]) => what);
        if (missing.length > 0) throw new Error(`not yet back: ${missing.join(", ")}`);
        return corrected ? true : undefined;
      },
      300_000,
    );
    const mttr = (Date.now() - injectedAt) / 1000;
    const s = await d.stack(STACK);
    assert.equal(s.lastDrift?.outcome, "corrected");
    process.stdout.write(
      `      seven out-of-band changes put back ${mttr.toFixed(1)} s after injection (interval 10 s, host watch on)\n`,
    );
    await passAfter(Date.now(), "in-sync");
  });

  it("with the host watch, puts a kubectl change back within one correcting up + 3 s while the interval is 1 h, and starts no pass for its own changes", async () => {
    const d = daemon as DaemonProcess;
    const written = Date.now();
    writeStack({ "g8s:reconcile": { mode: "correct", interval: "1h" } });
    await waitFor(
      "the 1 h interval in force and a pass since",
      async () => {
        const s = await d.stack(STACK);
        return s.intervalSeconds === 3600 && s.phase === "in-sync" && Date.parse(s.lastPass?.startedAt ?? "") >= written
          ? true
          : undefined;
      },
      180_000,
    );
    // Quiet: its own applies and the controllers' status writes start nothing.
    const quietFrom = (await d.stack(STACK)).lastPass?.startedAt;
    await new Promise((resolve) => setTimeout(resolve, 15_000));
    assert.equal((await d.stack(STACK)).lastPass?.startedAt, quietFrom, "no pass in 15 s without a change");

    const injectedAt = Date.now();
    assert.equal(kubectl("-n", NS, "scale", "statefulset", "master", "--replicas=3").code, 0);
    // Recovery is the object put back, seen from outside; the pass is recorded a little later.
    const restoredAt = await waitFor(
      "the masters scaled back",
      async () => (get("statefulset", "master", "{.spec.replicas}").out === "1" ? Date.now() : undefined),
      120_000,
      100,
    );
    const fixed = await waitFor(
      "the corrective pass recorded",
      async () => {
        const s = await d.stack(STACK);
        return s.lastDrift && Date.parse(s.lastDrift.startedAt) >= injectedAt ? s : undefined;
      },
      60_000,
    );
    const mttrMs = restoredAt - injectedAt;
    const pass = fixed.lastDrift as NonNullable<typeof fixed.lastDrift>;
    const upMs = pass.correctMs ?? 0;
    process.stdout.write(
      `      with events: put back ${(mttrMs / 1000).toFixed(1)} s after the change, interval 1 h (the corrective pass ${(pass.durationMs / 1000).toFixed(1)} s, its up ${(upMs / 1000).toFixed(1)} s, no preview: ${pass.direct === true})\n`,
    );
    assert.equal(pass.outcome, "corrected");
    assert.equal(pass.direct, true, "a change to desired state already judged is corrected at once");
    assert.deepEqual(
      pass.drift.map((r) => `${r.op} ${r.name}`),
      [`update ${STACK}-kvm-master`],
    );
    assert.ok(mttrMs <= upMs + 3000, `${mttrMs} ms > its up's ${upMs} ms + 3 s`);
    assert.match(await d.metrics(), /g8s_change_events_total\{answer="run"\} [1-9]/);
    writeStack();
    await passAfter(Date.now(), "in-sync");
  });

  it("in detect mode reports drift and changes nothing", async () => {
    const d = daemon as DaemonProcess;
    writeStack({ "g8s:reconcile": { mode: "detect", interval: "10s" } });
    await waitFor(
      "detect mode in force",
      async () => ((await d.stack(STACK)).mode === "detect" ? true : undefined),
      60_000,
    );
    const injectedAt = Date.now();
    assert.equal(kubectl("-n", NS, "scale", "statefulset", "pool-default", "--replicas=2").code, 0);
    const drifted = await passAfter(injectedAt, "drifted");
    assert.ok(drifted.lastPass?.drift.some((x) => x.name.endsWith("pool-default") || x.type.endsWith("StatefulSet")));
    assert.equal(get("statefulset", "pool-default", "{.spec.replicas}").out, "2", "detect changed nothing");
    writeStack();
    await waitFor(
      "correct mode puts it back",
      async () => (get("statefulset", "pool-default", "{.spec.replicas}").out === "1" ? true : undefined),
      180_000,
    );
  });

  it("refuses a kubernetes.version two minors up or older than the cluster's, and changes nothing", async () => {
    const file = path.join(sandbox.projectDir, "stacks", `Pulumi.${STACK}.yaml`);
    const userData = () => get("secret", "master-user-data", "{.metadata.resourceVersion}").out;
    const before = userData();
    for (const [version, why] of [
      [
        "1.33.2",
        /kubernetes\.version: 1\.33\.2 skips minor 1\.32 from the 1\.31\.4 the cluster runs: .*set 1\.32\.x first/,
      ],
      [
        "1.31.2",
        /kubernetes\.version: 1\.31\.2 is older than the 1\.31\.4 the cluster runs: Kubernetes does not downgrade/,
      ],
    ] as const) {
      const since = Date.now();
      writeFileSync(file, kvmStackFile(STACK, "10.62.0.0/16").replace("version: 1.31.4", `version: ${version}`));
      const refused = await passAfter(since, "invalid");
      assert.match(refused.lastPass?.error ?? "", new RegExp(`^stacks/Pulumi\\.${STACK}\\.yaml: ${why.source}`));
      assert.equal(userData(), before, `${version}: the master's user-data untouched`);
    }
    const since = Date.now();
    writeStack();
    await passAfter(since, "in-sync");
  });

  it("renews certificates past their renewal point in detect mode: new certificates in the Secrets, a scaled StatefulSet left scaled, no drift counted", async () => {
    const serialIn = (secret: string, key: string) => {
      const b64 = get("secret", secret, `{.data.${key.replace(/\./g, "\\.")}}`).out;
      assert.ok(b64, `${secret}/${key} is in the host cluster`);
      return new X509Certificate(Buffer.from(b64, "base64")).serialNumber;
    };
    writeStack({ "g8s:reconcile": { mode: "detect", interval: "10s" } });
    await waitFor(
      "detect mode in force",
      async () => ((await (daemon as DaemonProcess).stack(STACK)).mode === "detect" ? true : undefined),
      60_000,
    );
    assert.equal(kubectl("-n", NS, "scale", "statefulset", "pool-default", "--replicas=2").code, 0);
    const before = {
      worker: serialIn("worker-secrets", "kubelet-client.crt"),
      api: serialIn("master-secrets", "apiserver.crt"),
    };
    const known = await (daemon as DaemonProcess).stack(STACK);
    const renewAt = Math.min(...(known.certificates ?? []).filter((c) => c.renewAt).map((c) => Date.parse(c.renewAt)));
    assert.ok(renewAt > Date.now() + 11 * 3600_000, "24 h certificates, renewed at 12 h: nothing due now");

    // The same daemon 13 h later: its clock and the engine's node processes (the program and its
    // dynamic providers, which judge renewal themselves) see the future; the Go CLI and the
    // Kubernetes API run on real time.
    await (daemon as DaemonProcess).stop();
    const shifted = Date.now();
    daemon = await startDaemon(sandbox, ["--offline", "--pass-timeout", "120s", ...WATCH], {
      env: {
        KUBECONFIG: kubeconfig,
        LD_PRELOAD: FAKETIME_LIB,
        FAKETIME: "+13h",
        FAKETIME_DONT_FAKE_MONOTONIC: "1",
      },
    });
    const d = daemon;
    const renewed = await waitFor(
      "certificates renewed and a detect pass after it",
      async () => {
        const s = await d.stack(STACK);
        return s.renewal?.lastRenewedAt &&
          s.lastPass?.outcome === "drifted" &&
          Date.parse(s.lastPass.startedAt) > Date.parse(s.renewal.lastRenewedAt)
          ? s
          : undefined;
      },
      300_000,
    );
    process.stdout.write(
      `      renewed in ${((Date.now() - shifted) / 1000).toFixed(1)} s after the shifted daemon started: ${(renewed.renewal?.lastRenewed ?? []).join(", ")}\n`,
    );
    assert.notEqual(
      serialIn("worker-secrets", "kubelet-client.crt"),
      before.worker,
      "a new kubelet certificate in the worker Secret",
    );
    assert.notEqual(
      serialIn("master-secrets", "apiserver.crt"),
      before.api,
      "a new API server certificate in the master Secret",
    );
    assert.equal(
      get("statefulset", "pool-default", "{.spec.replicas}").out,
      "2",
      "the scaled StatefulSet stays scaled",
    );
    // The other drift is still reported, and nothing of the renewal is.
    const drift = renewed.lastPass?.drift ?? [];
    assert.ok(
      drift.some((x) => x.type.endsWith("StatefulSet")),
      JSON.stringify(drift),
    );
    assert.deepEqual(
      drift.filter((x) => /LocalCertificate|core\/v1:Secret/.test(x.type)),
      [],
    );
    assert.ok(
      Date.parse(renewed.certificates?.find((c) => c.key === "worker")?.renewAt ?? "") > Date.now() + 20 * 3600_000,
    );
    const metrics = await d.metrics();
    assert.match(metrics, new RegExp(`g8s_certificate_renewals_total\\{stack="${STACK}",outcome="renewed"\\} [1-9]`));
    assert.match(
      metrics,
      new RegExp(`g8s_certificate_expiry_timestamp_seconds\\{stack="${STACK}",certificate="apiserver"\\} \\d`),
    );

    // The daemon down, 26 h on (past the renewal point of what it renewed at 13 h): `g8s renew`
    // renews by itself, the same targeted update; and then says nothing is due.
    await d.stop();
    const renewedSerial = serialIn("worker-secrets", "kubelet-client.crt");
    const renew = (...extra: string[]) =>
      spawnSync(
        process.execPath,
        [
          path.join(PROJECT_ROOT, "bin/g8s.js"),
          "renew",
          STACK,
          "--offline",
          "--project-dir",
          sandbox.projectDir,
          "--state-dir",
          sandbox.stateDir,
          ...extra,
        ],
        {
          env: {
            ...process.env,
            KUBECONFIG: kubeconfig,
            PULUMI_CONFIG_PASSPHRASE: TEST_PASSPHRASE,
            G8S_PULUMI: path.join(sandbox.cli.binDir, "pulumi"),
            LD_PRELOAD: FAKETIME_LIB,
            FAKETIME: "+26h",
            FAKETIME_DONT_FAKE_MONOTONIC: "1",
          },
          encoding: "utf8",
        },
      );
    const byHand = renew();
    assert.equal(byHand.status, 0, `g8s renew:\n${byHand.stdout}\n${byHand.stderr}`);
    assert.match(byHand.stdout, new RegExp(`✔ ${STACK}: renewed .*apiserver`));
    assert.notEqual(
      serialIn("worker-secrets", "kubelet-client.crt"),
      renewedSerial,
      "g8s renew put a new certificate in the Secret",
    );
    assert.equal(get("statefulset", "pool-default", "{.spec.replicas}").out, "2", "and left the StatefulSet alone");
    const again = renew();
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`● ${STACK}: nothing due; next renewal at `));

    // Back to real time and correct mode (its certificates now start 26 h ahead: not due).
    daemon = await startDaemon(sandbox, ["--offline", "--pass-timeout", "60s", ...WATCH], {
      env: { KUBECONFIG: kubeconfig },
    });
    writeStack();
    await waitFor(
      "correct mode puts the StatefulSet back",
      async () => (get("statefulset", "pool-default", "{.spec.replicas}").out === "1" ? true : undefined),
      180_000,
    );
  });

  it("survives the API server stopping mid-pass: fails, backs off, recovers when it is back", async () => {
    const d = daemon as DaemonProcess;
    await waitFor(
      "a running pass",
      async () => ((await d.stack(STACK)).phase === "running" ? true : undefined),
      60_000,
    );
    const { pid } = JSON.parse(readFileSync(path.join(hostDir, "run", "kube-apiserver.pid"), "utf8")) as {
      pid: number;
    };
    process.kill(pid, "SIGKILL");
    const failed = await waitFor(
      "the pass to fail",
      async () => {
        const s = await d.stack(STACK);
        return s.consecutiveFailures > 0 ? s : undefined;
      },
      180_000,
    );
    assert.equal(failed.phase, "backoff");
    assert.equal(d.proc.exitCode, null, "the daemon keeps running");
    hostUp(hostDir);
    const back = Date.now();
    const recovered = await passAfter(back, "in-sync", 300_000);
    assert.equal(recovered.consecutiveFailures, 0);
  });

  it("keeps a removed node pool it cannot drain: the update does not run while the guest API is out of reach", async () => {
    // A second pool, applied.
    const file = path.join(sandbox.projectDir, "stacks", `Pulumi.${STACK}.yaml`);
    const withExtra = parse(kvmStackFile(STACK, "10.62.0.0/16")) as {
      config: { "g8s:cluster": { nodePools: Record<string, unknown>[] } };
    };
    const pools = withExtra.config["g8s:cluster"].nodePools;
    pools.push({ ...pools[0], name: "extra" });
    let since = Date.now();
    writeFileSync(file, stringify(withExtra));
    await passAfter(since, "corrected");
    assert.equal(get("statefulset", "pool-extra", "{.metadata.name}").out, "pool-extra");
    // Removed from the file: the drain needs the guest API (api.<namespace>.svc, which this
    // machine cannot resolve: no guest runs here), so the pass fails before the update.
    since = Date.now();
    writeStack();
    const kept = await passAfter(since, "failed");
    assert.match(
      kept.lastPass?.error ?? "",
      new RegExp(
        `^drain: cannot drain ${STACK}-\\S*pool-extra before the update removes it: .*; the pool stays until it can be drained$`,
      ),
    );
    assert.equal(get("statefulset", "pool-extra", "{.metadata.name}").out, "pool-extra", "the pool stays");
  });

  it("removes every object of a decommissioned stack", async () => {
    const d = daemon as DaemonProcess;
    // `true` alone is refused: the stack is invalid and nothing is destroyed.
    writeStack({ "g8s:decommission": true });
    const refused = await waitFor(
      "the unconfirmed decommission refused",
      async () => {
        const s = await d.stack(STACK);
        return s.phase === "invalid" ? s : undefined;
      },
      120_000,
    );
    assert.match(
      refused.message ?? "",
      new RegExp(`repeat the stack's name to confirm \\(g8s:decommission: ${STACK}\\)`),
    );
    assert.equal(kubectl("get", "namespace", NS).code, 0, "nothing destroyed");
    // Confirmed: the protected namespace's protection is lifted and everything goes.
    writeStack({ "g8s:decommission": STACK });
    await waitFor(
      "the stack destroyed",
      async () => ((await d.stack(STACK)).phase === "destroyed" ? true : undefined),
      300_000,
    );
    await waitFor(
      "the namespace gone",
      async () => (kubectl("get", "namespace", NS).code !== 0 ? true : undefined),
      120_000,
    );
    assert.match(kubectl("get", "namespace", NS).err, /NotFound/);
  });
});
