import * as assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import {
  BOOTSTRAP_TOKEN_RE,
  bootstrapToken,
  buildCloudConfig,
  checkBootstrapToken,
  deliveryWriteFiles,
  nodeFiles,
  renderIni,
  renewalUnits,
  secretFilesFor,
  storeFileValues,
} from "../../../components/bootstrap";
import { AWS_DELIVERY, FAKE_CA, KVM_DELIVERY, awsConfig, fakeSecrets, rolesOf } from "./helpers";

const context = { clusterId: "eu1prod", apiEndpoint: "https://api.eu1prod.k8s.example.com:6443" };
const masters = ["master-0", "master-1", "master-2"];

function promiseOf<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => output.apply(resolve));
}

describe("bootstrap: secrets", () => {
  it("derives a kubeadm-format token deterministically, distinct per cluster and seed", () => {
    const seed = "a-very-secret-seed-of-some-length";
    const token = bootstrapToken(seed, "eu1prod");
    assert.match(token, BOOTSTRAP_TOKEN_RE);
    assert.equal(bootstrapToken(seed, "eu1prod"), token);
    assert.notEqual(bootstrapToken(seed, "edge7"), token);
    assert.notEqual(bootstrapToken(`${seed}x`, "eu1prod"), token);
    assert.throws(() => bootstrapToken("short", "eu1prod"), /at least 16 characters/);
    assert.match(checkBootstrapToken("ABCDEF.0123456789abcdef") ?? "", /must match \[a-z0-9\]\{6\}/);
  });

  it("gives private keys, kubeconfigs and the token mode 0600 and certificates 0644", () => {
    for (const role of ["master", "worker"] as const) {
      for (const f of storeFileValues(role, masters, fakeSecrets(masters), context)) {
        if (f.name.endsWith(".key") || f.name.endsWith(".conf") || f.name === "bootstrap-token") {
          assert.equal(f.mode, "0600", f.name);
          assert.equal(f.secret, true, f.name);
        } else {
          assert.equal(f.mode, "0644", f.name);
          assert.match(f.name, /\.(crt|pub)$/);
        }
      }
    }
  });

  it("lays out kubeadm's external-CA files on masters: ca.crt without ca.key, each master its etcd certificate", () => {
    const paths = nodeFiles({ kind: "master", master: "master-1" }).map((f) => f.path);
    assert.ok(paths.includes("/etc/kubernetes/pki/ca.crt"));
    assert.ok(!paths.some((p) => p.endsWith("ca.key")), "kubeadm must not hold a CA key");
    for (const p of ["apiserver.key", "front-proxy-client.crt", "sa.key", "etcd/server.crt", "etcd/peer.key"]) {
      assert.ok(paths.includes(`/etc/kubernetes/pki/${p}`), p);
    }
    const values = storeFileValues("master", masters, fakeSecrets(masters), context);
    const etcd = values.find((f) => f.name === "master-1-etcd-server.crt");
    assert.match(String(etcd?.value), /FAKECERTetcd-master-1/);
    assert.deepEqual(
      values.filter((f) => f.name === "bootstrap-token").map((f) => f.value),
      ["s3cr3t.t0k3nvaluex9q2w7\n"],
    );
  });

  it("writes kubeconfigs that reference the client certificate by path and pin the CA", () => {
    const kubelet = storeFileValues("worker", masters, fakeSecrets(masters), context).find(
      (f) => f.name === "kubelet.conf",
    );
    const config = parse(String(kubelet?.value)) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.equal(config.clusters[0].cluster.server, context.apiEndpoint);
    assert.equal(Buffer.from(config.clusters[0].cluster["certificate-authority-data"], "base64").toString(), FAKE_CA);
    assert.deepEqual(config.users[0].user, {
      "client-certificate": "/etc/kubernetes/pki/g8s/kubelet-client.crt",
      "client-key": "/etc/kubernetes/pki/g8s/kubelet-client.key",
    });
  });

  it("secretFilesFor returns secret Outputs for every file", async () => {
    const secrets = fakeSecrets(masters);
    const files = secretFilesFor("worker", masters, { ...secrets }, context);
    assert.deepEqual(
      files.map((f) => f.name),
      ["ca.crt", "kubelet-client.crt", "kubelet-client.key", "kubelet.conf", "discovery.conf"],
    );
    for (const f of files) {
      const out = f.value as pulumi.Output<string>;
      assert.equal(await pulumi.isSecret(out), true, f.name);
    }
    const discovery = await promiseOf(files[4].value as pulumi.Output<string>);
    assert.match(discovery, /token: s3cr3t\.t0k3nvaluex9q2w7/);
  });

  describe("renewal on running nodes", () => {
    it("installs a sync service and timer (aws) and also a path unit on the mounted Secret (kvm)", () => {
      assert.deepEqual(Object.keys(renewalUnits(AWS_DELIVERY)), ["g8s-secret-sync.service", "g8s-secret-sync.timer"]);
      const kvm = renewalUnits(KVM_DELIVERY);
      assert.equal(
        renderIni(kvm["g8s-secret-sync.path"]),
        "[Unit]\nDescription=g8s: re-sync certificates when the mounted Secret changes\n\n" +
          "[Path]\nPathChanged=/mnt/g8s-secrets\n\n[Install]\nWantedBy=paths.target\n",
      );
      assert.match(
        renderIni(kvm["g8s-secret-sync.service"]),
        /ExecStart=\/usr\/local\/sbin\/g8s-sync-secrets --reload/,
      );
      assert.match(renderIni(kvm["g8s-secret-sync.timer"]), /OnUnitActiveSec=15min\nRandomizedDelaySec=5min/);
    });

    it("reloads the component that reads a renewed file: kubelet restarts, control-plane containers restart", () => {
      const byName = Object.fromEntries(nodeFiles({ kind: "master", master: "master-0" }).map((f) => [f.name, f]));
      assert.deepEqual(byName["kubelet-client.crt"].reload, ["kubelet"]);
      assert.deepEqual(byName["apiserver-etcd-client.key"].reload, ["kube-apiserver"]);
      assert.deepEqual(byName["scheduler.crt"].reload, ["kube-scheduler"]);
      // The API server signs projected tokens with sa.key, the controller manager legacy ones;
      // sa.pub (every trusted key) is the API server's alone.
      assert.deepEqual(byName["sa.key"].reload, ["kube-apiserver", "kube-controller-manager"]);
      assert.deepEqual(byName["sa.pub"].reload, ["kube-apiserver"]);
      // What the script does with these lists: syncScript.test.ts runs it.
    });

    it("writes the delivery env without secrets: kind, region, and a PATH with the AWS CLI's snap", () => {
      const env = deliveryWriteFiles(AWS_DELIVERY, "eu1prod", { kind: "worker", pool: "general" })[0];
      assert.equal(
        env.content,
        "G8S_DELIVERY=aws-ssm\nAWS_REGION=eu-central-1\n" +
          "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/snap/bin\nG8S_API_PORT=6443\n" +
          "G8S_CRI_SOCKET=unix:///run/containerd/containerd.sock\n",
      );
    });

    it("installs the AWS CLI from its snap before anything calls it (Ubuntu 24.04 has no awscli package)", () => {
      const config = awsConfig(1);
      for (const role of rolesOf(config)) {
        const runcmd = JSON.stringify(buildCloudConfig(config, role).runcmd);
        assert.doesNotMatch(runcmd, /"awscli"/, "no apt package awscli");
        const install = runcmd.indexOf("snap install aws-cli --classic");
        assert.ok(install > 0, runcmd);
        for (const user of ["g8s-attach-master", "g8s-sync-secrets"]) {
          const at = runcmd.indexOf(user);
          assert.ok(at === -1 || at > install, `${user} runs after the CLI is installed`);
        }
      }
    });
  });
});
