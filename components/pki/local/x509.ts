/**
 * X.509 primitives on `node:crypto` (WebCrypto) and `@peculiar/x509`: key pairs, a self-signed
 * CA, certificates issued from a CA key, and reading a certificate back. PEM in, PEM out. No
 * Pulumi here; `components/pki/local` wraps these in dynamic providers, and anything else that
 * needs a CA (a local host cluster) can call them directly.
 *
 * Stable API (other code cherry-picks this module): generateKeyPair, createSelfSignedCa,
 * issueCertificate, parseCertificate and their types. Add fields only as optional ones.
 *
 * Every certificate gets: a random positive 126-bit serial, validity truncated to whole seconds,
 * SHA-256 signatures (ECDSA or RSA PKCS#1 v1.5 after the CA key), a subject key identifier,
 * and on issued certificates an authority key identifier (the CA's key id only, so a CA
 * certificate reissued with the same key and subject still verifies everything it signed).
 *
 * Dependencies are required inside the functions on purpose: Pulumi serializes a dynamic
 * provider's functions together with the functions they call, and a `require` inside a function
 * is re-evaluated where the provider runs. `reflect-metadata` must load before `@peculiar/x509`.
 */
import type * as nodeCrypto from "node:crypto";
import type * as peculiar from "@peculiar/x509";

/** `ecdsa-p256` (default: small, fast, accepted by every Kubernetes component) or `rsa-2048`. */
export type KeyAlgorithm = "ecdsa-p256" | "rsa-2048";
export const KEY_ALGORITHMS: readonly KeyAlgorithm[] = ["ecdsa-p256", "rsa-2048"];
export const DEFAULT_KEY_ALGORITHM: KeyAlgorithm = "ecdsa-p256";

/** Extended key usage of a leaf: TLS server (serverAuth) and/or TLS client (clientAuth). */
export type CertificateUsage = "server" | "client";

/** A key pair as PEM: PKCS#8 `PRIVATE KEY` and SPKI `PUBLIC KEY`. */
export interface KeyPairPem {
  readonly algorithm: KeyAlgorithm;
  /** PKCS#8. Secret: keep it in a Pulumi secret or a file readable by its owner only. */
  readonly privateKeyPem: string;
  readonly publicKeyPem: string;
}

/** Subject of a certificate: one CN, any number of O values (RBAC groups), in that order. */
export interface CertificateSubject {
  readonly commonName: string;
  /** Subject O values, each its own RDN. Default: none. */
  readonly organizations?: readonly string[];
}

