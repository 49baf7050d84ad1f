/** etcd.backup.objectStore: its fields per provider, resolved to where the masters copy snapshots. */
import * as assert from "node:assert/strict";
import { defaultBucketName, etcdObjectStore, parseClusterSpec } from "../../../components/spec";
import { awsSpec, expectIssues, kvmSpec, withChange } from "./helpers";

const STORE = "etcd.backup.objectStore";

describe("etcd.backup.objectStore", () => {
  it("is on for aws: S3 in the cluster's region, a bucket g8s makes, nothing pruned by the masters", () => {
    const spec = parseClusterSpec(awsSpec());
    assert.deepEqual(etcdObjectStore(spec), {
      endpoint: "https://s3.eu-central-1.amazonaws.com",
      addressing: "virtual",
      bucket: defaultBucketName({ id: "eu1prod", baseDomain: "k8s.example.com", aws: { region: "eu-central-1" } }),
      region: "eu-central-1",
      prefix: "eu1prod/",
      managed: true,
      prune: false,
      expireAfterDays: 30,
    });
  });

  it("names the aws bucket per cluster, region and base domain, within S3's 63 characters", () => {
    const name = (id: string, region: string, baseDomain: string) =>
      defaultBucketName({ id, baseDomain, aws: { region } });
    const a = name("eu1prod", "eu-central-1", "k8s.example.com");
    assert.match(a, /^g8s-eu1prod-etcd-[0-9a-f]{8}$/);
    assert.equal(a, name("eu1prod", "eu-central-1", "k8s.example.com"));
    assert.notEqual(a, name("eu1prod", "eu-west-1", "k8s.example.com"));
    assert.notEqual(a, name("eu1prod", "eu-central-1", "k8s.other.com"));
    assert.ok(name("a".repeat(20), "eu-central-1", "x.y").length <= 63);
  });

  it("uses a named aws bucket as it is (not made, no lifecycle of g8s's), and can be off", () => {
    const named = etcdObjectStore(
      parseClusterSpec(withChange(awsSpec(), (s) => (s.etcd = { backup: { objectStore: { bucket: "central" } } }))),
    );
    assert.equal(named?.bucket, "central");
    assert.equal(named?.managed, false);
    const off = parseClusterSpec(
      withChange(awsSpec(), (s) => (s.etcd = { backup: { objectStore: { enabled: false } } })),
    );
    assert.equal(etcdObjectStore(off), undefined);
    const noBackups = parseClusterSpec(withChange(awsSpec(), (s) => (s.etcd = { backup: { enabled: false } })));
    assert.equal(etcdObjectStore(noBackups), undefined);
  });

  it("is off for kvm until an endpoint is given; then path-style, pruned by the masters, keys from the Secret", () => {
    assert.equal(etcdObjectStore(parseClusterSpec(kvmSpec())), undefined);
    const spec = parseClusterSpec(
      withChange(kvmSpec(), (s) => {
        s.etcd = {
          backup: {
            objectStore: {
              endpoint: "https://s3.corp.internal",
              bucket: "etcd",
              credentialsSecret: "etcd-s3",
              prefix: "",
            },
          },
        };
      }),
    );
    assert.deepEqual(etcdObjectStore(spec), {
      endpoint: "https://s3.corp.internal",
      addressing: "path",
      bucket: "etcd",
      region: "us-east-1",
      prefix: "",
      managed: false,
      prune: true,
      credentialsSecret: "etcd-s3",
      expireAfterDays: 30,
    });
  });

  it("asks kvm for what it cannot guess, naming each field", () =>
    expectIssues(
      withChange(kvmSpec(), (s) => (s.etcd = { backup: { objectStore: { enabled: true } } })),
      [
        {
          path: `${STORE}.endpoint`,
          message:
            "is required outside AWS (the S3-compatible store's URL, like https://s3.example.com), or set enabled: false",
        },
        {
          path: `${STORE}.bucket`,
          message: "is required outside AWS (the S3-compatible store's bucket), or set enabled: false",
        },
        {
          path: `${STORE}.credentialsSecret`,
          message:
            "is required outside AWS: the name of a Secret in the cluster's host-cluster namespace with keys accessKeyId and secretAccessKey",
        },
      ],
    ));

  it("refuses aws fields of other stores, and a lifecycle shorter than retention × interval", () =>
    expectIssues(
      withChange(awsSpec(), (s) => {
        s.etcd = {
          backup: {
            interval: "24h",
            retention: 10,
            objectStore: { endpoint: "https://s3.example.com", credentialsSecret: "x", expireAfterDays: 7 },
          },
        };
      }),
      [
        {
          path: `${STORE}.endpoint`,
          message: "is for stores outside AWS: on aws the snapshots go to S3 in the cluster's region; remove it",
        },
        {
          path: `${STORE}.credentialsSecret`,
          message: "is for stores outside AWS: aws masters write to S3 with their instance role; remove it",
        },
        {
          path: `${STORE}.expireAfterDays`,
          message: "7 days would delete snapshots that etcd.backup.retention keeps (10 × 24h): raise it to 10 or more",
        },
      ],
    ));

  it("checks each field's form", () =>
    expectIssues(
      withChange(kvmSpec(), (s) => {
        s.etcd = {
          backup: {
            objectStore: {
              endpoint: "https://s3.example.com/bucket",
              bucket: "Not_A_Bucket",
              prefix: "no-slash",
              credentialsSecret: "UPPER",
            },
          },
        };
      }),
      [
        {
          path: `${STORE}.endpoint`,
          message:
            "must be scheme, host and port only, without a path, query or credentials (got 'https://s3.example.com/bucket'): the bucket is etcd.backup.objectStore.bucket",
        },
        {
          path: `${STORE}.bucket`,
          message:
            "must be an S3 bucket name: 3 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit (got 'Not_A_Bucket')",
        },
        {
          path: `${STORE}.prefix`,
          message:
            "must be '' or path segments of lowercase letters, digits, '.', '_' and '-', each ending in '/' (like backups/etcd/)",
        },
        {
          path: `${STORE}.credentialsSecret`,
          message: "must be a Kubernetes Secret name: lowercase letters, digits, '.' and '-'",
        },
      ],
    ));
});
