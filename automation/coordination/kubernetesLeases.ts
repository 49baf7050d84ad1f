/**
 * The coordinator's leases as `coordination.k8s.io/v1` Leases, one per replica, in one
 * namespace: `holderIdentity` is the replica, `renewTime` its clock at renewal,
 * `leaseDurationSeconds` the duration, the annotation `g8s.io/busy` the stacks it runs (a JSON
 * array) and `g8s.io/host` the host it runs on. Writes use the object's `resourceVersion`, so the
 * API server refuses a write over a version this replica has not seen (409): the optimistic
 * concurrency the coordinator relies on.
 */
import type { KubeApi } from "../host/https";
import type { LeaseRecord, LeaseStore, OwnLease } from "./coordinator";

/** Label every g8s reconciler Lease carries (what `list` selects). */
export const LEASE_LABEL = "g8s.io/reconciler";
export const BUSY_ANNOTATION = "g8s.io/busy";
/** The replica's host name (what a backend lock it takes records). */
export const HOST_ANNOTATION = "g8s.io/host";
/** The Lease of replica `r` is `g8s-<r>`. */
export const LEASE_PREFIX = "g8s-";

interface LeaseObject {
  metadata: {
    name: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: { holderIdentity?: string; leaseDurationSeconds?: number; renewTime?: string; acquireTime?: string };
}

/** RFC 3339 with microseconds, as MicroTime fields take it. */
function microTime(iso: string): string {
  return iso.replace(/\.(\d{3})Z$/, ".$1000Z");
}

function busyOf(lease: LeaseObject): string[] {
  try {
    const value = JSON.parse(lease.metadata.annotations?.[BUSY_ANNOTATION] ?? "[]") as unknown;
    return Array.isArray(value) ? value.filter((s): s is string => typeof s === "string") : [];
  } catch {
    return [];
  }
}

export class KubernetesLeaseStore implements LeaseStore {
  private readonly base: string;

  constructor(
    private readonly api: KubeApi,
    readonly namespace: string,
  ) {
    this.base = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
  }

  async list(): Promise<LeaseRecord[]> {
    const res = await this.api.get<{ items: LeaseObject[] }>(
      `${this.base}?labelSelector=${encodeURIComponent(`${LEASE_LABEL}=true`)}`,
    );
    return res.items
      .filter((l) => l.spec?.holderIdentity && l.metadata.resourceVersion)
      .map((l) => ({
        replica: l.spec?.holderIdentity as string,
        renewTime: l.spec?.renewTime ?? "",
        durationMs: (l.spec?.leaseDurationSeconds ?? 0) * 1000,
        busy: busyOf(l),
        ...(l.metadata.annotations?.[HOST_ANNOTATION] ? { host: l.metadata.annotations[HOST_ANNOTATION] } : {}),
        version: l.metadata.resourceVersion as string,
      }));
  }

  private object(lease: OwnLease, version: string | undefined): LeaseObject {
    return {
      metadata: {
        name: `${LEASE_PREFIX}${lease.replica}`,
        ...(version !== undefined ? { resourceVersion: version } : {}),
        labels: { [LEASE_LABEL]: "true", "app.kubernetes.io/name": "g8s" },
        annotations: {
          [BUSY_ANNOTATION]: JSON.stringify(lease.busy),
          ...(lease.host !== undefined ? { [HOST_ANNOTATION]: lease.host } : {}),
        },
      },
      spec: {
        holderIdentity: lease.replica,
        leaseDurationSeconds: Math.ceil(lease.durationMs / 1000),
        renewTime: microTime(lease.renewTime),
      },
    };
  }

  async write(lease: OwnLease, version: string | undefined): Promise<{ version: string } | "conflict"> {
    const body = { apiVersion: "coordination.k8s.io/v1", kind: "Lease", ...this.object(lease, version) };
    const res =
      version === undefined
        ? await this.api.request<LeaseObject>("POST", this.base, body)
        : await this.api.request<LeaseObject>("PUT", `${this.base}/${LEASE_PREFIX}${lease.replica}`, body);
    // 409: exists (create) or another version (replace); 404: deleted under us (replace).
    if (res.status === 409 || (version !== undefined && res.status === 404)) return "conflict";
    if ((res.status !== 200 && res.status !== 201) || !res.json?.metadata.resourceVersion) {
      const message = (res.json as { message?: string } | undefined)?.message ?? res.text.slice(0, 200);
      throw new Error(
        `${version === undefined ? "POST" : "PUT"} lease ${LEASE_PREFIX}${lease.replica}: ${res.status} ${message}`,
      );
    }
    return { version: res.json.metadata.resourceVersion };
  }

  async release(replica: string, version: string): Promise<void> {
    // Only the version this replica wrote: never a lease another run has taken since.
    const res = await this.api.request("DELETE", `${this.base}/${LEASE_PREFIX}${replica}`, {
      apiVersion: "v1",
      kind: "DeleteOptions",
      preconditions: { resourceVersion: version },
    });
    if (![200, 202, 404, 409].includes(res.status))
      throw new Error(`DELETE lease ${LEASE_PREFIX}${replica}: ${res.status}`);
  }
}
