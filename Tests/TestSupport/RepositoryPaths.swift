public import Foundation

/// Where the test data lives: everything under Tests/Fixtures, found from
/// this file's own path so any test target, run from anywhere, agrees.
public enum RepositoryPaths: Sendable {
    public static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    public static let fixtures = root.appendingPathComponent("Tests/Fixtures")
    /// This project's own capture of Linux 6.18 (/proc and /sys).
    public static let localCapture = fixtures.appendingPathComponent("local-6.18")
    /// Other kernels' captures, each with a SOURCE.md.
    public static let captures = fixtures.appendingPathComponent("captures")
}

/// A scratch directory removed when the test is done with it, by the test
/// that made it (not Sendable: its lifetime is that test's).
public final class TemporaryDirectory {
    public let url: URL

    public init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    public func write(_ relative: String, _ text: String) throws {
        let file = url.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: file)
    }

    public func path(_ relative: String) -> String { url.appendingPathComponent(relative).path }
}

@available(*, unavailable)
extension TemporaryDirectory: Sendable {}
