export * from "./constants";
export * from "./cloudConfig";
export * from "./delivery";
export * from "./files";
export * from "./kubeadm";
export { renderIni, renderToml, type IniSection, type TomlTable } from "./ini";
export { bootstrapToken, bootstrapTokenOf, checkBootstrapToken } from "./token";
export { awsUserData, awsUserDataOutput, type EncodedUserData } from "./userData";
export * as kubeadmSchema from "./kubeadmSchema";
