import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { parse, parseAllDocuments } from "yaml";
import {
  AWS_USER_DATA_LIMIT,
  ADDONS_PATH,
  CALICO_VERSION,
  CLOUD_CONFIG_KEYS,
  KUBEADM_CONFIG_PATH,
  SECRET_MANIFEST_PATH,
  addonDocuments,
  awsUserData,
  buildCloudConfig,
  kubeadmSchema,
  renderCloudConfig,
  storeFileValues,
  type BootstrapConfig,
  type BootstrapRole,
  type CloudConfig,
} from "../../../components/bootstrap";
import { masterKeys } from "../../../components/spec";
import { awsConfig, fakeSecrets, kvmConfig, rolesOf } from "./helpers";

const CHECKER = join(__dirname, "../../fixtures/bootstrap/cloud_init_schema.py");
const PYTHON = "/usr/bin/python3";

interface Rendered {
  readonly label: string;
  readonly config: BootstrapConfig;
  readonly role: BootstrapRole;
  readonly text: string;
}

function renderAll(): Rendered[] {
  const out: Rendered[] = [];
  for (const [provider, make] of [
    ["aws", awsConfig],
    ["kvm", kvmConfig],
  ] as const) {
    for (const masters of [1, 3, 5] as const) {
      const config = make(masters);
      for (const role of rolesOf(config)) {
        const who = role.kind === "worker" ? `worker-${role.pool}` : `${role.kind}-${role.master}`;
        out.push({ label: `${provider}/${masters}m/${who}`, config, role, text: renderCloudConfig(config, role) });
      }
    }
  }
  return out;
}

function fileOf(doc: CloudConfig, path: string): string {
  const found = doc.write_files.find((f) => f.path === path);
  assert.ok(found, `no write_files entry for ${path}`);
  return found.content;
}

const rendered = renderAll();

