import Foundation
import Glibc
import Testing
import TestSupport
import Systemd
@testable import SlabWatchCore

/// A real journald, of a namespace the test starts (so its socket is not the
/// default one), receiving what `Journal.send` writes: fields of any size and
/// shape arrive whole, and a socket that vanished is an error, not a silent loss.
@Suite(.enabled(if: getuid() == 0, "starts a journald of its own"))
struct JournalLiveTests {
    /// Waits for the entry tagged `tag` (generous: only a lost entry trips it).
    static func entry(_ journald: NamespaceJournald, tag: String) throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if let entry = try journald.entries(["SLABWATCH_TEST=\(tag)"]).first { return entry }
            usleep(50_000)
        }
        throw CocoaError(.fileReadNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "no entry \(tag) in namespace \(journald.namespace)"])
    }

    /// A 100 KiB MESSAGE fits a datagram; one four times the largest datagram
    /// this machine's sockets may send goes as a sealed memfd. Both arrive
    /// byte for byte, with a multi-line value and UTF-8 beside them.
    @Test(arguments: [100 << 10, 4 * Receiver.sendBufferBytes()])
    func fieldsOfAnySizeArriveWhole(messageBytes: Int) throws {
        let journald = try NamespaceJournald()
        defer { journald.stop() }
        let tag = UUID().uuidString
        let message = String(repeating: "slab ", count: messageBytes / 5)
        let fields = [(name: "MESSAGE", value: message), (name: "PRIORITY", value: "6"), (name: "SLABWATCH_TEST", value: tag),
                      (name: "SLABWATCH_LINES", value: "one\ntwo\n"), (name: "SLABWATCH_CGROUP", value: "/system.slice/é ü.service")]
        try Journal.send(fields, to: journald.socketPath)
        let entry = try Self.entry(journald, tag: tag)
        for field in fields {
            #expect(entry[field.name] as? String == field.value, "\(field.name)")
        }
        #expect((entry["MESSAGE"] as? String)?.utf8.count == messageBytes / 5 * 5)
        #expect(entry["_TRANSPORT"] as? String == "journal")
        #expect(entry["_PID"] as? String == "\(getpid())")
    }

    /// A finding charged to cgroups whose names are hostile (controls, escape
    /// sequences, quotes; anything a directory name may hold but `/` and NUL):
    /// the charged fields arrive byte for byte, and the sentence beside them
    /// holds no control a terminal would act on.
    @Test func chargedCgroupsWithHostileNamesArriveWhole() throws {
        let journald = try NamespaceJournald()
        defer { journald.stop() }
        var generator = SeededGenerator(seed: 31)
        for round in 0..<8 {
            let name = HostileText.make(length: 40, using: &generator).filter { $0 != "/" && $0 != "\0" } + "\"'\\.service"
            let path = "/system.slice/" + name
            let charged = ChargedCgroups(source: .memcgKmem, windowSeconds: 120,
                                         entries: [.init(cgroup: path, riseBytes: 3e7, share: 0.9, rSquared: 0.98)], otherShare: 0.1)
            let tag = "\(UUID().uuidString)-\(round)"
            let fields = [(name: "MESSAGE", value: charged.sentence(slab: "kmalloc-cg-512")), (name: "SLABWATCH_TEST", value: tag)]
                + AlertPolicy.chargedFields(charged).map { (name: $0.name, value: $0.value) }
            try Journal.send(fields, to: journald.socketPath)
            let entry = try Self.entry(journald, tag: tag)
            #expect(Self.text(entry["SLABWATCH_CGROUP"]) == path, "round \(round)")
            #expect(Self.text(entry["SLABWATCH_UNIT"]) == name, "round \(round)")
            let message = try #require(Self.text(entry["MESSAGE"]))
            #expect(!message.unicodeScalars.contains(where: HostileText.isControl), "round \(round): \(message.debugDescription)")
        }
    }

    /// journalctl's JSON gives a field with controls or invalid UTF-8 as its bytes.
    static func text(_ value: Any?) -> String? {
        if let text = value as? String { return text }
        return (value as? [Int]).map { String(decoding: $0.map { UInt8(truncatingIfNeeded: $0) }, as: UTF8.self) }
    }

    /// journald gone and its socket with it: ENOENT (libsystemd said success).
    @Test func aSocketThatVanishedIsAnError() throws {
        let journald = try NamespaceJournald()
        let path = journald.socketPath
        try Journal.send([(name: "MESSAGE", value: "before"), (name: "SLABWATCH_TEST", value: "before")], to: path)
        _ = try Self.entry(journald, tag: "before")
        journald.stop()
        #expect(throws: SystemdError(call: "sendmsg to \(path)", errno: ENOENT)) {
            try Journal.send([(name: "MESSAGE", value: "after")], to: path)
        }
    }
}
