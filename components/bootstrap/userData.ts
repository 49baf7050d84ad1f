/** AWS user-data: within EC2's 16 KB, gzipped (deterministically) only when needed. */
import * as pulumi from "@pulumi/pulumi";
import { gzipSync } from "node:zlib";
import { AWS_USER_DATA_LIMIT } from "./constants";

export interface EncodedUserData {
  /** Base64 of the user-data bytes: what `aws.ec2.LaunchTemplate.userData` / `Instance.userDataBase64` take. */
  readonly userDataBase64: string;
  /** True when the bytes are gzip (cloud-init detects the magic and inflates). */
  readonly gzipped: boolean;
  /** Size of the bytes before base64 (what EC2's 16 KB limit counts). */
  readonly bytes: number;
}

/**
 * The document as is when it fits in 16 KB, else gzip at level 9. Node's gzip writes mtime 0
 * and no file name, so the same document always gives the same bytes. Throws when even the
 * gzipped document is too large.
 */
export function awsUserData(document: string): EncodedUserData {
  const raw = Buffer.from(document, "utf8");
  if (raw.length <= AWS_USER_DATA_LIMIT) {
    return { userDataBase64: raw.toString("base64"), gzipped: false, bytes: raw.length };
  }
  const gz = gzipSync(raw, { level: 9 });
  if (gz.length > AWS_USER_DATA_LIMIT) {
    throw new RangeError(
      `user-data is ${gz.length} bytes gzipped, over EC2's ${AWS_USER_DATA_LIMIT}: move content to the secret store`,
    );
  }
  return { userDataBase64: gz.toString("base64"), gzipped: true, bytes: gz.length };
}

/** `awsUserData` over an Output document. */
export function awsUserDataOutput(document: pulumi.Input<string>): pulumi.Output<EncodedUserData> {
  return pulumi.output(document).apply(awsUserData);
}
