import Foundation
import Glibc
import SlabWatchCore
import Testing
import TestSupport

/// The page at `/` in a real browser: headless Chromium loads it from a
/// daemon that watched the seed story (kmalloc-32 rising 32 KiB per inode,
/// then falling with the evicted inodes) and the test reads the DOM it built.
/// The screenshot it takes is kept in `.build/test-artifacts/` for people.
@Suite(.serialized)
struct WebPageEndToEndTests {
    static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

    @Test(.enabled(if: chromium != nil, "needs Debian's chromium"))
    func browserShowsTheFindingWithItsCharts() throws {
        let story = try SeedStoryPlayer()
        defer { story.stop() }
        let daemon = try DaemonProcess(arguments: story.root.arguments + ["--sampler.interval", "100ms"] + EndToEndTests.quickDetector)
        try daemon.waitFor("the finding to see inodes evicted", timeout: 60) {
            let finding = try EndToEndTests.detectorFinding(daemon, "kmalloc-32")
            let evidence = finding?["evidence"] as? [[String: Any]] ?? []
            return evidence.filter { $0["segment"] as? String == "fall" }.count >= 8
        }
        story.stop()  // hold the picture still while the browser looks
        let finding = try #require(try EndToEndTests.detectorFinding(daemon, "kmalloc-32"))
        let sentence = try #require(finding["message"] as? String)

        let browser = Browser()
        let dom = try browser.dumpDOM(daemon.url("/"))
        // The sentence, as the browser parsed it (R² and all).
        #expect(dom.contains(String(sentence.prefix(60))), "\(dom.prefix(2000))")
        // Two charts per finding: evidence points in two colours, the fitted line, and the history.
        #expect(dom.components(separatedBy: "<svg").count - 1 >= 2)
        #expect(dom.contains("data-series=\"rise\""))
        #expect(dom.contains("data-series=\"inodes evicted\""))
        // The fitted line is the finding's own slope (about 32 KiB: the story's, give or take sampling).
        let perUnit = try #require(finding["bytes_per_unit"] as? Double)
        #expect(abs(perUnit - 32768) / 32768 < 0.02)
        #expect(dom.contains("data-series=\"fit: \(Human.bytes(perUnit))/inode"))
        #expect(dom.contains("data-series=\"footprint\""))
        #expect(dom.components(separatedBy: "<circle").count - 1 >= 20)
        #expect(dom.contains("href=\"/cache?slab=kmalloc-32\""))

        let cachePage = try browser.dumpDOM(daemon.url("/cache?slab=kmalloc-32"))
        #expect(cachePage.contains("<h1>kmalloc-32</h1>") && cachePage.contains("footprint over time"))

        let svg = try daemon.get("/chart.svg?slab=kmalloc-32&kind=evidence")
        #expect(svg.status == 200 && svg.headers.contains("Content-Type: image/svg+xml"))
        #expect(svg.body.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))

        let shot = try browser.screenshot(daemon.url("/"), name: "web-page.png")
        #expect((try? FileManager.default.attributesOfItem(atPath: shot)[.size] as? Int) ?? 0 > 20_000)
    }
}

/// Headless Chromium with a profile of its own, removed afterwards.
final class Browser {
    let profile = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-chromium-\(UUID().uuidString)")

    deinit { try? FileManager.default.removeItem(at: profile) }

    private func run(_ arguments: [String]) throws -> DaemonProcess.RunResult {
        // Root needs --no-sandbox; nothing leaves loopback (no component updates, no crash uploads).
        // HOME and the XDG folders point into the profile too: Chromium and GTK
        // otherwise create ~/.config/chromium and ~/.cache/dconf.
        let home = profile.path
        return try DaemonProcess.run("/usr/bin/env", [
            "HOME=\(home)", "XDG_CONFIG_HOME=\(home)/config", "XDG_CACHE_HOME=\(home)/cache", "XDG_DATA_HOME=\(home)/data",
            WebPageEndToEndTests.chromium!,
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
            "--disable-background-networking", "--disable-component-update", "--disable-crash-reporter",
            "--user-data-dir=\(home)/profile", "--hide-scrollbars",
        ] + arguments)
    }

    func dumpDOM(_ url: String) throws -> String {
        let result = try run(["--dump-dom", url])
        guard result.status == 0 else { throw DaemonProcess.Failure(message: "chromium failed: \(result.error)") }
        return result.output
    }

    /// Saves a PNG under .build/test-artifacts and returns its path.
    func screenshot(_ url: String, name: String) throws -> String {
        let directory = RepositoryPaths.root.appendingPathComponent(".build/test-artifacts")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent(name).path
        let result = try run(["--window-size=1400,1900", "--screenshot=\(path)", url])
        guard result.status == 0 else { throw DaemonProcess.Failure(message: "chromium screenshot failed: \(result.error)") }
        return path
    }
}

/// The seed story (see `writeSeedRecording`) played into a fake procfs, one
/// recorded sample every 100 ms, so a running daemon watches it happen.
final class SeedStoryPlayer: @unchecked Sendable {  // `stopped` guarded by `lock`
    let root: FakeProcRoot
    private let recording = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-story-\(UUID().uuidString)")
    private let lock = NSLock()
    private var stopped = false
    private var thread: Thread?
    /// Signalled by the player as it ends, so `stop` returns after its last write.
    private let playerEnded = DispatchSemaphore(value: 0)

    init() throws {
        root = try FakeProcRoot(slabinfo: nil)
        try writeSeedRecording(recording)
        let samples = try FileManager.default.contentsOfDirectory(atPath: recording.path).compactMap(Int64.init).sorted()
        try play(samples[0])
        thread = Thread { [self] in
            for sample in samples.dropFirst() {
                if isStopped { break }
                try? play(sample)
                usleep(100_000)
            }
            self.playerEnded.signal()
        }
        thread?.start()
    }

    deinit { try? FileManager.default.removeItem(at: recording) }

    var isStopped: Bool { lock.lock(); defer { lock.unlock() }; return stopped }

    func stop() {
        lock.lock(); let wasPlaying = !stopped; stopped = true; lock.unlock()
        if wasPlaying { playerEnded.wait() }
        thread = nil
    }

    private func play(_ sample: Int64) throws {
        let directory = recording.appendingPathComponent("\(sample)")
        guard let files = FileManager.default.enumerator(atPath: directory.path) else { return }
        for case let relative as String in files {
            let source = directory.appendingPathComponent(relative)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: source.path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            let target = root.url.appendingPathComponent(relative)
            try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            try replaceFile(target, with: String(decoding: try Data(contentsOf: source), as: UTF8.self))
        }
    }
}
