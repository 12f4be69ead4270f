// swift-tools-version:6.0
// libFuzzer harnesses for slabwatch's parsers. A package of its own so the main
// package never links a binary without `main`; built and run by scripts/fuzz.sh.
import Foundation
import PackageDescription

/// A path dependency is named after its directory, whatever a clone called it.
let root = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "slabwatch-fuzz",
    dependencies: [.package(path: "..")],
    targets: [
        .executableTarget(
            name: "slabwatch-fuzz",
            dependencies: [
                .product(name: "SlabWatchCore", package: root),
                .product(name: "SlabWatchHTTP", package: root),
                .product(name: "SlabWatch", package: root),
            ]),
        // The regex engine on its own: a leaf, so its harness links nothing else.
        .executableTarget(
            name: "linearregex-fuzz",
            dependencies: [.product(name: "LinearRegex", package: root)]),
    ]
)
