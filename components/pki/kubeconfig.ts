/** Kubeconfig rendering: a pure function of the endpoint, the CA and a client certificate. */
import { stringify } from "yaml";

export interface KubeconfigInput {
  /** Names the cluster, user and context entries (the cluster id). */
  readonly clusterName: string;
  /** API endpoint URL, e.g. `https://api.eu1prod.k8s.example.com:6443`. */
  readonly server: string;
  readonly caCertPem: string;
  /** The user entry's name: the certificate's CN. */
  readonly userName: string;
  readonly clientCertPem: string;
  readonly clientKeyPem: string;
}

function b64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}

/** A kubeconfig (YAML) with one cluster, one user and one context, which is the current one. */
export function renderKubeconfig(input: KubeconfigInput): string {
  if (!/^https:\/\/[^\s/]+(:\d+)?\/?$/.test(input.server)) {
    throw new RangeError(`apiEndpoint must be an https URL like https://api.example.com:6443 (got '${input.server}')`);
  }
  const context = `${input.userName}@${input.clusterName}`;
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name: input.clusterName,
        cluster: { server: input.server, "certificate-authority-data": b64(input.caCertPem) },
      },
    ],
    users: [
      {
        name: context,
        user: {
          "client-certificate-data": b64(input.clientCertPem),
          "client-key-data": b64(input.clientKeyPem),
        },
      },
    ],
    contexts: [{ name: context, context: { cluster: input.clusterName, user: context } }],
    "current-context": context,
    preferences: {},
  });
}
