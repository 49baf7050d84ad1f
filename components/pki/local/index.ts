export { CA_ORGANIZATION, createLocalBackend, createLocalServiceAccountKey } from "./backend";
export { needsRenewal, renewalTime, validityWindow } from "./renewal";
export {
  LOCAL_TYPES,
  LocalCertificate,
  LocalPrivateKey,
  LocalRootCa,
  certificateChanges,
  certificateProvider,
  checkCertificateInputs,
  checkSubjectInputs,
  rootCaChanges,
  rootCaProvider,
  type LocalCertificateArgs,
  type LocalPrivateKeyArgs,
  type LocalRootCaArgs,
} from "./resources";
export * as x509 from "./x509";
