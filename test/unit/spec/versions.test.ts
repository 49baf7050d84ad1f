import * as assert from "node:assert/strict";
import { aptVersionChangeProblem, versionChangeProblem } from "../../../components/spec";

describe("kubernetes.version changes a running cluster can take", () => {
  it("takes the same version, a newer patch and the next minor, and anything before the cluster runs", () => {
    for (const [running, wanted] of [
      ["1.34.2", "1.34.2"],
      ["1.34.2", "1.34.9"],
      ["1.33.7", "1.34.0"],
      ["v1.33.7", "1.34.1"],
      [undefined, "1.34.1"],
      ["not-a-version", "1.34.1"],
    ] as const) {
      assert.equal(versionChangeProblem(running, wanted), undefined, `${running} -> ${wanted}`);
    }
  });

  it("refuses a skipped minor, naming each one skipped and the next step", () => {
    assert.equal(
      versionChangeProblem("1.31.4", "1.33.0"),
      "1.33.0 skips minor 1.32 from the 1.31.4 the cluster runs: upgrade one minor at a time " +
        "(kubeadm and the version-skew policy allow no more); set 1.32.x first",
    );
    assert.match(versionChangeProblem("1.31.4", "1.34.0") ?? "", /skips minors 1\.32, 1\.33 .* set 1\.32\.x first$/);
  });

  it("refuses any downgrade, a patch too, and a major change", () => {
    assert.match(
      versionChangeProblem("1.34.2", "1.34.1") ?? "",
      /^1\.34\.1 is older than the 1\.34\.2 the cluster runs/,
    );
    assert.match(versionChangeProblem("1.34.2", "1.33.9") ?? "", /does not downgrade .* set it back to 1\.34\.2/);
    assert.match(versionChangeProblem("1.34.2", "2.0.0") ?? "", /changes the major version/);
  });

  it("keeps apt nodes' clusters on their version: no in-place upgrade without the node image", () => {
    assert.match(
      aptVersionChangeProblem("1.34.2", "1.34.3", "apt") ?? "",
      /^1\.34\.3 changes the version of a running cluster whose nodes install Kubernetes from apt .* set it back to 1\.34\.2/,
    );
    assert.equal(aptVersionChangeProblem("1.34.2", "1.34.2", "apt"), undefined);
    assert.equal(aptVersionChangeProblem("1.34.2", "1.35.0", "image"), undefined);
    assert.equal(aptVersionChangeProblem(undefined, "1.35.0", "apt"), undefined, "nothing runs yet");
  });
});
