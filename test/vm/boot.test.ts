/**
 * The KVM platform's VM wiring, booted for real: `g8s lab up --vm pool-default-0` runs the master
 * as a system container and the worker as a QEMU VM through the platform's own pod entrypoint
 * (tools/qemu-node/entrypoint.sh) with its StatefulSet's environment, in a network namespace that
 * stands in for the pod: the disk copied from the node image, the NoCloud seed from the user-data
 * Secret, the node Secret shared over virtio 9p, the pod's address handed to the VM by DHCP. The
 * worker must join and become Ready, and run a pod. Emulated (TCG) on this machine: slow, so not
 * part of `npm test` (`npm run test:vm`). Needs root and the toolchain's node image.
 */
import * as assert from "node:assert/strict";
import { useLab } from "../lab/harness";

const VM = "pool-default-0";
/** Minutes per lab phase: an emulated VM boots in ~3-5 and runs cloud-init for ~4-6 more. */
const TIMEOUT_MINUTES = 45;
/** Imported into the node image: nothing is pulled. */
const POD_IMAGE = "registry.k8s.io/pause:3.10.1";

describe("vm: a worker boots as a QEMU VM through the pod entrypoint and joins (1 master container + 1 VM)", function () {
  this.timeout(3 * TIMEOUT_MINUTES * 60_000);
  const lab = useLab(
    {
      id: "vm9",
      masters: 1,
      workers: 1,
      serviceCidr: "172.28.0.0/16",
      podCidr: "10.62.0.0/16",
      workerMemoryGiB: 2,
      accel: "auto",
    },
    TIMEOUT_MINUTES,
    ["--vm", VM],
  );

  it("has the master and the VM worker Ready", () => {
    assert.deepEqual([...lab.readiness()].sort(), [
      ["master-0", "True"],
      [VM, "True"],
    ]);
  });

  it("runs the worker in a VM that holds the pod's address and mounts the node Secret over 9p", () => {
    const share = lab.onVm(VM, "findmnt", "-n", "-o", "FSTYPE,OPTIONS", "/mnt/g8s-secrets");
    assert.match(share.out, /^9p\s+ro,/, `the share: ${share.out} ${share.err}`);
    assert.equal(lab.onVm(VM, "test", "-s", "/mnt/g8s-secrets/ca.crt").code, 0, "ca.crt is readable through the share");
    const internal = lab.kubectl(
      "get",
      "node",
      VM,
      "-o",
      "jsonpath={.status.addresses[?(@.type=='InternalIP')].address}",
    );
    const inVm = lab.onVm(VM, "ip", "-4", "-o", "address", "show", "scope", "global");
    assert.ok(inVm.out.includes(` ${internal.out}/`), `the VM holds the node's address ${internal.out}: ${inVm.out}`);
    const figures = lab.onVm(VM, "sh", "-c", "systemd-analyze; systemd-analyze blame | head -n 12; free -m");
    process.stdout.write(`${figures.out.replace(/^/gm, "        ")}\n`);
  });

  it("runs a pod on the VM worker", () => {
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "on-vm", namespace: "default" },
      spec: {
        nodeSelector: { "kubernetes.io/hostname": VM },
        containers: [{ name: "pause", image: POD_IMAGE, imagePullPolicy: "Never" }],
      },
    };
    const apply = lab.apply([pod]);
    assert.equal(apply.code, 0, apply.err);
    const ready = lab.kubectl("wait", "--for", "condition=Ready", "pod/on-vm", "--timeout", "600s");
    assert.equal(ready.code, 0, `${ready.err}\n${lab.kubectl("get", "pods", "-A", "-o", "wide").out}`);
    assert.equal(lab.kubectl("get", "pod", "on-vm", "-o", "jsonpath={.spec.nodeName}").out, VM);
  });
});
