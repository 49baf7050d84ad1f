/** The engine's private workspace: Pulumi reads and writes a copy of the stack files, never the project's. */
import * as assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { parse } from "yaml";
import { EngineWorkspace, engineStackFile, workspaceProjectFile } from "../../../automation/engine/workspace";

const SALT = "v1:OVia/4v4JzE=:v1:LmLeyy+KWpfeYTx+:3cThPqlvYjzE0J7OkcBkbVPqdTXfSQ==";

describe("engine workspace", () => {
  describe("workspaceProjectFile", () => {
    it("runs the project's program from the project and reads stack files from the workspace", () => {
      const out = parse(
        workspaceProjectFile("name: g8s\nruntime: nodejs\nstackConfigDir: stacks\n", "/srv/g8s", "Pulumi.yaml"),
      ) as Record<string, unknown>;
      assert.deepEqual(out, { name: "g8s", runtime: "nodejs", stackConfigDir: "stacks", main: "/srv/g8s" });
    });

    it("resolves a relative main against the project", () => {
      const out = parse(workspaceProjectFile("name: p\nruntime: nodejs\nmain: src/\n", "/srv/p", "Pulumi.yaml")) as {
        main: string;
      };
      assert.equal(out.main, "/srv/p/src");
    });

    it("names the file when it is not a project", () => {
      assert.throws(() => workspaceProjectFile("- a\n", "/srv/p", "/srv/p/Pulumi.yaml"), {
        message: "/srv/p/Pulumi.yaml: must be a Pulumi project file with a name",
      });
    });
  });

  describe("engineStackFile", () => {
    const source = "config:\n  store:dir: /x # where records go\n";

    it("is the project's file when the engine has written nothing yet", () => {
      assert.equal(engineStackFile(source, undefined), source);
    });

    it("keeps the salt Pulumi wrote into the previous copy, with the project's new content", () => {
      const previous = `config:\n  store:dir: /old\nencryptionsalt: ${SALT}\n`;
      assert.equal(
        engineStackFile(source, previous),
        `config:\n  store:dir: /x # where records go\nencryptionsalt: ${SALT}\n`,
      );
    });

    it("lets a project file with its own salt win", () => {
      const own = `${source}encryptionsalt: v1:own\n`;
      assert.equal(engineStackFile(own, `config: {}\nencryptionsalt: ${SALT}\n`), own);
    });

    it("keeps a cloud provider's encrypted key while the provider is unchanged, drops it when it changes", () => {
      const kms = "config: {}\nsecretsprovider: awskms://alias/g8s\n";
      const previous = "config: {}\nsecretsprovider: awskms://alias/g8s\nencryptedkey: AQICAH\n";
      assert.equal(engineStackFile(kms, previous), `${kms}encryptedkey: AQICAH\n`);
      const other = "config: {}\nsecretsprovider: awskms://alias/other\n";
      assert.equal(engineStackFile(other, previous), other);
    });
  });

  describe("sync", () => {
    let root: string;
    let project: string;
    let ws: EngineWorkspace;
    const copy = (stack: string) => readFileSync(path.join(root, "ws", "stacks", `Pulumi.${stack}.yaml`), "utf8");
    beforeEach(() => {
      root = mkdtempSync(path.join(tmpdir(), "g8s-ws-"));
      project = path.join(root, "project");
      mkdirSync(path.join(project, "stacks"), { recursive: true });
      writeFileSync(path.join(project, "Pulumi.yaml"), "name: store\nruntime: nodejs\nstackConfigDir: stacks\n");
      ws = new EngineWorkspace(project, path.join(root, "ws"));
    });
    afterEach(() => rmSync(root, { recursive: true, force: true }));

    it("copies the stack file, carries the engine's salt across edits and never writes the project", async () => {
      const file = path.join(project, "stacks", "Pulumi.s1.yaml");
      writeFileSync(file, "config:\n  store:dir: /a\n");
      await ws.sync("s1");
      assert.equal(copy("s1"), "config:\n  store:dir: /a\n");
      assert.equal(
        (parse(readFileSync(path.join(root, "ws", "Pulumi.yaml"), "utf8")) as { main: string }).main,
        project,
      );
      // What Pulumi does on stack creation, in the engine's copy.
      writeFileSync(path.join(root, "ws", "stacks", "Pulumi.s1.yaml"), `${copy("s1")}encryptionsalt: ${SALT}\n`);
      writeFileSync(file, "config:\n  store:dir: /b\n");
      await ws.sync("s1");
      assert.equal(copy("s1"), `config:\n  store:dir: /b\nencryptionsalt: ${SALT}\n`);
      assert.equal(readFileSync(file, "utf8"), "config:\n  store:dir: /b\n", "the project's file is untouched");
    });

    it("keeps the last copy of a stack whose file is gone (its salt still decrypts the state)", async () => {
      const file = path.join(project, "stacks", "Pulumi.s2.yaml");
      writeFileSync(file, "config: {}\n");
      await ws.sync("s2");
      rmSync(file);
      await ws.sync("s2");
      assert.equal(copy("s2"), "config: {}\n");
    });
  });
});
