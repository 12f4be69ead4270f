import Glibc

/// Facts about this build and the machine it runs on.
public enum Host {
    /// slabwatch's version (`--version`, `slabwatch_build_info`, recordings).
    public static let version = "0.1.0"

    /// The page size footprints are computed with (slabs × pages × this).
    public static var pageSize: UInt64 { UInt64(sysconf(Int32(_SC_PAGESIZE))) }
}
