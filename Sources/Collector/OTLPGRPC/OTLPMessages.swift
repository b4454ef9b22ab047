// The generated stubs name the OTLP messages of their own .proto files, which live in OTLPProto: import them
// here for every file of this target (and for its users).
@_exported import OTLPProto
