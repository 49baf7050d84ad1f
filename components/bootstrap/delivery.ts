/**
 * Secret delivery: how a node obtains the files of nodeFiles() without any secret in its
 * user-data. The user-data carries a manifest of (source, target, mode, reload) rows, a static
 * sync script and the systemd units that re-run it; the values stay in the platform's store.
 */
import { API_PORT } from "../spec";
import {
  BOOTSTRAP_TOKEN_SCRIPT_PATH,
  CRI_SOCKET,
  DEFAULT_SECRET_MOUNT_PATH,
  DEFAULT_SECRET_SHARE_TAG,
  G8S_DIR,
  SECRET_MANIFEST_PATH,
  SECRET_SYNC_INTERVAL,
  SECRET_SYNC_RANDOMIZED_DELAY,
  SECRET_SYNC_UNIT,
  SSM_PARAMETER_PREFIX,
  SYNC_SCRIPT_PATH,
} from "./constants";
import { nodeFiles, secretRoleOf, type NodeFile, type BootstrapRole } from "./files";
import { renderIni, type IniSection } from "./ini";

/** AWS: SSM Parameter Store SecureStrings, read at boot by the instance role with the AWS CLI. */
export interface AwsSsmDelivery {
  readonly kind: "aws-ssm";
  /** Region of the parameters (the cluster's `aws.region`). */
  readonly region: string;
  /** Parameter name prefix. Default: `/g8s`. */
  readonly prefix?: string;
}

/** KVM: the role's Kubernetes Secret, shared into the VM over virtio 9p and mounted at every boot. */
export interface MountedSecretDelivery {
  readonly kind: "mounted-secret";
  /** Where the VM sees the Secret's keys as files. Default: `/mnt/g8s-secrets`. */
  readonly mountPath?: string;
  /** The 9p mount tag the VM's QEMU exports the Secret under. Default: `g8s-secrets`. */
  readonly shareTag?: string;
}

export type SecretDelivery = AwsSsmDelivery | MountedSecretDelivery;

/** A cloud-init `write_files` entry. */
export interface WriteFile {
  readonly path: string;
  readonly content: string;
  readonly permissions: string;
  readonly owner?: string;
}

/** Where the node reads file `name` of `role`: an SSM parameter name or a path under the mount. */
export function secretSourceOf(delivery: SecretDelivery, clusterId: string, role: BootstrapRole, name: string): string {
  if (delivery.kind === "aws-ssm") {
    return `${delivery.prefix ?? SSM_PARAMETER_PREFIX}/${clusterId}/${secretRoleOf(role)}/${name}`;
  }
  return `${delivery.mountPath ?? DEFAULT_SECRET_MOUNT_PATH}/${name}`;
}

const SAFE_FIELD_RE = /^[A-Za-z0-9_./:,-]+$/;

function field(value: string): string {
  if (!SAFE_FIELD_RE.test(value)) throw new RangeError(`'${value}' cannot appear in the secret manifest`);
  return value;
}

/** The manifest the sync script reads: `source target mode reload flags`, tab separated, one file a row. */
export function secretManifest(delivery: SecretDelivery, clusterId: string, role: BootstrapRole): string {
  const rows = nodeFiles(role).map((f: NodeFile) =>
    [
      secretSourceOf(delivery, clusterId, role, f.name),
      f.path,
      f.mode,
      f.reload.length === 0 ? "-" : f.reload.join(","),
      f.localApiServer ? "local-api" : "-",
    ]
      .map(field)
      .join("\t"),
  );
  return ["# source\ttarget\tmode\treload\tflags", ...rows].join("\n") + "\n";
}

/** `KEY=value` lines for the sync script (values checked: no quoting needed). */
export function renderEnvFile(env: Readonly<Record<string, string>>): string {
  return Object.entries(env)
    .map(([k, v]) => `${k}=${field(v)}`)
    .join("\n")
    .concat("\n");
}

