/** The g8s component library: the cluster spec, PKI, node bootstrap, the platforms and GuestCluster. */
export * from "./spec";
export * from "./pki";
export * from "./bootstrap";
export * from "./aws";
export * from "./kvm";
export * from "./cluster";
