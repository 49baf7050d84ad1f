/**
 * `#cloud-config` documents per node role, built as objects and serialised with `yaml`: the
 * first master (`kubeadm init`), further masters (`kubeadm join --control-plane`) and workers
 * (`kubeadm join`). Pure over non-secret inputs: secrets reach the node through SecretDelivery.
 */
import type { MasterAttachment } from "./files";
import * as pulumi from "@pulumi/pulumi";
import { etcdBackupUnitNames, etcdBackupWriteFiles } from "./etcdBackup";
import { stringify } from "yaml";
import { DEFAULT_SERVICE_DNS_DOMAIN } from "../pki";
import type { ClusterSpec, Taint } from "../spec";
import {
  ADDONS_PATH,
  BOOTSTRAP_FAILED_SCRIPT_PATH,
  BOOTSTRAP_TOKEN_SCRIPT_PATH,
  CALICO_OPERATOR_MANIFEST_URL,
  ETCD_VOLUME_MOUNT_PATH,
  G8S_DIR,
  KUBEADM_CONFIG_PATH,
  ADMIN_KUBECONFIG_PATH,
  STATE_DIR,
  SYNC_SCRIPT_PATH,
} from "./constants";
import {
  deliveryBootCommands,
  deliveryInstall,
  deliveryWriteFiles,
  renewalUnitNames,
  type SecretDelivery,
  type WriteFile,
} from "./delivery";
import type { BootstrapRole } from "./files";
import { flannelDocuments } from "./flannel";
import { renderToml } from "./ini";
import {
  clusterConfiguration,
  initConfiguration,
  joinConfiguration,
  kubeletConfiguration,
  kubeProxyConfiguration,
  renderDocuments,
  type KubeadmInput,
} from "./kubeadm";
import { pauseImageOf } from "./nodeImage";
import { BOOTSTRAP_TOKEN_SCRIPT } from "./token";

/** Everything a node's cloud-config depends on. No secret value: only names, paths, versions, the endpoint. */
export interface BootstrapConfig {
  /**
   * The validated cluster spec: id, kubernetes (version, CIDRs, `cni`, `packages`: `apt` installs
   * from pkgs.k8s.io pinned to the version, `image` only checks the node image's kubeadm), nodePools.
   */
  readonly spec: ClusterSpec;
  /** `https://host:port` of the API: the load balancer (AWS) or the API Service (KVM). */
  readonly apiEndpoint: string;
  /** How the node obtains its secret files. */
  readonly delivery: SecretDelivery;
  /** Extra API server SANs for the kubeadm config (the certificates come from ClusterPki). Default: none. */
  readonly apiCertSans?: readonly string[];
  /** Default: `cluster.local`. */
  readonly serviceDnsDomain?: string;
  /**
   * A block device of its own for etcd's data on the masters, when present at boot (KVM: the
   * QEMU pod's second disk). AWS masters attach theirs first (`BootstrapRole.attach`).
   */
  readonly etcdDisk?: string;
}

/** The cloud-config object (the keys g8s uses; all are cloud-init 22.4+ modules). */
export interface CloudConfig {
  /** Every boot, early (cloud-init's init stage): what must be in place before runcmd (the Secret share). */
  readonly bootcmd?: readonly (string | readonly string[])[];
  readonly write_files: readonly WriteFile[];
  readonly runcmd: readonly (string | readonly string[])[];
}

/** The cloud-init top-level keys this module may emit (tests reject any other). */
export const CLOUD_CONFIG_KEYS = ["bootcmd", "write_files", "runcmd"] as const;

function minorOf(version: string): string {
  const m = /^(\d+)\.(\d+)\.\d+$/.exec(version);
  if (!m) throw new RangeError(`kubernetes.version must be x.y.z (got '${version}')`);
  return `${m[1]}.${m[2]}`;
}

/** `Key: value` stanzas (apt preferences, deb822). */
function renderStanza(fields: readonly (readonly [string, string])[]): string {
  return fields.map(([k, v]) => `${k}: ${v}`).join("\n") + "\n";
}

export function kubernetesAptRepository(version: string): string {
  return `https://pkgs.k8s.io/core:/stable:/v${minorOf(version)}/deb/`;
}

