/** The g8s component library: the cluster spec, PKI and node bootstrap; platform components as they land. */
export * from "./spec";
export * from "./pki";
export * from "./bootstrap";
