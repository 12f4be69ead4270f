import Foundation
import TestSupport
import Logging
@testable import SlabWatch

enum TestPaths {
    static let repositoryRoot = RepositoryPaths.root
    static let fixtures = RepositoryPaths.fixtures
    static let localCapture = RepositoryPaths.localCapture
    static let captures = RepositoryPaths.captures

    /// The text of a documentation file, by its path in the repository
    /// (`docs/operating/configuration.md`); empty when it cannot be read, so
    /// the test that looks for a sentence in it fails saying what it wanted.
    static func document(_ relative: String) -> String {
        (try? String(contentsOf: repositoryRoot.appendingPathComponent(relative), encoding: .utf8)) ?? ""
    }

    static var localKernelPaths: KernelPaths {
        KernelPaths(procfs: localCapture.appendingPathComponent("proc").path,
                    sysfs: localCapture.appendingPathComponent("sys").path)
    }
}

let quietLogger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
