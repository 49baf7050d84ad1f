/**
 * The local backend's resources: Pulumi dynamic providers over the x509 primitives, so a cluster
 * PKI needs no provider plugin. Three resources:
 *
 * - `LocalRootCa`: a key pair and a self-signed CA certificate;
 * - `LocalCertificate`: a key pair and a certificate issued from a CA's certificate and key;
 * - `LocalPrivateKey`: a bare key pair (the service-account signing key), never rotated;
 * - `LocalSecret`: random bytes (the seed of the bootstrap token), new only when replaced.
 *
 * Renewal is decided in each provider's `diff`, which the engine runs on every preview and up
 * (after the read of a refresh): once less than half of a certificate's own validity remains,
 * diff reports a change and `update` reissues it with the same key (new serial, new validity).
 * A certificate's inputs include its CA's certificate, so a reissued CA changes every leaf's
 * inputs and the same `up` reissues the leaves after it.
 *
 * Serialization: Pulumi stores each provider object, with every function it calls, as source
 * text in the state and runs it in the dynamic-provider host. The provider functions here
 * therefore call only the x509 and renewal modules and the helpers below, which load their
 * libraries with `require` at run time; nothing captured here may hold Pulumi objects or spec
 * modules. Private keys are `additionalSecretOutputs`, so the state holds them encrypted, and no
 * error message ever includes one.
 */
import * as pulumi from "@pulumi/pulumi";
import {
  DEFAULT_LOCAL_BACKDATE_SECONDS,
  DEFAULT_LOCAL_KEY_ALGORITHM,
  DEFAULT_LOCAL_SECRET_BYTES,
  DEFAULT_LOCAL_SERVICE_ACCOUNT_KEY_ALGORITHM,
} from "../../spec/defaults";
import { needsRenewal, validityWindow } from "./renewal";
import {
  KEY_ALGORITHMS,
  createSelfSignedCa,
  generateKeyPair,
  issueCertificate,
  parseCertificate,
  type CertificateUsage,
  type KeyAlgorithm,
  type KeyPairPem,
} from "./x509";

/** Module of the dynamic resource types: `pulumi-nodejs:dynamic/g8s-pki:<Type>`. */
export const LOCAL_PKI_MODULE = "g8s-pki";
export const LOCAL_TYPES = {
  rootCa: `pulumi-nodejs:dynamic/${LOCAL_PKI_MODULE}:LocalRootCa`,
  certificate: `pulumi-nodejs:dynamic/${LOCAL_PKI_MODULE}:LocalCertificate`,
  privateKey: `pulumi-nodejs:dynamic/${LOCAL_PKI_MODULE}:LocalPrivateKey`,
  secret: `pulumi-nodejs:dynamic/${LOCAL_PKI_MODULE}:LocalSecret`,
} as const;

/** What the engine passes for a value not known yet during a preview (`pulumi.runtime.unknownValue`). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

const USAGES: readonly CertificateUsage[] = ["server", "client"];

/** Inputs every certificate resource (CA or leaf) has, after the class applied its defaults. */
export interface SubjectInputs {
  readonly commonName: string;
  readonly organizations: readonly string[];
  readonly ttlSeconds: number;
  readonly backdateSeconds: number;
  readonly keyAlgorithm: KeyAlgorithm;
}

export type RootCaInputs = SubjectInputs;

export interface CertificateInputs extends SubjectInputs {
  readonly caCertPem: string;
  /** Input only: never copied into the resource's outputs. */
  readonly caKeyPem: string;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly usages: readonly CertificateUsage[];
}

/** What an issued certificate adds to its inputs in the state. */
export interface IssuedOutputs {
  readonly certPem: string;
  /** PKCS#8 PEM; an additional secret output. */
  readonly keyPem: string;
  readonly publicKeyPem: string;
  /** RFC 3339 times and the lowercase hex serial, read from certPem. */
  readonly notBefore: string;
  readonly notAfter: string;
  readonly serial: string;
}

export type RootCaState = RootCaInputs & IssuedOutputs;
export type CertificateState = Omit<CertificateInputs, "caKeyPem"> & IssuedOutputs;

export interface PrivateKeyInputs {
  readonly algorithm: KeyAlgorithm;
}
export interface PrivateKeyState extends PrivateKeyInputs {
  readonly privateKeyPem: string;
  readonly publicKeyPem: string;
}

