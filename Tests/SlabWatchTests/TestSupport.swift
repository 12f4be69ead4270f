import Foundation
import Logging
@testable import SlabWatch

enum TestPaths {
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let fixtures = repositoryRoot.appendingPathComponent("Tests/Fixtures")
    static let localCapture = fixtures.appendingPathComponent("local-6.18")
    static let captures = fixtures.appendingPathComponent("captures")

    static var localKernelPaths: KernelPaths {
        KernelPaths(procfs: localCapture.appendingPathComponent("proc").path,
                    sysfs: localCapture.appendingPathComponent("sys").path)
    }
}

/// A scratch directory removed when the test is done with it.
final class TemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    func write(_ relative: String, _ text: String) throws {
        let file = url.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: file)
    }

    func path(_ relative: String) -> String { url.appendingPathComponent(relative).path }
}

let quietLogger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
