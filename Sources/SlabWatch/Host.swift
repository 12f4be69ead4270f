import Glibc

/// Facts about this build and the machine it runs on.
public enum Host: Sendable {
    /// slabwatch's version (`--version`, `slabwatch_build_info`, recordings).
    public static let version = "0.1.0"

    /// The page size footprints are computed with (slabs × pages × this).
    public static var pageSize: UInt64 { UInt64(sysconf(Int32(_SC_PAGESIZE))) }

    /// This boot's random id (`<procfs>/sys/kernel/random/boot_id`), empty
    /// when it cannot be read: saved state from another boot describes memory
    /// that is gone.
    static func bootID(procfs: String) -> String {
        guard let bytes = try? FileReader(initialCapacity: 64).read("\(procfs)/sys/kernel/random/boot_id") else { return "" }
        return String(decoding: bytes.prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self)
    }
}