export interface CheckFailure {
  readonly property: string;
  readonly reason: string;
}

function isKnown(value: unknown): boolean {
  return value !== UNKNOWN;
}

/**
 * A list of strings; an element not known yet (a preview: the engine passes it as no value, e.g. a
 * Service's ClusterIP before the Service exists) is not judged.
 */
function isStringList(value: unknown): boolean {
  return Array.isArray(value) && value.every((v) => typeof v === "string" || v === undefined || v === null);
}

/** Problems with the inputs every certificate has; unknown values (preview) are not judged. */
export function checkSubjectInputs(news: Partial<Record<keyof SubjectInputs, unknown>>): CheckFailure[] {
  const failures: CheckFailure[] = [];
  const fail = (property: string, reason: string) => failures.push({ property, reason });
  const { commonName, organizations, ttlSeconds, backdateSeconds, keyAlgorithm } = news;
  if (isKnown(commonName) && (typeof commonName !== "string" || commonName.trim() === "")) {
    fail("commonName", "must be a non-empty string");
  }
  if (
    isKnown(organizations) &&
    (!isStringList(organizations) || (organizations as string[]).some((o) => o.trim() === ""))
  ) {
    fail("organizations", "must be a list of non-empty strings");
  }
  const ttlOk = typeof ttlSeconds === "number" && Number.isInteger(ttlSeconds) && ttlSeconds > 0;
  if (isKnown(ttlSeconds) && !ttlOk) {
    fail("ttlSeconds", `must be a positive whole number of seconds (got ${JSON.stringify(ttlSeconds)})`);
  }
  if (isKnown(backdateSeconds) && ttlOk) {
    const most = Math.floor((ttlSeconds as number) / 10);
    if (
      typeof backdateSeconds !== "number" ||
      !Number.isInteger(backdateSeconds) ||
      backdateSeconds < 0 ||
      backdateSeconds > most
    ) {
      fail(
        "backdateSeconds",
        `must be a whole number of seconds from 0 to a tenth of ttlSeconds (${most}) ` +
          `(got ${JSON.stringify(backdateSeconds)}): a longer backdate would make the certificate due for renewal soon after issue`,
      );
    }
  }
  if (isKnown(keyAlgorithm) && !KEY_ALGORITHMS.includes(keyAlgorithm as KeyAlgorithm)) {
    fail("keyAlgorithm", `must be one of ${KEY_ALGORITHMS.join(", ")} (got ${JSON.stringify(keyAlgorithm)})`);
  }
  return failures;
}

