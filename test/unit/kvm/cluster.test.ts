/** KvmCluster under mocks: the host-cluster objects of a guest cluster, their names, inputs and provider. */
import * as assert from "node:assert/strict";
import { installMocks, promiseOf, settle, type MockRecorder, type RecordedResource } from "../mocks";
import { podResources } from "../../../components/kvm/workload";
import { FAKE, K8S, kvmClusterSpec, nodeSecrets, userData } from "./helpers";

type Kvm = typeof import("../../../components/kvm");

/* eslint-disable @typescript-eslint/no-explicit-any -- Kubernetes object inputs */

/** The value of a secret as the engine receives it; fails when the value is not marked secret. */
function secretValue(serialized: unknown): unknown {
  assert.deepEqual(Object.keys(serialized as object).sort(), [SECRET_SIG_KEY, "value"]);
  assert.equal((serialized as Record<string, unknown>)[SECRET_SIG_KEY], SECRET_SIG);
  return (serialized as { value: unknown }).value;
}
// Pulumi's wire format of a secret: { [specialSigKey]: secretSig, value }.
const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

describe("KvmCluster", () => {
  let recorder: MockRecorder;
  let mod: Kvm;
  const outputs: Record<string, { namespace: string; apiEndpoint: string }> = {};

  before(async () => {
    recorder = installMocks();
    mod = await import("../../../components/kvm");
    const build = async (name: string, args: Parameters<typeof newCluster>[1]) => {
      const c = newCluster(name, args);
      outputs[name] = { namespace: await promiseOf(c.namespace), apiEndpoint: await promiseOf(c.apiEndpoint) };
    };
    const newCluster = (
      name: string,
      args: Omit<ConstructorParameters<Kvm["KvmCluster"]>[1], "userData" | "nodeSecrets">,
    ) => new mod.KvmCluster(name, { userData, nodeSecrets, ...args });
    await build("one", { spec: kvmClusterSpec(1) });
    await build("again", { spec: kvmClusterSpec(1) });
    await build("swapped", { spec: kvmClusterSpec(1, (s) => s.nodePools.reverse()) });
    await build("three", {
      spec: kvmClusterSpec(3, (s) => (s.kvm.apiService = "LoadBalancer")),
      hostKubeconfig: FAKE.kubeconfig,
      apiIngress: { className: "nginx-passthrough" },
    });
    await build("hp", {
      spec: kvmClusterSpec(1, (s) => {
        s.kvm = { storage: "hostPath", namespacePrefix: "guest-" };
        s.ingress = { enabled: false };
      }),
    });
    await settle();
  });

  /** The resources of one build (names start with `<build>-`). */
  const of = (build: string, type?: string): RecordedResource[] =>
    recorder.resources.filter(
      (r) => (r.name === build || r.name.startsWith(`${build}-`)) && (type === undefined || r.type === type),
    );
  const sts = (build: string, name: string) => recorder.one(K8S.statefulSet, `${build}-${name}`).inputs as any;
  const podSpec = (build: string, name: string) => sts(build, name).spec.template.spec;

  describe("objects and counts", () => {
    it("creates, for 1 master and two pools, exactly these objects", () => {
      const names = of("one")
        .filter((r) => r.custom)
        .map((r) => `${r.type} ${r.name}`)
        .sort();
      assert.deepEqual(
        names,
        [
          `${K8S.provider} one-host`,
          `${K8S.namespace} one-namespace`,
          `${K8S.networkPolicy} one-netpol-default-deny`,
          `${K8S.networkPolicy} one-netpol-same-cluster`,
          `${K8S.networkPolicy} one-netpol-api`,
          `${K8S.networkPolicy} one-netpol-ingress`,
          `${K8S.secret} one-master-user-data`,
          `${K8S.secret} one-master-secrets`,
          `${K8S.service} one-master-etcd`,
          `${K8S.service} one-master-api`,
          `${K8S.service} one-master-node-0`,
          `${K8S.statefulSet} one-master`,
          `${K8S.pdb} one-master-pdb`,
          `${K8S.secret} one-worker-secrets`,
          `${K8S.service} one-workers`,
          `${K8S.secret} one-pool-default-user-data`,
          `${K8S.statefulSet} one-pool-default`,
          `${K8S.secret} one-pool-big-user-data`,
          `${K8S.statefulSet} one-pool-big`,
          `${K8S.service} one-ingress`,
        ].sort(),
      );
      assert.deepEqual(
        of("one")
          .filter((r) => !r.custom)
          .map((r) => `${r.type} ${r.name}`)
          .sort(),
        [
          "g8s:kvm:Cluster one",
          "g8s:kvm:ControlPlane one-master",
          "g8s:kvm:NodePool one-pool-big",
          "g8s:kvm:NodePool one-pool-default",
        ],
      );
    });

    it("runs 1 or 3 masters and each pool's count as StatefulSet replicas", () => {
      assert.equal(sts("one", "master").spec.replicas, 1);
      assert.equal(sts("three", "master").spec.replicas, 3);
      assert.equal(sts("one", "pool-default").spec.replicas, 2);
      assert.equal(sts("one", "pool-big").spec.replicas, 1);
    });

    it("adds the API Ingress only when asked, and the ingress Service only with ingress enabled", () => {
      assert.equal(of("one", K8S.ingress).length, 0);
      assert.equal(of("three", K8S.ingress).length, 1);
      assert.equal(of("hp", K8S.service).filter((r) => r.name === "hp-ingress").length, 0);
      assert.equal(of("hp", K8S.networkPolicy).filter((r) => r.name === "hp-netpol-ingress").length, 0);
    });

    it("puts every child under its component (ControlPlane and NodePools under the Cluster)", () => {
      assert.match(
        recorder.one(K8S.statefulSet, "one-master").parent!,
        /g8s:kvm:Cluster\$g8s:kvm:ControlPlane::one-master$/,
      );
      assert.match(
        recorder.one(K8S.statefulSet, "one-pool-big").parent!,
        /g8s:kvm:Cluster\$g8s:kvm:NodePool::one-pool-big$/,
      );
      assert.match(recorder.one(K8S.namespace, "one-namespace").parent!, /::g8s:kvm:Cluster::one$/);
      assert.match(recorder.one(K8S.provider, "one-host").parent!, /::g8s:kvm:Cluster::one$/);
    });
  });

  describe("host provider", () => {
    it("uses the component's own provider for every Kubernetes object", () => {
      for (const build of ["one", "three", "hp"]) {
        const objects = of(build).filter((r) => r.type.startsWith("kubernetes:"));
        assert.ok(objects.length >= 15);
        for (const r of objects) {
          const urn = `urn:pulumi:test::g8s::g8s:kvm:Cluster$${K8S.provider}::${build}-host::${build}-host-id`;
          assert.equal(r.provider, urn, r.name);
        }
      }
    });

    it("updates Secrets in place (a renewed certificate must not replace the Secret and its StatefulSet)", () => {
      for (const build of ["one", "three"]) {
        assert.equal(recorder.one(K8S.provider, `${build}-host`).inputs.enableSecretMutable, "true"); // provider inputs are strings
      }
    });

    it("applies every host object with force, so fields another manager took (kubectl scale, edit) come back", () => {
      const objects = recorder.resources.filter((r) => r.type.startsWith("kubernetes:"));
      assert.ok(objects.length > 10, `${objects.length} objects`);
      for (const r of objects) {
        const annotations = (r.inputs.metadata as { annotations?: Record<string, string> }).annotations ?? {};
        assert.equal(annotations["pulumi.com/patchForce"], "true", `${r.type} ${r.name}`);
      }
      const ingress = recorder.one(K8S.ingress, "three-api-ingress").inputs.metadata as {
        annotations: Record<string, string>;
      };
      assert.equal(
        ingress.annotations["nginx.ingress.kubernetes.io/ssl-passthrough"],
        "true",
        "its own annotations kept",
      );
    });

    it("takes the kubeconfig from the args, else none (ambient)", () => {
      assert.equal(secretValue(recorder.one(K8S.provider, "three-host").inputs.kubeconfig), FAKE.kubeconfig);
      assert.equal(recorder.one(K8S.provider, "one-host").inputs.kubeconfig, undefined);
    });
  });

  describe("namespace and outputs", () => {
    it("names the namespace <namespacePrefix><id> and labels it with the cluster", () => {
      const ns = recorder.one(K8S.namespace, "one-namespace").inputs as any;
      assert.deepEqual(ns.metadata, {
        name: "g8s-edge7",
        annotations: { "pulumi.com/patchForce": "true" },
        labels: {
          "g8s.io/cluster": "edge7",
          "app.kubernetes.io/managed-by": "g8s",
          "pod-security.kubernetes.io/enforce": "privileged",
        },
      });
      assert.equal((recorder.one(K8S.namespace, "hp-namespace").inputs as any).metadata.name, "guest-edge7");
      // Deleting it deletes the cluster: protected, alone (nothing else inherits it).
      assert.deepEqual(
        of("one")
          .filter((r) => r.protect)
          .map((r) => r.name),
        ["one-namespace"],
      );
      for (const r of of("one").filter((x) => x.type.startsWith("kubernetes:") && x.type !== K8S.namespace)) {
        assert.equal((r.inputs as any).metadata.namespace, "g8s-edge7", r.name);
      }
    });

    it("exports the namespace and the API endpoint: the Service DNS name, or the Ingress host", () => {
      assert.deepEqual(outputs.one, { namespace: "g8s-edge7", apiEndpoint: "https://api.g8s-edge7.svc:6443" });
      assert.deepEqual(outputs.three, { namespace: "g8s-edge7", apiEndpoint: "https://api.edge7.k8s.corp.internal" });
      assert.equal(mod.kvmApiEndpoint(kvmClusterSpec(1)), "https://api.g8s-edge7.svc:6443");
      assert.deepEqual(mod.kvmApiNames(kvmClusterSpec(1)), [
        "api.g8s-edge7",
        "api.g8s-edge7.svc",
        "api.g8s-edge7.svc.cluster.local",
      ]);
    });
  });

  describe("QEMU pods", () => {
    it("gives masters the spec's CPUs and memory plus QEMU's overhead, requests = limits, one /dev/kvm and tun", () => {
      const expected = {
        cpu: "2",
        memory: "4384Mi", // 4 GiB + 256 MiB + 2 × 16 MiB
        "devices.kubevirt.io/kvm": "1",
        "devices.kubevirt.io/tun": "1",
      };
      const [qemu] = podSpec("one", "master").containers;
      assert.deepEqual(qemu.resources, { requests: expected, limits: expected });
      const big = podSpec("one", "pool-big").containers[0].resources;
      assert.deepEqual(big.limits, {
        cpu: "8",
        memory: "33152Mi", // 32 GiB + 256 MiB + 8 × 16 MiB
        "devices.kubevirt.io/kvm": "1",
        "devices.kubevirt.io/tun": "1",
      });
      assert.deepEqual(big.requests, big.limits);
    });

    it("requests no /dev/kvm for an emulated guest (kvm.accel: tcg), and one for kvm and auto", () => {
      assert.deepEqual(podResources(1, 1, "tcg"), { cpu: "1", memory: "1296Mi", "devices.kubevirt.io/tun": "1" });
      for (const accel of ["kvm", "auto"] as const) {
        assert.equal(podResources(1, 1, accel)["devices.kubevirt.io/kvm"], "1", accel);
      }
    });

    it("runs the spec's image unprivileged with NET_ADMIN only, without a service-account token", () => {
      const pod = podSpec("one", "pool-default");
      assert.equal(pod.containers.length, 1);
      assert.equal(pod.containers[0].image, "g8s/qemu-node:1.0.0");
      assert.deepEqual(pod.containers[0].securityContext, { privileged: false, capabilities: { add: ["NET_ADMIN"] } });
      assert.equal(pod.automountServiceAccountToken, false);
      assert.equal(pod.enableServiceLinks, false);
      assert.equal(pod.terminationGracePeriodSeconds, 120);
    });

    it("probes readiness on the guest: the API (6443) on masters, the kubelet (10250) on workers", () => {
      assert.deepEqual(podSpec("one", "master").containers[0].readinessProbe, {
        tcpSocket: { port: 6443 },
        initialDelaySeconds: 30,
        periodSeconds: 10,
        failureThreshold: 3,
      });
      assert.deepEqual(podSpec("one", "pool-default").containers[0].readinessProbe.tcpSocket, { port: 10250 });
      assert.equal(podSpec("one", "master").containers[0].livenessProbe, undefined);
    });

    it("claims the VM disk (and etcd on masters) in the spec's storage class", () => {
      const claim = (name: string, gib: number) => ({
        metadata: { name, labels: { "g8s.io/cluster": "edge7", "app.kubernetes.io/managed-by": "g8s" } },
        spec: {
          accessModes: ["ReadWriteOnce"],
          volumeMode: "Filesystem",
          storageClassName: "fast-ssd",
          resources: { requests: { storage: `${gib}Gi` } },
        },
      });
      assert.deepEqual(sts("one", "master").spec.volumeClaimTemplates, [claim("disk", 20), claim("etcd", 10)]);
      assert.deepEqual(sts("one", "pool-big").spec.volumeClaimTemplates, [claim("disk", 100)]);
      assert.deepEqual(podSpec("one", "master").containers[0].volumeMounts.slice(0, 2), [
        { name: "disk", mountPath: "/var/lib/g8s/disk" },
        { name: "etcd", mountPath: "/var/lib/g8s/etcd" },
      ]);
    });

    it("keeps hostPath disks under /var/lib/g8s/<namespace>/<pod>/<disk>, without PVCs", () => {
      assert.equal(sts("hp", "master").spec.volumeClaimTemplates, undefined);
      const pod = podSpec("hp", "master");
      assert.deepEqual(
        pod.volumes.find((v: any) => v.name === "host-storage"),
        { name: "host-storage", hostPath: { path: "/var/lib/g8s/guest-edge7", type: "DirectoryOrCreate" } },
      );
      assert.deepEqual(pod.containers[0].volumeMounts.slice(0, 2), [
        { name: "host-storage", mountPath: "/var/lib/g8s/disk", subPathExpr: "$(G8S_POD_NAME)/disk" },
        { name: "host-storage", mountPath: "/var/lib/g8s/etcd", subPathExpr: "$(G8S_POD_NAME)/etcd" },
      ]);
    });

    it("mounts user-data and node secrets as whole Secret directories (no subPath, so updates reach the VM)", () => {
      const check = (build: string, set: string, userDataSecret: string, secrets: string) => {
        const pod = podSpec(build, set);
        assert.deepEqual(
          pod.volumes.filter((v: any) => v.secret !== undefined),
          [
            { name: "user-data", secret: { secretName: userDataSecret, defaultMode: 0o400 } },
            { name: "node-secrets", secret: { secretName: secrets, defaultMode: 0o400 } },
          ],
        );
        assert.deepEqual(pod.containers[0].volumeMounts.slice(-2), [
          { name: "user-data", mountPath: "/etc/g8s/user-data", readOnly: true },
          { name: "node-secrets", mountPath: "/etc/g8s/node-secrets", readOnly: true },
        ]);
      };
      check("one", "master", "master-user-data", "master-secrets");
      check("one", "pool-default", "pool-default-user-data", "worker-secrets");
      check("one", "pool-big", "pool-big-user-data", "worker-secrets");
    });

    it("tells the image its role, size and paths through env, with the 9p share tag", () => {
      const env = podSpec("one", "master").containers[0].env;
      assert.deepEqual(env, [
        { name: "G8S_CLUSTER_ID", value: "edge7" },
        { name: "G8S_ROLE", value: "master" },
        { name: "G8S_POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
        { name: "G8S_CPUS", value: "2" },
        { name: "G8S_MEMORY_MIB", value: "4096" },
        { name: "G8S_DISK_DIR", value: "/var/lib/g8s/disk" },
        { name: "G8S_DISK_GIB", value: "20" },
        { name: "G8S_USER_DATA_DIR", value: "/etc/g8s/user-data" },
        { name: "G8S_SHARE_DIR", value: "/etc/g8s/node-secrets" },
        { name: "G8S_SHARE_TAG", value: "g8s-secrets" },
        { name: "G8S_NETWORK", value: "bridge" },
        { name: "G8S_ACCEL", value: "kvm" },
        { name: "G8S_ETCD_DIR", value: "/var/lib/g8s/etcd" },
        { name: "G8S_ETCD_DISK_GIB", value: "10" },
      ]);
    });

    it("selects pods by cluster, role and pool, governed by the headless Services, started in parallel", () => {
      const master = sts("one", "master");
      assert.deepEqual(master.metadata.name, "master");
      assert.deepEqual(master.spec.selector, { matchLabels: { "g8s.io/cluster": "edge7", "g8s.io/role": "master" } });
      assert.equal(master.spec.serviceName, "etcd");
      assert.equal(master.spec.podManagementPolicy, "Parallel");
      const pool = sts("one", "pool-big");
      assert.equal(pool.metadata.name, "pool-big");
      assert.deepEqual(pool.spec.selector, {
        matchLabels: { "g8s.io/cluster": "edge7", "g8s.io/role": "worker", "g8s.io/pool": "big" },
      });
      assert.equal(pool.spec.serviceName, "workers");
      assert.deepEqual(pool.spec.template.metadata.labels, {
        "g8s.io/cluster": "edge7",
        "app.kubernetes.io/managed-by": "g8s",
        "g8s.io/role": "worker",
        "g8s.io/pool": "big",
      });
      assert.deepEqual(pool.spec.persistentVolumeClaimRetentionPolicy, { whenDeleted: "Retain", whenScaled: "Delete" });
      assert.deepEqual(master.spec.persistentVolumeClaimRetentionPolicy, {
        whenDeleted: "Retain",
        whenScaled: "Retain",
      });
    });

    it("lets at most one master be disrupted", () => {
      assert.deepEqual((recorder.one(K8S.pdb, "three-master-pdb").inputs as any).spec, {
        maxUnavailable: 1,
        selector: { matchLabels: { "g8s.io/cluster": "edge7", "g8s.io/role": "master" } },
      });
    });
  });

  describe("secrets", () => {
    it("stores the node files and user-data in Secrets, user-data keyed by master slot", () => {
      const data = (name: string) => secretValue((recorder.one(K8S.secret, name).inputs as any).stringData);
      assert.deepEqual(data("one-master-secrets"), nodeSecrets.master);
      assert.deepEqual(data("one-worker-secrets"), nodeSecrets.worker);
      assert.deepEqual(data("three-master-user-data"), {
        "user-data-0": "#cloud-config master 0",
        "user-data-1": "#cloud-config master 1",
        "user-data-2": "#cloud-config master 2",
      });
      assert.deepEqual(data("one-pool-big-user-data"), { "user-data": "#cloud-config pool big" });
    });

    it("never puts a secret value into a ConfigMap, an env var or any object but a Secret", () => {
      assert.equal(recorder.byType(K8S.configMap).length, 0);
      const values = [FAKE.masterKey, FAKE.etcdKey, FAKE.workerKey, FAKE.kubeconfig];
      for (const r of recorder.resources.filter((x) => x.type !== K8S.secret && x.type !== K8S.provider)) {
        const text = JSON.stringify(r.inputs);
        for (const v of values) assert.ok(!text.includes(v), `${r.type} ${r.name} contains ${v}`);
      }
      for (const r of recorder.byType(K8S.statefulSet)) {
        for (const c of (r.inputs as any).spec.template.spec.containers) {
          assert.ok(
            c.env.every((e: any) => e.valueFrom === undefined || e.valueFrom.fieldRef !== undefined),
            `${r.name}: env only from fields, never from Secrets`,
          );
        }
      }
    });

    it("refuses node file names that cannot be Secret keys, before creating anything", () => {
      const count = recorder.resources.length;
      assert.throws(
        () =>
          new mod.KvmCluster("bad", {
            spec: kvmClusterSpec(1),
            userData,
            nodeSecrets: { master: nodeSecrets.master, worker: { "pki/ca.crt": "x", "ok.key": "y" } },
          }),
        (err: Error) =>
          err.message.includes(
            "nodeSecrets.worker has file names that cannot be Secret keys: 'pki/ca.crt'; " +
              "use letters, digits, '-', '_' and '.' only (flatten directories, e.g. 'etcd-ca.crt')",
          ),
      );
      assert.equal(recorder.resources.filter((r) => r.name.startsWith("bad-")).length, 0);
      assert.ok(recorder.resources.length <= count + 1); // at most the component itself
    });
  });

  describe("services", () => {
    const svc = (name: string) => (recorder.one(K8S.service, name).inputs as any).spec;

    it("exposes the API on 6443 of the masters with the spec's Service type", () => {
      const expected = (type: string) => ({
        type,
        selector: { "g8s.io/cluster": "edge7", "g8s.io/role": "master" },
        ports: [{ name: "https", port: 6443, targetPort: 6443, protocol: "TCP" }],
      });
      assert.deepEqual(svc("one-master-api"), expected("ClusterIP"));
      assert.deepEqual(svc("three-master-api"), expected("LoadBalancer"));
    });

    it("publishes etcd peers headless, before they are ready", () => {
      assert.deepEqual(svc("one-master-etcd"), {
        clusterIP: "None",
        publishNotReadyAddresses: true,
        selector: { "g8s.io/cluster": "edge7", "g8s.io/role": "master" },
        ports: [
          { name: "etcd-client", port: 2379, targetPort: 2379, protocol: "TCP" },
          { name: "etcd-peer", port: 2380, targetPort: 2380, protocol: "TCP" },
        ],
      });
    });

    it("gives each master a Service of its own: a stable address that follows the pod, even before it is ready", () => {
      assert.deepEqual(svc("three-master-node-2"), {
        type: "ClusterIP",
        publishNotReadyAddresses: true,
        selector: {
          "g8s.io/cluster": "edge7",
          "g8s.io/role": "master",
          "statefulset.kubernetes.io/pod-name": "master-2",
        },
        ports: [
          { name: "api", port: 6443, targetPort: 6443, protocol: "TCP" },
          { name: "etcd-client", port: 2379, targetPort: 2379, protocol: "TCP" },
          { name: "etcd-peer", port: 2380, targetPort: 2380, protocol: "TCP" },
          { name: "kubelet", port: 10250, targetPort: 10250, protocol: "TCP" },
        ],
      });
    });

    it("sends ingress traffic to the guest's node ports on all workers", () => {
      assert.deepEqual(svc("one-ingress"), {
        type: "ClusterIP",
        selector: { "g8s.io/cluster": "edge7", "g8s.io/role": "worker" },
        ports: [
          { name: "http", port: 80, targetPort: 30080, protocol: "TCP" },
          { name: "https", port: 443, targetPort: 30443, protocol: "TCP" },
        ],
      });
    });

    it("routes api.<id>.<baseDomain> to the API Service with TLS passthrough", () => {
      const ingress = recorder.one(K8S.ingress, "three-api-ingress").inputs as any;
      assert.deepEqual(ingress.metadata.annotations, {
        "nginx.ingress.kubernetes.io/ssl-passthrough": "true",
        "nginx.ingress.kubernetes.io/backend-protocol": "HTTPS",
        "pulumi.com/patchForce": "true",
      });
      assert.deepEqual(ingress.spec, {
        ingressClassName: "nginx-passthrough",
        tls: [{ hosts: ["api.edge7.k8s.corp.internal"] }],
        rules: [
          {
            host: "api.edge7.k8s.corp.internal",
            http: {
              paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: "api", port: { number: 6443 } } } }],
            },
          },
        ],
      });
    });
  });

  describe("network policies", () => {
    const policy = (name: string) => (recorder.one(K8S.networkPolicy, name).inputs as any).spec;

    it("denies all ingress by default", () => {
      assert.deepEqual(policy("one-netpol-default-deny"), { podSelector: {}, policyTypes: ["Ingress"] });
    });

    it("allows everything among the guest's own pods and nothing namespace-wide from elsewhere", () => {
      assert.deepEqual(policy("one-netpol-same-cluster"), {
        podSelector: {},
        policyTypes: ["Ingress"],
        ingress: [{ from: [{ podSelector: {} }] }],
      });
      for (const r of recorder.byType(K8S.networkPolicy)) {
        assert.ok(!JSON.stringify(r.inputs).includes("namespaceSelector"), r.name);
      }
    });

    it("opens only 6443 on the masters and the ingress node ports on the workers to other sources", () => {
      assert.deepEqual(policy("one-netpol-api"), {
        podSelector: { matchLabels: { "g8s.io/cluster": "edge7", "g8s.io/role": "master" } },
        policyTypes: ["Ingress"],
        ingress: [{ ports: [{ protocol: "TCP", port: 6443 }] }],
      });
      assert.deepEqual(policy("one-netpol-ingress"), {
        podSelector: { matchLabels: { "g8s.io/cluster": "edge7", "g8s.io/role": "worker" } },
        policyTypes: ["Ingress"],
        ingress: [
          {
            ports: [
              { protocol: "TCP", port: 30080 },
              { protocol: "TCP", port: 30443 },
            ],
          },
        ],
      });
    });
  });

  describe("stability", () => {
    /** Type, name without the build prefix, inputs: what the engine would diff. */
    const snapshot = (build: string) =>
      of(build)
        .map((r) => ({ key: `${r.type} ${r.name.slice(build.length)}`, inputs: r.inputs }))
        .sort((a, b) => a.key.localeCompare(b.key));

    it("gives identical inputs on a second evaluation", () => {
      assert.deepEqual(snapshot("again"), snapshot("one"));
    });

    it("keeps every name and input when the pools are reordered", () => {
      assert.deepEqual(snapshot("swapped"), snapshot("one"));
    });
  });
});
