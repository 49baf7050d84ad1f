// Pulumi records a source position for every resource from a stack trace; with tsx's source
// maps on, mapping each trace dominates the mock-based suites (the AWS suite halves without).
// Test failures then show positions in tsx's output, which stay close to the sources.
process.setSourceMapsEnabled(false);
