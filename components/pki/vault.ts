/**
 * The vault backend: a PKI secrets engine per cluster and a role per component (and per user).
 * Pulumi issues every certificate through its role, with the token of the program's Vault
 * provider; the roles limit what each may name. No Vault policies: no node or component talks
 * to Vault (certificates reach nodes through the platform's Secrets or SSM parameters), so a
 * policy would be bound to nothing (see README, Decisions).
 */
import * as pulumi from "@pulumi/pulumi";
import * as vault from "@pulumi/vault";
import type { ClusterSpec } from "../spec";
import { clusterDomain, durationSeconds } from "../spec";
import type { IssuedCertificate, PkiBackend } from "./backend";
import { pemValidity } from "./expiry";
import {
  CA_FIXED_INPUTS,
  CA_KEY_BITS,
  LEAF_KEY_BITS,
  VAULT_KEY_USAGES,
  componentRoles,
  minSecondsRemaining,
  mountPath,
  rolePolicy,
  type CertificateSpec,
  type RolePolicy,
} from "./certificates";

/**
 * The Vault provider of a cluster. The token is `token` when given (index.ts passes the secret
 * config `g8s:vaultToken`), else the provider's own `VAULT_TOKEN` / `~/.vault-token` handling.
 * @internal
 */
export function createVaultProvider(
  name: string,
  spec: ClusterSpec,
  token: pulumi.Input<string> | undefined,
  parent: pulumi.Resource,
): vault.Provider {
  const { address, namespace } = spec.pki.vault ?? {};
  return new vault.Provider(
    `${name}-vault`,
    {
      address,
      ...(namespace === undefined ? {} : { namespace }),
      ...(token === undefined ? {} : { token: pulumi.secret(token) }),
    },
    { parent },
  );
}

/** Base URL of the mount's public endpoints, with the Vault namespace when there is one. */
export function mountUrl(spec: ClusterSpec): string {
  const address = (spec.pki.vault?.address ?? "").replace(/\/$/, "");
  const namespace = spec.pki.vault?.namespace;
  return `${address}/v1/${namespace === undefined ? "" : `${namespace.replace(/^\/|\/$/g, "")}/`}${mountPath(spec)}`;
}

/** SecretBackendRole arguments of a role, limited to its own names. @internal */
export function roleArgs(
  backend: pulumi.Input<string>,
  role: RolePolicy,
  ttlSeconds: number,
): vault.pkisecret.SecretBackendRoleArgs {
  return {
    backend,
    name: role.role,
    ttl: String(ttlSeconds),
    maxTtl: String(ttlSeconds),
    allowedDomains: role.allowedDomains,
    allowBareDomains: true,
    allowSubdomains: false,
    allowGlobDomains: false,
    allowAnyName: false,
    allowWildcardCertificates: false,
    allowLocalhost: role.allowLocalhost,
    allowIpSans: role.allowIpSans,
    enforceHostnames: role.enforceHostnames,
    serverFlag: role.server,
    clientFlag: role.client,
    codeSigningFlag: false,
    emailProtectionFlag: false,
    keyUsages: VAULT_KEY_USAGES,
    keyType: "rsa",
    keyBits: LEAF_KEY_BITS,
    organizations: role.organizations,
    // Names and usages come from the role; a request cannot widen them.
    useCsrCommonName: false,
    useCsrSans: false,
  };
}

/**
 * Mount, root CA, URLs, one role per component.
 * Every child gets `{ parent, provider }`.
 * @internal
 */
