/** AWS masters attach their slot's fixed-IP interface and etcd volume before kubeadm runs. */
import * as assert from "node:assert/strict";
import { parse, parseAllDocuments } from "yaml";
import { ATTACH_SCRIPT_PATH, buildCloudConfig, kubeadmConfigFor } from "../../../components/bootstrap";
import { awsConfig, fakeAttachment, kvmConfig } from "./helpers";

describe("AWS master attachment", () => {
  const config = awsConfig(3);
  const second = { kind: "master", master: "master-1", attach: fakeAttachment(1) } as const;

  it("writes the attach script with the slot's interface and volume, and runs it before anything else", () => {
    const doc = buildCloudConfig(config, second);
    const script = doc.write_files.find((f) => f.path === ATTACH_SCRIPT_PATH);
    assert.ok(script, "attach script written");
    assert.equal(script.permissions, "0755");
    assert.match(script.content, /attach-network-interface --region eu-central-1 --network-interface-id eni-0abc1 /);
    assert.match(script.content, /attach-volume --region eu-central-1 --volume-id vol-0def1 /);
    assert.match(script.content, /nvme-Amazon_Elastic_Block_Store_vol0def1/);
    assert.match(script.content, /mount "\$DEV" \/var\/lib\/etcd-disk\n/);
    const order = doc.runcmd.map((c) => (typeof c === "string" ? c : c.join(" ")));
    assert.equal(
      order.indexOf(ATTACH_SCRIPT_PATH),
      order.findIndex((c) => c.startsWith("mkdir -p")) + 1,
      "right after set -eu, the failure trap and the state directories",
    );
    assert.ok(order.indexOf(ATTACH_SCRIPT_PATH) < order.findIndex((c) => c.includes("until kubeadm join")));
  });

  it("advertises the fixed IP for the API and etcd and as the kubelet's node IP", () => {
    const join = parse(kubeadmConfigFor(config, second)) as {
      controlPlane: { localAPIEndpoint: { advertiseAddress: string } };
      nodeRegistration: { kubeletExtraArgs: Array<{ name: string; value: string }> };
    };
    assert.equal(join.controlPlane.localAPIEndpoint.advertiseAddress, "10.1.0.11");
    assert.deepEqual(
      join.nodeRegistration.kubeletExtraArgs.find((a) => a.name === "node-ip"),
      { name: "node-ip", value: "10.1.0.11" },
    );
    const [init] = parseAllDocuments(
      kubeadmConfigFor(config, { kind: "first-master", master: "master-0", attach: fakeAttachment(0) }),
    ).map((d) => d.toJS() as { localAPIEndpoint: { advertiseAddress?: string } });
    assert.equal(init.localAPIEndpoint.advertiseAddress, "10.1.0.10");
  });

  it("attaches nothing on workers and on KVM masters", () => {
    for (const [cfg, role] of [
      [config, { kind: "worker", pool: config.spec.nodePools[0].name }],
      [kvmConfig(3), { kind: "master", master: "master-1" }],
    ] as const) {
      const doc = buildCloudConfig(cfg, role);
      assert.equal(
        doc.write_files.some((f) => f.path === ATTACH_SCRIPT_PATH),
        false,
      );
      assert.doesNotMatch(kubeadmConfigFor(cfg, role), /advertiseAddress/);
    }
  });
});
