export * from "./toolchain";
export * from "./environment";
export * from "./pulumiEngine";
