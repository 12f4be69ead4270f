import Glibc

/// A recording: one directory per sample, named by the sample's Unix time in
/// milliseconds, each laid out like a procfs/sysfs root:
///
///     DIR/<ms>/proc/slabinfo, proc/meminfo, proc/sys/fs/{inode-nr,dentry-state,file-nr}
///     DIR/<ms>/proc/zoneinfo, proc/loadavg, proc/net/sockstat, proc/cgroups   (optional)
///     DIR/<ms>/sys/kernel/slab/<cache>/reclaim_account   (optional)
///
/// `cp` in a shell loop makes one too. A sample without `sys/` uses the
/// newest earlier sample's, so reclaimability is recorded only when caches change.
public enum Recording: Sendable {
    static let procFiles = KernelPaths.procFiles

    /// `DIR/RECORDING`: what replay needs to read the samples as they were.
    static let metadataFile = "RECORDING"
    /// A few short lines; anything much larger is not a RECORDING file.
    static let maximumMetadataBytes = 64 << 10

    /// What a recording says about the machine it was made on.
    public struct Metadata: Sendable, Equatable {
        public static let format = 1
        /// Footprints are slabs × pages × this; a 64 KiB-page recording read
        /// with 4 KiB pages would be 16 times too small.
        public var pageSize: UInt64
        /// `uname -r` of the recorded machine.
        public var kernel: String
        public var recorder: String

        public init(pageSize: UInt64, kernel: String, recorder: String) {
            self.pageSize = pageSize
            self.kernel = kernel
            self.recorder = recorder
        }

        /// `key=value` lines: readable, and written by a shell as easily.
        var text: String {
            "format=\(Self.format)\npage_size=\(pageSize)\nkernel=\(kernel)\nrecorder=slabwatch \(recorder)\n"
        }

        /// Nil when the text is not a metadata file slabwatch can use.
        init?(text: String) {
            var fields: [Substring: Substring] = [:]
            for line in text.split(separator: "\n") {
                guard let equals = line.firstIndex(of: "=") else { continue }
                fields[line[..<equals]] = line[line.index(after: equals)...]
            }
            guard let size = fields["page_size"].flatMap({ UInt64($0) }), size >= 512, size & (size - 1) == 0,
                  (fields["format"].flatMap { Int($0) } ?? 1) <= Self.format
            else { return nil }
            pageSize = size
            kernel = fields["kernel"].map(String.init) ?? "unknown"
            recorder = fields["recorder"].map(String.init) ?? "unknown"
        }
    }

    /// The sample times replay takes, Unix milliseconds: 1970 to the end of
    /// 9999. A directory named `-9223372036854775808` or `9223372036854775807`
    /// is a number, but no time a machine sampled at; its sample is skipped
    /// with a reason rather than fed to the detector.
    public static let sampleTimes: ClosedRange<Int64> = 0...253_402_300_799_999

    /// Sample directories of a recording, oldest first (names that are not
    /// all digits are ignored, so notes or a README may sit beside them).
    public static func sampleDirectories(_ directory: String) throws(FileError) -> [(milliseconds: Int64, path: String)] {
        try FileReader(initialCapacity: 16).listDirectory(directory)
            .compactMap { entry in Int64(entry.name).map { ($0, "\(directory)/\(entry.name)") } }
            .sorted { $0.0 < $1.0 }
    }
}

/// `mkdir -p`.
func makeDirectories(_ path: String) throws(FileError) {
    var current = path.hasPrefix("/") ? "" : "."
    for component in path.split(separator: "/") {
        current += "/\(component)"
        if mkdir(current, 0o755) != 0 && errno != EEXIST {
            throw FileError(path: current, call: "mkdir", errno: errno)
        }
    }
}
