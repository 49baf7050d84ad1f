/**
 * GuestCluster (`g8s:index:GuestCluster`): one Kubernetes guest cluster from its validated spec.
 * Composes the PKI (ClusterPki), the node bootstrap (cloud-init + kubeadm per role, secrets by
 * reference only) and the platform of `spec.provider`.
 */
import * as pulumi from "@pulumi/pulumi";
import { AwsCluster, apiEndpointOf, masterAddresses } from "./aws";
import {
  awsUserDataOutput,
  bootstrapTokenOf,
  cloudConfigOutput,
  masterRoles,
  nodeSecretsFor,
  renderCloudConfig,
  type BootstrapRole,
  type BootstrapConfig,
  type BootstrapConfigArgs,
  type NodeSecretInputs,
} from "./bootstrap";
import { KVM_ETCD_DISK_GUEST_DEVICE, KvmCluster, kvmApiEndpoint, kvmApiNames } from "./kvm";
import { ClusterPki, type CertificateRecord } from "./pki";
import { LocalSecret } from "./pki/local";
import { masterKeys, type AwsClusterSpec, type ClusterSpec, type KvmClusterSpec } from "./spec";

/** Stack output `pki`: what the reconciler reads to renew certificates (see automation/reconciler/renewal.ts). */
export interface PkiRenewal {
  readonly certificates: Readonly<Record<string, CertificateRecord>>;
  /** URNs of what carries PKI material to the nodes: every renewal updates them too. */
  readonly carriers: readonly string[];
}

export interface GuestClusterArgs {
  /** The validated spec (parseClusterSpec). */
  readonly spec: ClusterSpec;
  /** Vault token for the vault PKI backend (secret config `g8s:vaultToken`). Default: VAULT_TOKEN. */
  readonly vaultToken?: pulumi.Input<string>;
  /** kubeconfig of the host cluster, kvm only (secret config `g8s:hostKubeconfig`). Default: the ambient one. */
  readonly hostKubeconfig?: pulumi.Input<string>;
  /** Time for certificate rotation windows (tls backend). Default: now. */
  readonly now?: Date;
}

/** What every platform branch returns to the component. */
interface PlatformOutputs {
  readonly apiEndpoint: pulumi.Output<string>;
  /** What carries PKI material to the nodes (Secrets, SSM parameters): part of every renewal. */
  readonly pkiCarriers: readonly pulumi.Resource[];
  readonly details: Record<string, pulumi.Output<unknown>>;
}

/**
 * The secret inputs the bootstrap needs: the PKI's, and the bootstrap token derived from a random
 * seed of its own (`${name}-bootstrap-token-seed`, a plugin-free dynamic resource whose value stays
 * in the state as a secret: stable, so no drift; replace it to rotate the token). Not from the
 * service-account key: every worker holds the token.
 */
export function nodeSecretInputs(
  name: string,
  pki: ClusterPki,
  clusterId: string,
  parent: pulumi.Resource,
): NodeSecretInputs {
  const seed = new LocalSecret(`${name}-bootstrap-token-seed`, {}, { parent });
  return {
    caCertPem: pki.caCertPem,
    bundles: pki.bundles,
    serviceAccountKey: pki.serviceAccountKey,
    bootstrapToken: bootstrapTokenOf(seed.value, clusterId),
  };
}

/** @internal KVM: PKI for the API Service name, user-data from mounted Secrets, QEMU pods. */
export function createKvmGuest(name: string, spec: KvmClusterSpec, args: GuestClusterArgs, parent: pulumi.Resource) {
  const apiEndpoint = kvmApiEndpoint(spec);
  const masterNames = masterKeys(spec);
  // The masters' Service addresses belong in the API and etcd certificates, but the Services are
  // KvmCluster's, which needs the certificates: the PKI takes them as values that resolve once
  // KvmCluster exists (no resource cycle: the Services need nothing of the PKI).
  let handOver: (addresses: pulumi.Output<string>[]) => void = () => undefined;
  const later = new Promise<pulumi.Output<string>[]>((resolve) => (handOver = resolve));
  const masterAddress = (slot: number) => pulumi.output(later.then((addresses) => addresses[slot]));
  const pki = new ClusterPki(
    `${name}-pki`,
    {
      spec,
      apiEndpoint,
      apiNames: kvmApiNames(spec),
      apiAddresses: masterNames.map((_, slot) => masterAddress(slot)),
      masterNames,
      masterAddresses: Object.fromEntries(masterNames.map((master, slot) => [master, masterAddress(slot)])),
      vaultToken: args.vaultToken,
      now: args.now,
    },
    { parent },
  );
  const bootstrap: BootstrapConfigArgs = {
    spec,
    apiEndpoint,
    delivery: { kind: "mounted-secret" },
    etcdDisk: KVM_ETCD_DISK_GUEST_DEVICE,
  };
  const roles = masterRoles(masterNames);
  const kvm = new KvmCluster(
    `${name}-kvm`,
    {
      spec,
      hostKubeconfig: args.hostKubeconfig,
      userData: {
        master: (slot, serviceAddress) =>
          serviceAddress.apply((address) =>
            cloudConfigOutput(bootstrap, { ...roles[slot], serviceAddress: address } as BootstrapRole),
          ),
        pool: (pool) => cloudConfigOutput(bootstrap, { kind: "worker", pool }),
      },
      nodeSecrets: nodeSecretsFor(masterNames, nodeSecretInputs(name, pki, spec.id, parent), {
        clusterId: spec.id,
        apiEndpoint,
      }),
    },
    { parent },
  );
  handOver(kvm.masterAddresses);
  const platform: PlatformOutputs = {
    apiEndpoint: kvm.apiEndpoint,
    pkiCarriers: kvm.pkiCarriers,
    details: { namespace: kvm.namespace },
  };
  return { pki, platform };
}