/** When a certificate is valid; both are truncated to whole seconds (X.509 time precision). */
export interface ValidityWindow {
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export interface SelfSignedCaRequest extends CertificateSubject, ValidityWindow {
  /** The CA's own private key (PKCS#8 PEM, from generateKeyPair). */
  readonly privateKeyPem: string;
  /** basicConstraints pathLenConstraint. Default: none (any number of intermediates). */
  readonly pathLength?: number;
}

export interface IssueRequest extends CertificateSubject, ValidityWindow {
  /** The issuing CA's certificate (PEM); the issuer name and key id come from it. */
  readonly caCertPem: string;
  /** The issuing CA's private key (PKCS#8 PEM). */
  readonly caPrivateKeyPem: string;
  /** The subject's public key (SPKI PEM); the subject's private key never has to be passed. */
  readonly publicKeyPem: string;
  /** DNS subject alternative names. Default: none. */
  readonly dnsNames?: readonly string[];
  /** IP subject alternative names (IPv4 or IPv6). Default: none. */
  readonly ipAddresses?: readonly string[];
  /** Leaf usages; ignored with `ca`. Default: none (no extended key usage extension). */
  readonly usages?: readonly CertificateUsage[];
  /** Issue an intermediate CA instead of a leaf. Default: a leaf. */
  readonly ca?: { readonly pathLength?: number };
}

/** What parseCertificate reads from a certificate. */
export interface CertificateInfo extends ValidityWindow {
  /** Lowercase hex without leading zeros, as `openssl x509 -serial` prints it (but lowercase). */
  readonly serial: string;
  readonly subject: { readonly commonName: string; readonly organizations: readonly string[] };
  /** The issuer's distinguished name, RFC 4514 style (`CN=…, O=…`). */
  readonly issuer: string;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly usages: readonly CertificateUsage[];
  readonly isCa: boolean;
}

/** The CryptoKey type @peculiar/x509 declares (the DOM's), which is Node's WebCrypto key at run time. */
type PeculiarKey = Parameters<typeof peculiar.X509CertificateGenerator.createSelfSigned>[0]["keys"]["privateKey"];

const OID = { serverAuth: "1.3.6.1.5.5.7.3.1", clientAuth: "1.3.6.1.5.5.7.3.2" } as const;

interface Deps {
  readonly x509: typeof peculiar;
  readonly node: typeof nodeCrypto;
  readonly subtle: nodeCrypto.webcrypto.SubtleCrypto;
  readonly crypto: peculiar.CryptoProvider["get"] extends () => infer C ? C : never;
}

/** The libraries, loaded on first use (see the module comment for why not at the top). */
function deps(): Deps {
  /* eslint-disable @typescript-eslint/no-require-imports -- required here so the functions serialize */
  require("reflect-metadata");
  const x509 = require("@peculiar/x509") as typeof peculiar;
  const node = require("node:crypto") as typeof nodeCrypto;
  /* eslint-enable @typescript-eslint/no-require-imports */
  return { x509, node, subtle: node.webcrypto.subtle, crypto: node.webcrypto as unknown as Deps["crypto"] };
}

/** WebCrypto import/generation parameters of an algorithm (sign and verify with SHA-256). */
function webAlgorithm(
  algorithm: KeyAlgorithm,
): nodeCrypto.webcrypto.EcKeyImportParams | nodeCrypto.webcrypto.RsaHashedImportParams {
  return algorithm === "ecdsa-p256"
    ? { name: "ECDSA", namedCurve: "P-256" }
    : { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
}

function signingAlgorithm(algorithm: KeyAlgorithm): { name: string; hash: string } {
  return algorithm === "ecdsa-p256"
    ? { name: "ECDSA", hash: "SHA-256" }
    : { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
}

/** The algorithm of a PEM key (private or public), or a RangeError naming what it is instead. */
function keyAlgorithmOf(pem: string, what: string): KeyAlgorithm {
  const { node } = deps();
  let key: nodeCrypto.KeyObject;
  try {
    key = pem.includes("PRIVATE KEY") ? node.createPrivateKey(pem) : node.createPublicKey(pem);
  } catch (err) {
    // Never echo the PEM: it may be a private key.
    throw new RangeError(`${what} is not a PEM key (${(err as Error).message})`, { cause: err });
  }
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === "ec" && details.namedCurve === "prime256v1") return "ecdsa-p256";
  if (key.asymmetricKeyType === "rsa" && details.modulusLength !== undefined && details.modulusLength >= 2048) {
    return "rsa-2048";
  }
  throw new RangeError(
    `${what} is a ${key.asymmetricKeyType ?? "unknown"} key ${JSON.stringify(details)}: use ECDSA P-256 or RSA of at least 2048 bits`,
  );
}

async function importPrivateKey(pem: string, what: string): Promise<nodeCrypto.webcrypto.CryptoKey> {
  const algorithm = keyAlgorithmOf(pem, what);
  const { node, subtle } = deps();
  // Normalise to PKCS#8 DER (accepts PKCS#1 `RSA PRIVATE KEY` and SEC1 `EC PRIVATE KEY` too).
  const der = node.createPrivateKey(pem).export({ type: "pkcs8", format: "der" });
  return subtle.importKey("pkcs8", der, webAlgorithm(algorithm), false, ["sign"]);
}

async function importPublicKey(pem: string, what: string): Promise<nodeCrypto.webcrypto.CryptoKey> {
  const algorithm = keyAlgorithmOf(pem, what);
  const { node, subtle } = deps();
  const der = node.createPublicKey(pem).export({ type: "spki", format: "der" });
  return subtle.importKey("spki", der, webAlgorithm(algorithm), true, ["verify"]);
}

/** A random positive serial of 16 bytes whose DER encoding needs no leading zero byte. */
function randomSerial(): string {
  const bytes = deps().node.randomBytes(16);
  bytes[0] = (bytes[0] & 0x3f) | 0x40;
  return bytes.toString("hex");
}

function wholeSeconds(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}

function checkWindow(window: ValidityWindow): void {
  const { notBefore, notAfter } = window;
  if (!(notBefore instanceof Date) || Number.isNaN(notBefore.getTime()))
    throw new RangeError("notBefore must be a valid Date");
  if (!(notAfter instanceof Date) || Number.isNaN(notAfter.getTime()))
    throw new RangeError("notAfter must be a valid Date");
  if (wholeSeconds(notAfter).getTime() <= wholeSeconds(notBefore).getTime()) {
    throw new RangeError(
      `notAfter (${notAfter.toISOString()}) must be at least a second after notBefore (${notBefore.toISOString()})`,
    );
  }
}

/** The subject as RDNs, O values first and CN last (the order kubeadm and openssl print). */
function subjectName(subject: CertificateSubject): Array<Record<string, string[]>> {
  if (typeof subject.commonName !== "string" || subject.commonName.trim() === "") {
    throw new RangeError("commonName must be a non-empty string");
  }
  const organizations = subject.organizations ?? [];
  const empty = organizations.find((o) => typeof o !== "string" || o.trim() === "");
  if (empty !== undefined) throw new RangeError("organizations must not contain empty values");
  return [...organizations.map((o) => ({ O: [o] })), { CN: [subject.commonName] }];
}

function checkSans(dnsNames: readonly string[], ipAddresses: readonly string[]): void {
  const { isIP } = require("node:net") as typeof import("node:net"); // eslint-disable-line @typescript-eslint/no-require-imports
  const badIp = ipAddresses.find((ip) => isIP(ip) === 0);
  if (badIp !== undefined) throw new RangeError(`ipAddresses: '${badIp}' is not an IPv4 or IPv6 address`);
  const badName = dnsNames.find(
    (n) => !/^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(n),
  );
  if (badName !== undefined) throw new RangeError(`dnsNames: '${badName}' is not a DNS name`);
}

/**
 * Generates a key pair. ECDSA P-256 by default; `rsa-2048` for consumers that want RSA (the
 * service-account signing key: RS256 tokens are what every OIDC consumer accepts).
 */
export async function generateKeyPair(algorithm: KeyAlgorithm = DEFAULT_KEY_ALGORITHM): Promise<KeyPairPem> {
  if (!KEY_ALGORITHMS.includes(algorithm)) {
    throw new RangeError(`algorithm must be one of ${KEY_ALGORITHMS.join(", ")} (got '${String(algorithm)}')`);
  }
  const { subtle, x509 } = deps();
  const params =
    algorithm === "ecdsa-p256"
      ? { name: "ECDSA", namedCurve: "P-256" }
      : { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) };
  const keys = (await subtle.generateKey(params, true, ["sign", "verify"])) as nodeCrypto.webcrypto.CryptoKeyPair;
  const pkcs8 = await subtle.exportKey("pkcs8", keys.privateKey);
  const spki = await subtle.exportKey("spki", keys.publicKey);
  return {
    algorithm,
    privateKeyPem: `${x509.PemConverter.encode(pkcs8, "PRIVATE KEY")}\n`,
    publicKeyPem: `${x509.PemConverter.encode(spki, "PUBLIC KEY")}\n`,
  };
}

/** Key usage bits of a certificate with a key of `algorithm`. */
function keyUsages(x509: typeof peculiar, algorithm: KeyAlgorithm, ca: boolean): number {
  const F = x509.KeyUsageFlags;
  if (ca) return F.keyCertSign | F.cRLSign | F.digitalSignature;
  // keyEncipherment is an RSA key-transport usage; RFC 5480 §3 does not allow it for EC keys.
  return algorithm === "rsa-2048" ? F.digitalSignature | F.keyEncipherment : F.digitalSignature;
}

/** A self-signed root CA certificate (PEM) for `privateKeyPem`. */
export async function createSelfSignedCa(request: SelfSignedCaRequest): Promise<string> {
  checkWindow(request);
  const name = subjectName(request);
  const algorithm = keyAlgorithmOf(request.privateKeyPem, "privateKeyPem");
  const { x509, node, crypto } = deps();
  const signingKey = await importPrivateKey(request.privateKeyPem, "privateKeyPem");
  const publicKeyPem = node.createPublicKey(request.privateKeyPem).export({ type: "spki", format: "pem" }).toString();
  const publicKey = await importPublicKey(publicKeyPem, "privateKeyPem");
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: name,
      issuer: name,
      notBefore: wholeSeconds(request.notBefore),
      notAfter: wholeSeconds(request.notAfter),
      publicKey: publicKey as unknown as PeculiarKey,
      signingKey: signingKey as unknown as PeculiarKey,
      signingAlgorithm: signingAlgorithm(algorithm),
      extensions: [
        new x509.BasicConstraintsExtension(true, request.pathLength, true),
        new x509.KeyUsagesExtension(keyUsages(x509, algorithm, true), true),
        await x509.SubjectKeyIdentifierExtension.create(publicKey as unknown as PeculiarKey, false, crypto),
      ],
    },
    crypto,
  );
  return `${cert.toString("pem")}\n`;
}

