import Foundation
import TestSupport

/// Locates test data under Tests/Fixtures: this machine's capture and real
/// captures from other kernels (`captures/`, each with its SOURCE.md).
enum Fixtures {
    static let repositoryRoot = RepositoryPaths.root
    static let local = RepositoryPaths.localCapture
    static let captures = RepositoryPaths.captures

    static func bytes(_ url: URL) throws -> ArraySlice<UInt8> {
        ArraySlice(try Data(contentsOf: url))
    }

    static func capture(_ folder: String, _ file: String) throws -> ArraySlice<UInt8> {
        try bytes(captures.appendingPathComponent(folder).appendingPathComponent(file))
    }
}

extension ArraySlice<UInt8> {
    init(text: String) { self.init(text.utf8) }
}