export function createVaultBackend(
  name: string,
  spec: ClusterSpec,
  certs: readonly CertificateSpec[],
  parent: pulumi.Resource,
  provider: vault.Provider,
): PkiBackend {
  const opts = { parent, provider };
  const certTtl = durationSeconds(spec.pki.certTtl);
  const caTtl = durationSeconds(spec.pki.caTtl);
  const mount = new vault.Mount(
    `${name}-mount`,
    {
      path: mountPath(spec),
      type: "pki",
      description: `g8s cluster ${spec.id}: root CA and component certificates`,
      defaultLeaseTtlSeconds: certTtl,
      // Bounded: nothing on this mount outlives the CA.
      maxLeaseTtlSeconds: caTtl,
    },
    // Deleting the mount deletes the CA's key for good: only a confirmed g8s:decommission lifts this.
    { ...opts, protect: true },
  );
  const root = new vault.pkisecret.SecretBackendRootCert(
    `${name}-root-ca`,
    {
      backend: mount.path,
      // internal: the key is generated in Vault and never leaves it.
      type: "internal",
      commonName: clusterDomain(spec),
      organization: "g8s",
      ttl: String(caTtl),
      keyType: "rsa",
      keyBits: CA_KEY_BITS,
    },
    { ...opts, ignoreChanges: [...CA_FIXED_INPUTS.vault] },
  );
  const base = mountUrl(spec);
  new vault.pkisecret.SecretBackendConfigUrls(
    `${name}-urls`,
    { backend: mount.path, issuingCertificates: [`${base}/ca`], crlDistributionPoints: [`${base}/crl`] },
    opts,
  );
  const roles = new Map<string, vault.pkisecret.SecretBackendRole>();
  for (const role of componentRoles(certs)) {
    const created = new vault.pkisecret.SecretBackendRole(
      `${name}-role-${role.role}`,
      roleArgs(mount.path, role, certTtl),
      {
        ...opts,
        dependsOn: [root],
      },
    );
    roles.set(role.role, created);
  }

  const caValidity = root.certificate.apply(pemValidity);
  return {
    caCertPem: root.certificate,
    // Never renewed by g8s (its key lives in Vault): its expiry is reported, not acted on.
    ca: {
      certPem: root.certificate,
      notBefore: caValidity.notBefore,
      notAfter: caValidity.notAfter,
      renewAt: pulumi.output(""),
      renewedBy: [],
    },
    issue(cert: CertificateSpec, childName: string): IssuedCertificate {
      let role = roles.get(cert.role);
      if (cert.role === "user") {
        // Vault takes O from the role, not the request: a user with groups gets a role of its own.
        const own = rolePolicy(`user-${cert.commonName}`, [cert]);
        role = new vault.pkisecret.SecretBackendRole(`${name}-role-${cert.key}`, roleArgs(mount.path, own, certTtl), {
          ...opts,
          dependsOn: [root],
        });
      }
      if (role === undefined) throw new Error(`internal: no Vault role ${cert.role}`);
      const issued = new vault.pkisecret.SecretBackendCert(
        `${name}-${childName}`,
        {
          backend: mount.path,
          name: role.name,
          commonName: cert.commonName,
          altNames: cert.dnsNames.filter((n) => n !== cert.commonName),
          ipSans: [...cert.ipAddresses],
          ttl: String(cert.ttlSeconds),
          format: "pem",
          privateKeyFormat: "pkcs8",
          // Seen on refresh: once fewer than TTL/2 seconds remain, the next up issues a new one.
          autoRenew: true,
          minSecondsRemaining: minSecondsRemaining(cert.ttlSeconds),
        },
        // The class itself marks privateKey as an additional secret output.
        opts,
      );
      const notAfter = issued.expiration.apply((s) => (s ? new Date(s * 1000).toISOString() : ""));
      return {
        certPem: issued.certificate,
        keyPem: pulumi.secret(issued.privateKey),
        notBefore: issued.certificate.apply((pem) => pemValidity(pem).notBefore),
        notAfter,
        // auto_renew: reissued by the update after fewer than min_seconds_remaining are left.
        renewAt: issued.expiration.apply((s) =>
          s ? new Date((s - minSecondsRemaining(cert.ttlSeconds)) * 1000).toISOString() : "",
        ),
        renewedBy: [issued],
      };
    },
  };
}
