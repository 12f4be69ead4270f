// swift-tools-version:6.0
import PackageDescription

/// Settings every Swift target shares, as swift-log has them: Swift 6 language
/// mode (strict concurrency) plus the upcoming features that make existentials
/// and imports explicit (a file uses only the members of modules it imports
/// itself), and a warning for every public type that says neither Sendable
/// nor unavailable-Sendable. (swift-log's NonisolatedNonsendingByDefault is
/// left out: it changes where nonisolated async functions run.) Applied to
/// every target by the loop at the end, so a new target cannot miss them.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .unsafeFlags(["-Xfrontend", "-require-explicit-sendable"]),
]

let package = Package(
    name: "slabwatch",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "slabwatch", targets: ["SlabWatchCLI"]),
        // For the fuzz harnesses in Fuzz/ (a package of their own, built by scripts/fuzz.sh).
        .library(name: "LinearRegex", targets: ["LinearRegex"]),
        .library(name: "SlabWatchCore", targets: ["SlabWatchCore"]),
        .library(name: "SlabWatchHTTP", targets: ["SlabWatchHTTP"]),
        .library(name: "SlabWatch", targets: ["SlabWatch"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // RE2-syntax regular expressions matched in linear time; a leaf that knows
        // nothing about slabs (the cache filter and the inode-cache patterns use it).
        .target(name: "LinearRegex"),
        // Pure: bytes in, values out. No files, clocks, Dispatch or sockets.
        .target(name: "SlabWatchCore", dependencies: ["LinearRegex"]),
        // memfd_create's declaration (glibc hides it); the journal's large entries go as a sealed memfd.
        .systemLibrary(name: "CMemfd"),
        // systemd's protocols spoken in Swift (the journal's, sd_notify, socket activation): no libsystemd.
        .target(name: "Systemd", dependencies: ["CMemfd"]),
        // libyaml's header: the configuration is read with its event parser (no Foundation).
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        // zlib's header, for gzip responses.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // glibc's <malloc.h>: malloc_trim gives a checkpoint's freed buffers back.
        .systemLibrary(name: "CMalloc"),
        // Linux calls the Glibc module lacks: fstatfs (a procfs file's kept descriptor), eventfd (the ticking thread).
        .systemLibrary(name: "CLinux"),
        // OpenSSL (TLS) and libcrypt (bcrypt), loaded with dlopen when a web
        // configuration needs them (see CTLS.h); their headers at build time.
        .target(name: "CTLS", linkerSettings: [.linkedLibrary("dl")]),
        // The BPF attribution session: the program (bpf/, built by
        // scripts/bpf.sh, embedded as bytes) and a loader over libbpf, which is
        // dlopen'ed when a session starts (see CBPF.h); no libbpf at build time.
        .target(name: "CBPF", linkerSettings: [.linkedLibrary("dl")]),
        // The small HTTP/1.1 server; knows nothing about slabs (it counts in
        // the core's `ServerStatistics`, the one type `/metrics` renders).
        .target(
            name: "SlabWatchHTTP",
            dependencies: ["SlabWatchCore", "CZlib", "CTLS", .product(name: "Logging", package: "swift-log")]),
        // The daemon: reading /proc and /sys, the sampler, config, wiring.
        .target(
            name: "SlabWatch",
            dependencies: [
                "LinearRegex", "SlabWatchCore", "SlabWatchHTTP", "Systemd", "CYAML", "CZlib", "CMalloc", "CLinux", "CBPF",
                .product(name: "Logging", package: "swift-log"),
            ]),
        // The `slabwatch` command. (Not a folder named `slabwatch`: it would
        // differ from `SlabWatch` only by case, which breaks case-insensitive disks.)
        .executableTarget(
            name: "SlabWatchCLI",
            dependencies: [
                "SlabWatch", "SlabWatchCore",
                .product(name: "Logging", package: "swift-log"),
            ]),
        // Counts heap allocations; linked by the bench only (it replaces malloc process-wide).
        .target(name: "CAllocationCounter"),
        // Measures CPU per sample against the kernel's cost of the same reads.
        .executableTarget(
            name: "slabwatch-bench",
            dependencies: [
                "SlabWatch", "SlabWatchCore", "CAllocationCounter",
                .product(name: "Logging", package: "swift-log"),
            ]),
        // Paths to Tests/Fixtures, scratch directories and synthetic machines
        // (`Scenario`), shared by every test target.
        .target(name: "TestSupport", dependencies: ["SlabWatchCore"], path: "Tests/TestSupport"),
        .testTarget(name: "LinearRegexTests", dependencies: ["LinearRegex"]),
        .testTarget(name: "SlabWatchCoreTests", dependencies: ["LinearRegex", "SlabWatchCore", "TestSupport"]),
        .testTarget(name: "SlabWatchHTTPTests", dependencies: ["SlabWatchHTTP", "SlabWatchCore"]),
        .testTarget(name: "SlabWatchTests", dependencies: ["SlabWatch", "SlabWatchCore", "CBPF", "TestSupport"]),
        .testTarget(name: "EndToEndTests", dependencies: ["SlabWatchCore", "TestSupport"]),
    ]
)

// Every target gets the strict settings, as swift-log applies its own: one
// loop, not a copy per target. The C targets (CTLS, CBPF, CAllocationCounter)
// are regular targets too; SwiftPM passes Swift settings only to Swift
// compiles, so they build as before. System library targets take no settings.
for target in package.targets where target.type != .system {
    target.swiftSettings = (target.swiftSettings ?? []) + strict
}
