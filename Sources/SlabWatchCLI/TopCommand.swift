import Glibc
import Logging
import SlabWatch
import SlabWatchCore

/// `slabwatch top`: slabtop with growth and findings, on this machine's
/// kernel (`LocalFeed`), or with `--url` a running daemon's caches and
/// findings (its hours of history). Keys: `s` next sort, `/` filter, `q`
/// quits (`TopInput`); the terminal is restored on `q`, SIGINT, SIGTERM and
/// SIGHUP. `--once` prints one screen without escape codes (`TopOnce`).
struct TopCommand: Subcommand {
    static let url = TextOption(name: "url", valueName: "URL",
                                help: "show a running daemon (http://HOST:10077): its findings and caches, polled every delay")
    static let once = CommandSpec.Flag(
        "once", "print one screen as text and exit: two samples one delay apart, no escape codes; a growth column stays - until the delay covers half its window")
    static let spec = CommandSpec(
        name: "top", summary: "Show slab caches like slabtop, with growth per minute and the detector's findings (s: sort, /: filter, q: quit).",
        options: [TopView.Options.delay, TopView.Options.sort, url, ConfigurationSource.option], flags: [once],
        keySections: [.path, .sampler, .ring, .detector, .log])

    let feed: any TopFeed
    let options: TopView.Options
    let printsOnce: Bool

    init(_ line: ParsedCommand) throws(UsageError) {
        var configuration = try ConfigurationSource(line).loadForCommand()
        var options = TopView.Options()
        // top's own default, not the daemon's interval; a --sampler.interval flag counts as a --delay.
        if let seconds = try TopView.Options.delay.value(in: line) {
            configuration.sampler.intervalSeconds = seconds
        } else if !line.keyOverrides.contains(where: { $0.key == "sampler.interval" }) {
            configuration.sampler.intervalSeconds = options.intervalSeconds
        }
        options.intervalSeconds = configuration.sampler.intervalSeconds
        options.sort = try TopView.Options.sort.value(in: line) ?? options.sort
        if let url = Self.url.value(in: line) {
            do { feed = try RemoteFeed(url: url) } catch { throw UsageError(error.description) }
            options.source = url
        } else {
            do {
                feed = LocalFeed(try Sampler(settings: configuration.sampler, ring: configuration.ring, store: StateStore(), logger: makeLogger(.error)))
            } catch { throw UsageError("\(error)") }
        }
        printsOnce = Self.once.isSet(in: line)
        guard printsOnce || RawTerminal.available else { throw UsageError("top needs a terminal; use --once for one screen as text") }
        self.options = options
    }

    func run() -> Int32 {
        if printsOnce {
            do { print(try TopOnce.render(feed: feed, clock: SystemTopClock(), options: options)) } catch {
                return failed(.runtimeFailure, error.description)
            }
            return ExitStatus.success.rawValue
        }
        var options = options
        options.color = getenv("NO_COLOR") == nil
        var session = TopSession(feed: feed, terminal: RawTerminal(), clock: SystemTopClock(), options: options)
        if let failure = session.run() { return failed(.runtimeFailure, failure.description) }
        return ExitStatus.success.rawValue
    }
}