/** A certificate for `publicKeyPem` signed by the CA: a leaf, or an intermediate CA with `ca`. */
export async function issueCertificate(request: IssueRequest): Promise<string> {
  checkWindow(request);
  const name = subjectName(request);
  const dnsNames = request.dnsNames ?? [];
  const ipAddresses = request.ipAddresses ?? [];
  checkSans(dnsNames, ipAddresses);
  const { x509, crypto } = deps();
  let caCert: peculiar.X509Certificate;
  try {
    caCert = new x509.X509Certificate(request.caCertPem);
  } catch (err) {
    throw new RangeError(`caCertPem is not a PEM certificate (${(err as Error).message})`, { cause: err });
  }
  if (caCert.getExtension(x509.BasicConstraintsExtension)?.ca !== true) {
    throw new RangeError(
      `caCertPem (${caCert.subject}) is not a CA certificate (basicConstraints CA:FALSE or missing)`,
    );
  }
  const caAlgorithm = keyAlgorithmOf(request.caPrivateKeyPem, "caPrivateKeyPem");
  const caPublic = deps().node.createPublicKey(request.caPrivateKeyPem).export({ type: "spki", format: "der" });
  if (!Buffer.from(caCert.publicKey.rawData).equals(caPublic)) {
    throw new RangeError(`caPrivateKeyPem does not belong to caCertPem (${caCert.subject})`);
  }
  const subjectAlgorithm = keyAlgorithmOf(request.publicKeyPem, "publicKeyPem");
  const publicKey = await importPublicKey(request.publicKeyPem, "publicKeyPem");
  const signingKey = await importPrivateKey(request.caPrivateKeyPem, "caPrivateKeyPem");
  const caKeyId =
    caCert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId ??
    (await x509.SubjectKeyIdentifierExtension.create(caCert.publicKey, false, crypto)).keyId;
  const isCa = request.ca !== undefined;
  const usages = request.usages ?? [];
  const extensions: peculiar.Extension[] = [
    new x509.BasicConstraintsExtension(isCa, isCa ? request.ca?.pathLength : undefined, true),
    new x509.KeyUsagesExtension(keyUsages(x509, subjectAlgorithm, isCa), true),
    await x509.SubjectKeyIdentifierExtension.create(publicKey as unknown as PeculiarKey, false, crypto),
    new x509.AuthorityKeyIdentifierExtension(caKeyId, false),
  ];
  if (!isCa && usages.length > 0) {
    extensions.push(
      new x509.ExtendedKeyUsageExtension(
        [
          ...(usages.includes("server") ? [OID.serverAuth] : []),
          ...(usages.includes("client") ? [OID.clientAuth] : []),
        ],
        false,
      ),
    );
  }
  if (dnsNames.length + ipAddresses.length > 0) {
    extensions.push(
      new x509.SubjectAlternativeNameExtension(
        [
          ...dnsNames.map((value) => ({ type: "dns" as const, value })),
          ...ipAddresses.map((value) => ({ type: "ip" as const, value })),
        ],
        false,
      ),
    );
  }
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: name,
      issuer: caCert.subjectName,
      notBefore: wholeSeconds(request.notBefore),
      notAfter: wholeSeconds(request.notAfter),
      publicKey: publicKey as unknown as PeculiarKey,
      signingKey: signingKey as unknown as PeculiarKey,
      signingAlgorithm: signingAlgorithm(caAlgorithm),
      extensions,
    },
    crypto,
  );
  return `${cert.toString("pem")}\n`;
}

/**
 * Reads the first certificate of a PEM text.
 * @throws RangeError when the text holds no parsable certificate
 */
export function parseCertificate(pem: string): CertificateInfo {
  const { x509 } = deps();
  let cert: peculiar.X509Certificate;
  try {
    cert = new x509.X509Certificate(pem);
  } catch (err) {
    throw new RangeError(`not a PEM certificate (${(err as Error).message})`, { cause: err });
  }
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const names = san?.names.items ?? [];
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages ?? [];
  return {
    serial: cert.serialNumber.toLowerCase().replace(/^0+(?=.)/, ""),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    subject: {
      commonName: cert.subjectName.getField("CN")[0] ?? "",
      organizations: cert.subjectName.getField("O"),
    },
    issuer: cert.issuer,
    dnsNames: names.filter((n) => n.type === "dns").map((n) => n.value),
    ipAddresses: names.filter((n) => n.type === "ip").map((n) => n.value),
    usages: [
      ...(eku.includes(OID.serverAuth) ? (["server"] as const) : []),
      ...(eku.includes(OID.clientAuth) ? (["client"] as const) : []),
    ],
    isCa: cert.getExtension(x509.BasicConstraintsExtension)?.ca === true,
  };
}
