/** A failed engine command becomes one line with its cause and the output once. */
import * as assert from "node:assert/strict";
import { describeCommandFailure, failureCause, MAX_OUTPUT } from "../../../automation/engine/failure";

/** The CLI's output for a program that throws, as the Automation API reports a preview failure. */
const OUTPUT = `Command failed with exit code 1: /opt/g8s/.tools/bin/pulumi preview --refresh --color never --stack f1 --non-interactive
Previewing update (f1):

@ previewing update....
 +  pulumi:pulumi:Stack store-f1 create error: Missing required configuration variable 'store:records'
@ previewing update.....
 +  pulumi:pulumi:Stack store-f1 create 1 error; 2 warnings
Diagnostics:
  pulumi:pulumi:Stack (store-f1):
    warning: Could not find a package.json or package.yaml file for the program.
    error: Missing required configuration variable 'store:records'
    \tplease set a value using the command \`pulumi config set store:records <value>\`

Resources:
    + 1 to create
    1 errored
`;

/** What the Automation API throws: the output as stderr and again as the wrapped error's message. */
function commandError(stdout: string, stderr: string, err?: Error) {
  const error = new Error(`code: -2\n stdout: ${stdout}\n stderr: ${stderr}\n err?: ${err}\n`);
  return Object.assign(error, { commandResult: { stdout, stderr, code: -2, err } });
}

describe("engine failures", () => {
  it("names the command and the diagnostics' error, once", () => {
    const failure = describeCommandFailure(commandError("", OUTPUT, new Error(OUTPUT.trim())));
    assert.equal(failure?.cause, "pulumi preview failed: Missing required configuration variable 'store:records'");
  });

  it("keeps the engine's output once, not the copy inside the wrapped error", () => {
    const failure = describeCommandFailure(commandError("", OUTPUT, new Error(OUTPUT.trim())));
    assert.equal(failure?.output, OUTPUT.trim());
    assert.equal(failure?.output.split("Diagnostics:").length, 2);
  });

  it("names a command of two words", () => {
    const stderr =
      "Command failed with exit code 255: /usr/bin/pulumi stack select --stack o1 --non-interactive\n" +
      "error: unable to open state database: connection refused\n";
    assert.equal(
      describeCommandFailure(commandError("", stderr))?.cause,
      "pulumi stack select failed: unable to open state database: connection refused",
    );
  });

  it("leaves out the closing 'update failed' when a specific error is there", () => {
    assert.equal(
      failureCause("Diagnostics:\n  x:\n    error: update failed\n  y:\n    error: disk full\n    error: disk full\n"),
      "disk full",
    );
    assert.equal(failureCause("error: update failed\n"), "update failed");
  });

  it("says when the output holds no error line, with the exit code", () => {
    const failure = describeCommandFailure(
      Object.assign(new Error("x"), { commandResult: { stdout: "", stderr: "killed", code: 137 } }),
    );
    assert.equal(failure?.cause, "the pulumi command failed with exit code 137 (no error line in its output)");
  });

  it("keeps the end of a very long output", () => {
    const long = `${"progress line\n".repeat(5000)}Diagnostics:\n    error: the end\n`;
    const failure = describeCommandFailure(commandError(long, ""));
    assert.ok((failure?.output.length ?? 0) < MAX_OUTPUT + 100);
    assert.match(failure?.output ?? "", /^… \(\d+ characters cut\)\n/);
    assert.match(failure?.output ?? "", /error: the end$/);
  });

  it("is undefined for an error that is not a command failure", () => {
    assert.equal(describeCommandFailure(new Error("boom")), undefined);
  });
});
