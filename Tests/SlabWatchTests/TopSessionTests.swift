import Dispatch
import SlabWatchCore
import Synchronization
import Testing
import TestSupport
@testable import SlabWatch

/// The interactive top's loop with a scripted terminal, a fake clock and
/// frames from `Scenario`: what it draws, when it fetches, how it ends.
/// (`TopEndToEndTests` drives the real binary in tmux.)
struct TopSessionTests {
    /// Monotonic seconds that pass only when the session waits for them.
    final class FakeClock: TopClock {
        private let now = Mutex(1000.0)
        var seconds: Double { now.withLock { $0 } }
        func sleep(seconds: Double) { advance(seconds) }
        func advance(_ seconds: Double) { now.withLock { $0 += seconds } }
    }

    /// Frames in turn (the last one again and again); when each was asked
    /// for. The first fetch waits for `held` when there is one.
    final class ScriptedFeed: TopFeed {
        private let state: Mutex<(results: [Result<TopFrame, TopFailure>], askedAt: [Double])>
        let clock: FakeClock
        let held: DispatchSemaphore?

        init(_ results: [Result<TopFrame, TopFailure>], clock: FakeClock, held: DispatchSemaphore? = nil) {
            state = Mutex((results, []))
            self.clock = clock
            self.held = held
        }

        var askedAt: [Double] { state.withLock { $0.askedAt } }

        func next() throws(TopFailure) -> TopFrame {
            // The deadline only ends a hung test.
            if askedAt.isEmpty, let held, held.wait(timeout: .now() + 60) == .timedOut { Issue.record("the first fetch was never released") }
            let result = state.withLock { state in
                state.askedAt.append(clock.seconds)
                return state.results.count > 1 ? state.results.removeFirst() : state.results[0]
            }
            return try result.get()
        }
    }

    /// What the script does once the screen shows what it waits for.
    enum Action: Sendable {
        case key(Character)
        /// As SIGINT, SIGTERM or SIGHUP would.
        case interrupt
        /// Lets a held fetch go on (`ScriptedFeed.held`).
        case release(DispatchSemaphore)
    }

    /// An 80×24 terminal that records every screen and acts once the
    /// screen shows what the script waits for. Waiting for a key with no
    /// limit waits for `wake`; with a limit, the fake clock moves by it
    /// unless a wake is already waiting.
    final class ScriptedTerminal: TopTerminal {
        typealias Step = (until: @Sendable ([String]) -> Bool, then: Action)

        private struct State {
            var screens: [[String]] = []
            var script: [Step] = []
            var restored = 0
            var interrupted = false
        }

        private let state = Mutex(State())
        private let woken = DispatchSemaphore(value: 0)
        private let clock: FakeClock
        /// More screens than any script needs: the session did not react as scripted.
        private static let screensAtMost = 500

        init(clock: FakeClock, script: [Step]) {
            self.clock = clock
            state.withLock { $0.script = script }
        }

        var screens: [[String]] { state.withLock { $0.screens } }
        var restored: Int { state.withLock { $0.restored } }
        var scriptLeft: Int { state.withLock { $0.script.count } }

        func interrupt() { state.withLock { $0.interrupted = true } }

        func size() -> (columns: Int, rows: Int) { (80, 24) }
        func draw(_ lines: [String]) { state.withLock { $0.screens.append(lines) } }
        func wake() { woken.signal() }
        var interrupted: Bool { state.withLock { $0.interrupted } }
        func restore() { state.withLock { $0.restored += 1 } }

        func readKey(timeoutSeconds: Double?) -> UInt8? {
            let action: Action? = state.withLock { state in
                guard let screen = state.screens.last, let next = state.script.first, next.until(screen) else { return nil }
                state.script.removeFirst()
                return next.then
            }
            switch action {
            case .key(let key): return key.asciiValue
            case .interrupt: interrupt(); return nil
            case .release(let held): held.signal(); return nil
            case nil: break
            }
            if screens.count > Self.screensAtMost {
                Issue.record("no scripted key after \(Self.screensAtMost) screens; last:\n\(screens.last?.joined(separator: "\n") ?? "")")
                interrupt()
                return nil
            }
            if let timeoutSeconds {
                // As poll(2) on the wake pipe: a wake already rung ends the wait at once.
                if woken.wait(timeout: .now()) == .timedOut { clock.advance(timeoutSeconds) }
                return nil
            }
            // A fetch is under way and wakes us when it ends. The deadline
            // only ends a hung test; a fetch here takes microseconds.
            if woken.wait(timeout: .now() + 60) == .timedOut {
                Issue.record("no wake within 60 s")
                interrupt()
            }
            return nil
        }
    }

    /// A machine of three caches; `grow` adds 4 KiB a sample to kmalloc-32.
    static func frame(samples: Int = 3) -> TopFrame {
        var s = Scenario()
        for step in 0..<samples {
            s.add(inodes: 1000, caches: [("kmalloc-32", 1e6 + Double(step) * 4096, false), ("dentry", 8e6, true), ("ext4_inode_cache", 2e6, true)])
        }
        var ring = SampleRing()
        for sample in s.samples { ring.append(sample) }
        return TopFrame(sample: s.samples.last!, history: History(ring), report: GrowthDetector.Report())
    }

