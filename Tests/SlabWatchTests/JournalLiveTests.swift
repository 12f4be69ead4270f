import Foundation
import Glibc
import Testing
import TestSupport
import Systemd

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