describe("bootstrap: rendered cloud-config", () => {
  describe("cloud-init schema (Debian's cloud-init)", function () {
    let results: Record<string, string | null> = {};
    let dir = "";
    this.timeout(60000);

    before(function () {
      if (!existsSync("/usr/bin/cloud-init") || !existsSync(PYTHON)) {
        throw new Error(
          "cloud-init is not installed: run `apt-get update && apt-get install -y --no-install-recommends cloud-init` " +
            "(.ci/run does this); the bootstrap tests validate every document with it and do not skip",
        );
      }
      dir = mkdtempSync(join(tmpdir(), "g8s-cloud-init-"));
      const files = rendered.map((r, i) => {
        const file = join(dir, `${i}.yaml`);
        writeFileSync(file, r.text);
        return file;
      });
      const out = JSON.parse(execFileSync(PYTHON, [CHECKER, ...files], { encoding: "utf8" })) as {
        results: Record<string, string | null>;
      };
      results = Object.fromEntries(files.map((f, i) => [rendered[i].label, out.results[f]]));
    });

    after(() => {
      if (dir !== "") rmSync(dir, { recursive: true, force: true });
    });

    it(`validates all ${rendered.length} documents (1, 3 and 5 masters, two pools, aws and kvm)`, () => {
      assert.equal(Object.keys(results).length, rendered.length);
      const failures = Object.entries(results).filter(([, error]) => error !== null);
      assert.deepEqual(failures, []);
    });

    it("agrees with the `cloud-init schema --config-file` command line on a document", () => {
      const file = join(dir, "cli.yaml");
      writeFileSync(file, rendered[0].text);
      const out = execFileSync("cloud-init", ["schema", "--config-file", file], { encoding: "utf8" });
      assert.match(out, /Valid cloud-config/);
    });

    it("catches a broken document (the check can fail)", () => {
      const file = join(dir, "broken.yaml");
      writeFileSync(file, "#cloud-config\nwrite_files:\n  - path: /x\n    mode: 0600\nruncmd: 5\n");
      const out = JSON.parse(execFileSync(PYTHON, [CHECKER, file], { encoding: "utf8" })) as {
        results: Record<string, string | null>;
      };
      assert.match(out.results[file] ?? "", /runcmd: 5 is not of type 'array'/);
      assert.match(out.results[file] ?? "", /'mode' was unexpected/);
    });
  });

  it("starts with #cloud-config and uses only known top-level keys (cloud-init 22.4 ignores unknown ones)", () => {
    for (const r of rendered) {
      assert.ok(r.text.startsWith("#cloud-config\n"), r.label);
      assert.deepEqual(
        Object.keys(parse(r.text) as object).filter((k) => !(CLOUD_CONFIG_KEYS as readonly string[]).includes(k)),
        [],
        r.label,
      );
    }
  });

  it("renders the same bytes for the same inputs", () => {
    const again = renderAll();
    assert.deepEqual(
      again.map((r) => r.text),
      rendered.map((r) => r.text),
    );
    const doc = rendered.find((r) => r.label === "aws/5m/first-master-master-0");
    assert.ok(doc);
    // Over 16 KiB, so gzipped: the same bytes too (no time or name in the header).
    assert.ok(awsUserData(doc.text).gzipped);
    assert.equal(awsUserData(doc.text).userDataBase64, awsUserData(doc.text).userDataBase64);
  });

  describe("kubeadm documents", () => {
    for (const r of rendered.filter((x) => x.label.startsWith("aws/3m") || x.label.startsWith("kvm/1m"))) {
      it(`${r.label}: every document matches the v1beta4 schema`, () => {
        const docs = parseAllDocuments(fileOf(buildCloudConfig(r.config, r.role), KUBEADM_CONFIG_PATH));
        assert.ok(docs.length > 0);
        for (const d of docs) {
          const obj = d.toJS() as { kind?: unknown };
          const schema = kubeadmSchema.kubeadmSchemaOf(obj.kind);
          assert.ok(schema, `${r.label}: unknown kind ${String(obj.kind)}`);
          const result = schema.safeParse(obj);
          assert.ok(result.success, `${r.label}: ${JSON.stringify(result.error?.issues)}`);
        }
      });
    }

    it("rejects an unknown field and a v1beta3-style map of extraArgs", () => {
      const bad = { apiVersion: "kubeadm.k8s.io/v1beta4", kind: "ClusterConfiguration", apiServer: { certSans: [] } };
      assert.equal(kubeadmSchema.clusterConfigurationSchema.safeParse(bad).success, false);
      const oldArgs = {
        apiVersion: "kubeadm.k8s.io/v1beta4",
        kind: "ClusterConfiguration",
        apiServer: { extraArgs: { "audit-log-path": "-" } },
      };
      assert.equal(kubeadmSchema.clusterConfigurationSchema.safeParse(oldArgs).success, false);
    });

    it("the first master inits with the endpoint, SANs, subnets, local etcd and rotating kubelet certificates", () => {
      const config = awsConfig(3);
      const docs = parseAllDocuments(
        fileOf(buildCloudConfig(config, { kind: "first-master", master: "master-0" }), KUBEADM_CONFIG_PATH),
      ).map((d) => d.toJS() as Record<string, any>); // eslint-disable-line @typescript-eslint/no-explicit-any
      assert.deepEqual(
        docs.map((d) => d.kind),
        ["InitConfiguration", "ClusterConfiguration", "KubeletConfiguration", "KubeProxyConfiguration"],
      );
      const [init, cluster, kubelet] = docs;
      assert.equal(init.bootstrapTokens, undefined, "the token is a secret: created on the node from its file");
      assert.deepEqual(init.timeouts, { kubernetesAPICall: "4m0s" }, "init's first API call outlasts a slow API start");
      assert.equal(cluster.controlPlaneEndpoint, "api.eu1prod.k8s.example.com:6443");
      assert.equal(cluster.kubernetesVersion, "v1.31.4");
      assert.deepEqual(cluster.networking, {
        serviceSubnet: "172.31.0.0/16",
        podSubnet: "10.2.0.0/16",
        dnsDomain: "cluster.local",
      });
      for (const san of ["api.eu1prod.k8s.example.com", "kubernetes.default.svc.cluster.local", "172.31.0.1"]) {
        assert.ok(cluster.apiServer.certSANs.includes(san), san);
      }
      assert.ok(cluster.apiServer.certSANs.includes("eu1prod-api-0123456789.elb.eu-central-1.amazonaws.com"));
      assert.equal(cluster.etcd.local.dataDir, "/var/lib/etcd-disk/data", "on the volume, beside its lost+found");
      assert.equal(kubelet.rotateCertificates, true);
    });

    it("workers join with their pool's labels and taints; masters join as control plane", () => {
      const config = awsConfig(3);
      const join = (role: BootstrapRole) =>
        parse(fileOf(buildCloudConfig(config, role), KUBEADM_CONFIG_PATH)) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
      const gpu = join({ kind: "worker", pool: "gpu" });
      assert.deepEqual(gpu.nodeRegistration.taints, [
        { key: "example.com/gpu", value: "true", effect: "NoSchedule" },
        { key: "example.com/dedicated", effect: "NoExecute" },
      ]);
      assert.deepEqual(gpu.nodeRegistration.kubeletExtraArgs, [
        { name: "node-labels", value: "example.com/accelerator=a10g,example.com/tier=gpu,g8s.io/pool=gpu" },
      ]);
      assert.equal(gpu.controlPlane, undefined);
      assert.deepEqual(join({ kind: "worker", pool: "general" }).nodeRegistration.taints, []);
      const master = join({ kind: "master", master: "master-2" });
      assert.deepEqual(master.controlPlane, { localAPIEndpoint: { bindPort: 6443 } });
      assert.deepEqual(master.discovery, { file: { kubeConfigPath: "/etc/kubernetes/g8s/discovery.conf" } });
    });
  });

  it("gives Calico pure VXLAN without BGP: pod packets between nodes always carry node addresses", () => {
    for (const config of [awsConfig(1), kvmConfig(1)]) {
      const installation = addonDocuments({
        ...config,
        spec: { ...config.spec, kubernetes: { ...config.spec.kubernetes, cni: "calico" } },
      }).find((d) => (d as { kind?: string }).kind === "Installation") as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
      assert.ok(installation, config.spec.provider);
      assert.equal(installation.spec.calicoNetwork.bgp, "Disabled");
      assert.deepEqual(
        installation.spec.calicoNetwork.ipPools.map((p: { encapsulation: string }) => p.encapsulation),
        ["VXLAN"],
      );
    }
  });

  it("runs kubeadm init on the first master only, and applies Calico once from it", () => {
    for (const r of rendered) {
      const cmds = buildCloudConfig(r.config, r.role).runcmd.map((c) => (typeof c === "string" ? c : c.join(" ")));
      const init = cmds.filter((c) => c.startsWith("kubeadm init --config"));
      const mark = cmds.findIndex((c) => c.startsWith("kubeadm init phase mark-control-plane"));
      if (r.role.kind === "first-master") {
        // The master is marked only after the add-ons let its kubelet (the shared identity) register.
        assert.match(init[0], /--skip-phases=mark-control-plane/, r.label);
        assert.ok(mark > cmds.findIndex((c) => c.includes(`apply -f ${ADDONS_PATH}`)), r.label);
      } else assert.equal(mark, -1, r.label);
      const join = cmds.filter((c) => c.includes(`until kubeadm join --config ${KUBEADM_CONFIG_PATH}; do`));
      const calico = cmds.filter((c) => c.includes(`calico/${CALICO_VERSION}/manifests/tigera-operator.yaml`));
      const first = r.role.kind === "first-master";
      assert.equal(init.length, first ? 1 : 0, r.label);
      assert.equal(join.length, first ? 0 : 1, r.label);
      assert.equal(calico.length, first ? 1 : 0, r.label);
    }
  });

  it("installs the pinned packages from pkgs.k8s.io with apt pinning (apt source)", () => {
    const doc = buildCloudConfig(awsConfig(1), { kind: "worker", pool: "general" });
    assert.match(fileOf(doc, "/etc/apt/sources.list.d/kubernetes.list"), /core:\/stable:\/v1\.31\/deb\/ \/\n$/);
    assert.equal(
      fileOf(doc, "/etc/apt/preferences.d/g8s-kubernetes"),
      "Package: kubelet kubeadm kubectl\nPin: version 1.31.4-*\nPin-Priority: 1001\n",
    );
    assert.match(fileOf(doc, "/etc/containerd/config.toml"), /SystemdCgroup = true/);
  });

  describe("secrets", () => {
    const decodings = (text: string): string[] => {
      const user = awsUserData(text);
      const bytes = Buffer.from(user.userDataBase64, "base64");
      return [text, (user.gzipped ? gunzipSync(bytes) : bytes).toString("utf8"), user.userDataBase64];
    };

    it("no secret value (keys, kubeconfigs, token) appears in any user-data, plain, base64 or gzip", () => {
      for (const r of rendered) {
        const masters = masterKeys(r.config.spec);
        const context = { clusterId: r.config.spec.id, apiEndpoint: r.config.apiEndpoint };
        const secrets = [
          ...storeFileValues("master", masters, fakeSecrets(masters), context),
          ...storeFileValues("worker", masters, fakeSecrets(masters), context),
        ].filter((f) => f.secret);
        assert.ok(secrets.length > 10);
        const needles = new Set<string>([fakeSecrets(masters).bootstrapToken]);
        for (const f of secrets) {
          needles.add(String(f.value));
          const key = /SECRET[A-Za-z0-9]+/.exec(String(f.value));
          if (key) needles.add(key[0]);
          needles.add(Buffer.from(String(f.value)).toString("base64").slice(0, 40));
        }
        for (const text of decodings(r.text)) {
          for (const needle of needles) assert.ok(!text.includes(needle), `${r.label} contains a secret`);
        }
      }
    });

    it("references every store file by name (SSM on aws, the mount on kvm) in the manifest", () => {
      const aws = buildCloudConfig(awsConfig(3), { kind: "master", master: "master-1" });
      const manifest = fileOf(aws, SECRET_MANIFEST_PATH);
      assert.match(
        manifest,
        /^\/g8s\/eu1prod\/master\/apiserver\.key\t\/etc\/kubernetes\/pki\/apiserver\.key\t0600\t/m,
      );
      assert.match(
        manifest,
        /^\/g8s\/eu1prod\/master\/master-1-etcd-server\.crt\t\/etc\/kubernetes\/pki\/etcd\/server\.crt\t0644/m,
      );
      const kvm = buildCloudConfig(kvmConfig(1), { kind: "worker", pool: "gpu" });
      assert.match(
        fileOf(kvm, SECRET_MANIFEST_PATH),
        /^\/mnt\/g8s-secrets\/kubelet\.conf\t\/etc\/kubernetes\/kubelet\.conf\t0600\tkubelet\t-$/m,
      );
    });
  });

  describe("AWS user-data size", () => {
    it(`keeps every AWS document within ${AWS_USER_DATA_LIMIT} bytes`, () => {
      for (const r of rendered.filter((x) => x.label.startsWith("aws/"))) {
        const user = awsUserData(r.text);
        assert.ok(user.bytes <= AWS_USER_DATA_LIMIT, `${r.label}: ${user.bytes} bytes`);
      }
    });

    it("gzips a document over the limit, deterministically, and it inflates to the document", () => {
      const big = rendered[0].text + `# ${"padding ".repeat(3000)}\n`;
      const a = awsUserData(big);
      assert.equal(a.gzipped, true);
      assert.ok(a.bytes <= AWS_USER_DATA_LIMIT);
      assert.equal(gunzipSync(Buffer.from(a.userDataBase64, "base64")).toString("utf8"), big);
      assert.equal(awsUserData(big).userDataBase64, a.userDataBase64);
    });

    it("refuses a document that does not fit even gzipped", () => {
      const noise = Array.from({ length: 40000 }, (_, i) => ((i * 2654435761) >>> 0).toString(36)).join("");
      assert.throws(() => awsUserData(noise), /gzipped, over EC2's 16384/);
    });
  });
});
