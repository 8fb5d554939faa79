/// CRI-O and podman through the mirror: `registries.conf` (containers-registries.conf(5),
/// version 2) with each configured registry mirrored by the dfdaemon, written whole, as
/// upstream's dfinit writes it; the file it replaces is kept as a backup.
public enum RegistriesConfSetup {
    public static func file(_ config: InitConfig.RegistriesConf, proxyLocation: String) -> String {
        var out = "unqualified-search-registries = [\(config.unqualifiedSearchRegistries.map(ContainerdSetup.quoted).joined(separator: ", "))]\n"
        for registry in config.registries {
            out += "\n[[registry]]\n"
            out += "prefix = \(ContainerdSetup.quoted(registry.prefix))\n"
            out += "location = \(ContainerdSetup.quoted(registry.location))\n"
            out += "\n[[registry.mirror]]\n"
            out += "location = \(ContainerdSetup.quoted(proxyLocation))\n"
            out += "insecure = true\n"
        }
        return out
    }
}
