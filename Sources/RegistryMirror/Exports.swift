// Request routing (upstream choice) lives in MirrorRouting, free of the HTTP
// client; users of RegistryMirror see it too.
@_exported import MirrorRouting
