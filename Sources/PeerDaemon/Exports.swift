// The dfdaemon's configuration types live in their own module (so tools such as the fuzz
// targets can load configs without the download engine); users of PeerDaemon see them too.
@_exported import PeerConfig
