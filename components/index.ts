/** The g8s component library: the cluster spec, PKI, node bootstrap and the platforms. */
export * from "./spec";
export * from "./pki";
export * from "./bootstrap";
export * from "./aws";
export * from "./kvm";
