/** The QEMU pods' secret share with an object store for etcd snapshots: the operator's keys, masters only. */
import * as assert from "node:assert/strict";
import { nodeSetSpec, podVolumes, type NodeSetOptions } from "../../../components/kvm/workload";
import { kvmClusterSpec } from "./helpers";

const options = (role: "master" | "worker", withStore: boolean): NodeSetOptions => ({
  spec: kvmClusterSpec(1, (s) => {
    if (withStore) {
      s.etcd = {
        backup: { objectStore: { endpoint: "https://s3.corp.internal", bucket: "etcd", credentialsSecret: "etcd-s3" } },
      };
    }
  }),
  role,
  selector: { app: role },
  replicas: 1,
  cpus: 2,
  memoryGiB: 4,
  diskGiB: 20,
  serviceName: "svc",
  userDataSecret: "user-data",
  nodeSecretsSecret: `${role}-secrets`,
});

describe("KVM: the node secret share with etcd.backup.objectStore", () => {
  const share = (role: "master" | "worker", withStore: boolean) =>
    podVolumes(options(role, withStore)).find((v) => v.name === "node-secrets");

  it("projects the credentialsSecret's two keys beside a master's files, as the files g8s-object-store reads", () => {
    assert.deepEqual(share("master", true), {
      name: "node-secrets",
      projected: {
        defaultMode: 0o400,
        sources: [
          { secret: { name: "master-secrets" } },
          {
            secret: {
              name: "etcd-s3",
              optional: true,
              items: [
                { key: "accessKeyId", path: "etcd-backup-access-key-id" },
                { key: "secretAccessKey", path: "etcd-backup-secret-access-key" },
              ],
            },
          },
        ],
      },
    });
  });

  it("gives workers, and masters without a store, the plain Secret volume", () => {
    assert.deepEqual(share("worker", true), {
      name: "node-secrets",
      secret: { secretName: "worker-secrets", defaultMode: 0o400 },
    });
    assert.deepEqual(share("master", false), {
      name: "node-secrets",
      secret: { secretName: "master-secrets", defaultMode: 0o400 },
    });
  });
});

describe("KVM: how a changed template reaches the VMs", () => {
  it("OnDelete for masters and workers: the reconciler restarts each VM after draining its node (automation/access/roll.ts)", () => {
    for (const role of ["master", "worker"] as const) {
      assert.deepEqual(nodeSetSpec(options(role, false)).updateStrategy, { type: "OnDelete" }, role);
    }
  });
});
