import Foundation
import Testing
import TestSupport
@testable import SlabWatch
@testable import SlabWatchCore

/// The documentation holds together: README stays short and links every file
/// of docs/, every relative link and anchor resolves, and the blocks
/// generated from the code (`DocsGenerator`) say what the code says.
/// `UPDATE_DOCS=1 swift test --filter DocsTests` rewrites those blocks.
@Suite(.serialized)
struct DocsTests {
    /// README is what a newcomer reads whole: a few screens.
    static let readmeMaximumLines = 250

    /// README, CHANGES and every Markdown file under docs/, by path in the repository.
    static func documents() throws -> [String] {
        let docs = RepositoryPaths.root.appendingPathComponent("docs")
        let files = FileManager.default.enumerator(atPath: docs.path)?.compactMap { $0 as? String } ?? []
        return ["README.md", "CHANGES.md"] + files.filter { $0.hasSuffix(".md") }.sorted().map { "docs/" + $0 }
    }

    static func text(_ document: String) throws -> String {
        try String(contentsOf: RepositoryPaths.root.appendingPathComponent(document), encoding: .utf8)
    }

    @Test func readmeFitsOnAFewScreens() throws {
        let lines = try Self.text("README.md").split(separator: "\n", omittingEmptySubsequences: false).count - 1
        #expect(lines <= Self.readmeMaximumLines, "README.md has \(lines) lines")
    }

    /// A link to a file of the repository finds it, and its anchor a heading there.
    @Test func everyRelativeLinkResolves() throws {
        for document in try Self.documents() {
            let base = URL(fileURLWithPath: document).deletingLastPathComponent().relativePath
            for link in Self.links(in: try Self.text(document)) where !link.contains("://") && !link.hasPrefix("mailto:") {
                let path = String(link.prefix { $0 != "#" })
                let anchor = link.contains("#") ? String(link.drop { $0 != "#" }.dropFirst()) : nil
                let target = path.isEmpty ? document : URL(fileURLWithPath: base + "/" + path).standardized.relativePath
                let relative = target.hasPrefix("./") ? String(target.dropFirst(2)) : target
                let url = RepositoryPaths.root.appendingPathComponent(relative)
                #expect(FileManager.default.fileExists(atPath: url.path), "\(document): \(link) names no file")
                if let anchor, relative.hasSuffix(".md") {
                    let anchors = Self.anchors(in: (try? Self.text(relative)) ?? "")
                    #expect(anchors.contains(anchor), "\(document): \(link) names no heading of \(relative)")
                }
            }
        }
    }

    /// README's table leads to every file of docs/: none is found only by browsing.
    @Test func readmeLinksEveryDocsFile() throws {
        let linked = Set(Self.links(in: try Self.text("README.md")).map { String($0.prefix { $0 != "#" }) })
        for document in try Self.documents() where document.hasPrefix("docs/") {
            #expect(linked.contains(document), "README.md links no \(document)")
        }
    }

    /// What a reader cannot follow: the project's internal names for its
    /// test story and an example module, and a design file not shipped with it.
    static let unexplainedNames = ["seed story", "mystor", "DESIGN.md"]

    @Test func userDocsNameNothingTheReaderCannotFind() throws {
        for document in try Self.documents() where document != "CHANGES.md" {
            let text = try Self.text(document)
            for name in Self.unexplainedNames {
                #expect(!text.localizedCaseInsensitiveContains(name), "\(document) mentions \(name)")
            }
        }
    }

    /// Each generated block equals what its generator makes of the code now.
    @Test func generatedBlocksAreCurrent() throws {
        let update = ProcessInfo.processInfo.environment["UPDATE_DOCS"] == "1"
        for block in DocsGenerator.blocks {
            let url = RepositoryPaths.root.appendingPathComponent(block.file)
            var document = try String(contentsOf: url, encoding: .utf8)
            let generated = try block.text()
            if update, let updated = DocsGenerator.replacing(block.name, with: generated, in: document) {
                try Data(updated.utf8).write(to: url)
                document = updated
            }
            let current = DocsGenerator.current(block.name, in: document)
            #expect(current != nil, "\(block.file) has no block \(DocsGenerator.begin(block.name)) … \(DocsGenerator.end(block.name))")
            #expect(current == nil || current == generated,
                    "\(block.file): block \(block.name) is out of date; rerun with UPDATE_DOCS=1 and review the diff")
        }
    }

    /// Every setting of the detector has a doc comment (its row says nothing
    /// without one) and every `detector.*` key is found to set one.
    @Test func everyDetectorRuleIsDocumented() throws {
        let comments = DocsGenerator.docComments(try Self.text(DocsGenerator.detectorSource))
        for child in Mirror(reflecting: DetectorSettings()).children {
            #expect(!(comments[child.label ?? ""] ?? "").isEmpty, "DetectorSettings.\(child.label ?? "?") has no doc comment")
        }
        let keyed = Set(DocsGenerator.detectorKeys().values.flatMap { $0 })
        let detectorKeys = Set(Configuration.keys.map(\.name).filter { $0.hasPrefix("detector.") })
        #expect(keyed == detectorKeys, "keys that set no DetectorSettings property: \(detectorKeys.subtracting(keyed).sorted())")
        for constant in DocsGenerator.constants {
            #expect(!(DocsGenerator.docComments(try Self.text(constant.file))[constant.name] ?? "").isEmpty,
                    "\(constant.type).\(constant.name) has no doc comment")
        }
    }

    // MARK: Markdown

    /// The targets of `[text](target)` links outside code blocks and spans.
    static func links(in markdown: String) -> [String] {
        var links: [String] = []
        for line in prose(markdown) {
            var rest = Substring(line)
            while let open = rest.range(of: "](") {
                let target = rest[open.upperBound...].prefix { $0 != ")" && $0 != " " }
                links.append(String(target))
                rest = rest[open.upperBound...]
            }
        }
        return links
    }

    /// The anchors GitHub makes of a document's headings: lower case, spaces
    /// as `-`, other punctuation dropped; a repeated one gets `-1`, `-2`, ….
    static func anchors(in markdown: String) -> Set<String> {
        var seen: [String: Int] = [:]
        var anchors: Set<String> = []
        for line in prose(markdown, keepingCode: true) where line.hasPrefix("#") {
            let title = line.drop { $0 == "#" }.drop { $0 == " " }
            var anchor = ""
            for character in title.lowercased() {
                if character.isLetter || character.isNumber || character == "-" || character == "_" { anchor.append(character) }
                if character == " " { anchor.append("-") }
            }
            let count = seen[anchor, default: 0]
            anchors.insert(count == 0 ? anchor : "\(anchor)-\(count)")
            seen[anchor] = count + 1
        }
        return anchors
    }

    /// The lines outside fenced code blocks; inline code spans removed unless `keepingCode`.
    static func prose(_ markdown: String, keepingCode: Bool = false) -> [String] {
        var lines: [String] = []
        var fenced = false
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.drop(while: { $0 == " " }).hasPrefix("```") { fenced.toggle(); continue }
            guard !fenced else { continue }
            if keepingCode { lines.append(String(line)); continue }
            let parts = line.split(separator: "`", omittingEmptySubsequences: false)
            lines.append(parts.enumerated().filter { $0.offset % 2 == 0 }.map(\.element).joined())
        }
        return lines
    }
}
