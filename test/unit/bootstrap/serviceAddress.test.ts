import * as assert from "node:assert/strict";
import { parse, parseAllDocuments } from "yaml";
import { buildCloudConfig, kubeadmConfigFor, SERVICE_ADDRESS_NETWORK_PATH } from "../../../components/bootstrap";
import { kvmConfig } from "./helpers";

describe("bootstrap: a KVM master's Service address", () => {
  const config = kvmConfig(3);

  it("is advertised for the API and etcd, while the kubelet keeps the pod's own address", () => {
    const [init] = parseAllDocuments(
      kubeadmConfigFor(config, { kind: "first-master", master: "master-0", serviceAddress: "10.96.4.1" }),
    ).map(
      (d) =>
        d.toJS() as {
          localAPIEndpoint: { advertiseAddress?: string };
          nodeRegistration: { kubeletExtraArgs: { name: string }[] };
        },
    );
    assert.equal(init.localAPIEndpoint.advertiseAddress, "10.96.4.1");
    assert.ok(!init.nodeRegistration.kubeletExtraArgs.some((a) => a.name === "node-ip"));
    const join = parse(
      kubeadmConfigFor(config, { kind: "master", master: "master-1", serviceAddress: "10.96.4.2" }),
    ) as {
      controlPlane: { localAPIEndpoint: { advertiseAddress?: string } };
      nodeRegistration: { kubeletExtraArgs: { name: string }[] };
    };
    assert.equal(join.controlPlane.localAPIEndpoint.advertiseAddress, "10.96.4.2");
    assert.ok(!join.nodeRegistration.kubeletExtraArgs.some((a) => a.name === "node-ip"));
  });

  it("is put on lo before kubeadm runs, and kept there across reboots", () => {
    const doc = buildCloudConfig(config, { kind: "first-master", master: "master-0", serviceAddress: "10.96.4.1" });
    const cmds = doc.runcmd.map((c) => (typeof c === "string" ? c : c.join(" ")));
    const add = cmds.indexOf("ip address replace 10.96.4.1/32 dev lo");
    assert.ok(add >= 0 && add < cmds.findIndex((c) => c.startsWith("kubeadm init")), cmds.join("\n"));
    const network = doc.write_files.find((f) => f.path === SERVICE_ADDRESS_NETWORK_PATH);
    assert.match(network?.content ?? "", /Name=lo[\s\S]*Address=10\.96\.4\.1\/32/);
    const plain = buildCloudConfig(config, { kind: "first-master", master: "master-0" });
    assert.ok(!plain.write_files.some((f) => f.path === SERVICE_ADDRESS_NETWORK_PATH));
  });
});
