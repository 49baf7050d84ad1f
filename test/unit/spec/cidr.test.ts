import * as assert from "node:assert/strict";
import { cidr, durationSeconds, formatDuration, parseDuration } from "../../../components/spec";

describe("CIDR arithmetic", () => {
  const parse = (text: string): cidr.Cidr => {
    const c = cidr.parseCidr(text);
    if (typeof c === "string") throw new Error(c);
    return c;
  };

  it("round-trips networks", () => {
    for (const text of ["0.0.0.0/0", "10.1.0.0/16", "172.31.255.0/24", "192.168.1.7/32"]) {
      assert.equal(cidr.formatCidr(parse(text)), text);
    }
  });

  it("detects overlap and adjacency", () => {
    assert.equal(cidr.cidrsOverlap(parse("10.0.0.0/8"), parse("10.200.0.0/16")), true);
    assert.equal(cidr.cidrsOverlap(parse("10.1.0.0/16"), parse("10.2.0.0/16")), false);
    assert.equal(cidr.cidrsOverlap(parse("10.1.0.0/24"), parse("10.1.1.0/24")), false);
  });

  it("finds the first service IP", () => {
    assert.equal(cidr.nthAddress(parse("172.31.0.0/16"), 1), "172.31.0.1");
  });

  it("carves subnets deterministically", () => {
    assert.equal(cidr.formatCidr(cidr.subnet(parse("10.1.0.0/16"), 19, 5)), "10.1.160.0/19");
    assert.throws(() => cidr.subnet(parse("10.1.0.0/16"), 17, 2), /holds 2 \/17 subnets, not #2/);
  });
});

describe("durations", () => {
  it("parses combined units", () => {
    assert.equal(parseDuration("1h30m"), 5400);
    assert.equal(parseDuration("7d"), 604800);
    assert.equal(parseDuration("90s"), 90);
    assert.equal(parseDuration(""), undefined);
    assert.equal(parseDuration("5 m"), undefined);
    assert.equal(parseDuration("m"), undefined);
  });

  it("formats the shortest form", () => {
    assert.equal(formatDuration(86400), "24h");
    assert.equal(formatDuration(5400), "1h30m");
    assert.equal(formatDuration(10), "10s");
    assert.equal(durationSeconds("24h"), 86400);
    assert.throws(() => durationSeconds("soon"), /not a duration/);
  });
});