const KEYRING = "/etc/apt/keyrings/kubernetes-apt-keyring.gpg";
const KUBE_PACKAGES = ["kubelet", "kubeadm", "kubectl"];

/** containerd: CRI with the systemd cgroup driver (kubelet's cgroupDriver), the pinned pause image, OOM scores clamped. */
export function containerdConfig(kubernetesVersion: string): string {
  return renderToml({
    version: 2,
    plugins: {
      "io.containerd.grpc.v1.cri": {
        sandbox_image: pauseImageOf(kubernetesVersion),
        // No container's OOM score below containerd's own (-999 under systemd on a VM, so no
        // change there). A node without CAP_SYS_RESOURCE (a system container) cannot lower a
        // score, and runc then fails every pod sandbox (-998) with "can't get final child's PID".
        restrict_oom_score_adj: true,
        containerd: { runtimes: { runc: { runtime_type: "io.containerd.runc.v2", options: { SystemdCgroup: true } } } },
      },
    },
  });
}

function hostFiles(config: BootstrapConfig): WriteFile[] {
  const version = config.spec.kubernetes.version;
  const files: WriteFile[] = [
    { path: "/etc/modules-load.d/g8s-kubernetes.conf", content: "overlay\nbr_netfilter\n", permissions: "0644" },
    {
      path: "/etc/sysctl.d/90-g8s-kubernetes.conf",
      content: renderStanza([
        ["net.bridge.bridge-nf-call-iptables", "1"],
        ["net.bridge.bridge-nf-call-ip6tables", "1"],
        ["net.ipv4.ip_forward", "1"],
      ]).replace(/: /g, " = "),
      permissions: "0644",
    },
    { path: "/etc/containerd/config.toml", content: containerdConfig(version), permissions: "0644" },
  ];
  if (config.spec.kubernetes.packages === "apt") {
    files.push(
      {
        path: "/etc/apt/sources.list.d/kubernetes.list",
        content: `deb [signed-by=${KEYRING}] ${kubernetesAptRepository(version)} /\n`,
        permissions: "0644",
      },
      {
        path: "/etc/apt/preferences.d/g8s-kubernetes",
        content: renderStanza([
          ["Package", KUBE_PACKAGES.join(" ")],
          ["Pin", `version ${version}-*`],
          ["Pin-Priority", "1001"],
        ]),
        permissions: "0644",
      },
    );
  }
  return files;
}

function installCommands(config: BootstrapConfig): (string | string[])[] {
  const version = config.spec.kubernetes.version;
  if (config.spec.kubernetes.packages === "image") {
    // The image's kubelet and kubeadm of the spec's version (the image holds the next minor's too).
    return [["g8s-kubernetes", "use", `v${version}`]];
  }
  return [
    ["mkdir", "-p", "-m", "0755", "/etc/apt/keyrings"],
    ["sh", "-c", `curl -fsSL ${kubernetesAptRepository(version)}Release.key | gpg --dearmor --yes -o ${KEYRING}`],
    ["apt-get", "update"],
    [
      "env",
      "DEBIAN_FRONTEND=noninteractive",
      "apt-get",
      "install",
      "-y",
      "--no-install-recommends",
      "-o",
      "Dpkg::Options::=--force-confold",
      "containerd",
      ...KUBE_PACKAGES,
    ],
    ["apt-mark", "hold", ...KUBE_PACKAGES],
  ];
}

function kubeadmInput(config: BootstrapConfig): KubeadmInput {
  return {
    spec: config.spec,
    apiEndpoint: config.apiEndpoint,
    apiCertSans: config.apiCertSans,
    serviceDnsDomain: config.serviceDnsDomain ?? DEFAULT_SERVICE_DNS_DOMAIN,
  };
}