/** Problems with a leaf certificate's inputs. */
export function checkCertificateInputs(news: Partial<Record<keyof CertificateInputs, unknown>>): CheckFailure[] {
  const failures = checkSubjectInputs(news);
  const fail = (property: string, reason: string) => failures.push({ property, reason });
  for (const property of ["caCertPem", "caKeyPem"] as const) {
    const value = news[property];
    if (isKnown(value) && (typeof value !== "string" || !value.includes("-----BEGIN"))) {
      fail(property, "must be a PEM text (the CA resource's certPem and keyPem)");
    }
  }
  for (const property of ["dnsNames", "ipAddresses"] as const) {
    if (isKnown(news[property]) && !isStringList(news[property])) fail(property, "must be a list of strings");
  }
  const { usages } = news;
  if (
    isKnown(usages) &&
    (!Array.isArray(usages) || usages.some((u) => !USAGES.includes(u as CertificateUsage)) || usages.length === 0)
  ) {
    fail("usages", `must be a non-empty list of ${USAGES.join(", ")} (got ${JSON.stringify(usages)})`);
  }
  return failures;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/**
 * Why a certificate in the state must be reissued now, given the new inputs; empty when it
 * stays. Renewal is judged on the validity read from the certificate itself, not on stored
 * fields, and an unreadable certificate is reissued.
 */
function reissueReasons<N extends object>(
  olds: Partial<Record<keyof N, unknown>> & { readonly certPem?: string },
  news: N,
  compared: readonly (keyof N & string)[],
  now: Date,
): string[] {
  const reasons: string[] = compared
    .filter((field) => !same(olds[field], news[field]))
    .map((field) => `${field} changed`);
  let renewal: string | undefined;
  try {
    const cert = parseCertificate(olds.certPem ?? "");
    if (needsRenewal(cert.notBefore, cert.notAfter, now)) {
      renewal = `renewal due: less than half of ${cert.notBefore.toISOString()} … ${cert.notAfter.toISOString()} remains`;
    }
  } catch {
    renewal = "the certificate in the state cannot be read";
  }
  return renewal === undefined ? reasons : [...reasons, renewal];
}

const SUBJECT_FIELDS = ["commonName", "organizations", "ttlSeconds", "backdateSeconds", "keyAlgorithm"] as const;

/** Why the root CA must be reissued at `now` (empty: keep it). */
export function rootCaChanges(olds: Partial<RootCaState>, news: RootCaInputs, now: Date): string[] {
  return reissueReasons(olds, news, SUBJECT_FIELDS, now);
}

/**
 * Why a leaf must be reissued at `now` (empty: keep it). A new `caCertPem` (the CA was reissued,
 * or is about to be: unknown during a preview) is a reason, so leaves follow their CA.
 */
export function certificateChanges(olds: Partial<CertificateState>, news: CertificateInputs, now: Date): string[] {
  return reissueReasons(
    olds,
    news,
    [...SUBJECT_FIELDS, "caCertPem", "dnsNames", "ipAddresses", "usages"] as const,
    now,
  );
}

/** The key an (re)issue uses: the one in the state while the algorithm stays, else a new one. */
async function keyFor(
  olds: Partial<IssuedOutputs> & { keyAlgorithm?: KeyAlgorithm },
  algorithm: KeyAlgorithm,
): Promise<KeyPairPem> {
  if (olds.keyPem && olds.publicKeyPem && olds.keyAlgorithm === algorithm) {
    return { algorithm, privateKeyPem: olds.keyPem, publicKeyPem: olds.publicKeyPem };
  }
  return generateKeyPair(algorithm);
}

function issuedOutputs(key: KeyPairPem, certPem: string): IssuedOutputs {
  const cert = parseCertificate(certPem);
  return {
    certPem,
    keyPem: key.privateKeyPem,
    publicKeyPem: key.publicKeyPem,
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    serial: cert.serial,
  };
}

/** Issues (or reissues, keeping the key) the root CA at `now`. @internal */
export async function issueRootCa(olds: Partial<RootCaState>, news: RootCaInputs, now: Date): Promise<RootCaState> {
  const key = await keyFor(olds, news.keyAlgorithm);
  const certPem = await createSelfSignedCa({
    commonName: news.commonName,
    organizations: news.organizations,
    privateKeyPem: key.privateKeyPem,
    ...validityWindow(now, news.ttlSeconds, news.backdateSeconds),
  });
  const { commonName, organizations, ttlSeconds, backdateSeconds, keyAlgorithm } = news;
  return { commonName, organizations, ttlSeconds, backdateSeconds, keyAlgorithm, ...issuedOutputs(key, certPem) };
}

/** Issues (or reissues, keeping the key) a leaf at `now`. The CA key is not copied into the result. @internal */
export async function issueLeaf(
  olds: Partial<CertificateState>,
  news: CertificateInputs,
  now: Date,
): Promise<CertificateState> {
  const key = await keyFor(olds, news.keyAlgorithm);
  const certPem = await issueCertificate({
    caCertPem: news.caCertPem,
    caPrivateKeyPem: news.caKeyPem,
    publicKeyPem: key.publicKeyPem,
    commonName: news.commonName,
    organizations: news.organizations,
    dnsNames: news.dnsNames,
    ipAddresses: news.ipAddresses,
    usages: news.usages,
    ...validityWindow(now, news.ttlSeconds, news.backdateSeconds),
  });
  const { caKeyPem: _caKey, ...kept } = news;
  return { ...kept, ...issuedOutputs(key, certPem) };
}

/** The validity fields re-read from the state's certificate (a refresh trusts the certificate, not the fields). */
function reread<T extends Partial<IssuedOutputs>>(props: T): T {
  try {
    const cert = parseCertificate(props.certPem ?? "");
    return {
      ...props,
      notBefore: cert.notBefore.toISOString(),
      notAfter: cert.notAfter.toISOString(),
      serial: cert.serial,
    };
  } catch {
    return props; // diff reissues a certificate it cannot read
  }
}

/** A fresh resource id (ids stay for the resource's life; serials change with every renewal). */
function newId(): string {
  const { randomUUID } = require("node:crypto") as typeof import("node:crypto"); // eslint-disable-line @typescript-eslint/no-require-imports
  return randomUUID();
}

/** The clock the providers read; tests inject their own. */
export type Clock = () => Date;
export const systemClock: Clock = () => new Date();

/** The root CA provider, reading time from `clock`. */
export function rootCaProvider(clock: Clock): pulumi.dynamic.ResourceProvider<RootCaInputs, RootCaState> {
  return {
    async check(_olds, news) {
      return { inputs: news, failures: checkSubjectInputs(news) };
    },
    async diff(_id, olds, news) {
      return { changes: rootCaChanges(olds, news, clock()).length > 0, replaces: [], deleteBeforeReplace: false };
    },
    async create(news) {
      return { id: newId(), outs: await issueRootCa({}, news, clock()) };
    },
    async read(id, props) {
      return { id, props: reread(props ?? {}) as RootCaState };
    },
    async update(_id, olds, news) {
      return { outs: await issueRootCa(olds, news, clock()) };
    },
    async delete() {
      // Nothing outside the state: the certificate and key vanish with the resource.
    },
  };
}

/** The leaf certificate provider, reading time from `clock`. */
export function certificateProvider(
  clock: Clock,
): pulumi.dynamic.ResourceProvider<CertificateInputs, CertificateState> {
  return {
    async check(_olds, news) {
      return { inputs: news, failures: checkCertificateInputs(news) };
    },
    async diff(_id, olds, news) {
      return {
        changes: certificateChanges(olds, news, clock()).length > 0,
        replaces: [],
        deleteBeforeReplace: false,
      };
    },
    async create(news) {
      return { id: newId(), outs: await issueLeaf({}, news, clock()) };
    },
    async read(id, props) {
      return { id, props: reread(props ?? {}) as CertificateState };
    },
    async update(_id, olds, news) {
      return { outs: await issueLeaf(olds, news, clock()) };
    },
    async delete() {
      // Nothing outside the state.
    },
  };
}

/** The bare key provider: a new key only when the algorithm changes, never on a schedule. */
export const privateKeyProvider: pulumi.dynamic.ResourceProvider<PrivateKeyInputs, PrivateKeyState> = {
  async check(_olds, news) {
    const ok = !isKnown(news.algorithm) || KEY_ALGORITHMS.includes(news.algorithm);
    return {
      inputs: news,
      failures: ok
        ? []
        : [
            {
              property: "algorithm",
              reason: `must be one of ${KEY_ALGORITHMS.join(", ")} (got ${JSON.stringify(news.algorithm)})`,
            },
          ],
    };
  },
  async diff(_id, olds, news) {
    return { changes: olds.algorithm !== news.algorithm || !olds.privateKeyPem, replaces: [] };
  },
  async create(news) {
    const key = await generateKeyPair(news.algorithm);
    return {
      id: newId(),
      outs: { algorithm: news.algorithm, privateKeyPem: key.privateKeyPem, publicKeyPem: key.publicKeyPem },
    };
  },
  async update(_id, _olds, news) {
    const key = await generateKeyPair(news.algorithm);
    return { outs: { algorithm: news.algorithm, privateKeyPem: key.privateKeyPem, publicKeyPem: key.publicKeyPem } };
  },
  async delete() {
    // Nothing outside the state.
  },
};

export interface SecretInputs {
  /** How many random bytes; the value is their lowercase hex. */
  readonly bytes: number;
}
export interface SecretState extends SecretInputs {
  readonly value: string;
}

/** Smallest and largest `bytes` of a LocalSecret: at least 128 bits of entropy. */
export const SECRET_BYTES_RANGE = [16, 1024] as const;

function randomHex(bytes: number): string {
  const { randomBytes } = require("node:crypto") as typeof import("node:crypto"); // eslint-disable-line @typescript-eslint/no-require-imports
  return randomBytes(bytes).toString("hex");
}

/** The random secret provider: a new value only when `bytes` changes (or the resource is replaced). */
export const secretProvider: pulumi.dynamic.ResourceProvider<SecretInputs, SecretState> = {
  async check(_olds, news) {
    const [min, max] = SECRET_BYTES_RANGE;
    const ok = !isKnown(news.bytes) || (Number.isInteger(news.bytes) && news.bytes >= min && news.bytes <= max);
    return {
      inputs: news,
      failures: ok
        ? []
        : [
            {
              property: "bytes",
              reason: `must be an integer from ${min} to ${max} (got ${JSON.stringify(news.bytes)})`,
            },
          ],
    };
  },
  async diff(_id, olds, news) {
    return { changes: olds.bytes !== news.bytes || !olds.value, replaces: [] };
  },
  async create(news) {
    return { id: newId(), outs: { bytes: news.bytes, value: randomHex(news.bytes) } };
  },
  async update(_id, _olds, news) {
    return { outs: { bytes: news.bytes, value: randomHex(news.bytes) } };
  },
  async delete() {
    // Nothing outside the state.
  },
};

/** The providers every resource of this module uses (one object each, so Pulumi serializes each once). */
const PROVIDERS = {
  rootCa: rootCaProvider(systemClock),
  certificate: certificateProvider(systemClock),
};

/** The resource inputs of a provider's input type: every field an Input, lists of Inputs. */
type Args<T> = {
  readonly [K in keyof T]: T[K] extends readonly (infer E)[] ? pulumi.Input<pulumi.Input<E>[]> : pulumi.Input<T[K]>;
};

/** Options with the given outputs added to `additionalSecretOutputs`. */
function withSecretOutputs(
  opts: pulumi.CustomResourceOptions | undefined,
  names: string[],
): pulumi.CustomResourceOptions {
  return { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), ...names] };
}

