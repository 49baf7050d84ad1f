/**
 * The offline pod network (`kubernetes.cni: flannel`, `packages: image`): what the first master
 * applies, that nothing is fetched at boot, and that every image the documents name is one the
 * toolchain's node image holds (its images.json, from `npm run toolchain`).
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { PROJECT_ROOT } from "../../../automation/engine";
import {
  ADDONS_PATH,
  buildCloudConfig,
  containerdConfig,
  flannelCniConfig,
  KUBEADM_CONFIG_PATH,
  NODE_IMAGE_ETCD_TAG,
  NODE_IMAGE_FLANNEL,
  pauseImageOf,
  renderCloudConfig,
  type BootstrapConfig,
} from "../../../components/bootstrap";
import { NODE_IMAGE_KUBERNETES_VERSIONS, parseClusterSpec } from "../../../components/spec";
import { kvmSpec } from "../spec/helpers";
import { KVM_DELIVERY, rolesOf } from "./helpers";

const IMAGES_JSON = join(PROJECT_ROOT, ".tools", "share", "node-images", "images.json");
const KUBEADM = join(PROJECT_ROOT, ".tools", "bin", "kubeadm");
const VERSIONS_JSON = join(PROJECT_ROOT, ".tools", "versions.json");

function flannelConfig(version = "1.34.12"): BootstrapConfig {
  const raw = kvmSpec();
  raw.masters = { count: 1 };
  raw.kubernetes = { version, cni: "flannel", packages: "image", podCidr: "10.244.0.0/16" };
  return {
    spec: parseClusterSpec(raw, "stacks/Pulumi.t.yaml"),
    apiEndpoint: "https://api.g8s-edge7.svc:6443",
    delivery: KVM_DELIVERY,
  };
}

function addonsOf(config: BootstrapConfig): Record<string, unknown>[] {
  const first = buildCloudConfig(config, rolesOf(config)[0]);
  const file = first.write_files.find((f) => f.path === ADDONS_PATH);
  assert.ok(file, "the first master writes the add-ons");
  return parseAllDocuments(file.content).map((d) => d.toJS() as Record<string, unknown>);
}

/** Every `image:` of a set of documents. */
function imagesIn(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(imagesIn);
  if (value === null || typeof value !== "object") return [];
  return Object.entries(value).flatMap(([k, v]) => (k === "image" && typeof v === "string" ? [v] : imagesIn(v)));
}

