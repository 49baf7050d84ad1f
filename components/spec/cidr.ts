/** IPv4 CIDR arithmetic for spec validation and subnet carving. */
export interface Cidr {
  /** Network address as an unsigned 32-bit integer. */
  readonly network: number;
  readonly prefix: number;
}

const CIDR_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;

/** Parses `a.b.c.d/n`; returns an explanation instead of a Cidr when it is not a valid network. */
export function parseCidr(text: string): Cidr | string {
  const m = CIDR_RE.exec(text);
  if (!m) return `must be an IPv4 CIDR like 10.0.0.0/16 (got '${text}')`;
  const octets = m.slice(1, 5).map(Number);
  const prefix = Number(m[5]);
  if (octets.some((o) => o > 255)) return `'${text}' has an octet above 255`;
  if (prefix > 32) return `'${text}' has a prefix above /32`;
  const address = ipToInt(octets);
  const network = (address & prefixMask(prefix)) >>> 0;
  if (network !== address) {
    return `'${text}' has host bits set: use ${formatCidr({ network, prefix })}`;
  }
  return { network, prefix };
}

export function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

function ipToInt(octets: number[]): number {
  return octets.reduce((acc, o) => acc * 256 + o, 0);
}

export function formatIp(value: number): string {
  return [24, 16, 8, 0].map((shift) => (value >>> shift) & 0xff).join(".");
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.network)}/${c.prefix}`;
}

export function cidrSize(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const aEnd = a.network + cidrSize(a);
  const bEnd = b.network + cidrSize(b);
  return a.network < bEnd && b.network < aEnd;
}

/** The n-th address of a range (the first service IP is `nthAddress(serviceCidr, 1)`). */
export function nthAddress(c: Cidr, n: number): string {
  if (n < 0 || n >= cidrSize(c)) throw new RangeError(`${formatCidr(c)} has no address #${n}`);
  return formatIp(c.network + n);
}

/** The `index`-th subnet of `newPrefix` inside `c`. */
export function subnet(c: Cidr, newPrefix: number, index: number): Cidr {
  if (newPrefix < c.prefix || newPrefix > 32) {
    throw new RangeError(`cannot carve /${newPrefix} subnets out of ${formatCidr(c)}`);
  }
  const count = 2 ** (newPrefix - c.prefix);
  if (index < 0 || index >= count) {
    throw new RangeError(`${formatCidr(c)} holds ${count} /${newPrefix} subnets, not #${index}`);
  }
  return { network: c.network + index * 2 ** (32 - newPrefix), prefix: newPrefix };
}
