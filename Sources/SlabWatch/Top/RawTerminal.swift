import Glibc

/// This process's terminal in non-canonical, no-echo mode on the alternate
/// screen, and back. Made once, by the interactive top: it also catches
/// SIGINT, SIGTERM and SIGHUP, so that each ends top with the terminal
/// restored rather than left raw.
public final class RawTerminal: TopTerminal {
    private let saved: termios

    /// Set from signal handlers; read by the frame loop.
    nonisolated(unsafe) private static var stopSignal: sig_atomic_t = 0

    public init() {
        var saved = termios()
        tcgetattr(0, &saved)
        self.saved = saved
        var raw = saved
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO)
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 0
            cc[Int(VTIME)] = 0
        }
        tcsetattr(0, TCSANOW, &raw)
        Self.emit("\u{1b}[?1049h\u{1b}[?25l")  // alternate screen, cursor hidden
        Self.catchSignals()
    }

    /// Whether stdin and stdout are both a terminal (else top needs `--once`).
    public static var available: Bool { isatty(0) == 1 && isatty(1) == 1 }

    private static func catchSignals() {
        // Caught, and unblocked too: a mask inherited from whatever started
        // us (a test harness, a supervisor) would otherwise swallow Ctrl-C.
        var handled = sigset_t()
        sigemptyset(&handled)
        _ = Wakeup.pipeEnds
        for signalNumber in [SIGINT, SIGTERM, SIGHUP] {
            signal(signalNumber, { RawTerminal.stopSignal = $0; Wakeup.ring() })
            sigaddset(&handled, signalNumber)
        }
        pthread_sigmask(SIG_UNBLOCK, &handled, nil)
    }

    public var interrupted: Bool { Self.stopSignal != 0 }

    public func restore() {
        Self.emit("\u{1b}[0m\u{1b}[?25h\u{1b}[?1049l")
        var saved = saved
        tcsetattr(0, TCSANOW, &saved)
    }

    public func size() -> (columns: Int, rows: Int) {
        var size = winsize()
        guard ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0, size.ws_row > 0 else { return (80, 24) }
        return (Int(size.ws_col), Int(size.ws_row))
    }

    public func draw(_ lines: [String]) {
        // Home, then each line cleared to its end; the rest of the screen cleared.
        Self.emit("\u{1b}[H" + lines.map { $0 + "\u{1b}[K" }.joined(separator: "\r\n") + "\u{1b}[J")
    }

    public func wake() { Wakeup.ring() }

    public func readKey(timeoutSeconds: Double?) -> UInt8? {
        var descriptors = [pollfd(fd: 0, events: Int16(POLLIN), revents: 0),
                           pollfd(fd: Wakeup.pipeEnds.0, events: Int16(POLLIN), revents: 0)]
        let milliseconds = timeoutSeconds.map { Int32(min($0 * 1000, Double(Int32.max))) } ?? -1
        guard poll(&descriptors, 2, milliseconds) > 0 else { return nil }
        if descriptors[1].revents != 0 { Wakeup.drain() }
        guard descriptors[0].revents & Int16(POLLIN) != 0 else { return nil }
        var byte: UInt8 = 0
        return read(0, &byte, 1) == 1 ? byte : nil
    }

    private static func emit(_ text: String) {
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