/** The binding of the shared node identity and the pod network (flannel, or Calico's Installation), applied once by the first master. */
export function addonDocuments(config: BootstrapConfig): object[] {
  const docs: object[] = [
    {
      // Kubelets share the `worker` identity (O=system:nodes), which the Node authorizer does
      // not recognise (its CN is not system:node:<name>): grant the node role to the group.
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: "g8s:shared-node-identity" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "system:node" },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: "system:nodes" }],
    },
  ];
  if (config.spec.kubernetes.cni === "flannel") docs.push(...flannelDocuments(config.spec));
  if (config.spec.kubernetes.cni === "calico") {
    docs.push({
      apiVersion: "operator.tigera.io/v1",
      kind: "Installation",
      metadata: { name: "default" },
      spec: {
        calicoNetwork: {
          // Pure VXLAN, no BGP: every pod packet between nodes is encapsulated with node addresses.
          // CrossSubnet would route same-subnet pod packets bare, which EC2's source/destination
          // check drops (a launch template cannot turn it off) and a KVM host's pod network rejects.
          bgp: "Disabled",
          ipPools: [
            {
              name: "default-ipv4-ippool",
              cidr: config.spec.kubernetes.podCidr,
              blockSize: 26,
              encapsulation: "VXLAN",
              natOutgoing: "Enabled",
              nodeSelector: "all()",
            },
          ],
        },
      },
    });
  }
  return docs;
}

function kubectl(...args: string[]): string[] {
  return ["kubectl", "--kubeconfig", ADMIN_KUBECONFIG_PATH, ...args];
}

/** Commands only the first master runs, once: the bootstrap token, the CNI, the RBAC. */
function firstMasterCommands(config: BootstrapConfig): (string | string[])[] {
  const calico = config.spec.kubernetes.cni === "calico";
  return [
    // The token from its delivered file, with a finite TTL; every master's secret sync renews it.
    [BOOTSTRAP_TOKEN_SCRIPT_PATH],
    ...(calico
      ? [
          kubectl("create", "-f", CALICO_OPERATOR_MANIFEST_URL),
          kubectl(
            "wait",
            "--for",
            "condition=established",
            "--timeout",
            "300s",
            "crd/installations.operator.tigera.io",
          ),
        ]
      : []),
    kubectl("apply", "-f", ADDONS_PATH),
    // Now that the shared node identity may act as a node, the master registers and can be marked.
    ["kubeadm", "init", "phase", "mark-control-plane", "--config", KUBEADM_CONFIG_PATH],
    ["touch", `${STATE_DIR}/addons-applied`],
  ];
}

/**
 * kubeadm init without marking the control plane: that phase waits for this master's Node, which
 * its kubelet (the shared `worker` identity) can only register once the add-ons bind it to the
 * node role, and they are applied after init (on a real node init hung there: "User
 * worker.<cluster> cannot get resource nodes"). The first master runs the phase after the add-ons.
 */
export const INIT_SKIPPED_PHASES = ["mark-control-plane"];

function poolOf(spec: ClusterSpec, pool: string): { labels: Record<string, string>; taints: Taint[] } {
  const found = (spec.nodePools as readonly { name: string; labels: Record<string, string>; taints: Taint[] }[]).find(
    (p) => p.name === pool,
  );
  if (found === undefined) {
    throw new RangeError(
      `node pool '${pool}' is not in the spec (pools: ${spec.nodePools.map((p) => p.name).join(", ")})`,
    );
  }
  return found;
}

/** The kubeadm documents of a role, as YAML (multi-document for the first master). */
export function kubeadmConfigFor(config: BootstrapConfig, role: BootstrapRole): string {
  const input = kubeadmInput(config);
  // AWS: the attached interface's fixed IP is both. KVM: the master's Service address is advertised
  // (kubeadm and the controllers reach the API server there: it is in the API certificate), while
  // the kubelet keeps the pod's own address.
  const advertise = role.kind === "worker" ? undefined : (role.attach?.privateIp ?? role.serviceAddress);
  const nodeIp = role.kind === "worker" ? undefined : role.attach?.privateIp;
  if (role.kind === "first-master") {
    return renderDocuments([
      initConfiguration(advertise, { nodeIp }),
      clusterConfiguration(input),
      kubeletConfiguration(input),
      kubeProxyConfiguration(),
    ]);
  }
  if (role.kind === "master") {
    return renderDocuments([joinConfiguration({ kind: "master", advertiseAddress: advertise, nodeIp })]);
  }
  const pool = poolOf(config.spec, role.pool);
  return renderDocuments([joinConfiguration({ kind: "worker", pool: role.pool, ...pool })]);
}

