/** The pure parts of components/kvm: names, endpoints, sizing and argument checks. */
import * as assert from "node:assert/strict";
import { parseClusterSpec } from "../../../components/spec";
import { checkKvmClusterArgs } from "../../../components/kvm/cluster";
import { checkNodeSecretNames, kvmApiEndpoint, kvmNamespace, poolSetName } from "../../../components/kvm/naming";
import { podMemoryMiB } from "../../../components/kvm/workload";
import { awsSpec } from "../spec/helpers";
import { kvmClusterSpec, nodeSecrets, userData } from "./helpers";

describe("kvm naming and sizing", () => {
  it("names the namespace and pool StatefulSets from the spec only", () => {
    assert.equal(kvmNamespace(kvmClusterSpec(1)), "g8s-edge7");
    assert.equal(kvmNamespace(kvmClusterSpec(1, (s) => (s.kvm.namespacePrefix = "vm-"))), "vm-edge7");
    assert.equal(poolSetName("big"), "pool-big");
  });

  it("points the API endpoint at the Service, or at api.<id>.<baseDomain> with an Ingress", () => {
    assert.equal(kvmApiEndpoint(kvmClusterSpec(3)), "https://api.g8s-edge7.svc:6443");
    assert.equal(kvmApiEndpoint(kvmClusterSpec(3), { className: "nginx" }), "https://api.edge7.k8s.corp.internal");
  });

  it("adds a fixed 256 MiB plus 16 MiB per vCPU for QEMU to the guest memory", () => {
    assert.equal(podMemoryMiB(1, 1), 1024 + 256 + 16);
    assert.equal(podMemoryMiB(4, 16), 16384 + 256 + 64);
  });

  it("accepts plain file names and refuses paths, dot names and empty sets", () => {
    assert.equal(checkNodeSecretNames("master", ["ca.crt", "etcd-master-0.key", "sa_pub.pem"]), undefined);
    assert.equal(
      checkNodeSecretNames("master", ["..data", "etcd/ca.crt", "ok"]),
      "nodeSecrets.master has file names that cannot be Secret keys: '..data', 'etcd/ca.crt'; " +
        "use letters, digits, '-', '_' and '.' only (flatten directories, e.g. 'etcd-ca.crt')",
    );
    assert.equal(
      checkNodeSecretNames("worker", []),
      "nodeSecrets.worker is empty: pass the workers' certificate files",
    );
  });

  it("refuses a spec of another provider", () => {
    const spec = parseClusterSpec(awsSpec()) as unknown as ReturnType<typeof kvmClusterSpec>;
    assert.equal(
      checkKvmClusterArgs({ spec, userData, nodeSecrets }),
      "KvmCluster needs a spec with provider 'kvm' (got 'aws')",
    );
    assert.equal(checkKvmClusterArgs({ spec: kvmClusterSpec(1), userData, nodeSecrets }), undefined);
  });
});
