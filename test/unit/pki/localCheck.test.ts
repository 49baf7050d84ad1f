import * as assert from "node:assert/strict";
import { checkCertificateInputs } from "../../../components/pki/local/resources";

describe("local PKI: certificate input checks", () => {
  const reasonsFor = (ipAddresses: unknown) =>
    checkCertificateInputs({ ipAddresses }).filter((f) => f.property === "ipAddresses");

  it("lets a preview through with an address not known yet (a Service's ClusterIP before it exists)", () => {
    assert.deepEqual(reasonsFor([undefined, "127.0.0.1"]), []);
    assert.deepEqual(reasonsFor([null, "127.0.0.1"]), []);
  });

  it("refuses what is not a list of addresses", () => {
    assert.equal(reasonsFor([1, "127.0.0.1"]).length, 1);
    assert.equal(reasonsFor("127.0.0.1").length, 1);
  });
});