/** Sets `IID` to this EC2 instance's id, from the instance metadata service (IMDSv2). */
const INSTANCE_ID_LINES = [
  'TOKEN=$(curl -sf -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 300" http://169.254.169.254/latest/api/token)',
  'IID=$(curl -sf -H "X-aws-ec2-metadata-token: $TOKEN" http://169.254.169.254/latest/meta-data/instance-id)',
];

/**
 * What an AWS node runs when its bootstrap failed (`g8s-bootstrap-failed <status>`): mark the
 * instance unhealthy, at once rather than after the group's grace period, so its auto scaling
 * group terminates and replaces it. Best effort: the boot has failed either way. The instance role
 * may do this for its own group's instances only (components/aws).
 */
export function bootstrapFailedScript(region: string): string {
  return [
    "#!/bin/sh",
    "set -u",
    ...INSTANCE_ID_LINES,
    'echo "g8s: bootstrap failed (status ${1:-?}): marking $IID unhealthy; its auto scaling group replaces it" >&2',
    `aws autoscaling set-instance-health --region ${region} --instance-id "$IID" --health-status Unhealthy --no-should-respect-grace-period`,
    "",
  ].join("\n");
}

/**
 * The runcmd line that reports a failed boot (AWS): an EXIT trap of cloud-init's runcmd script,
 * which `set -e` ends at the first failing step. A master disarms it once kubeadm succeeded (see
 * buildCloudConfig).
 */
const FAILURE_TRAP = `trap 'rc=$?; [ "$rc" -eq 0 ] || ${BOOTSTRAP_FAILED_SCRIPT_PATH} "$rc"' EXIT`;

/** Where the AWS master attach script goes; it runs first at boot. */
export const ATTACH_SCRIPT_PATH = "/usr/local/sbin/g8s-attach-master";

/**
 * The boot script of an AWS master: attach the slot's interface (fixed IP) and etcd volume to
 * this instance, format the volume once, mount it at ETCD_VOLUME_MOUNT_PATH (etcd's data directory
 * is a subdirectory: kubeadm refuses the volume's root, which holds lost+found). Idempotent (a
 * reboot finds both attached). Needs the AWS CLI and the instance role's attach permissions (components/aws).
 */
export function attachScript(a: MasterAttachment): string {
  const nvmeId = a.etcdVolumeId.replace("-", "");
  return [
    "#!/bin/sh",
    "set -eu",
    ...INSTANCE_ID_LINES,
    `if ! ip -o addr show | grep -q " ${a.privateIp}/"; then`,
    `  aws ec2 attach-network-interface --region ${a.region} --network-interface-id ${a.networkInterfaceId} --instance-id "$IID" --device-index ${a.deviceIndex}`,
    `  for i in $(seq 60); do ip -o addr show | grep -q " ${a.privateIp}/" && break; sleep 2; done`,
    "fi",
    `DEV=/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${nvmeId}`,
    'if [ ! -e "$DEV" ]; then',
    `  aws ec2 attach-volume --region ${a.region} --volume-id ${a.etcdVolumeId} --instance-id "$IID" --device /dev/sdf`,
    '  for i in $(seq 90); do [ -e "$DEV" ] && break; sleep 2; done',
    "fi",
    ...MOUNT_ETCD_DEVICE,
    "",
  ].join("\n");
}

/**
 * Shell lines that format the device `$DEV` once (ext4, label etcd) and mount it at
 * ETCD_VOLUME_MOUNT_PATH, now and at every boot (one fstab line). Idempotent.
 */
const MOUNT_ETCD_DEVICE = [
  // -p probes the device itself: blkid's cache can still name a file system that is gone (seen
  // in a test that reused a loop device), and then the blank disk was never formatted.
  'blkid -p "$DEV" >/dev/null 2>&1 || mkfs.ext4 -q -L etcd "$DEV"',
  `mkdir -p ${ETCD_VOLUME_MOUNT_PATH}`,
  `mountpoint -q ${ETCD_VOLUME_MOUNT_PATH} || mount "$DEV" ${ETCD_VOLUME_MOUNT_PATH}`,
  `grep -q " ${ETCD_VOLUME_MOUNT_PATH} " /etc/fstab || echo "$DEV ${ETCD_VOLUME_MOUNT_PATH} ext4 defaults,nofail 0 2" >> /etc/fstab`,
];

