import Foundation
import Testing
import TestSupport
@testable import SlabWatch
import SlabWatchCore
import Systemd

/// Every key is declared once, in `Configuration.keys`; the shipped file and
/// the flags are held against it here (the documented table by `DocsTests`).
struct ConfigurationKeyTests {
    @Test func everyDefaultTextGivesTheEmbeddedDefault() throws {
        for key in Configuration.keys {
            var configuration = Configuration()
            let text = key.defaultText == "\"\"" ? "" : key.defaultText
            let values = Configuration.listKeys.contains(key.name)
                ? text.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).components(separatedBy: ", ") : [text]
            try configuration.set(key.name, to: values, origin: "test")
            #expect(configuration == Configuration(), "\(key.name): '\(key.defaultText)' is not the default")
        }
    }

    /// The shipped file is the key table's (`Configuration.exampleYAML`):
    /// every key, no other, at its default, with its summary. UPDATE_DOCS=1
    /// rewrites it, as it does the generated blocks of the documentation.
    @Test func shippedFileIsGenerated() throws {
        let file = TestPaths.repositoryRoot.appendingPathComponent("config/slabwatch.yml")
        if ProcessInfo.processInfo.environment["UPDATE_DOCS"] == "1" {
            try Data(Configuration.exampleYAML().utf8).write(to: file)
        }
        #expect(try String(contentsOf: file, encoding: .utf8) == Configuration.exampleYAML(),
                "config/slabwatch.yml is not the key table's; rerun with UPDATE_DOCS=1 and review the diff")
        #expect(try ConfigurationSource(file: file.path, overrides: []).load() == Configuration())
    }

    @Test func everyKeyIsAFlag() throws {
        for key in Configuration.keys {
            let value = key.defaultText == "\"\"" ? "" : key.defaultText.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
                .replacingOccurrences(of: ", ", with: ",")
            // Both spellings; a list key given twice would be a list of both.
            let twice = !Configuration.listKeys.contains(key.name)
            let flags = try KeyFlags.split(["run", "--\(key.name)", value] + (twice ? ["--\(key.name)=\(value)"] : []))
            #expect(flags.rest == ["run"])
            #expect(flags.overrides.map(\.key) == Array(repeating: key.name, count: twice ? 2 : 1))
            #expect(try ConfigurationSource(file: nil, overrides: flags.overrides).load() == Configuration(), "\(key.name)")
        }
        #expect(throws: KeyFlags.UsageError.self) { try KeyFlags.split(["--sampler.interval"]) }
        #expect(try KeyFlags.split(["--config", "x", "--json"]).rest == ["--config", "x", "--json"])
    }
}

/// What the key table says about each key, held against the code that acts
/// on it: SIGHUP's restart-only warning, the sections commands name, and
/// defaults that live in another module.
struct ConfigurationKeyUseTests {
    /// Texts to try as a key's other value; the first the key accepts that
    /// changes the configuration is used.
    static let candidates = ["false", "true", "2", "3", "100", "0.5", "0.8", "7s", "3m", "1h", "20ms", "1MiB", "64KiB",
                             ":10078", "/tmp/slabwatch-other", "x.*", "debug", "2m, 20m", "bpf", "4096", "all"]

    /// `key` set to a value other than its default, or nil when no candidate fits.
    static func changed(_ key: ConfigurationKey) -> Configuration? {
        for text in candidates {
            var configuration = Configuration()
            let values = key.isList ? text.components(separatedBy: ", ") : [text]
            guard (try? configuration.set(key.name, to: values, origin: "test")) != nil, configuration != Configuration() else { continue }
            return configuration
        }
        return nil
    }

    /// A key the table calls reloadable is applied by SIGHUP without a word; any
    /// other is named in the restart-only warning (itself or its section as `web.*`).
    @Test func restartOnlyWarningFollowsTheTable() throws {
        for key in Configuration.keys {
            let new = try #require(Self.changed(key), "\(key.name): no candidate value changes it; add one")
            let named = Configuration().restartOnlyChanges(to: new)
            let section = String(key.name.prefix { $0 != "." }) + ".*"
            if key.reloadable {
                #expect(named.isEmpty, "\(key.name) is reloadable, yet a change to it warns about \(named)")
            } else {
                #expect(named == [key.name] || named == [section], "\(key.name) takes a restart, yet a change to it warns about \(named)")
            }
        }
    }

    /// The sections commands name are the table's, in its order.
    @Test func sectionsAreTheTables() {
        var tableOrder: [String] = []
        for key in Configuration.keys {
            let section = String(key.name.prefix { $0 != "." })
            if !tableOrder.contains(section) { tableOrder.append(section) }
        }
        #expect(Configuration.Section.allCases.map(\.rawValue) == tableOrder)
        for section in Configuration.Section.allCases {
            #expect(Configuration.keys.contains { $0.name.hasPrefix(section.prefix) }, "\(section) has no key")
        }
    }

    @Test func journalSocketDefaultIsJournals() {
        #expect(Configuration().journalSocket == Journal.defaultSocketPath)
        #expect(Configuration.keys.first { $0.name == "alerts.journal-socket" }?.defaultText == Journal.defaultSocketPath)
    }
}