const ISSUED_OUTPUTS = {
  certPem: undefined,
  keyPem: undefined,
  publicKeyPem: undefined,
  notBefore: undefined,
  notAfter: undefined,
  serial: undefined,
};

export interface LocalRootCaArgs {
  /** Subject CN of the CA. */
  readonly commonName: pulumi.Input<string>;
  /** Subject O values. Default: none. */
  readonly organizations?: pulumi.Input<pulumi.Input<string>[]>;
  /** Validity in seconds; reissued (same key) once less than half remains. */
  readonly ttlSeconds: pulumi.Input<number>;
  /** Seconds the validity starts before issue, at most ttlSeconds / 10. Default: DEFAULT_LOCAL_BACKDATE_SECONDS (30). */
  readonly backdateSeconds?: pulumi.Input<number>;
  /** Default: DEFAULT_LOCAL_KEY_ALGORITHM (`ecdsa-p256`). A change issues a new key. */
  readonly keyAlgorithm?: pulumi.Input<KeyAlgorithm>;
}

/** The inputs a CA and a certificate share, with their defaults. */
function subjectInputs(args: LocalRootCaArgs): Args<RootCaInputs> {
  return {
    commonName: args.commonName,
    organizations: args.organizations ?? [],
    ttlSeconds: args.ttlSeconds,
    backdateSeconds: args.backdateSeconds ?? DEFAULT_LOCAL_BACKDATE_SECONDS,
    keyAlgorithm: args.keyAlgorithm ?? (DEFAULT_LOCAL_KEY_ALGORITHM as KeyAlgorithm),
  };
}

