/**
 * A guest cluster boots for real from g8s's own documents: `g8s lab up` applies a KVM-platform
 * stack (1 master, 1 worker, local PKI, flannel, the node image) to a local host cluster, boots
 * each node as a system container from the user-data and files the platform stored (real
 * systemd, cloud-init, containerd, kubelet, kubeadm init and join with g8s's certificates), and
 * returns once both nodes are Ready. Then the cluster must work: pods on both nodes, reachable
 * across nodes over flannel, through a ClusterIP Service and by DNS name, with g8s's admin
 * kubeconfig. Needs root (namespaces, cgroups, a bridge) and the toolchain's node image.
 */
import * as assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { copyFileSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import * as tls from "node:tls";
import { promisify } from "node:util";
import {
  KUBECTL,
  READINESS_ARGS,
  TOOLS_BIN,
  longestRun,
  sleep,
  useLab,
  waitUntil,
  watchCluster,
  webDocuments,
  type LabStack,
} from "./harness";

const S3_PORT = 9000;
const S3_BUCKET = "etcd-backups";
const S3_KEY = { id: "LABKEY9", secret: "lab9-secret-access-key" };
const STACK: LabStack = {
  id: "lab9",
  masters: 1,
  workers: 1,
  serviceCidr: "172.29.0.0/16",
  podCidr: "10.63.0.0/16",
  users: [{ name: "jane", groups: ["web-readers"] }],
  etcdBackupRetention: 2,
  // An S3-compatible store on master-0's own loopback (started by the etcd test), with the
  // access key of a host-cluster Secret the test creates once the cluster runs.
  etcdObjectStore: { endpoint: `http://127.0.0.1:${S3_PORT}`, bucket: S3_BUCKET, credentialsSecret: "etcd-s3" },
};
const DNS_IP = "172.29.0.10";

/** A DNS A query for `name` to `server`, by hand (the nodes have python3, no dig): the answer's addresses. */
const RESOLVE_PY = `
import random, socket, struct, sys
name, server = sys.argv[1], sys.argv[2]
qid = random.randrange(65536)
q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + b"".join(
    bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5); s.sendto(q, (server, 53))
r = s.recv(4096); an = struct.unpack(">H", r[6:8])[0]; i = len(q)
for _ in range(an):
    i += 2 if r[i] & 0xC0 == 0xC0 else r.index(b"\\0", i) + 1 - i
    t, _c, _ttl, n = struct.unpack(">HHIH", r[i:i + 10]); i += 10
    if t == 1: print(socket.inet_ntoa(r[i:i + n]))
    i += n
`;

const execFileAsync = promisify(execFile);

describe("lab: a guest cluster boots from g8s's documents (1 master + 1 worker, system containers)", function () {
  this.timeout(1_800_000);
  const lab = useLab(STACK);
  /** The stack file as the tests changed it so far: each change builds on the one before. */
  let current: LabStack = STACK;
  const kubectl = (...args: string[]) => lab.kubectl(...args);
  const onNode = (node: string, ...cmd: string[]) => lab.onNode(node, ...cmd);
  /** Waits for a Deployment's rollout; a failure shows every pod and where it is. */
  const rolledOut = (namespace: string, deployment: string, timeout: string) => {
    const r = kubectl("-n", namespace, "rollout", "status", `deployment/${deployment}`, "--timeout", timeout);
    assert.equal(r.code, 0, `${r.err}\n${kubectl("get", "pods", "-A", "-o", "wide").out}`);
  };
  /** `GET /health` on port 8080 of `ip`, from a node, with bash alone. */
  const httpFrom = (node: string, ip: string) =>
    onNode(
      node,
      "timeout",
      "10",
      "bash",
      "-c",
      `exec 3<>/dev/tcp/${ip}/8080 && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3`,
    );

  it("has both nodes Ready, as g8s's admin kubeconfig shows", () => {
    const r = kubectl(...READINESS_ARGS);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(r.out.split(" ").sort(), ["master-0=True", "pool-default-0=True"]);
  });

  it("runs a Deployment's pods on both nodes, reachable across nodes, by ClusterIP and by DNS name", async function () {
    const deploy = lab.apply(webDocuments({ spread: "DoNotSchedule" }));
    assert.equal(deploy.code, 0, deploy.err);
    assert.equal(kubectl("expose", "deployment", "web", "--port", "8080").code, 0);
    rolledOut("default", "web", "300s");

    const pods = kubectl(
      "get",
      "pods",
      "-l",
      "app=web",
      "-o",
      "jsonpath={range .items[*]}{.spec.nodeName}={.status.podIP} {end}",
    );
    const byNode = new Map(pods.out.split(" ").map((p) => p.split("=") as [string, string]));
    assert.deepEqual([...byNode.keys()].sort(), ["master-0", "pool-default-0"], pods.out);
    // Pod to pod across nodes goes through flannel's VXLAN: each node reaches the other node's pod.
    for (const [node, other] of [
      ["master-0", "pool-default-0"],
      ["pool-default-0", "master-0"],
    ]) {
      const r = httpFrom(node, byNode.get(other) as string);
      assert.match(r.out, /200 OK[\s\S]*OK$/, `${node} → pod on ${other}: ${r.err}`);
    }
    const clusterIp = kubectl("get", "service", "web", "-o", "jsonpath={.spec.clusterIP}").out;
    for (const node of ["master-0", "pool-default-0"]) {
      const r = httpFrom(node, clusterIp);
      assert.match(r.out, /200 OK/, `${node} → Service ${clusterIp}: ${r.err}`);
    }
    // The cluster's DNS answers once CoreDNS is ready (kubeadm deploys it; flannel must be up first).
    rolledOut("kube-system", "coredns", "300s");
    // A finished rollout is not yet a programmed Service: until kube-proxy has the new endpoints
    // its REJECT rule for an endpoint-less Service makes the node's sendto fail (EPERM). Retried.
    let dns: { code: number | null; out: string; err: string } = { code: -1, out: "", err: "" };
    const waited = await waitUntil(
      "an answer from the cluster's DNS",
      () => {
        dns = onNode("pool-default-0", "python3", "-c", RESOLVE_PY, "web.default.svc.cluster.local", DNS_IP);
        return dns.code === 0 && dns.out !== "";
      },
      60_000,
    ).catch((e: Error) => assert.fail(`${e.message}: ${dns.err}`));
    console.log(`      CoreDNS answered ${waited.toFixed(1)} s after its rollout`);
    assert.equal(dns.out, clusterIp, "CoreDNS answers the Service name with its ClusterIP");
  });
  it("gives a pki.users kubeconfig exactly what a RoleBinding of its group allows", async function () {
    const jane = path.join(lab.labDir, "users", "jane.conf");
    assert.ok(existsSync(jane), "g8s lab up wrote the user's kubeconfig");
    const asJane = (...args: string[]) => lab.kubectlAs(jane, ...args);
    const whoami = asJane("auth", "whoami", "-o", "jsonpath={.status.userInfo.username} {.status.userInfo.groups}");
    assert.equal(whoami.code, 0, whoami.err);
    assert.equal(whoami.out, 'jane ["web-readers","system:authenticated"]');
    assert.match(asJane("get", "pods").err, /forbidden/, "nothing before the binding");

    const applied = lab.apply([
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "Role",
        metadata: { name: "pod-reader", namespace: "default" },
        rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list"] }],
      },
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        metadata: { name: "web-readers", namespace: "default" },
        subjects: [{ kind: "Group", name: "web-readers", apiGroup: "rbac.authorization.k8s.io" }],
        roleRef: { kind: "Role", name: "pod-reader", apiGroup: "rbac.authorization.k8s.io" },
      },
    ]);
    assert.equal(applied.code, 0, applied.err);
    let pods = asJane("get", "pods", "-l", "app=web", "-o", "name");
    for (let i = 0; i < 10 && pods.code !== 0; i++) {
      await sleep(1000); // the API server's authorizer sees a new binding within moments
      pods = asJane("get", "pods", "-l", "app=web", "-o", "name");
    }
    assert.equal(pods.code, 0, pods.err);
    assert.equal(pods.out.split("\n").length, 2, pods.out);
    for (const denied of [
      ["get", "pods", "-n", "kube-system"],
      ["get", "secrets"],
      ["delete", "pod", pods.out.split("\n")[0].replace("pod/", "")],
      ["get", "nodes"],
    ]) {
      const r = asJane(...denied);
      assert.notEqual(r.code, 0, `jane may not: kubectl ${denied.join(" ")}`);
      assert.match(r.err, /forbidden/, denied.join(" "));
    }
  });

  it("issues a person's short-lived kubeconfig (g8s kubeconfig): RBAC by its groups, refused once it expired", async function () {
    const file = path.join(lab.labDir, "sam.conf");
    const started = Date.now();
    // The lab reaches the API at the master's lab address, not the host cluster's Service name.
    const server = lab.kubectl("config", "view", "-o", "jsonpath={.clusters[0].cluster.server}").out;
    const issued = lab.g8s(
      "kubeconfig",
      STACK.id,
      "--user",
      "sam",
      "--group",
      "web-readers",
      "--group",
      "oncall",
      "--ttl",
      "1m",
      "--output",
      file,
      "--server",
      server,
    );
    const took = (Date.now() - started) / 1000;
    assert.equal(issued.code, 0, issued.err);
    assert.equal(issued.out, "", "written to the file, nothing on stdout");
    const audit =
      /issued sam \(groups web-readers, oncall\) for stack lab9: serial [0-9a-f]+, valid (\S+) to (\S+); written to /.exec(
        issued.err,
      );
    assert.ok(audit, issued.err);
    const notAfter = Date.parse(audit[2]);
    assert.ok(Math.abs(notAfter - started - 60_000) < 15_000, `valid until ${audit[2]}: one minute`);
    assert.equal(statSync(file).mode & 0o777, 0o600, "readable by its owner only");
    process.stdout.write(`      g8s kubeconfig: issued in ${took.toFixed(1)} s\n`);

    const asSam = (...args: string[]) => lab.kubectlAs(file, ...args);
    const whoami = asSam("auth", "whoami", "-o", "jsonpath={.status.userInfo.username} {.status.userInfo.groups}");
    assert.equal(whoami.code, 0, whoami.err);
    assert.equal(whoami.out, 'sam ["web-readers","oncall","system:authenticated"]');
    // The group's RoleBinding (the test before) grants it pods in default, and nothing else.
    const pods = asSam("get", "pods", "-l", "app=web", "-o", "name");
    assert.equal(pods.code, 0, pods.err);
    assert.equal(pods.out.split("\n").length, 2, pods.out);
    for (const denied of [
      ["get", "secrets"],
      ["get", "pods", "-n", "kube-system"],
      ["get", "nodes"],
    ]) {
      assert.match(asSam(...denied).err, /forbidden/, denied.join(" "));
    }
    // A client certificate cannot be revoked: its end is the revocation.
    await sleep(Math.max(0, notAfter - Date.now()) + 2000);
    const expired = asSam("get", "pods", "-l", "app=web", "-o", "name");
    assert.notEqual(expired.code, 0, "refused once the certificate expired");
    assert.match(expired.err, /Unauthorized|must be logged in/, expired.err);
  });

  it("renews every certificate on the live cluster: nodes take them without a reboot, none NotReady for a minute", async function () {
    const plan = lab.plan();
    const servedSerial = () =>
      new Promise<string>((resolve, reject) => {
        const socket = tls.connect(
          {
            host: plan.nodes[0].address,
            port: 6443,
            servername: `api.${plan.namespace}.svc`,
            rejectUnauthorized: false,
          },
          () => {
            resolve(socket.getPeerCertificate().serialNumber);
            socket.end();
          },
        );
        socket.setTimeout(5000, () => socket.destroy(new Error("timed out")));
        socket.on("error", reject);
      });
    const installed: [string, string][] = [
      ["master-0", "/etc/kubernetes/pki/apiserver.crt"],
      ["master-0", "/etc/kubernetes/pki/apiserver-kubelet-client.crt"],
      ["master-0", "/etc/kubernetes/pki/etcd/server.crt"],
      ["master-0", "/etc/kubernetes/pki/g8s/controller-manager.crt"],
      ["master-0", "/etc/kubernetes/pki/g8s/kubelet-client.crt"],
      ["pool-default-0", "/etc/kubernetes/pki/g8s/kubelet-client.crt"],
    ];
    const serialsOnNodes = () =>
      installed.map(([node, file]) => {
        const r = onNode(node, "cat", file);
        return r.code === 0 ? new X509Certificate(r.out).serialNumber : `unreadable: ${r.err}`;
      });
    const pidOf = (node: string) => readFileSync(path.join(lab.stateDir(node), "nspawn.pid"), "utf8");
    const userSerial = (file: string) => {
      const config = readFileSync(file, "utf8");
      const data = /client-certificate-data: (\S+)/.exec(config)?.[1] as string;
      return new X509Certificate(Buffer.from(data, "base64")).serialNumber;
    };
    const before = {
      api: await servedSerial(),
      files: serialsOnNodes(),
      pids: plan.nodes.map((n) => pidOf(n.name)),
      admin: userSerial(lab.admin),
      jane: userSerial(path.join(lab.labDir, "users", "jane.conf")),
    };

    // Every 2 s: which nodes say Ready, and whether the API answered at all.
    const watch = watchCluster(lab);

    // A shorter lifetime is a new input of every leaf: the stack reissues each one now.
    lab.write((current = { ...current, certTtl: "23h" }));
    const started = Date.now();
    await lab.up(10);
    const applied = Date.now();

    let apiAt = 0;
    let filesAt = 0;
    let now = before;
    while (Date.now() - applied < 300_000 && (apiAt === 0 || filesAt === 0)) {
      now = { ...now, api: await servedSerial().catch(() => before.api), files: serialsOnNodes() };
      if (apiAt === 0 && now.api !== before.api) apiAt = Date.now();
      if (
        filesAt === 0 &&
        now.files.every((serial, i) => serial !== before.files[i] && !serial.startsWith("unreadable"))
      )
        filesAt = Date.now();
      await sleep(2000);
    }
    assert.notEqual(apiAt, 0, "the API server serves a new certificate");
    assert.notEqual(
      filesAt,
      0,
      `every node installed its new certificates: ${JSON.stringify({ before: before.files, now: now.files })}`,
    );
    await sleep(30_000); // nodes must stay Ready after the restarts too
    await watch.stop();

    const notReadyMs = longestRun(watch.samples, (s) => s.notReady.length > 0);
    const apiGapMs = longestRun(watch.samples, (s) => s.result !== "ok");
    process.stdout.write(
      `      renewal: stack applied ${((applied - started) / 1000).toFixed(1)} s; then the API served its new certificate ` +
        `after ${((apiAt - applied) / 1000).toFixed(1)} s, every node had its new files after ${((filesAt - applied) / 1000).toFixed(1)} s; ` +
        `longest NotReady ${(notReadyMs / 1000).toFixed(0)} s, longest API silence ${(apiGapMs / 1000).toFixed(0)} s (${watch.samples.length} samples)\n`,
    );
    assert.ok(notReadyMs < 60_000, `a node was NotReady for ${notReadyMs} ms: ${JSON.stringify(watch.samples)}`);
    assert.deepEqual(
      plan.nodes.map((n) => pidOf(n.name)),
      before.pids,
      "no node was restarted",
    );
    assert.notEqual(userSerial(lab.admin), before.admin, "lab up wrote the renewed admin kubeconfig");
    assert.notEqual(userSerial(path.join(lab.labDir, "users", "jane.conf")), before.jane, "and the user's");

    // The controllers and the kubelets keep working with their new identities.
    assert.equal(kubectl("scale", "deployment", "web", "--replicas", "3").code, 0);
    rolledOut("default", "web", "180s");
    const onWorker = kubectl(
      "get",
      "pods",
      "-l",
      "app=web",
      "--field-selector",
      "spec.nodeName=pool-default-0",
      "-o",
      "jsonpath={.items[0].metadata.name}",
    ).out;
    const logs = kubectl("logs", onWorker);
    assert.equal(
      logs.code,
      0,
      `the API server reaches the worker's kubelet with its new client certificate: ${logs.err}`,
    );
  });

  it("rotates the CA in three phases on the live cluster: kubectl works through each, no TLS error, no node NotReady for a minute", async function () {
    /** The certificates in a PEM bundle, and whether `pem` (a certificate) was signed by `ca`. */
    const certsOf = (bundle: string) =>
      (bundle.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []).map(
        (p) => new X509Certificate(p),
      );
    const signedBy = (pem: string, ca: X509Certificate) => new X509Certificate(pem).verify(ca.publicKey);
    const caOnMaster = () => certsOf(onNode("master-0", "cat", "/etc/kubernetes/pki/ca.crt").out);
    const servedCert = () =>
      new Promise<string>((resolve, reject) => {
        const socket = tls.connect({ host: lab.plan().nodes[0].address, port: 6443, rejectUnauthorized: false }, () => {
          resolve(socket.getPeerX509Certificate()?.toString() ?? "");
          socket.end();
        });
        socket.on("error", reject);
      });
    const initial = caOnMaster();
    assert.equal(initial.length, 1);

    // Every 2 s, with the admin kubeconfig as lab up last wrote it: kubectl get nodes works, or
    // fails with a TLS error (never allowed), or gets no answer (an API server or etcd restart).
    let phase = "trust";
    const watch = watchCluster(lab, () => phase);

    // 1. Trust: every bundle gets the new CA; nothing is issued from it yet.
    const t0 = Date.now();
    lab.write((current = { ...current, certificateAuthorities: { trusted: ["initial", "next"], issuing: "initial" } }));
    await lab.up(10);
    await waitUntil("both CAs in the master's ca.crt", () => caOnMaster().length === 2);
    const next = caOnMaster().find((c) => c.fingerprint256 !== initial[0].fingerprint256) as X509Certificate;
    const workerCa = certsOf(onNode("pool-default-0", "cat", "/etc/kubernetes/pki/ca.crt").out);
    assert.equal(workerCa.length, 2, "the worker trusts both");
    await sleep(20_000);
    const trusted = (Date.now() - t0) / 1000;

    // 2. Issue: every leaf is reissued from the new CA and reaches the nodes.
    phase = "issue";
    const t1 = Date.now();
    lab.write((current = { ...current, certificateAuthorities: { trusted: ["initial", "next"], issuing: "next" } }));
    await lab.up(10);
    await waitUntil("the API server serving a certificate from the new CA", async () =>
      signedBy(await servedCert(), next),
    );
    await waitUntil("the worker's kubelet certificate from the new CA", () =>
      signedBy(onNode("pool-default-0", "cat", "/etc/kubernetes/pki/g8s/kubelet-client.crt").out, next),
    );
    await sleep(20_000);
    assert.equal(kubectl("scale", "deployment", "web", "--replicas", "1").code, 0);
    rolledOut("default", "web", "180s");
    const issued = (Date.now() - t1) / 1000;

    // 3. Retire: the old CA leaves every bundle.
    phase = "retire";
    const t2 = Date.now();
    lab.write((current = { ...current, certificateAuthorities: { trusted: ["next"], issuing: "next" } }));
    await lab.up(10);
    await waitUntil(
      "only the new CA in the master's ca.crt",
      () => caOnMaster().length === 1 && caOnMaster()[0].fingerprint256 === next.fingerprint256,
    );
    await sleep(20_000);
    const retired = (Date.now() - t2) / 1000;
    await watch.stop();

    const samples = watch.samples;
    assert.deepEqual(
      samples.filter((p) => p.result === "tls"),
      [],
      "no request failed with a TLS error",
    );
    assert.equal(kubectl("get", "nodes").code, 0, "kubectl works after the rotation");
    const notReadyMs = longestRun(samples, (p) => p.notReady.length > 0);
    assert.ok(notReadyMs < 60_000, `a node was NotReady for ${notReadyMs} ms: ${JSON.stringify(samples)}`);
    const down = samples.filter((p) => p.result === "down").length;
    process.stdout.write(
      `      CA rotation: trusted in ${trusted.toFixed(0)} s, issued in ${issued.toFixed(0)} s, retired in ${retired.toFixed(0)} s; ` +
        `${samples.length} probes, no TLS error, ${down} without an answer (restarts), longest NotReady ${(notReadyMs / 1000).toFixed(0)} s\n`,
    );
  });

  it("rotates the service-account signing key with an overlap: no request fails with a token or TLS error, old tokens work until their key is retired", async function () {
    const config = readFileSync(lab.admin, "utf8");
    const server = /server: (\S+)/.exec(config)?.[1] as string;
    // The lab reaches the master by its address; the certificate names the API Service.
    const serverName = /tls-server-name: (\S+)/.exec(config)?.[1];
    const caFile = path.join(lab.labDir, "sa-rotation-ca.crt");
    writeFileSync(caFile, Buffer.from(/certificate-authority-data: (\S+)/.exec(config)?.[1] as string, "base64"));
    let lastError = "";
    /** A request with only a bearer token (no client certificate): ok, a token or TLS error, or no answer (a restart). */
    const withToken = async (token: string): Promise<"ok" | "token" | "tls" | "down"> => {
      try {
        await execFileAsync(KUBECTL, [
          "--kubeconfig=/dev/null",
          `--server=${server}`,
          `--certificate-authority=${caFile}`,
          ...(serverName ? [`--tls-server-name=${serverName}`] : []),
          `--token=${token}`,
          "--request-timeout=5s",
          "get",
          "--raw",
          "/api",
        ]);
        return "ok";
      } catch (err) {
        const text = String((err as { stderr?: string }).stderr ?? err);
        if (/Unauthorized|\b401\b/.test(text)) return "token";
        lastError = text.trim().split("\n").slice(-2).join(" | ");
        if (/x509|certificate|tls:/i.test(text)) return "tls";
        return "down";
      }
    };
    const newToken = () => kubectl("create", "token", "default", "--duration", "2h").out;
    const kid = (jwt: string) =>
      (JSON.parse(Buffer.from(jwt.split(".")[0], "base64url").toString()) as { kid: string }).kid;
    const keysOnMaster = () =>
      (onNode("master-0", "cat", "/etc/kubernetes/pki/sa.pub").out.match(/BEGIN PUBLIC KEY/g) ?? []).length;

    const oldToken = newToken();
    assert.equal(await withToken(oldToken), "ok", `a token of the initial key works: ${lastError}`);
    // Every 2 s: the old token and, once there is one, a token of the new key; and node readiness.
    const probes: { at: number; phase: string; old: string; fresh?: string; notReady: string }[] = [];
    let phase = "trust";
    let freshToken: string | undefined;
    let probing = true;
    const prober = (async () => {
      while (probing) {
        const at = Date.now();
        const [old, fresh] = await Promise.all([withToken(oldToken), freshToken ? withToken(freshToken) : undefined]);
        const readiness = kubectl(...READINESS_ARGS);
        const notReady =
          readiness.code === 0
            ? readiness.out
                .split(" ")
                .filter((p) => !p.endsWith("=True"))
                .join(",")
            : "?";
        probes.push({ at, phase, old, fresh, notReady });
        await sleep(2000);
      }
    })();

    // 1. Trust the new key next to the old one.
    lab.write((current = { ...current, serviceAccountKeys: { trusted: ["initial", "next"], signing: "initial" } }));
    await lab.up(10);
    const trusted = await waitUntil("both keys in the master's sa.pub", () => keysOnMaster() === 2);
    await sleep(20_000); // the API server's restart with both keys
    // 2. Sign with it: new tokens carry the new key's id, old ones keep working.
    phase = "sign";
    lab.write((current = { ...current, serviceAccountKeys: { trusted: ["initial", "next"], signing: "next" } }));
    await lab.up(10);
    const signed = await waitUntil("tokens signed by the new key", () => {
      const t = newToken();
      if (!t || kid(t) === kid(oldToken)) return false;
      freshToken = t;
      return true;
    });
    await sleep(20_000);
    // Controllers sign and verify with the new key: a rollout still works.
    // Pods get tokens of the new key: CoreDNS, restarted, reads the API with one.
    assert.equal(kubectl("-n", "kube-system", "rollout", "restart", "deployment/coredns").code, 0);
    rolledOut("kube-system", "coredns", "180s");
    // 3. Retire the old key (in production, an hour or more later: pods' tokens are refreshed by then).
    phase = "retire";
    lab.write((current = { ...current, serviceAccountKeys: { trusted: ["next"], signing: "next" } }));
    await lab.up(10);
    const retired = await waitUntil("the old key gone from sa.pub", () => keysOnMaster() === 1);
    await waitUntil("the old token refused", async () => (await withToken(oldToken)) === "token", 120_000);
    await sleep(6000);
    probing = false;
    await prober;

    const during = probes.filter((p) => p.phase !== "retire");
    const bad = during.filter((p) => p.old === "token" || p.old === "tls" || p.fresh === "token" || p.fresh === "tls");
    assert.deepEqual(bad, [], "no token or TLS error while both keys were trusted");
    assert.ok(
      during.filter((p) => p.old === "ok").length > 10,
      `the old token kept working: ${JSON.stringify(during)}`,
    );
    const afterRetire = probes.filter((p) => p.phase === "retire");
    assert.ok(
      afterRetire.every((p) => p.fresh !== "token" && p.fresh !== "tls"),
      "the new key's token always worked",
    );
    assert.equal(await withToken(freshToken as string), "ok");
    const notReady = probes.filter((p) => p.notReady !== "" && p.notReady !== "?");
    assert.ok(
      notReady.length * 2 < 60,
      `a node was NotReady for ${notReady.length * 2} s: ${JSON.stringify(notReady)}`,
    );
    const down = during.filter((p) => p.old === "down").length;
    process.stdout.write(
      `      service-account key rotation: trusted on the master after ${trusted.toFixed(0)} s, new tokens after ${signed.toFixed(0)} s, ` +
        `old key retired after ${retired.toFixed(0)} s; ${during.length} probes with both keys, none refused, ${down} without an answer (API server restarts)\n`,
    );
  });

  it("takes verified etcd snapshots, keeps etcd.backup.retention of them on the volume and in an S3-compatible store, and g8s etcd restore brings a deleted object back from the store onto a healthy cluster", async function () {
    const dir = "/var/lib/etcd-disk/snapshots";
    const journal = () => onNode("master-0", "journalctl", "-u", "g8s-etcd-snapshot", "-n", "40", "--no-pager").out;
    assert.equal(onNode("master-0", "systemctl", "is-enabled", "g8s-etcd-snapshot.timer").out, "enabled");
    // The store: g8s-s3 checking every request's Signature Version 4 (AWS's own signer), on
    // master-0's loopback, as a unit of the node (gone with it).
    copyFileSync(path.join(TOOLS_BIN, "g8s-s3"), lab.nodePath("master-0", "/usr/local/bin/g8s-s3"));
    const store = onNode(
      "master-0",
      "systemd-run",
      "--unit",
      "g8s-test-s3",
      `--setenv=G8S_S3_SECRET_ACCESS_KEY=${S3_KEY.secret}`,
      "/usr/local/bin/g8s-s3",
      "--listen",
      `127.0.0.1:${S3_PORT}`,
      "--bucket",
      S3_BUCKET,
      "--access-key-id",
      S3_KEY.id,
    );
    assert.equal(store.code, 0, store.err);
    await waitUntil(
      "the store on master-0",
      () => onNode("master-0", "bash", "-c", `: </dev/tcp/127.0.0.1/${S3_PORT}`).code === 0,
      30_000,
    );
    const inStore = () => {
      const r = onNode(
        "master-0",
        "bash",
        "-c",
        `set -a; . /etc/g8s/etcd-backup.env; exec g8s-object-store list "$S3_PREFIX"`,
      );
      assert.equal(r.code, 0, r.err);
      return r.out.split("\n").filter((k) => k !== "");
    };

    // Without the credentialsSecret the master booted anyway; its snapshot stays on the volume
    // and is not counted as good (the copy is part of a good snapshot).
    const before = onNode("master-0", "cat", `${dir}/last-good.json`);
    const noKey = onNode("master-0", "systemctl", "start", "g8s-etcd-snapshot.service");
    assert.notEqual(noKey.code, 0, "a snapshot without its copy fails");
    assert.match(journal(), /no access key in \/mnt\/g8s-secrets .*credentialsSecret/);
    assert.equal(onNode("master-0", "cat", `${dir}/last-good.json`).out, before.out, "last good unchanged");
    // The operator's Secret in the cluster's host-cluster namespace; the platform shares its keys
    // into the masters (a projected volume), the next sync brings them.
    const secret = lab.hostKubectl(
      "-n",
      `g8s-${STACK.id}`, // kvm.namespacePrefix g8s- (the default) and the id
      "create",
      "secret",
      "generic",
      "etcd-s3",
      `--from-literal=accessKeyId=${S3_KEY.id}`,
      `--from-literal=secretAccessKey=${S3_KEY.secret}`,
    );
    assert.equal(secret.code, 0, secret.err);
    await lab.up();
    assert.equal(onNode("master-0", "cat", "/mnt/g8s-secrets/etcd-backup-access-key-id").out, S3_KEY.id);

    assert.equal(kubectl("create", "configmap", "backup-probe", "--from-literal=written=before-snapshot").code, 0);
    const snapshots: string[] = [];
    for (let i = 0; i < 3; i++) {
      const started = Date.now();
      const r = onNode("master-0", "systemctl", "start", "g8s-etcd-snapshot.service");
      assert.equal(r.code, 0, `${r.err}\n${journal()}`);
      const last = JSON.parse(onNode("master-0", "cat", `${dir}/last-good.json`).out) as {
        snapshot: string;
        revision: number;
        bytes: number;
      };
      assert.ok(last.revision > 0 && last.bytes > 0, JSON.stringify(last));
      snapshots.push(last.snapshot);
      process.stdout.write(
        `      etcd snapshot ${last.snapshot}: ${last.bytes} bytes, revision ${last.revision}, copied to the store, in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
      );
      await sleep(1100); // names carry the second
    }
    // retention 2 (the stack file), on the volume and in the store: the oldest is gone with its
    // checksum, members and status.
    const kept = onNode("master-0", "ls", "-1", dir).out;
    assert.deepEqual(
      kept.split("\n").filter((f) => f.endsWith(".db")),
      snapshots.slice(1),
      kept,
    );
    assert.ok(!kept.includes(snapshots[0]), kept);
    const sidecars = (name: string) => [name, `${name}.members.json`, `${name}.sha256`, `${name}.status.json`];
    assert.deepEqual(
      inStore(),
      snapshots
        .slice(1)
        .flatMap((n) => sidecars(`${STACK.id}/${n}`))
        .sort(),
    );
    // A wrong secret is refused by the store's signature check.
    const wrong = onNode(
      "master-0",
      "bash",
      "-c",
      `d=$(mktemp -d); echo ${S3_KEY.id} >$d/etcd-backup-access-key-id; echo not-the-secret >$d/etcd-backup-secret-access-key
       set -a; . /etc/g8s/etcd-backup.env; S3_CREDENTIALS_DIR=$d g8s-object-store list "$S3_PREFIX"; rc=$?; rm -rf $d; exit $rc`,
    );
    assert.equal(wrong.code, 1, wrong.out);
    assert.match(wrong.err, /HTTP 403 SignatureDoesNotMatch/);

    const chosen = snapshots[2];
    // g8s etcd snapshots lists the store too.
    const server = kubectl("config", "view", "-o", "jsonpath={.clusters[0].cluster.server}").out;
    const listed = lab.g8s("etcd", "snapshots", STACK.id, "--server", server);
    assert.equal(listed.code, 0, listed.err);
    assert.match(listed.out, new RegExp(`object store: 2 snapshot\\(s\\)[^\\n]*\\n  ${snapshots[1]}\\n  ${chosen}`));
    assert.equal(kubectl("delete", "configmap", "backup-probe").code, 0);
    assert.equal(kubectl("create", "configmap", "after-snapshot", "--from-literal=written=after").code, 0);
    // The master's own copies gone (a new etcd volume): the restore takes the store's.
    assert.equal(onNode("master-0", "bash", "-c", `rm -f ${dir}/*.db*`).code, 0);
    lab.write({ ...current, reconcileMode: "off" });
    const started = Date.now();
    const restore = await lab.g8sAsync("etcd", "restore", STACK.id, "--snapshot", chosen, "--server", server, "--yes");
    assert.equal(restore.code, 0, `${restore.out}\n${restore.err}`);
    assert.match(restore.err, new RegExp(`fetched ${chosen} on master-0`));
    assert.match(restore.err, new RegExp(`${chosen} \\([1-9]\\d* bytes, checksum good\\) on master-0`));
    lab.write(current);
    const back = await waitUntil(
      "the API server after the restore",
      () => kubectl("get", "configmap", "backup-probe", "-o", "jsonpath={.data.written}").out === "before-snapshot",
      300_000,
    );
    const restoreSeconds = (Date.now() - started) / 1000;
    assert.match(kubectl("get", "configmap", "after-snapshot").err, /NotFound/, "what came after the snapshot is gone");
    // Healthy: etcd and every check of the API server, both nodes Ready, the Deployment serving.
    const ready = await waitUntil(
      "every readyz check and both nodes Ready",
      () => kubectl("get", "--raw", "/readyz").out === "ok" && [...lab.readiness().values()].every((v) => v === "True"),
      300_000,
    );
    assert.match(kubectl("get", "--raw", "/readyz?verbose").out, /\[\+\]etcd ok/);
    rolledOut("default", "web", "300s");
    const probeAgain = kubectl("create", "configmap", "after-restore", "--from-literal=written=after-restore");
    assert.equal(probeAgain.code, 0, `the restored cluster takes writes: ${probeAgain.err}`);
    process.stdout.write(
      `      etcd restore from the store: script ${restore.err.match(/restored from .* in (\d+) s/)?.[1] ?? "?"} s, the object readable after ${restoreSeconds.toFixed(1)} s ` +
        `(API back ${back.toFixed(0)} s after the script), every readyz check and node Ready ${ready.toFixed(0)} s later\n`,
    );
  });
});
