import Foundation
import TestSupport
import Logging
@testable import SlabWatch

enum TestPaths {
    static let repositoryRoot = RepositoryPaths.root
    static let fixtures = RepositoryPaths.fixtures
    static let localCapture = RepositoryPaths.localCapture
    static let captures = RepositoryPaths.captures

    static var localKernelPaths: KernelPaths {
        KernelPaths(procfs: localCapture.appendingPathComponent("proc").path,
                    sysfs: localCapture.appendingPathComponent("sys").path)
    }
}

let quietLogger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
