/** The real node's plan and files (automation/host/realNode.ts): pure, no root, no processes. */
import * as assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { componentArgs, hostLayout, toolchainPaths } from "../../../automation/host/config";
import { certificateTable } from "../../../automation/host/pki";
import {
  cniConfig,
  devicePluginDaemonSet,
  devicePluginImage,
  kubeletConfig,
  kubeletFlags,
  REAL_NODE_LABEL,
  realNodePlan,
  seedFiles,
} from "../../../automation/host/realNode";

const PORTS = { etcdClient: 1, etcdPeer: 2, apiserver: 3, controllerManager: 4, scheduler: 5, kwok: 6 };

describe("host real node: plan and files", () => {
  it("gives each host dir its own bridge, network, pod range and machine name, within interface-name limits", () => {
    const a = realNodePlan("/tmp/a/host");
    const b = realNodePlan("/tmp/b/host");
    assert.deepEqual(realNodePlan("/tmp/a/host/"), a, "stable for the same dir");
    assert.notEqual(a.bridge, b.bridge);
    assert.notEqual(a.machine, b.machine);
    for (const p of [a, b]) {
      assert.ok(p.bridge.length <= 15, p.bridge);
      assert.match(p.network, /^10\.126\.\d+\.0\/24$/);
      assert.equal(p.bridgeAddress, p.network.replace(/0\/24$/, "1"));
      assert.equal(p.nodeAddress, p.network.replace(/0\/24$/, "10"));
      assert.equal(p.podCidr, p.network.replace("10.126.", "10.127."));
    }
  });

  it("names the node, its address and label in the kubelet's flags; the seed gives it that address", () => {
    const p = realNodePlan("/h");
    assert.equal(
      kubeletFlags(p),
      `KUBELET_EXTRA_ARGS="--hostname-override=g8s-host-real-0 --node-ip=${p.nodeAddress} --node-labels=${REAL_NODE_LABEL}=true"\n`,
    );
    const seed = seedFiles(p, "/h");
    assert.match(seed["meta-data"], /^local-hostname: g8s-host-real-0$/m);
    assert.match(seed["network-config"], new RegExp(`addresses: \\[${p.nodeAddress.replace(/\./g, "\\.")}/24\\]`));
    assert.match(seed["network-config"], new RegExp(`via: ${p.bridgeAddress.replace(/\./g, "\\.")}`));
  });

  it("keeps the kubelet from deleting the node's imported images on a full host disk", () => {
    const c = kubeletConfig();
    assert.match(c, /^imageGCHighThresholdPercent: 100$/m);
    assert.match(c, /^cgroupDriver: systemd$/m);
    assert.match(c, /anonymous: \{ enabled: false \}/);
  });

  it("puts pods on a bridge network of the node's pod range", () => {
    const p = realNodePlan("/h");
    const conf = JSON.parse(cniConfig(p)) as { plugins: { type: string; ipam?: { ranges: { subnet: string }[][] } }[] };
    assert.deepEqual(
      conf.plugins.map((x) => x.type),
      ["bridge", "portmap"],
    );
    assert.equal(conf.plugins[0].ipam?.ranges[0][0].subnet, p.podCidr);
  });

  it("runs the device plugin on real nodes only, unprivileged, from the imported image", () => {
    const ds = devicePluginDaemonSet("g8s.local/kvm-device-plugin:abc") as {
      spec: { template: { spec: Record<string, unknown> & { containers: Record<string, unknown>[] } } };
    };
    const pod = ds.spec.template.spec;
    assert.deepEqual(pod.nodeSelector, { [REAL_NODE_LABEL]: "true" });
    const c = pod.containers[0];
    assert.equal(c.image, "g8s.local/kvm-device-plugin:abc");
    assert.equal(c.imagePullPolicy, "Never");
    assert.equal((c.securityContext as { privileged?: boolean }).privileged, undefined);
  });

  it("reads the plugin's image from images.json, naming the build command when it is missing", () => {
    const share = mkdtempSync(path.join(tmpdir(), "g8s-share-"));
    try {
      assert.throws(
        () => devicePluginImage(share),
        /images\.json is missing: run 'bash tools\/build\.sh kvm-device-plugin'/,
      );
      mkdirSync(path.join(share, "kvm-device-plugin"));
      writeFileSync(
        path.join(share, "kvm-device-plugin", "images.json"),
        JSON.stringify({ images: [{ ref: "g8s.local/kvm-device-plugin:x", file: "p.tar" }] }),
      );
      assert.throws(() => devicePluginImage(share), /p\.tar \(named by .*\) is missing/);
      writeFileSync(path.join(share, "kvm-device-plugin", "p.tar"), "");
      assert.equal(devicePluginImage(share).ref, "g8s.local/kvm-device-plugin:x");
    } finally {
      rmSync(share, { recursive: true, force: true });
    }
  });

  it("binds the API on every address and names the bridge in its certificate only for a real node", () => {
    const layout = hostLayout("/h");
    const tc = toolchainPaths("/repo");
    assert.ok(componentArgs("kube-apiserver", layout, PORTS, tc).includes("--bind-address=127.0.0.1"));
    assert.ok(
      componentArgs("kube-apiserver", layout, PORTS, tc, { realNode: true }).includes("--bind-address=0.0.0.0"),
    );
    const real = { apiAddress: "10.126.7.1", certName: "kubelet-real-0", nodeName: "g8s-host-real-0" };
    const table = certificateTable(undefined, real);
    assert.deepEqual(table.find((c) => c.name === "apiserver")?.ipAddresses, ["127.0.0.1", "10.96.0.1", "10.126.7.1"]);
    const kubelet = table.find((c) => c.name === "kubelet-real-0");
    assert.equal(kubelet?.commonName, "system:node:g8s-host-real-0");
    assert.deepEqual(kubelet?.organizations, ["system:nodes"]);
    assert.equal(
      certificateTable().find((c) => c.name === "kubelet-real-0"),
      undefined,
    );
  });
});
