import Glibc
public import SlabWatchCore

/// The interactive `slabwatch top`: frames fetched in the background every
/// delay, drawn at the terminal's size, keys applied (`TopInput`), until `q`
/// or a signal. A failed refresh keeps the last frame and says why on the
/// last line; a first frame that never comes ends the session. The terminal
/// is restored on every way out.
public struct TopSession: Sendable {
    private let feed: any TopFeed
    private let terminal: any TopTerminal
    private let clock: any TopClock
    private var options: TopView.Options

    public init(feed: any TopFeed, terminal: any TopTerminal, clock: any TopClock, options: TopView.Options) {
        self.feed = feed
        self.terminal = terminal
        self.clock = clock
        self.options = options
    }

    /// Runs until `q` or the terminal is interrupted.
    /// - Returns: nil, or why not even a first frame could be had (exit 1).
    public mutating func run() -> TopFailure? {
        defer { terminal.restore() }
        var input = TopInput()
        var problem: String?  // why the last refresh failed
        var frame: TopFrame?  // nil until the first one arrives
        let fetcher = FrameFetcher(feed: feed, terminal: terminal)
        fetcher.start()
        var nextSample = Double.infinity  // set when a fetch ends
        while !terminal.interrupted {
            if let result = fetcher.take() {
                switch result {
                case .success(let fresh): frame = fresh; problem = nil
                case .failure(let failure):
                    guard frame != nil else { return failure }  // nothing to show: the source cannot be read
                    problem = failure.description
                }
                nextSample = clock.seconds + options.intervalSeconds
            }
            if !fetcher.busy, clock.seconds >= nextSample {
                fetcher.start()
                nextSample = .infinity
            }
            terminal.draw(screen(frame, input: input, problem: problem))
            // Until a key, a signal, the fetch's end or the next sample, whichever is first
            // (no wait when a fetch ended since `take`: its frame is drawn next).
            let timeout = fetcher.busy ? nil : nextSample.isFinite ? max(0, nextSample - clock.seconds) : 0
            guard let key = terminal.readKey(timeoutSeconds: timeout) else { continue }
            if input.handle(key, &options) { break }
        }
        return nil  // a fetch still under way is left to finish on its own
    }

    /// The frame (or a line saying it is awaited) at the terminal's size, and the status line.
    private mutating func screen(_ frame: TopFrame?, input: TopInput, problem: String?) -> [String] {
        let (columns, rows) = terminal.size()
        options.width = columns
        options.height = rows - 1
        let waiting = "slabwatch top\(options.source.map { " from \(TerminalText.printable($0))" } ?? ""): waiting for the first sample"
        var lines = frame.map { TopView.render(sample: $0.sample, history: $0.history, report: $0.report, options: options) }
            ?? [TopView.fit(waiting, columns)]
        lines.append(input.statusLine(problem: problem, width: columns))
        return lines
    }
}

/// Where the interactive top draws and reads keys.
public protocol TopTerminal: AnyObject, Sendable {
    /// Columns and rows now (asked every frame: it follows resizes).
    func size() -> (columns: Int, rows: Int)
    /// Replaces the screen with `lines`.
    func draw(_ lines: [String])
    /// One byte typed within `timeoutSeconds` (nil: no limit), or nil when
    /// the time is up or `wake` was called.
    func readKey(timeoutSeconds: Double?) -> UInt8?
    /// Ends a `readKey` under way, or the next one. Any thread may call it.
    func wake()
    /// A signal asked top to end (Ctrl-C, SIGTERM, a hang-up).
    var interrupted: Bool { get }
    /// Puts the terminal back as it was before top.
    func restore()
}

/// Top's time: monotonic seconds, and sleeping (`--once`).
public protocol TopClock: Sendable {
    var seconds: Double { get }
    func sleep(seconds: Double)
}

/// The machine's monotonic clock.
public struct SystemTopClock: TopClock {
    public init() {}

    public var seconds: Double { Double(Clock.monotonicNanoseconds()) / 1e9 }

    public func sleep(seconds: Double) {
        guard seconds > 0 else { return }
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}