export function deliveryEnv(delivery: SecretDelivery): Record<string, string> {
  return {
    G8S_DELIVERY: delivery.kind,
    ...(delivery.kind === "aws-ssm"
      ? {
          AWS_REGION: delivery.region,
          PATH: `/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:${SNAP_BIN}`,
        }
      : {}),
    G8S_API_PORT: String(API_PORT),
    G8S_CRI_SOCKET: CRI_SOCKET,
  };
}

/**
 * The sync script (static: all node-specific data comes from the manifest and the env file).
 * It stages every file, installs those whose bytes changed with their mode, and with --reload
 * restarts what reads them: kubelet via systemd, control-plane static pods by stopping their
 * container (kubelet starts it again at once; touching a manifest does not restart a static pod
 * because kubelet keys static pods by content).
 */
export const SYNC_SCRIPT = [
  "#!/bin/bash",
  "# g8s-sync-secrets: install this node's certificates, keys and kubeconfigs from the platform's",
  "# secret store; with --reload, restart the components whose files changed. Written by g8s.",
  "set -euo pipefail",
  `. ${G8S_DIR}/delivery.env`,
  'reload=false; [ "${1:-}" = "--reload" ] && reload=true',
  "umask 077",
  'stage="$(mktemp -d /run/g8s-sync.XXXXXX)"; trap \'rm -rf "$stage"\' EXIT',
  "fetch() {",
  '  case "$G8S_DELIVERY" in',
  '    aws-ssm) aws ssm get-parameter --region "$AWS_REGION" --with-decryption --name "$1" \\',
  "      --query Parameter.Value --output text </dev/null ;;",
  '    mounted-secret) cat "$1" ;;',
  '    *) echo "g8s-sync-secrets: unknown delivery $G8S_DELIVERY" >&2; exit 2 ;;',
  "  esac",
  "}",
  'changed=""; n=0',
  "while IFS=$'\\t' read -r -u 3 source target mode reloads flags; do",
  '  case "$source" in ""|"#"*) continue ;; esac',
  '  n=$((n + 1)); tmp="$stage/$n"',
  '  fetch "$source" >"$tmp"',
  '  if [ "$flags" = "local-api" ]; then',
  '    sed -i "s#^\\( *server: \\).*#\\1https://127.0.0.1:${G8S_API_PORT}#" "$tmp"',
  "  fi",
  '  if ! cmp -s "$tmp" "$target"; then',
  '    install -D -m "$mode" "$tmp" "$target"',
  '    [ "$reloads" = "-" ] || changed="$changed,$reloads"',
  "  fi",
  `done 3<${SECRET_MANIFEST_PATH}`,
  '"$reload" || exit 0',
  'for component in $(tr "," "\\n" <<<"$changed" | sort -u); do',
  '  case "$component" in',
  "    kubelet) systemctl restart kubelet ;;",
  '    *) for id in $(crictl --runtime-endpoint "$G8S_CRI_SOCKET" ps --quiet --name "^${component}\\$"); do',
  '         crictl --runtime-endpoint "$G8S_CRI_SOCKET" stop "$id" >/dev/null',
  "       done ;;",
  "  esac",
  "done",
  "# Masters: keep the bootstrap token valid (a failure waits for the next sync; the files are in place).",
  `if [ -x ${BOOTSTRAP_TOKEN_SCRIPT_PATH} ]; then`,
  `  ${BOOTSTRAP_TOKEN_SCRIPT_PATH} || echo "g8s-sync-secrets: the bootstrap token was not renewed; next sync retries" >&2`,
  "fi",
  "",
].join("\n");

