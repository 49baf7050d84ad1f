/** Kubeconfig rendering: a pure function of the endpoint, the CA and a client certificate. */
import { stringify } from "yaml";
import { parseApiEndpoint } from "../spec";

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
  /** The name the API server's certificate is checked for, when `server` is an address it does not carry. */
  readonly tlsServerName?: string;
}

function b64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}

/**
 * The document every g8s kubeconfig is: one cluster (CA embedded), one user, one context
 * `<userName>@<clusterName>`, which is the current one. `user` holds the credentials: embedded
 * data (admin and user kubeconfigs) or file paths (the node kubeconfigs of components/bootstrap).
 */
export function kubeconfigDocument(input: {
  readonly clusterName: string;
  readonly server: string;
  readonly caCertPem: string;
  readonly tlsServerName?: string;
  readonly userName: string;
  /** The user entry's name. Default: userName. */
  readonly userEntryName?: string;
  readonly user: Readonly<Record<string, string>>;
}): string {
  const context = `${input.userName}@${input.clusterName}`;
  const userEntry = input.userEntryName ?? input.userName;
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name: input.clusterName,
        cluster: {
          server: input.server,
          "certificate-authority-data": b64(input.caCertPem),
          ...(input.tlsServerName === undefined ? {} : { "tls-server-name": input.tlsServerName }),
        },
      },
    ],
    users: [{ name: userEntry, user: { ...input.user } }],
    contexts: [{ name: context, context: { cluster: input.clusterName, user: userEntry } }],
    "current-context": context,
    preferences: {},
  });
}

/** A kubeconfig (YAML) with the client certificate and key embedded. */
export function renderKubeconfig(input: KubeconfigInput): string {
  parseApiEndpoint(input.server); // refuses anything but https://<host>[:<port>]
  return kubeconfigDocument({
    clusterName: input.clusterName,
    server: input.server,
    caCertPem: input.caCertPem,
    tlsServerName: input.tlsServerName,
    userName: input.userName,
    userEntryName: `${input.userName}@${input.clusterName}`,
    user: { "client-certificate-data": b64(input.clientCertPem), "client-key-data": b64(input.clientKeyPem) },
  });
}
