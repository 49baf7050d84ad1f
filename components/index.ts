/** The g8s component library: the cluster spec today, the GuestCluster components as they land. */
export * from "./spec";
export * from "./pki";
