/// The keys of the interactive `slabwatch top`, as a state machine: `s`
/// the next sort key, `/` opens a prompt for a filter (a regex; Enter
/// applies it, an empty one clears it, Esc cancels, Backspace deletes),
/// `q` quits. Every other key is ignored. Pure: bytes in, options out.
public struct TopInput: Sendable, Equatable {
    /// The filter being typed after `/`; nil when no prompt is open.
    public private(set) var prompt: String?

    public init() {}

    /// Applies one byte typed at the terminal to `options`.
    /// - Returns: true when it asks to quit.
    public mutating func handle(_ key: UInt8, _ options: inout TopView.Options) -> Bool {
        guard var typed = prompt else {
            switch key {
            case UInt8(ascii: "q"): return true
            case UInt8(ascii: "s"): options.sort = options.sort.next
            case UInt8(ascii: "/"): prompt = ""
            default: break
            }
            return false
        }
        switch key {
        case 13, 10:  // Enter (CR in raw mode, LF from a pipe)
            options.filterText = typed
            prompt = nil
        case 27: prompt = nil  // Esc
        case 127, 8: typed = String(typed.dropLast()); prompt = typed  // Backspace (DEL, or ^H)
        case 32...126: typed.append(Character(Unicode.Scalar(key))); prompt = typed
        default: break
        }
        return false
    }

    /// The screen's last line: the prompt while one is open, else why the
    /// last refresh failed (the screen keeps the last good frame), else the keys.
    public func statusLine(problem: String?, width: Int) -> String {
        if let prompt { return TopView.fit("/" + prompt, width) }
        return problem.map { TopView.fit("! " + TerminalText.printable($0), width) } ?? TopView.fit("s: sort  /: filter  q: quit", width)
    }
}
