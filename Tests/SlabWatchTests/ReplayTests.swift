import Foundation
import Testing
import TestSupport
@testable import SlabWatch
import SlabWatchCore

/// Recordings on disk through the same ProcReader → ring → detector path as the daemon.
struct ReplayTests {
    static func replay(_ dir: URL, _ settings: DetectorSettings = .init()) throws -> Replay.Outcome {
        try Replay(settings: .init(detector: settings)).run(dir.path)
    }

    @Test func seedRecordingGivesTheStorysFinding() throws {
        let dir = try TemporaryDirectory()
        try RecordingWriter.seed(at: dir.url)
        var events: [GrowthDetector.Event.Kind] = []
        let outcome = try Replay(settings: .init()).run(dir.url.path, onEvent: { event, _ in events.append(event.kind) })
        #expect(outcome.samplesUsed == 304 && outcome.skipped.isEmpty)
        let finding = try #require(outcome.findings.first)
        #expect(outcome.findings.count == 1)
        #expect(finding.slab == "kmalloc-32" && finding.driver == .inodes)
        #expect(abs(finding.bytesPerUnit - 32768) / 32768 < 0.03)
        #expect(finding.reclaimable == false)
        #expect(finding.classification == .tracksEviction)
        #expect(finding.message.hasPrefix("kmalloc-32 grows 32.0 KiB per cached inode (R² "))
        #expect(finding.message.contains("Unreclaimable. Its memory came back: "))
        #expect(finding.message.hasSuffix("It fell with the inode count when inodes were evicted: memory attached to cached inodes, not a leak."))
        #expect(events.first == .opened && events.contains(.reclassified))
    }

    @Test func leakLikeRecording() throws {
        let dir = try TemporaryDirectory()
        try RecordingWriter.seed(at: dir.url, cacheFalls: false)
        var settings = DetectorSettings()
        settings.leakGraceSeconds = 120
        let finding = try #require(try Self.replay(dir.url, settings).findings.first)
        #expect(finding.classification == .leakLike)
    }

    @Test func reclaimableRiseIsReportedAsInfo() throws {
        let dir = try TemporaryDirectory()
        var w = RecordingWriter(root: dir.url)
        var dentries = 200_000.0
        for _ in 0..<150 {
            dentries += 6000
            try w.add(inodes: dentries * 0.8 + w.jitter(20_000), dentries: dentries,
                      caches: [("dentry", 192 * dentries + w.jitter(2e6), true)] + w.background())
        }
        let finding = try #require(try Self.replay(dir.url).findings.first)
        #expect(finding.slab == "dentry" && finding.severity == .info && finding.reclaimable == true)
        #expect(finding.driver == .dentries)
        #expect(abs(finding.bytesPerUnit - 192) / 192 < 0.05)
        #expect(finding.message.contains("Reclaimable (counted in SReclaimable)."))
    }

    @Test func idleMachineWithJitterStaysSilent() throws {
        let dir = try TemporaryDirectory()
        var w = RecordingWriter(root: dir.url)
        w.interval = 60  // two hours, one sample a minute
        var inodes = 300_000.0
        for _ in 0..<120 {
            inodes += w.jitter(5000)
            try w.add(inodes: inodes, caches: [("kmalloc-32", 500e6 + w.jitter(30e6), false)] + w.background())
        }
        let outcome = try Self.replay(dir.url)
        #expect(outcome.findings.isEmpty, "\(outcome.findings.map(\.message))")
        #expect(outcome.samplesUsed == 120)
    }

    @Test func brokenAndForeignEntriesAreSkippedNotFatal() throws {
        let dir = try TemporaryDirectory()
        var w = RecordingWriter(root: dir.url)
        for _ in 0..<5 { try w.add(inodes: 1000, caches: w.background()) }
        let victim = try #require(try Recording.sampleDirectories(dir.url.path).dropFirst(2).first)
        try FileManager.default.removeItem(atPath: victim.path + "/proc/meminfo")
        try replaceFile(URL(fileURLWithPath: try Recording.sampleDirectories(dir.url.path)[3].path + "/proc/slabinfo"), with: "garbage")
        try dir.write("README.txt", "notes beside the samples are ignored")
        let outcome = try Self.replay(dir.url)
        #expect(outcome.samplesUsed == 3)
        #expect(outcome.skipped.count == 2)
        #expect(outcome.skipped[0].reason.hasPrefix("meminfo:"))
        #expect(outcome.skipped[1].reason.hasPrefix("slabinfo:"))
    }

    /// A recording carries its machine's page size: a 64 KiB-page recording
    /// replays to 64 KiB-page footprints on any machine.
    @Test func replayUsesTheRecordedPageSize() throws {
        let dir = try TemporaryDirectory()
        try RecordingWriter.seed(at: dir.url)
        var warnings: [String] = []
        let assumed = try Replay(settings: .init()).run(dir.url.path, warn: { warnings.append($0) })
        #expect(warnings.count == 1 && warnings[0].contains("RECORDING missing: replaying with this machine's page size"))
        try dir.write(Recording.metadataFile, "format=1\npage_size=65536\nkernel=6.1.0-arm64\nrecorder=slabwatch 0.1.0\n")
        warnings = []
        let recorded = try Replay(settings: .init()).run(dir.url.path, warn: { warnings.append($0) })
        #expect(warnings.isEmpty)
        let small = try #require(assumed.findings.first), large = try #require(recorded.findings.first)
        #expect(abs(large.bytesPerUnit / small.bytesPerUnit - 65536.0 / Double(Host.pageSize)) < 0.01)
        try dir.write(Recording.metadataFile, "format=9\npage_size=65536\n")  // a newer format: not trusted
        _ = try Replay(settings: .init()).run(dir.url.path, warn: { warnings.append($0) })
        #expect(warnings.first?.contains("unreadable") == true)
    }