/** A root CA (`pulumi-nodejs:dynamic/g8s-pki:LocalRootCa`): key pair and self-signed certificate. */
export class LocalRootCa extends pulumi.dynamic.Resource {
  declare public readonly certPem: pulumi.Output<string>;
  /** Secret. */
  declare public readonly keyPem: pulumi.Output<string>;
  declare public readonly publicKeyPem: pulumi.Output<string>;
  declare public readonly notBefore: pulumi.Output<string>;
  declare public readonly notAfter: pulumi.Output<string>;
  declare public readonly serial: pulumi.Output<string>;

  constructor(name: string, args: LocalRootCaArgs, opts?: pulumi.CustomResourceOptions) {
    const inputs = subjectInputs(args);
    super(
      PROVIDERS.rootCa,
      name,
      { ...inputs, ...ISSUED_OUTPUTS },
      withSecretOutputs(opts, ["keyPem"]),
      LOCAL_PKI_MODULE,
      "LocalRootCa",
    );
  }
}

export interface LocalCertificateArgs extends LocalRootCaArgs {
  /** The issuing CA's certificate; a new one reissues this certificate. */
  readonly caCertPem: pulumi.Input<string>;
  /** The issuing CA's private key (a secret Output keeps it encrypted in the state). */
  readonly caKeyPem: pulumi.Input<string>;
  /** DNS SANs. Default: none. */
  readonly dnsNames?: pulumi.Input<pulumi.Input<string>[]>;
  /** IP SANs. Default: none. */
  readonly ipAddresses?: pulumi.Input<pulumi.Input<string>[]>;
  /** Extended key usages: `server`, `client` or both. */
  readonly usages: pulumi.Input<pulumi.Input<CertificateUsage>[]>;
}