/** Where a master's etcd-disk script goes (BootstrapConfig.etcdDisk); it runs before kubeadm. */
export const ETCD_DISK_SCRIPT_PATH = "/usr/local/sbin/g8s-etcd-disk";

/**
 * A master's etcd disk: formatted once and mounted (etcd's data directory is a subdirectory of
 * it). Without the device (a system container of the lab, a VM without the disk) etcd keeps its
 * data on the root disk, which says so.
 */
export function etcdDiskScript(device: string): string {
  return [
    "#!/bin/sh",
    "set -eu",
    `DEV=${device}`,
    'if [ ! -e "$DEV" ]; then',
    '  echo "g8s-etcd-disk: no $DEV: etcd keeps its data on the root disk" >&2',
    "  exit 0",
    "fi",
    ...MOUNT_ETCD_DEVICE,
    "",
  ].join("\n");
}

/** Attempts of `kubeadm join` before the boot fails (a joining node may come up before the API). */
export const JOIN_ATTEMPTS = 20;
const JOIN_RETRY_SECONDS = 15;

/**
 * `kubeadm join`, retried: a node often boots before the first master's API answers. Between
 * attempts `kubeadm reset` undoes the partial join, which removes the delivered kubelet identity and
 * CA too, so the sync script installs them again.
 */
function joinWithRetry(): string {
  return [
    "n=0",
    `until kubeadm join --config ${KUBEADM_CONFIG_PATH}; do`,
    "  n=$((n + 1))",
    `  [ "$n" -lt ${JOIN_ATTEMPTS} ] || { echo "g8s: kubeadm join failed ${JOIN_ATTEMPTS} times" >&2; exit 1; }`,
    "  kubeadm reset --force >/dev/null 2>&1 || true",
    `  ${SYNC_SCRIPT_PATH}`,
    `  sleep ${JOIN_RETRY_SECONDS}`,
    "done",
  ].join("\n");
}

/** systemd-networkd's file that keeps a master's Service address on `lo`. */
export const SERVICE_ADDRESS_NETWORK_PATH = "/etc/systemd/network/10-g8s-service-address.network";

function serviceAddressNetwork(address: string): string {
  return `[Match]\nName=lo\n\n[Network]\nAddress=${address}/32\n`;
}

