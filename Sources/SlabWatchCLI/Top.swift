import Dispatch
import Glibc
import SlabWatch
import SlabWatchCore
import Synchronization

/// `slabwatch top`: slabtop with growth and findings, on this machine's kernel
/// through the daemon's own path (ProcReader → ring → detector), so a finding
/// appears here too once there are enough samples; or, with `--url`, a
/// running daemon's caches and findings (its hours of history).
///
/// Keys: `s` next sort, `/` filter (a regex; Enter applies, Esc cancels, an
/// empty one clears), `q` quits. The terminal is restored on `q`, SIGINT,
/// SIGTERM and SIGHUP. `--once` prints one screen without escape codes,
/// from two samples one delay apart.
enum Top {
    /// Set from signal handlers; read by the loop between frames.
    nonisolated(unsafe) static var stopSignal: sig_atomic_t = 0

    static func run(feed: TopFeed, options initial: TopView.Options, once: Bool) -> Never {
        var options = initial
        if once {
            options.color = false
            options.width = 1000  // whole names and findings: for scripts and bug reports
            // Two samples one delay apart, so the growth columns say something.
            do {
                _ = try feed.next()
                usleep(useconds_t(options.intervalSeconds * 1e6))
                let frame = try feed.next()
                print(TopView.render(sample: frame.sample, history: frame.history, report: frame.report, options: options).joined(separator: "\n"))
            } catch { SlabWatchCommand.fail(.runtimeFailure, error.description) }
            exit(0)
        }
        guard isatty(0) == 1, isatty(1) == 1 else {
            SlabWatchCommand.fail(.badConfiguration, "top needs a terminal; use --once for one screen as text")
        }
        options.color = getenv("NO_COLOR") == nil
        let terminal = RawTerminal()
        // Caught, and unblocked too: a mask inherited from whatever started
        // us (a test harness, a supervisor) would otherwise swallow Ctrl-C.
        var handled = sigset_t()
        sigemptyset(&handled)
        _ = Wakeup.pipeEnds
        for signalNumber in [SIGINT, SIGTERM, SIGHUP] {
            signal(signalNumber, { Top.stopSignal = $0; Wakeup.ring() })
            sigaddset(&handled, signalNumber)
        }
        pthread_sigmask(SIG_UNBLOCK, &handled, nil)
        var prompt: String?  // the filter being typed
        var problem: String?  // why the last refresh failed (the screen keeps the last good frame)
        var frame: TopFrame?  // nil until the first one arrives
        // Frames are taken on a thread of their own: keys and signals are
        // answered while a daemon is slow (its fetch has a deadline of its own).
        let fetcher = FrameFetcher(feed: feed)
        fetcher.start()
        var nextSample = Double.infinity  // set when a fetch ends
        while stopSignal == 0 {
            if let result = fetcher.take() {
                switch result {
                case .success(let fresh): frame = fresh; problem = nil
                case .failure(let failure):
                    guard frame != nil else {  // nothing to show: the daemon cannot be read
                        terminal.restore()
                        SlabWatchCommand.fail(.runtimeFailure, failure.description)
                    }
                    problem = failure.description
                }
                nextSample = monotonicSeconds() + options.intervalSeconds
            }
            if !fetcher.busy, monotonicSeconds() >= nextSample {
                fetcher.start()
                nextSample = .infinity
            }
            let (columns, rows) = terminal.size()
            options.width = columns
            options.height = rows - 1
            var lines = frame.map { TopView.render(sample: $0.sample, history: $0.history, report: $0.report, options: options) }
                ?? [TopView.fit("slabwatch top\(options.source.map { " from \(TerminalText.printable($0))" } ?? ""): waiting for the first sample", columns)]
            let hint = problem.map { TopView.fit("! \(TerminalText.printable($0))", columns) } ?? "s: sort  /: filter  q: quit"
            lines.append(prompt.map { "/\($0)" } ?? hint)
            terminal.draw(lines)
            // Until a key, a signal, the fetch's end or the next sample, whichever is first.
            let timeout = fetcher.busy ? nil : max(0, nextSample - monotonicSeconds())
            guard let key = terminal.readKey(timeoutSeconds: timeout) else { continue }
            if var typed = prompt {
                switch key {
                case 13, 10: options.filterText = typed; prompt = nil
                case 27: prompt = nil
                case 127, 8: typed = String(typed.dropLast()); prompt = typed
                case 32...126: typed.append(Character(Unicode.Scalar(key))); prompt = typed
                default: break
                }
            } else {
                switch key {
                case UInt8(ascii: "q"): stopSignal = SIGTERM
                case UInt8(ascii: "s"): options.sort = options.sort.next
                case UInt8(ascii: "/"): prompt = ""
                default: break
                }
            }
        }
        terminal.restore()
        exit(0)  // a fetch still under way ends with the process
    }
}

/// Takes frames from the feed on a thread of its own, one at a time; the
/// frame loop collects each when `Wakeup` rings.
final class FrameFetcher: Sendable {
    private struct State {
        var busy = false
        var finished: Result<TopFrame, TopFailure>?
    }

    private let feed: TopFeed
    private let state = Mutex(State())

    init(feed: TopFeed) { self.feed = feed }

    /// A fetch is under way.
    var busy: Bool { state.withLock { $0.busy } }