/** A certificate issued from a CA (`pulumi-nodejs:dynamic/g8s-pki:LocalCertificate`), with its own key. */
export class LocalCertificate extends pulumi.dynamic.Resource {
  declare public readonly certPem: pulumi.Output<string>;
  /** Secret. */
  declare public readonly keyPem: pulumi.Output<string>;
  declare public readonly publicKeyPem: pulumi.Output<string>;
  declare public readonly notBefore: pulumi.Output<string>;
  declare public readonly notAfter: pulumi.Output<string>;
  declare public readonly serial: pulumi.Output<string>;

  constructor(name: string, args: LocalCertificateArgs, opts?: pulumi.CustomResourceOptions) {
    const inputs: Args<CertificateInputs> = {
      ...subjectInputs(args),
      caCertPem: args.caCertPem,
      caKeyPem: pulumi.secret(args.caKeyPem),
      dnsNames: args.dnsNames ?? [],
      ipAddresses: args.ipAddresses ?? [],
      usages: args.usages,
    };
    super(
      PROVIDERS.certificate,
      name,
      { ...inputs, ...ISSUED_OUTPUTS },
      withSecretOutputs(opts, ["keyPem"]),
      LOCAL_PKI_MODULE,
      "LocalCertificate",
    );
  }
}

export interface LocalPrivateKeyArgs {
  /** Default: DEFAULT_LOCAL_SERVICE_ACCOUNT_KEY_ALGORITHM (`rsa-2048`). A change generates a new key. */
  readonly algorithm?: pulumi.Input<KeyAlgorithm>;
}

/** A bare key pair (`pulumi-nodejs:dynamic/g8s-pki:LocalPrivateKey`); never rotated by time. */
export class LocalPrivateKey extends pulumi.dynamic.Resource {
  /** Secret. */
  declare public readonly privateKeyPem: pulumi.Output<string>;
  declare public readonly publicKeyPem: pulumi.Output<string>;

  constructor(name: string, args: LocalPrivateKeyArgs = {}, opts?: pulumi.CustomResourceOptions) {
    super(
      privateKeyProvider,
      name,
      {
        algorithm: args.algorithm ?? (DEFAULT_LOCAL_SERVICE_ACCOUNT_KEY_ALGORITHM as KeyAlgorithm),
        privateKeyPem: undefined,
        publicKeyPem: undefined,
      },
      withSecretOutputs(opts, ["privateKeyPem"]),
      LOCAL_PKI_MODULE,
      "LocalPrivateKey",
    );
  }
}

export interface LocalSecretArgs {
  /** Default: DEFAULT_LOCAL_SECRET_BYTES (32). A change makes a new value. */
  readonly bytes?: pulumi.Input<number>;
}

/**
 * Random bytes as hex (`pulumi-nodejs:dynamic/g8s-pki:LocalSecret`), made once and kept in the
 * state as a secret; a new value only when `bytes` changes or the resource is replaced.
 */
export class LocalSecret extends pulumi.dynamic.Resource {
  /** Secret. */
  declare public readonly value: pulumi.Output<string>;

  constructor(name: string, args: LocalSecretArgs = {}, opts?: pulumi.CustomResourceOptions) {
    super(
      secretProvider,
      name,
      { bytes: args.bytes ?? DEFAULT_LOCAL_SECRET_BYTES, value: undefined },
      withSecretOutputs(opts, ["value"]),
      LOCAL_PKI_MODULE,
      "LocalSecret",
    );
  }
}
