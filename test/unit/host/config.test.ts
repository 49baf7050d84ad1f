/** The host cluster's command lines and environment: what each process is told, without running one. */
import * as assert from "node:assert/strict";
import * as path from "node:path";
import {
  COMPONENTS,
  componentArgs,
  componentEnv,
  firstServiceIp,
  hostLayout,
  KWOK_STAGE_FILES,
  toolchainPaths,
  type ComponentName,
  type HostPorts,
} from "../../../automation/host/config";
import { certificateTable, CAS } from "../../../automation/host/pki";

const layout = hostLayout("/tmp/hd");
const toolchain = toolchainPaths("/repo");
const ports: HostPorts = {
  etcdClient: 20001,
  etcdPeer: 20002,
  apiserver: 20003,
  controllerManager: 20004,
  scheduler: 20005,
  kwok: 20006,
};
const args = (c: ComponentName) => componentArgs(c, layout, ports, toolchain);
const flag = (c: ComponentName, name: string) =>
  args(c)
    .filter((a) => a.startsWith(`--${name}=`))
    .map((a) => a.slice(name.length + 3));

describe("host cluster command lines", () => {
  it("binds every server to 127.0.0.1 and nowhere else", () => {
    for (const c of COMPONENTS) {
      const addresses = args(c).flatMap((a) => a.match(/\b\d{1,3}(\.\d{1,3}){3}\b/g) ?? []);
      const listening = args(c).filter((a) => /^--(listen-|bind-address|server-address|advertise-)/.test(a));
      assert.ok(listening.length > 0, `${c} names where it listens`);
      for (const a of listening) assert.match(a, /127\.0\.0\.1/, `${c}: ${a}`);
      // The only other addresses are ranges (services, KWOK's pod IPs), never a listen address.
      for (const ip of addresses.filter((x) => x !== "127.0.0.1")) {
        assert.ok(
          args(c).some((a) => a.includes(`${ip}/`)),
          `${c}: ${ip} appears outside a CIDR`,
        );
      }
    }
  });

  it("gives each component its own ports from the host dir's state", () => {
    assert.deepEqual(flag("etcd", "listen-client-urls"), ["https://127.0.0.1:20001"]);
    assert.deepEqual(flag("etcd", "listen-peer-urls"), ["https://127.0.0.1:20002"]);
    assert.deepEqual(flag("kube-apiserver", "secure-port"), ["20003"]);
    assert.deepEqual(flag("kube-apiserver", "etcd-servers"), ["https://127.0.0.1:20001"]);
    assert.deepEqual(flag("kube-controller-manager", "secure-port"), ["20004"]);
    assert.deepEqual(flag("kube-scheduler", "secure-port"), ["20005"]);
    assert.deepEqual(flag("kwok", "server-address"), ["127.0.0.1:20006"]);
  });

  it("turns RBAC on and the Node authorizer with NodeRestriction", () => {
    assert.deepEqual(flag("kube-apiserver", "authorization-mode"), ["Node,RBAC"]);
    assert.deepEqual(flag("kube-apiserver", "enable-admission-plugins"), ["NodeRestriction"]);
  });

  it("requires client certificates on etcd for clients and peers", () => {
    assert.deepEqual(flag("etcd", "client-cert-auth"), ["true"]);
    assert.deepEqual(flag("etcd", "peer-client-cert-auth"), ["true"]);
    assert.deepEqual(flag("etcd", "trusted-ca-file"), [layout.cert("etcd/ca")]);
    assert.deepEqual(flag("kube-apiserver", "etcd-cafile"), [layout.cert("etcd/ca")]);
  });

  it("runs the controller manager with per-controller service accounts, the root CA and the token key", () => {
    assert.deepEqual(flag("kube-controller-manager", "use-service-account-credentials"), ["true"]);
    assert.deepEqual(flag("kube-controller-manager", "root-ca-file"), [layout.cert("ca")]);
    assert.deepEqual(flag("kube-controller-manager", "service-account-private-key-file"), [
      path.join(layout.pkiDir, "sa.key"),
    ]);
    assert.deepEqual(flag("kube-apiserver", "service-account-key-file"), [path.join(layout.pkiDir, "sa.pub")]);
  });

  it("runs one controller manager and one scheduler without leader election (a warm start never waits for a lease)", () => {
    assert.deepEqual(flag("kube-controller-manager", "leader-elect"), ["false"]);
    assert.deepEqual(flag("kube-scheduler", "leader-elect"), ["false"]);
  });

  it("lets KWOK manage only the nodes annotated as fake, with leases and the stage files", () => {
    assert.deepEqual(flag("kwok", "manage-all-nodes"), ["false"]);
    assert.deepEqual(flag("kwok", "manage-nodes-with-annotation-selector"), ["kwok.x-k8s.io/node=fake"]);
    assert.deepEqual(flag("kwok", "node-lease-duration-seconds"), ["40"]);
    assert.deepEqual(
      flag("kwok", "config"),
      KWOK_STAGE_FILES.map((f) => path.join("/repo/.tools/share/kwok/stages", f)),
    );
  });

  it("refers only to certificates the PKI table makes", () => {
    const made = new Set([
      ...CAS.flatMap((c) => [layout.cert(c.name), layout.key(c.name)]),
      ...certificateTable().flatMap((c) => [layout.cert(c.name), layout.key(c.name)]),
      path.join(layout.pkiDir, "sa.key"),
      path.join(layout.pkiDir, "sa.pub"),
    ]);
    for (const c of COMPONENTS) {
      for (const a of args(c)) {
        const value = a.split("=")[1] ?? "";
        if (value.startsWith(layout.pkiDir)) assert.ok(made.has(value), `${c}: ${a} is not made by the PKI`);
      }
    }
  });

  it("computes the kubernetes Service's address from the range", () => {
    assert.equal(firstServiceIp("10.96.0.0/16"), "10.96.0.1");
    assert.equal(firstServiceIp("172.30.7.9/16"), "172.30.0.1");
    assert.equal(firstServiceIp("192.168.1.0/24"), "192.168.1.1");
    assert.throws(() => firstServiceIp("fd00::/108"), /IPv4 range like 10.96.0.0\/16/);
    assert.throws(() => firstServiceIp("10.0.0.0/31"), /between \/8 and \/30/);
  });

  it("passes only PATH, HOME and KWOK's work dir to the components (no ETCD_*, KWOK_* or KUBECONFIG leaks in)", () => {
    const env = componentEnv(
      { PATH: "/bin", HOME: "/root", KUBECONFIG: "/x", ETCD_DATA_DIR: "/y", KWOK_KUBECONFIG: "/z", SECRET: "s" },
      layout,
    );
    assert.deepEqual(env, { PATH: "/bin", HOME: "/root", KWOK_WORKDIR: "/tmp/hd/kwok" });
  });

  it("keeps every file of the host dir under it", () => {
    assert.equal(layout.kubeconfig, "/tmp/hd/kubeconfig");
    assert.equal(layout.logFile("kube-apiserver"), "/tmp/hd/logs/kube-apiserver.log");
    assert.equal(layout.pidFile("etcd"), "/tmp/hd/run/etcd.pid");
    assert.equal(layout.cert("etcd/ca"), "/tmp/hd/pki/etcd/ca.crt");
    assert.equal(layout.componentKubeconfig("kwok"), "/tmp/hd/kubeconfigs/kwok.conf");
  });
});