/** The cloud-config object of a node. */
export function buildCloudConfig(config: BootstrapConfig, role: BootstrapRole): CloudConfig {
  const first = role.kind === "first-master";
  const writeFiles: WriteFile[] = [
    ...hostFiles(config),
    { path: KUBEADM_CONFIG_PATH, content: kubeadmConfigFor(config, role), permissions: "0600" },
    ...(first ? [{ path: ADDONS_PATH, content: renderDocuments(addonDocuments(config)), permissions: "0644" }] : []),
    ...deliveryWriteFiles(config.delivery, config.spec.id, role),
    ...(role.kind !== "worker" && role.attach
      ? [{ path: ATTACH_SCRIPT_PATH, content: attachScript(role.attach), permissions: "0755" }]
      : []),
    ...(role.kind !== "worker" && config.etcdDisk
      ? [{ path: ETCD_DISK_SCRIPT_PATH, content: etcdDiskScript(config.etcdDisk), permissions: "0755" }]
      : []),
    ...(role.kind !== "worker"
      ? [{ path: BOOTSTRAP_TOKEN_SCRIPT_PATH, content: BOOTSTRAP_TOKEN_SCRIPT, permissions: "0755" }]
      : []),
    ...(role.kind !== "worker" ? etcdBackupWriteFiles(config.spec) : []),
    ...(config.delivery.kind === "aws-ssm"
      ? [
          {
            path: BOOTSTRAP_FAILED_SCRIPT_PATH,
            content: bootstrapFailedScript(config.delivery.region),
            permissions: "0755",
          },
        ]
      : []),
    ...(role.kind !== "worker" && role.serviceAddress
      ? [
          {
            path: SERVICE_ADDRESS_NETWORK_PATH,
            content: serviceAddressNetwork(role.serviceAddress),
            permissions: "0644",
          },
        ]
      : []),
  ];
  const kubeadm =
    role.kind === "first-master"
      ? [
          "kubeadm",
          "init",
          "--config",
          KUBEADM_CONFIG_PATH,
          `--skip-phases=${INIT_SKIPPED_PHASES.join(",")}`,
          // init's own token (and a join command with it) would land in the cloud-init log and
          // console; g8s-bootstrap-token revokes that token right after.
          "--skip-token-print",
        ]
      : joinWithRetry();
  // AWS nodes live in auto scaling groups: one whose boot failed asks to be replaced. Not a master
  // whose kubeadm succeeded: its etcd volume then holds cluster state that a new instance's kubeadm
  // would refuse (a failure after that point is for a person; cloud-init reports it).
  const reportFailure = config.delivery.kind === "aws-ssm";
  const disarm = reportFailure && role.kind !== "worker" ? ["trap - EXIT"] : [];
  const runcmd: (string | string[])[] = [
    // cloud-init writes the string as is into its runcmd script: the first failing step ends the
    // boot there, and cloud-init reports it (a node must not go on past a failed kubeadm init).
    "set -eu",
    ...(reportFailure ? [FAILURE_TRAP] : []),
    ...deliveryInstall(config.delivery),
    ["mkdir", "-p", G8S_DIR, STATE_DIR],
    ...(role.kind !== "worker" && role.attach ? [[ATTACH_SCRIPT_PATH]] : []),
    ...(role.kind !== "worker" && config.etcdDisk ? [[ETCD_DISK_SCRIPT_PATH]] : []),
    // At once (kubeadm needs it now); the networkd file keeps it across reboots.
    ...(role.kind !== "worker" && role.serviceAddress
      ? [["ip", "address", "replace", `${role.serviceAddress}/32`, "dev", "lo"]]
      : []),
    ["modprobe", "overlay"],
    ["modprobe", "br_netfilter"],
    ["sysctl", "--system"],
    ...installCommands(config),
    ["systemctl", "restart", "containerd"],
    [SYNC_SCRIPT_PATH],
    ["systemctl", "enable", "kubelet"],
    kubeadm,
    ...disarm,
    ...(first ? firstMasterCommands(config) : []),
    ["systemctl", "daemon-reload"],
    [
      "systemctl",
      "enable",
      "--now",
      ...renewalUnitNames(config.delivery),
      ...(role.kind !== "worker" ? etcdBackupUnitNames(config.spec) : []),
    ],
  ];
  const bootcmd = deliveryBootCommands(config.delivery);
  return { ...(bootcmd.length > 0 ? { bootcmd } : {}), write_files: writeFiles, runcmd };
}

/** The `#cloud-config` text of a node: deterministic, no secret values. */
export function renderCloudConfig(config: BootstrapConfig, role: BootstrapRole): string {
  return `#cloud-config\n${stringify(buildCloudConfig(config, role), { lineWidth: 0 })}`;
}

/** The roles of a cluster's masters: the first runs `kubeadm init`, the others join. */
export function masterRoles(masterNames: readonly string[]): BootstrapRole[] {
  return masterNames.map((master, i) => ({ kind: i === 0 ? "first-master" : "master", master }) as BootstrapRole);
}

/** Pulumi inputs of the user-data wrapper: the endpoint may be an Output (a load balancer's name). */
export interface BootstrapConfigArgs extends Omit<BootstrapConfig, "apiEndpoint" | "apiCertSans"> {
  readonly apiEndpoint: pulumi.Input<string>;
  readonly apiCertSans?: pulumi.Input<readonly pulumi.Input<string>[]>;
}

/** `renderCloudConfig` over Pulumi inputs. Not secret: the document holds none. */
export function cloudConfigOutput(args: BootstrapConfigArgs, role: BootstrapRole): pulumi.Output<string> {
  return pulumi
    .all([args.apiEndpoint, pulumi.output(args.apiCertSans ?? [])])
    .apply(([apiEndpoint, apiCertSans]) =>
      renderCloudConfig({ ...args, apiEndpoint, apiCertSans: apiCertSans as string[] }, role),
    );
}
