import Foundation

/// Locates test data: the repository's own captures under Tests/Fixtures, and
/// the shared captures from other kernels beside the checkout.
enum Fixtures {
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let local = repositoryRoot.appendingPathComponent("Tests/Fixtures/local-6.18")

    static let sharedCaptures = repositoryRoot
        .deletingLastPathComponent().appendingPathComponent("shared/fixtures/proc-captures")

    static func bytes(_ url: URL) throws -> ArraySlice<UInt8> {
        ArraySlice(try Data(contentsOf: url))
    }

    static func capture(_ folder: String, _ file: String) throws -> ArraySlice<UInt8> {
        try bytes(sharedCaptures.appendingPathComponent(folder).appendingPathComponent(file))
    }
}

extension ArraySlice<UInt8> {
    init(text: String) { self.init(text.utf8) }
}