/** The systemd units that keep a running node's certificates current (timer; plus a path unit on KVM). */
export function renewalUnits(delivery: SecretDelivery): Record<string, IniSection[]> {
  const units: Record<string, IniSection[]> = {
    [`${SECRET_SYNC_UNIT}.service`]: [
      {
        name: "Unit",
        entries: [
          ["Description", "g8s: install renewed certificates and reload their components"],
          ["Wants", "network-online.target"],
          ["After", "network-online.target containerd.service"],
        ],
      },
      {
        name: "Service",
        entries: [
          ["Type", "oneshot"],
          ["ExecStart", `${SYNC_SCRIPT_PATH} --reload`],
        ],
      },
    ],
    [`${SECRET_SYNC_UNIT}.timer`]: [
      { name: "Unit", entries: [["Description", "g8s: re-sync certificates every " + SECRET_SYNC_INTERVAL]] },
      {
        name: "Timer",
        entries: [
          ["OnBootSec", SECRET_SYNC_INTERVAL],
          ["OnUnitActiveSec", SECRET_SYNC_INTERVAL],
          ["RandomizedDelaySec", SECRET_SYNC_RANDOMIZED_DELAY],
        ],
      },
      { name: "Install", entries: [["WantedBy", "timers.target"]] },
    ],
  };
  if (delivery.kind === "mounted-secret") {
    units[`${SECRET_SYNC_UNIT}.path`] = [
      { name: "Unit", entries: [["Description", "g8s: re-sync certificates when the mounted Secret changes"]] },
      { name: "Path", entries: [["PathChanged", delivery.mountPath ?? DEFAULT_SECRET_MOUNT_PATH]] },
      { name: "Install", entries: [["WantedBy", "paths.target"]] },
    ];
  }
  return units;
}

/** The unit names to enable after the first sync. */
export function renewalUnitNames(delivery: SecretDelivery): string[] {
  return Object.keys(renewalUnits(delivery)).filter((u) => !u.endsWith(".service"));
}

/** Every `write_files` entry of secret delivery and renewal: manifest, env, script, units. No values. */
export function deliveryWriteFiles(delivery: SecretDelivery, clusterId: string, role: BootstrapRole): WriteFile[] {
  return [
    { path: `${G8S_DIR}/delivery.env`, content: renderEnvFile(deliveryEnv(delivery)), permissions: "0644" },
    { path: SECRET_MANIFEST_PATH, content: secretManifest(delivery, clusterId, role), permissions: "0644" },
    { path: SYNC_SCRIPT_PATH, content: SYNC_SCRIPT, permissions: "0755" },
    ...Object.entries(renewalUnits(delivery)).map(([unit, sections]) => ({
      path: `/etc/systemd/system/${unit}`,
      content: renderIni(sections),
      permissions: "0644",
    })),
  ];
}

/** Where the AWS CLI's snap puts its command; not on the PATH of systemd's units. */
export const SNAP_BIN = "/snap/bin";

/**
 * runcmd lines that give the node what secret delivery needs, first thing at boot (an AWS master's
 * attach script calls the AWS CLI before anything is installed). SSM needs the AWS CLI: Ubuntu
 * 24.04 has no `awscli` package any more (apt: "no installation candidate"), its own way is the
 * `aws-cli` snap; an image that carries `aws` already skips it.
 */
export function deliveryInstall(delivery: SecretDelivery): (string | string[])[] {
  if (delivery.kind !== "aws-ssm") return [];
  return [
    `export PATH="$PATH:${SNAP_BIN}"`,
    ["sh", "-c", "command -v aws >/dev/null || snap install aws-cli --classic"],
  ];
}

/**
 * cloud-init `bootcmd` of secret delivery (every boot, before runcmd's first sync): on KVM, mount
 * the Secret share read-only over virtio 9p, without caching, so a renewed file is read as the
 * pod's Secret volume holds it. Skipped when something is mounted there already (a system
 * container's bind mount). Nothing on AWS.
 */
export function deliveryBootCommands(delivery: SecretDelivery): string[][] {
  if (delivery.kind !== "mounted-secret") return [];
  const dir = field(delivery.mountPath ?? DEFAULT_SECRET_MOUNT_PATH);
  const tag = field(delivery.shareTag ?? DEFAULT_SECRET_SHARE_TAG);
  return [
    [
      "sh",
      "-c",
      `mountpoint -q ${dir} || { mkdir -p ${dir} && modprobe -a 9pnet_virtio 9p && ` +
        `mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=none ${tag} ${dir}; }`,
    ],
  ];
}