    static func rows(_ screen: [String]) -> [String] { Array(screen.drop { !$0.hasPrefix("CACHE") }.dropFirst().dropLast()) }

    @Test func theFirstFetchFailingEndsTheSessionWithItsReason() {
        let clock = FakeClock()
        let held = DispatchSemaphore(value: 0)
        let feed = ScriptedFeed([.failure(TopFailure("http://x:1: cannot connect: Connection refused"))], clock: clock, held: held)
        let terminal = ScriptedTerminal(clock: clock, script: [(until: { $0[0].hasPrefix("slabwatch top: waiting for the first sample") }, then: .release(held))])
        var session = TopSession(feed: feed, terminal: terminal, clock: clock, options: .init())
        #expect(session.run()?.description == "http://x:1: cannot connect: Connection refused")
        #expect(terminal.restored == 1 && terminal.scriptLeft == 0)
    }

    /// A later failure keeps the last frame on screen and says why on the
    /// last line; the next good frame clears it.
    @Test func aLaterFailureKeepsTheLastFrame() {
        let clock = FakeClock()
        let good = Self.frame()
        let feed = ScriptedFeed([.success(good), .failure(TopFailure("daemon gone")), .success(good)], clock: clock)
        let terminal = ScriptedTerminal(clock: clock, script: [
            (until: { $0.last == "! daemon gone" }, then: .key("x")),
            (until: { $0.last == "s: sort  /: filter  q: quit" }, then: .key("q")),
        ])
        var session = TopSession(feed: feed, terminal: terminal, clock: clock, options: .init())
        #expect(session.run() == nil)
        #expect(terminal.scriptLeft == 0 && terminal.restored == 1)
        let failed = terminal.screens.first { $0.last == "! daemon gone" } ?? []
        #expect(Self.rows(failed).map { String($0.prefix { $0 != " " }) } == ["dentry", "ext4_inode_cache", "kmalloc-32"], "\(failed)")
        #expect(terminal.screens.allSatisfy { $0.count <= 24 && $0.allSatisfy { $0.count <= 80 } })
    }

    /// Each fetch starts one delay after the last one ended, on the session's clock.
    @Test func fetchesAreOneDelayApart() {
        let clock = FakeClock()
        let feed = ScriptedFeed([.success(Self.frame())], clock: clock)
        let terminal = ScriptedTerminal(clock: clock, script: [(until: { _ in feed.askedAt.count >= 4 }, then: .interrupt)])
        var options = TopView.Options()
        options.intervalSeconds = 2
        var session = TopSession(feed: feed, terminal: terminal, clock: clock, options: options)
        #expect(session.run() == nil)
        let gaps = zip(feed.askedAt.dropFirst(), feed.askedAt).map { $0 - $1 }
        #expect(gaps.count >= 3 && gaps.allSatisfy { $0 == 2 }, "\(gaps)")
        #expect(terminal.restored == 1)
    }

    /// Keys change what is drawn: the sort, then a filter; a signal ends it.
    @Test func keysSortAndFilterAndASignalEnds() {
        let clock = FakeClock()
        let feed = ScriptedFeed([.success(Self.frame())], clock: clock)
        let terminal = ScriptedTerminal(clock: clock, script: [
            (until: { $0[0].contains("sort: footprint") }, then: .key("s")),
            (until: { $0[0].contains("sort: growth") }, then: .key("/")),
            (until: { $0.last == "/" }, then: .key("k")),
            (until: { $0.last == "/k" }, then: .key("m")),
            (until: { $0.last == "/km" }, then: .key("\r")),
            (until: { $0[0].contains("filter: /km") }, then: .interrupt),  // the header is cut at 80 columns
        ])
        var session = TopSession(feed: feed, terminal: terminal, clock: clock, options: .init())
        #expect(session.run() == nil)
        #expect(terminal.scriptLeft == 0)
        let last = terminal.screens.last ?? []
        #expect(last[0].contains("1 of 3 caches") && last[0].contains("sort: growth"), "\(last)")
        #expect(Self.rows(last).map { String($0.prefix { $0 != " " }) } == ["kmalloc-32"])
        #expect(terminal.restored == 1)
    }

    /// `--once`: two frames one delay apart on the clock, as text without escape codes.
    @Test func onceTakesTwoFramesOneDelayApart() throws {
        let clock = FakeClock()
        let feed = ScriptedFeed([.success(Self.frame())], clock: clock)
        var options = TopView.Options()
        options.intervalSeconds = 0.5
        options.color = true
        let text = try TopOnce.render(feed: feed, clock: clock, options: options)
        #expect(feed.askedAt == [1000, 1000.5])
        #expect(text.hasPrefix("slabwatch top: 3 of 3 caches, every 500 ms") && !text.contains("\u{1b}"), "\(text)")
        #expect(throws: TopFailure.self) { try TopOnce.render(feed: ScriptedFeed([.failure(TopFailure("x"))], clock: clock), clock: clock, options: options) }
    }
}
