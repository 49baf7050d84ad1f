/** The coordinator's Kubernetes target: from a kubeconfig's current context, or in-cluster. */
import * as assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { stringify } from "yaml";
import {
  IN_CLUSTER_DIR,
  KubeconfigError,
  inClusterTarget,
  targetFromEnvironment,
  targetFromKubeconfig,
} from "../../automation/coordination/kubeClient";
import { renderKubeconfig } from "../../components/pki/kubeconfig";

const CA = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n";
const CERT = "-----BEGIN CERTIFICATE-----\nLEAF\n-----END CERTIFICATE-----\n";
const KEY = "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n";

describe("coordination: the Kubernetes target", () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), "g8s-kubeclient-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, doc: unknown) => {
    const file = path.join(dir, name);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, typeof doc === "string" ? doc : stringify(doc));
    return file;
  };
  /** A kubeconfig with one context `ctx` over `cluster` and `user`. */
  const config = (
    cluster: Record<string, unknown>,
    user: Record<string, unknown>,
    extra: Record<string, unknown> = {},
  ) => ({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "c", cluster }],
    users: [{ name: "u", user }],
    contexts: [{ name: "ctx", context: { cluster: "c", user: "u" } }],
    "current-context": "ctx",
    ...extra,
  });
  const fails = (fn: () => unknown, message: string) =>
    assert.throws(fn, (err: Error) => err instanceof KubeconfigError && err.message === message);

  it("reads g8s's own kubeconfigs: embedded CA, client certificate and key", () => {
    const file = write(
      "admin.yaml",
      renderKubeconfig({
        clusterName: "host",
        server: "https://127.0.0.1:6443",
        caCertPem: CA,
        userName: "admin",
        clientCertPem: CERT,
        clientKeyPem: KEY,
      }),
    );
    assert.deepEqual(targetFromKubeconfig(file), {
      server: "https://127.0.0.1:6443",
      tls: { ca: CA, cert: CERT, key: KEY },
      source: `${file} (context admin@host)`,
    });
  });

  it("reads files named relative to the kubeconfig, and a token file", () => {
    write("pki/ca.crt", CA);
    write("pki/token", "abc.def\n");
    const file = write(
      "sub/../kubeconfig",
      config({ server: "https://api.example.com/", "certificate-authority": "pki/ca.crt" }, { tokenFile: "pki/token" }),
    );
    assert.deepEqual(targetFromKubeconfig(file).tls, { ca: CA, token: "abc.def" });
    assert.equal(targetFromKubeconfig(file).server, "https://api.example.com");
  });

  it("takes the first file of a KUBECONFIG list, else the pod's ServiceAccount", () => {
    const file = write(
      "k",
      config(
        { server: "https://a:6443", "certificate-authority-data": Buffer.from(CA).toString("base64") },
        { token: "t" },
      ),
    );
    assert.equal(targetFromEnvironment({ KUBECONFIG: `${file}${path.delimiter}/nowhere` }).tls.token, "t");
    const files: Record<string, string> = {
      [path.join(IN_CLUSTER_DIR, "ca.crt")]: CA,
      [path.join(IN_CLUSTER_DIR, "token")]: "sa-token\n",
    };
    const read = (p: string) => {
      if (!(p in files)) throw Object.assign(new Error("missing"), { code: "ENOENT" });
      return files[p];
    };
    assert.deepEqual(
      targetFromEnvironment({ KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" }, read),
      {
        server: "https://10.96.0.1:443",
        tls: { ca: CA, token: "sa-token" },
        source: "in-cluster",
      },
    );
    assert.equal(inClusterTarget({ KUBERNETES_SERVICE_HOST: "fd00::1" }, read).server, "https://[fd00::1]:443");
    fails(
      () => targetFromEnvironment({}),
      "no KUBECONFIG and not in a pod (KUBERNETES_SERVICE_HOST is unset): set KUBECONFIG",
    );
  });

  it("names the file and the field of what it cannot use, and the fix", () => {
    const caData = Buffer.from(CA).toString("base64");
    const cases: Array<[unknown, string]> = [
      ["{", "not YAML"],
      [
        config(
          { server: "https://a", "certificate-authority-data": caData },
          { token: "t" },
          { "current-context": "" },
        ),
        "current-context is not set: set it (kubectl config use-context <name>)",
      ],
      [
        config(
          { server: "https://a", "certificate-authority-data": caData },
          { token: "t" },
          { "current-context": "other" },
        ),
        "context 'other' is not defined (named by context 'other')",
      ],
      [
        config({ server: "http://a", "certificate-authority-data": caData }, { token: "t" }),
        `cluster 'c' server: must be an https:// URL (got "http://a")`,
      ],
      [
        config({ server: "https://a" }, { token: "t" }),
        "cluster 'c' has no certificate-authority(-data): g8s verifies the API server; add the CA",
      ],
      [
        config({ server: "https://a", "certificate-authority-data": caData }, { exec: { command: "aws" } }),
        "user 'u' exec: not supported by g8s: give it a client certificate or a token",
      ],
      [
        config({ server: "https://a", "certificate-authority-data": caData }, { "client-certificate-data": "Zm9v" }),
        "user 'u' has a client certificate or key without the other: give both",
      ],
      [
        config({ server: "https://a", "certificate-authority-data": caData }, {}),
        "user 'u' has no credentials: give it a client certificate or a token",
      ],
      [
        config({ server: "https://a", "certificate-authority": "missing.crt" }, { token: "t" }),
        `cluster 'c' certificate-authority: cannot read ${path.join(dir, "missing.crt")} (ENOENT)`,
      ],
    ];
    for (const [doc, message] of cases) {
      const file = write("bad", doc);
      assert.throws(
        () => targetFromKubeconfig(file),
        (err: Error) =>
          err instanceof KubeconfigError && err.message.startsWith(`${file}: `) && err.message.includes(message),
        message,
      );
    }
  });
});