    /// Directory names at the ends of Int64 are numbers but not times: they
    /// used to trap the detector's window arithmetic; now they are skipped.
    @Test func sampleDirectoriesNamedOutsideTimeAreSkipped() throws {
        let dir = try TemporaryDirectory()
        var w = RecordingWriter(root: dir.url)
        for _ in 0..<4 { try w.add(inodes: 1000, caches: w.background()) }
        let first = try #require(try Recording.sampleDirectories(dir.url.path).first)
        for name in ["-9223372036854775808", "9223372036854775807", "-1", "253402300800000"] {
            try FileManager.default.copyItem(atPath: first.path, toPath: dir.path(name))
        }
        let outcome = try Self.replay(dir.url)
        #expect(outcome.samplesUsed == 4)
        #expect(outcome.skipped.map { ($0.path as NSString).lastPathComponent }
            == ["-9223372036854775808", "-1", "253402300800000", "9223372036854775807"])
        #expect(outcome.skipped.allSatisfy { $0.reason.contains("is not a sample time (Unix milliseconds, 0 to 253402300799999)") })
    }

    /// A RECORDING that is a FIFO or too large is said to be so, not "missing"
    /// (and a FIFO does not block the replay).
    @Test func unreadableMetadataSaysWhatItIs() throws {
        let dir = try TemporaryDirectory()
        var w = RecordingWriter(root: dir.url)
        for _ in 0..<2 { try w.add(inodes: 1000, caches: w.background()) }
        let metadata = dir.path(Recording.metadataFile)
        #expect(mkfifo(metadata, 0o600) == 0)
        var warnings: [String] = []
        _ = try Replay(settings: .init()).run(dir.url.path, warn: { warnings.append($0) })
        #expect(warnings.count == 1 && warnings[0].contains("RECORDING not read (not a regular file)"), "\(warnings)")
        try FileManager.default.removeItem(atPath: metadata)
        try Data(repeating: 0x61, count: 1 << 20).write(to: URL(fileURLWithPath: metadata))
        warnings = []
        _ = try Replay(settings: .init()).run(dir.url.path, warn: { warnings.append($0) })
        #expect(warnings.count == 1 && warnings[0].contains("RECORDING larger than 65536 bytes, not read"), "\(warnings)")
    }

    @Test func missingRecordingIsAnError() {
        #expect(throws: FileError.self) { try Self.replay(URL(fileURLWithPath: "/nonexistent/recording")) }
    }

    @Test func recorderWritesWhatReplayReads() throws {
        let dir = try TemporaryDirectory()
        let recorder = try Recorder(paths: TestPaths.localKernelPaths, directory: dir.path("rec"))
        try recorder.record(timestampMilliseconds: 1000)
        try recorder.record(timestampMilliseconds: 2000)
        let samples = try Recording.sampleDirectories(dir.path("rec"))
        #expect(samples.map(\.milliseconds) == [1000, 2000])
        let metadata = try String(contentsOfFile: dir.path("rec/RECORDING"), encoding: .utf8)
        #expect(metadata.contains("page_size=\(Host.pageSize)\n") && metadata.contains("recorder=slabwatch "))
        #expect(FileManager.default.fileExists(atPath: samples[0].path + "/sys/kernel/slab/dentry/reclaim_account"))
        #expect(!FileManager.default.fileExists(atPath: samples[1].path + "/sys"))  // same caches: not written again
        let original = try Data(contentsOf: TestPaths.localCapture.appendingPathComponent("proc/slabinfo"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: samples[1].path + "/proc/slabinfo")) == original)
        let replayed = ProcReader(paths: KernelPaths(procfs: samples[1].path + "/proc", sysfs: samples[0].path + "/sys"), pageSize: 4096)
            .sample(timestampMilliseconds: 2000)
        #expect(replayed.caches.first { $0.name == "dentry" }?.reclaimable == true)
        #expect(replayed.caches.first { $0.name == "kmalloc-32" }?.reclaimable == false)
        #expect(try Self.replay(dir.url.appendingPathComponent("rec")).samplesUsed == 2)
    }

    /// A kernel without /proc/net/sockstat (no network stack) or /proc/cgroups
    /// is still recorded: those files are left out, and the replay reads their
    /// sources as down, where the recorder used to stop at the first one.
    @Test func aKernelWithoutAnOptionalFileIsStillRecorded() throws {
        let dir = try TemporaryDirectory()
        let procfs = dir.path("proc")
        try FileManager.default.copyItem(atPath: TestPaths.localKernelPaths.procfs, toPath: procfs)
        try FileManager.default.removeItem(atPath: procfs + "/net/sockstat")
        try FileManager.default.removeItem(atPath: procfs + "/cgroups")
        let recorder = try Recorder(paths: KernelPaths(procfs: procfs, sysfs: TestPaths.localKernelPaths.sysfs), directory: dir.path("rec"))
        let sample = try recorder.record(timestampMilliseconds: 1000)
        #expect(FileManager.default.fileExists(atPath: sample + "/proc/slabinfo"))
        #expect(!FileManager.default.fileExists(atPath: sample + "/proc/net/sockstat"))
        let replayed = ProcReader(paths: KernelPaths(procfs: sample + "/proc", sysfs: sample + "/sys"), pageSize: 4096)
            .sample(timestampMilliseconds: 1000)
        #expect(replayed.sources[.sockstat]?.up == false && replayed.sources[.slabinfo]?.up == true)
        #expect(try Self.replay(dir.url.appendingPathComponent("rec")).samplesUsed == 1)
    }
}