/**
 * @internal AWS: PKI for `api.<id>.<baseDomain>` and the masters' fixed IPs, user-data that
 * fetches secrets from SSM and attaches each master's interface and etcd volume, the AWS platform.
 */
export function createAwsGuest(name: string, spec: AwsClusterSpec, args: GuestClusterArgs, parent: pulumi.Resource) {
  const apiEndpoint = apiEndpointOf(spec);
  const masterNames = masterKeys(spec);
  const pki = new ClusterPki(
    `${name}-pki`,
    {
      spec,
      apiEndpoint,
      masterNames,
      masterAddresses: masterAddresses(spec),
      // kubeadm talks to each master's API server at its advertise address (the fixed IP), and
      // the controllers reach theirs at 127.0.0.1: both must be in the serving certificate.
      apiAddresses: Object.values(masterAddresses(spec)),
      vaultToken: args.vaultToken,
      now: args.now,
    },
    { parent },
  );
  const bootstrap: BootstrapConfig = { spec, apiEndpoint, delivery: { kind: "aws-ssm", region: spec.aws.region } };
  const roles = masterRoles(masterNames);
  const aws = new AwsCluster(
    `${name}-aws`,
    {
      spec,
      userData: {
        master: (slot, refs) =>
          awsUserDataOutput(
            pulumi.all([refs.networkInterfaceId, refs.etcdVolumeId]).apply(([networkInterfaceId, etcdVolumeId]) =>
              renderCloudConfig(bootstrap, {
                ...roles[slot],
                attach: {
                  region: spec.aws.region,
                  networkInterfaceId,
                  deviceIndex: refs.networkInterfaceDeviceIndex,
                  privateIp: refs.privateIp,
                  etcdVolumeId,
                },
              } as (typeof roles)[number]),
            ),
          ).apply((u) => u.userDataBase64),
        pool: (pool) =>
          awsUserDataOutput(cloudConfigOutput(bootstrap, { kind: "worker", pool })).apply((u) => u.userDataBase64),
      },
      nodeSecrets: nodeSecretsFor(masterNames, nodeSecretInputs(name, pki, spec.id, parent), {
        clusterId: spec.id,
        apiEndpoint,
      }),
    },
    { parent },
  );
  const platform: PlatformOutputs = {
    apiEndpoint: aws.apiEndpoint,
    pkiCarriers: aws.pkiCarriers,
    details: {
      apiLoadBalancer: aws.apiLoadBalancerDnsName,
      ingressLoadBalancer: aws.ingressDnsName,
      vpcId: aws.vpcId,
      privateSubnetIds: aws.privateSubnetIds,
      publicSubnetIds: aws.publicSubnetIds,
      availabilityZones: aws.availabilityZones,
    },
  };
  return { pki, platform };
}

export class GuestCluster extends pulumi.ComponentResource {
  public readonly apiEndpoint: pulumi.Output<string>;
  /** kubeconfig of `kubernetes-admin` (O=system:masters). Secret. */
  public readonly adminKubeconfig: pulumi.Output<string>;
  /** Per `pki.users` entry, its kubeconfig (client certificate with the user's groups). Secret. */
  public readonly userKubeconfigs: pulumi.Output<Record<string, string>>;
  public readonly caCertPem: pulumi.Output<string>;
  /** When each certificate expires (RFC 3339), for time-to-expiry alerts. */
  public readonly certificateNotAfter: pulumi.Output<Record<string, string>>;
  /**
   * What a certificate renewal needs (stack output `pki`, plain): per certificate its validity,
   * renewal point and resources, and the resources that carry them to the nodes.
   */
  public readonly pkiRenewal: pulumi.Output<PkiRenewal>;
  /** Platform details: the host namespace (kvm); VPC, subnets and load balancers (aws). */
  public readonly platform: pulumi.Output<Record<string, unknown>>;
  public readonly pki: ClusterPki;

  constructor(name: string, args: GuestClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("g8s:index:GuestCluster", name, {}, opts);
    const { spec } = args;
    let created: { pki: ClusterPki; platform: PlatformOutputs };
    switch (spec.provider) {
      case "kvm":
        created = createKvmGuest(name, spec, args, this);
        break;
      case "aws":
        created = createAwsGuest(name, spec, args, this);
        break;
    }
    this.pki = created.pki;
    this.apiEndpoint = created.platform.apiEndpoint;
    this.adminKubeconfig = created.pki.adminKubeconfig;
    this.userKubeconfigs = pulumi.secret(
      pulumi.all(Object.fromEntries(spec.pki.users.map((u) => [u.name, created.pki.userKubeconfig(u.name, u.groups)]))),
    );
    this.caCertPem = created.pki.caCertPem;
    this.certificateNotAfter = created.pki.notAfter;
    // After the users' certificates: they are renewed like the others.
    this.pkiRenewal = pulumi
      .all([created.pki.certificateRecords(), pulumi.all(created.platform.pkiCarriers.map((r) => r.urn))])
      .apply(([certificates, carriers]) => ({ certificates, carriers }));
    this.platform = pulumi.all(created.platform.details).apply((d) => d as Record<string, unknown>);
    this.registerOutputs({
      apiEndpoint: this.apiEndpoint,
      adminKubeconfig: this.adminKubeconfig,
      userKubeconfigs: this.userKubeconfigs,
      caCertPem: this.caCertPem,
      certificateNotAfter: this.certificateNotAfter,
      pkiRenewal: this.pkiRenewal,
      platform: this.platform,
    });
  }
}
