/**
 * Every kubeadm document g8s renders, checked by the real kubeadm (`kubeadm config validate`, the
 * binary `npm run toolchain` builds from k8s.io/kubernetes): aws and kvm, 1, 3 and 5 masters, every
 * role. The hand-written v1beta4 schema (cloudConfig.test.ts) stays for the minors this machine
 * cannot build; kubeadm is the authority for the one it can.
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PROJECT_ROOT } from "../../../automation/engine";
import { buildCloudConfig, type BootstrapConfig } from "../../../components/bootstrap";
import { DISCOVERY_KUBECONFIG_PATH, KUBEADM_CONFIG_PATH } from "../../../components/bootstrap/constants";
import { awsConfig, kvmConfig, rolesOf } from "./helpers";

const KUBEADM = join(PROJECT_ROOT, ".tools", "bin", "kubeadm");

/** The minor the toolchain's kubeadm deploys: documents are rendered for its exact version. */
function kubeadmVersion(): string {
  const r = spawnSync(KUBEADM, ["version", "-o", "short"], { encoding: "utf8" });
  assert.equal(r.status, 0, `${KUBEADM} version failed: ${r.stderr}`);
  return r.stdout.trim().replace(/^v/, "");
}

function atVersion(config: BootstrapConfig, version: string): BootstrapConfig {
  return { ...config, spec: { ...config.spec, kubernetes: { ...config.spec.kubernetes, version } } };
}

function validate(file: string): { ok: boolean; output: string } {
  const r = spawnSync(KUBEADM, ["config", "validate", "--config", file], { encoding: "utf8" });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}`.trim() };
}

describe("bootstrap: kubeadm documents against the real kubeadm", function () {
  this.timeout(120_000);
  let dir: string;
  let version: string;

  before(function () {
    assert.ok(existsSync(KUBEADM), `${KUBEADM} is missing: run \`npm run toolchain\` (it builds kubeadm)`);
    version = kubeadmVersion();
    dir = mkdtempSync(join(tmpdir(), "g8s-kubeadm-"));
    // Join documents name the discovery kubeconfig by path, and kubeadm checks that the file exists;
    // the copy points at a placeholder here instead of the node's path (the only edit made).
    writeFileSync(join(dir, "discovery.conf"), "apiVersion: v1\nkind: Config\n");
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const configs = (["aws", "kvm"] as const).flatMap((provider) =>
    ([1, 3, 5] as const).map((masters) => ({
      label: `${provider}/${masters}m`,
      make: () => (provider === "aws" ? awsConfig(masters) : kvmConfig(masters)),
    })),
  );

  for (const { label, make } of configs) {
    it(`${label}: kubeadm config validate accepts every role's document`, () => {
      const config = atVersion(make(), version);
      const roles = rolesOf(config);
      for (const [i, role] of roles.entries()) {
        const doc = buildCloudConfig(config, role).write_files.find((f) => f.path === KUBEADM_CONFIG_PATH);
        assert.ok(doc, `${label} role ${i}: no ${KUBEADM_CONFIG_PATH}`);
        const file = join(dir, `${label.replace("/", "-")}-${i}.yaml`);
        writeFileSync(file, doc.content.split(DISCOVERY_KUBECONFIG_PATH).join(join(dir, "discovery.conf")));
        const r = validate(file);
        assert.ok(r.ok, `${label} ${role.kind} (${i}): kubeadm refused the document:\n${r.output}`);
        assert.doesNotMatch(r.output, /^W\d{4}/m, `${label} ${role.kind} (${i}): kubeadm warned:\n${r.output}`);
      }
    });
  }

  it("refuses a broken document (the check can fail)", () => {
    const config = atVersion(kvmConfig(1), version);
    const doc = buildCloudConfig(config, rolesOf(config)[0]).write_files.find((f) => f.path === KUBEADM_CONFIG_PATH);
    assert.ok(doc);
    const file = join(dir, "broken.yaml");
    writeFileSync(file, doc.content.replace("serviceSubnet:", "serviceSubnetz:"));
    const r = validate(file);
    assert.equal(r.ok, false);
    assert.match(r.output, /serviceSubnetz/);
  });
});
