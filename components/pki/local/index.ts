export { CA_ORGANIZATION } from "../certificates";
export { createLocalBackend, createLocalServiceAccountKey } from "./backend";
export { needsRenewal, renewalTime, validityWindow } from "./renewal";
export {
  LOCAL_TYPES,
  UNKNOWN,
  LocalCertificate,
  LocalPrivateKey,
  LocalRootCa,
  LocalSecret,
  certificateChanges,
  certificateProvider,
  checkCertificateInputs,
  checkSubjectInputs,
  rootCaChanges,
  rootCaProvider,
  secretProvider,
  systemClock,
  type Clock,
  type LocalCertificateArgs,
  type LocalPrivateKeyArgs,
  type LocalRootCaArgs,
  type LocalSecretArgs,
} from "./resources";
export * as x509 from "./x509";