    /// Starts the next fetch (the caller starts one only when none is busy).
    func start() {
        state.withLock { $0.busy = true }
        DispatchQueue.global().async { [self] in
            let result = Result { () throws(TopFailure) in try feed.next() }
            state.withLock { $0 = State(busy: false, finished: result) }
            Wakeup.ring()
        }
    }

    /// The last fetch's outcome, once.
    func take() -> Result<TopFrame, TopFailure>? {
        state.withLock { current in
            defer { current.finished = nil }
            return current.finished
        }
    }
}

/// A pipe that wakes the frame loop's poll: written by the signal handlers
/// (whichever thread the kernel picks to run them) and by a fetch that ended.
enum Wakeup {
    /// Read end, write end; both non-blocking, so a handler never waits.
    /// Made before the handlers are installed: a lazy global's first use is
    /// not async-signal-safe.
    static let pipeEnds: (Int32, Int32) = {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { return (-1, -1) }
        for end in ends {
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
        }
        return (ends[0], ends[1])
    }()

    /// Async-signal-safe: one write(2).
    static func ring() {
        var byte: UInt8 = 1
        _ = write(pipeEnds.1, &byte, 1)
    }

    /// Empties the pipe once the loop is awake.
    static func drain() {
        var bytes = [UInt8](repeating: 0, count: 64)
        while read(pipeEnds.0, &bytes, bytes.count) > 0 {}
    }
}

/// What one screen is drawn from.
struct TopFrame: Sendable {
    var sample: Sample
    var history: History
    var report: GrowthDetector.Report
}

struct TopFailure: Error, CustomStringConvertible, Sendable {
    var description: String
}

/// Where the frames come from: this kernel, or a running daemon.
enum TopFeed: Sendable {
    case local(Sampler)
    case remote(RemoteTop)

    func next() throws(TopFailure) -> TopFrame {
        switch self {
        case .local(let sampler):
            let state = sampler.sampleOnce()
            return TopFrame(sample: state.sample, history: sampler.history.read() ?? .empty, report: state.report)
        case .remote(let remote):
            do { return try remote.next() } catch { throw TopFailure(description: error.description) }
        }
    }
}

/// A daemon's `/snapshot`, polled: its findings as it reports them (from
/// its whole history), and the growth columns from the snapshots this top
/// has seen, kept in a ring of its own. Used by one fetch at a time
/// (`FrameFetcher` starts the next only after the last one ended).
final class RemoteTop: @unchecked Sendable {  // `ring`: one fetch at a time, FrameFetcher starts the next after the last ended
    private let client: SnapshotClient
    private var ring = SampleRing()

    init(client: SnapshotClient) { self.client = client }

    func next() throws(SnapshotClient.Failure) -> TopFrame {
        let snapshot = try client.fetch()
        // Two polls within one of the daemon's ticks see the same sample.
        let newest = ring.fine.count > 0 ? ring.fine.time(at: ring.fine.count - 1) : Int64.min
        if snapshot.sample.timestampMilliseconds > newest { ring.append(snapshot.sample) }
        return TopFrame(sample: snapshot.sample, history: History(ring), report: GrowthDetector.Report(findings: snapshot.findings))
    }
}

/// Monotonic seconds, for the frame loop.
private func monotonicSeconds() -> Double { Double(Clock.monotonicNanoseconds()) / 1e9 }

/// The terminal in non-canonical, no-echo mode on the alternate screen, and back.
final class RawTerminal {
    private var saved = termios()

    init() {
        tcgetattr(0, &saved)
        var raw = saved
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO)
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 0
            cc[Int(VTIME)] = 0
        }
        tcsetattr(0, TCSANOW, &raw)
        emit("\u{1b}[?1049h\u{1b}[?25l")  // alternate screen, cursor hidden
    }

    func restore() {
        emit("\u{1b}[0m\u{1b}[?25h\u{1b}[?1049l")
        tcsetattr(0, TCSANOW, &saved)
    }

    /// Columns and rows now (it follows resizes: asked every frame).
    func size() -> (Int, Int) {
        var size = winsize()
        guard ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0, size.ws_row > 0 else { return (80, 24) }
        return (Int(size.ws_col), Int(size.ws_row))
    }

    func draw(_ lines: [String]) {
        // Home, then each line cleared to its end; the rest of the screen cleared.
        emit("\u{1b}[H" + lines.map { $0 + "\u{1b}[K" }.joined(separator: "\r\n") + "\u{1b}[J")
    }

    /// One byte typed within `timeoutSeconds` (nil: no limit), or nil when
    /// the time is up or `Wakeup` rang (a signal, a finished fetch).
    func readKey(timeoutSeconds: Double?) -> UInt8? {
        var descriptors = [pollfd(fd: 0, events: Int16(POLLIN), revents: 0),
                           pollfd(fd: Wakeup.pipeEnds.0, events: Int16(POLLIN), revents: 0)]
        let milliseconds = timeoutSeconds.map { Int32(min($0 * 1000, Double(Int32.max))) } ?? -1
        guard poll(&descriptors, 2, milliseconds) > 0 else { return nil }
        if descriptors[1].revents != 0 { Wakeup.drain() }
        guard descriptors[0].revents & Int16(POLLIN) != 0 else { return nil }
        var byte: UInt8 = 0
        return read(0, &byte, 1) == 1 ? byte : nil
    }

    private func emit(_ text: String) {
        var text = text
        text.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = write(1, buffer.baseAddress! + offset, buffer.count - offset)
                if n <= 0 { if errno == EINTR { continue } else { return } }
                offset += n
            }
        }
    }
}
