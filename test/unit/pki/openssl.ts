/** Debian's `openssl` as an independent judge of the certificates the local backend makes. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

export interface OpensslResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `openssl <args>` in `cwd` (waits for it; a 30 s timeout kills it). */
export function openssl(args: readonly string[], cwd?: string): OpensslResult {
  const r = spawnSync("openssl", args, { cwd, encoding: "utf8", timeout: 30_000 });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Like openssl, but throws with openssl's stderr unless it exits 0. */
export function opensslOk(args: readonly string[], cwd?: string): string {
  const r = openssl(args, cwd);
  if (r.code !== 0) throw new Error(`openssl ${args.join(" ")} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Writes `files` (name → text) to a fresh temporary folder, runs `use(dir)`, removes the folder. */
export function withFiles<T>(files: Record<string, string>, use: (dir: string) => T): T {
  const dir = mkdtempSync(path.join(tmpdir(), "g8s-openssl-"));
  try {
    for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text, { mode: 0o600 });
    return use(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The text openssl prints for some extensions of a certificate (`-ext subjectAltName,keyUsage,…`). */
export function extensionsOf(certPem: string, names: readonly string[]): string {
  return withFiles({ "c.pem": certPem }, (dir) =>
    opensslOk(["x509", "-in", "c.pem", "-noout", "-ext", names.join(",")], dir),
  );
}

/** A certificate's fields as openssl prints them: subject (RFC 2253), serial, notBefore, notAfter. */
export function fieldsOf(certPem: string): { subject: string; serial: string; notBefore: Date; notAfter: Date } {
  const text = withFiles({ "c.pem": certPem }, (dir) =>
    opensslOk(
      ["x509", "-in", "c.pem", "-noout", "-subject", "-nameopt", "RFC2253", "-serial", "-startdate", "-enddate"],
      dir,
    ),
  );
  const field = (key: string) => {
    const m = new RegExp(`^${key}=(.*)$`, "m").exec(text);
    if (!m) throw new Error(`openssl printed no ${key}: ${text}`);
    return m[1].trim();
  };
  return {
    subject: field("subject"),
    serial: field("serial").toLowerCase(),
    notBefore: new Date(field("notBefore")),
    notAfter: new Date(field("notAfter")),
  };
}

/**
 * `openssl verify -x509_strict` of `certPem` against `caPem` (and untrusted intermediates), for a
 * purpose, at a time (default: now); the exit code and output.
 */
export function verify(
  caPem: string,
  certPem: string,
  options: { untrusted?: string; purpose?: "sslserver" | "sslclient"; at?: Date } = {},
): OpensslResult {
  const files: Record<string, string> = { "ca.pem": caPem, "cert.pem": certPem };
  if (options.untrusted !== undefined) files["untrusted.pem"] = options.untrusted;
  return withFiles(files, (dir) =>
    openssl(
      [
        "verify",
        "-x509_strict",
        "-CAfile",
        "ca.pem",
        ...(options.untrusted !== undefined ? ["-untrusted", "untrusted.pem"] : []),
        ...(options.purpose !== undefined ? ["-purpose", options.purpose] : []),
        ...(options.at !== undefined ? ["-attime", String(Math.floor(options.at.getTime() / 1000))] : []),
        "cert.pem",
      ],
      dir,
    ),
  );
}

/** True when the private key belongs to the certificate (their public keys are the same, per openssl). */
export function keyMatchesCertificate(keyPem: string, certPem: string): boolean {
  return withFiles({ "k.pem": keyPem, "c.pem": certPem }, (dir) => {
    const fromKey = opensslOk(["pkey", "-in", "k.pem", "-pubout"], dir);
    const fromCert = opensslOk(["x509", "-in", "c.pem", "-noout", "-pubkey"], dir);
    return fromKey.trim() === fromCert.trim();
  });
}