describe("bootstrap: flannel from the node image", () => {
  it("applies flannel once from the first master: VXLAN over the spec's pod range, on every node", () => {
    const docs = addonsOf(flannelConfig());
    const kinds = docs.map((d) => `${String(d.kind)}/${String((d.metadata as { name: string }).name)}`);
    for (const k of [
      "Namespace/kube-flannel",
      "ClusterRole/flannel",
      "ConfigMap/kube-flannel-cfg",
      "DaemonSet/flannel",
    ]) {
      assert.ok(kinds.includes(k), `${k} in ${kinds.join(", ")}`);
    }
    const cm = docs.find((d) => d.kind === "ConfigMap") as { data: Record<string, string> };
    assert.deepEqual(JSON.parse(cm.data["net-conf.json"]), {
      Network: "10.244.0.0/16",
      Backend: { Type: "vxlan", Port: 8472 },
    });
    assert.deepEqual(JSON.parse(cm.data["cni-conf.json"]), flannelCniConfig());
    const ds = docs.find((d) => d.kind === "DaemonSet") as {
      spec: { template: { spec: { tolerations: unknown[]; hostNetwork: boolean } } };
    };
    assert.deepEqual(ds.spec.template.spec.tolerations, [{ operator: "Exists" }]);
    assert.equal(ds.spec.template.spec.hostNetwork, true);
    assert.deepEqual([...new Set(imagesIn(docs))], [NODE_IMAGE_FLANNEL]);
  });

  it("fetches nothing at boot: no URL in any node's commands, no Calico", () => {
    const config = flannelConfig();
    for (const role of rolesOf(config)) {
      const doc = buildCloudConfig(config, role);
      assert.doesNotMatch(JSON.stringify(doc.runcmd), /https?:\/\//, `${role.kind} runs nothing from the network`);
      assert.doesNotMatch(renderCloudConfig(config, role), /tigera|calico|apt-get/i);
    }
  });

  it("runs the node image's etcd and pause, and kubeadm's defaults with apt packages", () => {
    const image = flannelConfig();
    const kubeadm = buildCloudConfig(image, rolesOf(image)[0]).write_files.find((f) => f.path === KUBEADM_CONFIG_PATH);
    assert.match(kubeadm?.content ?? "", new RegExp(`imageTag: ${NODE_IMAGE_ETCD_TAG.replace(/\./g, "\\.")}`));
    assert.match(containerdConfig("1.34.12"), /sandbox_image = "registry\.k8s\.io\/pause:3\.10\.1"/);
    assert.match(containerdConfig("1.34.12"), /^restrict_oom_score_adj = true$/m);
    assert.equal(pauseImageOf("1.33.5"), "registry.k8s.io/pause:3.10");
    const raw = kvmSpec();
    raw.kubernetes = { version: "1.34.12" };
    const apt: BootstrapConfig = { ...image, spec: parseClusterSpec(raw, "stacks/Pulumi.t.yaml") };
    const aptKubeadm = buildCloudConfig(apt, rolesOf(apt)[0]).write_files.find((f) => f.path === KUBEADM_CONFIG_PATH);
    assert.doesNotMatch(aptKubeadm?.content ?? "", /imageTag/);
  });

  it("names only images the node image holds, for each Kubernetes version it holds (kubeadm's own list)", function () {
    assert.ok(existsSync(IMAGES_JSON), `${IMAGES_JSON} is missing: run \`npm run toolchain\``);
    const held = (JSON.parse(readFileSync(IMAGES_JSON, "utf8")) as { images: { ref: string }[] }).images.map(
      (i) => i.ref,
    );
    const versions = JSON.parse(readFileSync(VERSIONS_JSON, "utf8")) as { tools: Record<string, { version: string }> };
    // The spec's list of the image's versions is the toolchain's: its own and the next minor's.
    assert.deepEqual(NODE_IMAGE_KUBERNETES_VERSIONS, [
      versions.tools["kubernetes-node"].version,
      versions.tools["kubernetes-next"].version,
    ]);
    const dir = mkdtempSync(join(tmpdir(), "g8s-images-"));
    try {
      for (const version of NODE_IMAGE_KUBERNETES_VERSIONS) {
        // kubeadm of that version lists what it deploys with g8s's configuration (its pinned
        // etcd and CoreDNS tags included): the upgrade to the next minor pulls nothing either.
        const kubeadm =
          version === versions.tools["kubernetes-node"].version
            ? KUBEADM
            : join(PROJECT_ROOT, ".tools", "share", "kubernetes-next", `v${version}`, "kubeadm");
        const config = flannelConfig(version);
        const file = buildCloudConfig(config, rolesOf(config)[0]).write_files.find(
          (f) => f.path === KUBEADM_CONFIG_PATH,
        );
        writeFileSync(join(dir, "kubeadm.yaml"), file?.content ?? "");
        const r = spawnSync(kubeadm, ["config", "images", "list", "--config", join(dir, "kubeadm.yaml")], {
          encoding: "utf8",
        });
        assert.equal(r.status, 0, r.stderr);
        const wanted = [...r.stdout.trim().split("\n"), NODE_IMAGE_FLANNEL, pauseImageOf(version)];
        assert.ok(wanted.includes(`registry.k8s.io/kube-apiserver:v${version}`), r.stdout);
        const missing = wanted.filter((ref) => !held.includes(ref));
        assert.deepEqual(
          missing,
          [],
          `${version}: images the nodes need but the node image lacks (held: ${held.join(", ")})`,
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
