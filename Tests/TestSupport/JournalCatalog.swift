import Foundation

/// systemd/slabwatch.catalog as the tests read it: for each MESSAGE_ID, the
/// fields its "Fields" block documents. A field whose description begins
/// "only " is carried by some entries of that id, the others by every one.
public struct JournalCatalog: Sendable {
    public struct DocumentedField: Sendable, Equatable {
        public var name: String
        /// Whether every entry of the id carries it.
        public var always: Bool
    }

    /// Documented fields by MESSAGE_ID, in the catalog's order.
    public private(set) var fields: [String: [DocumentedField]] = [:]

    public static func shipped() throws -> JournalCatalog {
        JournalCatalog(text: try String(contentsOf: RepositoryPaths.root.appendingPathComponent("systemd/slabwatch.catalog"), encoding: .utf8))
    }

    /// Entries start at `-- <id>` (journalctl's catalog format); a field is a
    /// line of the "Fields" block: two spaces, the name, spaces, its description.
    public init(text: String) {
        var id: String?
        var inFields = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("-- ") {
                id = String(line.dropFirst(3))
                fields[id!] = []
                inFields = false
            } else if line.hasPrefix("Fields") {
                inFields = true
            } else if line.isEmpty {
                inFields = false
            } else if inFields, let id, line.hasPrefix("  ") {
                let words = line.split(separator: " ", maxSplits: 1)
                guard let name = words.first else { continue }
                let description = words.count > 1 ? words[1].drop { $0 == " " } : ""
                fields[id, default: []].append(DocumentedField(name: String(name), always: !description.hasPrefix("only ")))
            }
        }
    }

    /// The names documented for `messageID`.
    public func names(_ messageID: String) -> Set<String> { Set((fields[messageID] ?? []).map(\.name)) }

    /// The names every entry of `messageID` carries.
    public func alwaysNames(_ messageID: String) -> Set<String> { Set((fields[messageID] ?? []).filter(\.always).map(\.name)) }
}
