/// A regular expression that always matches in time linear in the input:
/// RE2 syntax (what Prometheus and node_exporter use) without the features
/// that need backtracking, compiled to a Thompson NFA and run as a Pike VM.
///
/// Matching is of the **whole** string (Prometheus's anchoring). Supported:
/// literals, `.`, `[...]` classes with ranges and negation, `\d \D \w \W \s \S`,
/// escaped punctuation, `\n \t \r`, code points `\xHH` and `\x{H…}` (up to
/// `\x{10FFFF}`), groups `(...)`, `(?:...)`, `(?P<name>...)`,
/// alternation `|`, quantifiers `* + ? {n} {n,} {n,m}` (lazy `?` suffixes are
/// accepted; they change nothing for a yes/no match), `^` and `$`, and the
/// `(?i)` flag. Backreferences and lookaround are refused with a clear error:
/// they are what makes a pattern like `(a+)+$` take exponential time elsewhere.
///
/// Thread-safe once made (immutable).
public struct LinearRegex: Sendable {
    public struct SyntaxError: Error, Equatable, CustomStringConvertible {
        public var pattern: String
        public var message: String
        public var description: String { "invalid regular expression '\(pattern)': \(message)" }
    }

    /// Counted repetition is expanded; RE2 caps a count at 1000 too.
    static let maximumRepeat = 1000
    /// Instructions a compiled pattern may have (bounds the cost per character).
    static let maximumProgram = 20_000

    public let pattern: String
    private let program: [Instruction]

    /// - Throws: `SyntaxError` naming what is wrong.
    public init(_ pattern: String) throws(SyntaxError) {
        self.pattern = pattern
        var parser = Parser(pattern: pattern, scalars: Array(pattern.unicodeScalars))
        let tree: Node
        do { tree = try parser.parseWhole() } catch { throw SyntaxError(pattern: pattern, message: error.message) }
        var compiler = Compiler()
        do { try compiler.emit(tree) } catch { throw SyntaxError(pattern: pattern, message: error.message) }
        compiler.program.append(.match)
        program = compiler.program
    }

    /// Whether the whole of `text` matches.
    public func wholeMatch(_ text: String) -> Bool {
        var current = ThreadList(size: program.count)
        var next = ThreadList(size: program.count)
        let scalars = Array(text.unicodeScalars)
        current.add(0, at: 0, length: scalars.count, program: program)
        for (position, scalar) in scalars.enumerated() {
            next.clear()
            for pc in current.threads {
                if case .character(let matcher) = program[pc], matcher.matches(scalar) {
                    next.add(pc + 1, at: position + 1, length: scalars.count, program: program)
                }
            }
            if next.threads.isEmpty { return false }
            swap(&current, &next)
        }
        return current.threads.contains { if case .match = program[$0] { true } else { false } }
    }

    // MARK: program

    enum Instruction: Sendable {
        case character(Matcher)
        case split(Int, Int)
        case jump(Int)
        case assertStart
        case assertEnd
        case match
    }

    struct Matcher: Sendable {
        var ranges: [ClosedRange<UInt32>]
        var negated: Bool
        var caseInsensitive: Bool

        func matches(_ scalar: Unicode.Scalar) -> Bool {
            var hit = contains(scalar.value)
            if !hit && caseInsensitive, let other = Self.otherCase(scalar.value) { hit = contains(other) }
            return hit != negated
        }

        private func contains(_ value: UInt32) -> Bool { ranges.contains { $0.contains(value) } }

        /// ASCII only: kernel cache names are ASCII.
        static func otherCase(_ value: UInt32) -> UInt32? {
            switch value {
            case 0x41...0x5A: value + 0x20
            case 0x61...0x7A: value - 0x20
            default: nil
            }
        }
    }

    /// The Pike VM's thread set: one entry per instruction at most (that is
    /// what keeps matching linear), added with the epsilon closure.
    struct ThreadList {
        private(set) var threads: [Int] = []
        /// `visited[pc] == generation` when pc was reached in this step (jumps and splits included).
        private var visited: [Int]
        private var generation = 1
        private var stack: [Int] = []

        init(size: Int) {
            visited = Array(repeating: 0, count: size)
            threads.reserveCapacity(size)
        }

        mutating func clear() {
            generation += 1
            threads.removeAll(keepingCapacity: true)
        }

        mutating func add(_ start: Int, at position: Int, length: Int, program: [Instruction]) {
            stack.append(start)
            while let pc = stack.popLast() {
                guard visited[pc] != generation else { continue }
                visited[pc] = generation
                switch program[pc] {
                case .jump(let target): stack.append(target)
                case .split(let a, let b): stack.append(b); stack.append(a)
                case .assertStart: if position == 0 { stack.append(pc + 1) }
                case .assertEnd: if position == length { stack.append(pc + 1) }
                case .character, .match: threads.append(pc)
                }
            }
        }
    }

    // MARK: syntax tree

    indirect enum Node {
        case empty
        case character(Matcher)
        case start, end
        case concatenation([Node])
        case alternation([Node])
        case repetition(Node, minimum: Int, maximum: Int?)
    }

    struct Failure: Error { var message: String }

    struct Parser {
        let pattern: String
        let scalars: [Unicode.Scalar]
        var index = 0
        var caseInsensitive = false
        /// Groups open around the current position; bounded so parsing cannot exhaust the stack.
        var depth = 0
        static let maximumDepth = 200

        init(pattern: String, scalars: [Unicode.Scalar]) {
            self.pattern = pattern
            self.scalars = scalars
        }

        mutating func parseWhole() throws(Failure) -> Node {
            let node = try parseAlternation()
            if index < scalars.count { throw Failure(message: "unmatched ')' at offset \(index)") }
            return node
        }

        private var peek: Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }

        private mutating func take() -> Unicode.Scalar? {
            defer { index += 1 }
            return peek
        }

        private mutating func parseAlternation() throws(Failure) -> Node {
            let flags = caseInsensitive
            defer { caseInsensitive = flags }  // (?i) lasts to the end of its group
            var branches = [try parseConcatenation()]
            while peek == "|" {
                index += 1
                branches.append(try parseConcatenation())
            }
            return branches.count == 1 ? branches[0] : .alternation(branches)
        }

        private mutating func parseConcatenation() throws(Failure) -> Node {
            var items: [Node] = []
            while let c = peek, c != "|", c != ")" {
                var atom = try parseAtom()
                atom = try parseQuantifiers(atom)
                items.append(atom)
            }
            return items.count == 1 ? items[0] : .concatenation(items)
        }

        private mutating func parseQuantifiers(_ atom: Node) throws(Failure) -> Node {
            var node = atom
            while let c = peek {
                let bounds: (Int, Int?)
                switch c {
                case "*": index += 1; bounds = (0, nil)
                case "+": index += 1; bounds = (1, nil)
                case "?": index += 1; bounds = (0, 1)
                case "{":
                    guard let counted = try parseCount() else { return node }  // a literal '{'
                    bounds = counted
                default: return node
                }
                if case .empty = node { throw Failure(message: "nothing to repeat at offset \(index - 1)") }
                if case .start = node { throw Failure(message: "nothing to repeat at offset \(index - 1)") }
                if peek == "?" { index += 1 }  // lazy: the same answer for a whole match
                if peek == "+" { throw Failure(message: "possessive quantifiers are not supported") }
                node = .repetition(node, minimum: bounds.0, maximum: bounds.1)
            }
            return node
        }

        /// `{n}`, `{n,}`, `{n,m}`; nil (and nothing consumed) when the brace is a literal.
        private mutating func parseCount() throws(Failure) -> (Int, Int?)? {
            let start = index
            index += 1
            func number(_ p: inout Parser) -> Int? {
                var digits = 0, value = 0
                while let c = p.peek, ("0"..."9").contains(c) {
                    value = min(value * 10 + Int(c.value - 0x30), 1_000_000)
                    digits += 1
                    p.index += 1
                }
                return digits > 0 ? value : nil
            }
            guard let minimum = number(&self) else { index = start; return nil }
            var maximum: Int? = minimum
            if peek == "," {
                index += 1
                maximum = number(&self)
            }
            guard peek == "}" else { index = start; return nil }
            index += 1
            if minimum > LinearRegex.maximumRepeat || (maximum ?? 0) > LinearRegex.maximumRepeat {
                throw Failure(message: "repeat count above \(LinearRegex.maximumRepeat)")
            }
            if let maximum, maximum < minimum { throw Failure(message: "repeat range {\(minimum),\(maximum)} is backwards") }
            return (minimum, maximum)
        }

        private mutating func parseAtom() throws(Failure) -> Node {
            guard let c = take() else { throw Failure(message: "unexpected end") }
            switch c {
            case "(": return try parseGroup()
            case "[": return .character(try parseClass())
            case ".": return .character(Matcher(ranges: [0x0A...0x0A], negated: true, caseInsensitive: false))
            case "^": return .start
            case "$": return .end
            case "\\": return .character(try parseEscape(inClass: false))
            case "*", "+", "?": throw Failure(message: "nothing to repeat at offset \(index - 1)")
            default: return .character(literal(c.value))
            }
        }

        private func literal(_ value: UInt32) -> Matcher {
            Matcher(ranges: [value...value], negated: false, caseInsensitive: caseInsensitive)
        }

        private mutating func parseGroup() throws(Failure) -> Node {
            depth += 1
            defer { depth -= 1 }
            guard depth <= Self.maximumDepth else { throw Failure(message: "groups nested deeper than \(Self.maximumDepth)") }
            if peek == "?" {
                index += 1
                switch take() {
                case ":": break
                case "P" where peek == "<", "<" where peek != "=" && peek != "!":
                    if scalars[index - 1] == "P" { index += 1 }
                    while let c = take(), c != ">" { if c == ")" { throw Failure(message: "unterminated group name") } }
                case "i":
                    guard take() == ")" else { throw Failure(message: "only the (?i) flag is supported") }
                    caseInsensitive = true
                    return .empty
                case "=", "!", "<":
                    throw Failure(message: "lookaround is not supported (RE2 syntax: it needs backtracking)")
                default:
                    throw Failure(message: "unknown group flag at offset \(index - 1)")
                }
            }
            let inner = try parseAlternation()
            guard take() == ")" else { throw Failure(message: "missing ')'") }
            return inner
        }

        private mutating func parseClass() throws(Failure) -> Matcher {
            var negated = false
            if peek == "^" { negated = true; index += 1 }
            var ranges: [ClosedRange<UInt32>] = []
            var first = true
            while true {
                guard let c = take() else { throw Failure(message: "missing ']'") }
                if c == "]" && !first { break }
                first = false
                var low: UInt32
                if c == "\\" {
                    let escaped = try parseEscape(inClass: true)
                    guard escaped.ranges.count == 1, !escaped.negated, escaped.ranges[0].count == 1 else {
                        if escaped.negated { throw Failure(message: "negated classes like \\D inside [...] are not supported") }
                        ranges += escaped.ranges
                        continue
                    }
                    low = escaped.ranges[0].lowerBound
                } else {
                    low = c.value
                }
                if peek == "-", index + 1 < scalars.count, scalars[index + 1] != "]" {
                    index += 1
                    guard var high = take()?.value else { throw Failure(message: "missing ']'") }
                    if high == 0x5C { high = try parseEscape(inClass: true).ranges[0].lowerBound }
                    guard high >= low else { throw Failure(message: "class range is backwards") }
                    ranges.append(low...high)
                } else {
                    ranges.append(low...low)
                }
            }
            return Matcher(ranges: ranges, negated: negated, caseInsensitive: caseInsensitive)
        }

        private mutating func parseEscape(inClass: Bool) throws(Failure) -> Matcher {
            guard let c = take() else { throw Failure(message: "trailing backslash") }
            let digits: [ClosedRange<UInt32>] = [0x30...0x39]
            let word: [ClosedRange<UInt32>] = [0x30...0x39, 0x41...0x5A, 0x5F...0x5F, 0x61...0x7A]
            let space: [ClosedRange<UInt32>] = [0x09...0x0A, 0x0C...0x0D, 0x20...0x20]
            switch c {
            case "d": return Matcher(ranges: digits, negated: false, caseInsensitive: false)
            case "D": return Matcher(ranges: digits, negated: true, caseInsensitive: false)
            case "w": return Matcher(ranges: word, negated: false, caseInsensitive: false)
            case "W": return Matcher(ranges: word, negated: true, caseInsensitive: false)
            case "s": return Matcher(ranges: space, negated: false, caseInsensitive: false)
            case "S": return Matcher(ranges: space, negated: true, caseInsensitive: false)
            case "n": return literal(0x0A)
            case "t": return literal(0x09)
            case "r": return literal(0x0D)
            case "x": return literal(try parseCodePoint())
            case "1"..."9":
                throw Failure(message: "backreferences are not supported (RE2 syntax: they need backtracking)")
            default:
                guard c.value < 0x80, !c.properties.isAlphabetic, !("0"..."9").contains(c) else {
                    throw Failure(message: "unknown escape '\\\(c)'")
                }
                return literal(c.value)
            }
        }

        /// After `\x`: two hex digits, or one or more in braces up to 10FFFF, as
        /// RE2 reads them; anything else (`\x4`, `\x{}`, `\x{110000}`, an
        /// unclosed brace) is refused, naming the escape.
        private mutating func parseCodePoint() throws(Failure) -> UInt32 {
            let start = index - 2  // at the backslash
            func invalid(_ p: Parser) -> Failure {
                let text = String(String.UnicodeScalarView(p.scalars[start..<min(p.index, p.scalars.count)]))
                return Failure(message: "invalid escape '\(text)': expected \\xHH or \\x{H…} up to 10FFFF")
            }
            guard peek == "{" else {
                guard let high = take().flatMap(Self.hexValue), let low = take().flatMap(Self.hexValue) else { throw invalid(self) }
                return high << 4 | low
            }
            index += 1
            var value: UInt32 = 0
            var digits = 0
            while let digit = peek.flatMap(Self.hexValue) {
                index += 1
                digits += 1
                value = value << 4 | digit
                guard value <= 0x10FFFF else { throw invalid(self) }
            }
            let closing = take()  // taken first, so the message shows the character that is wrong
            guard digits > 0, closing == "}" else { throw invalid(self) }
            return value
        }

        private static func hexValue(_ scalar: Unicode.Scalar) -> UInt32? {
            switch scalar {
            case "0"..."9": scalar.value - 0x30
            case "a"..."f": scalar.value - 0x61 + 10
            case "A"..."F": scalar.value - 0x41 + 10
            default: nil
            }
        }
    }

    struct Compiler {
        var program: [Instruction] = []

        mutating func emit(_ node: Node) throws(Failure) {
            guard program.count <= LinearRegex.maximumProgram else {
                throw Failure(message: "pattern too large (over \(LinearRegex.maximumProgram) steps once repeats are expanded)")
            }
            switch node {
            case .empty: break
            case .character(let matcher): program.append(.character(matcher))
            case .start: program.append(.assertStart)
            case .end: program.append(.assertEnd)
            case .concatenation(let items): for item in items { try emit(item) }
            case .alternation(let branches):
                var jumps: [Int] = []
                for (i, branch) in branches.enumerated() {
                    if i < branches.count - 1 {
                        let split = program.count
                        program.append(.split(split + 1, 0))
                        try emit(branch)
                        jumps.append(program.count)
                        program.append(.jump(0))
                        program[split] = .split(split + 1, program.count)
                    } else {
                        try emit(branch)
                    }
                }
                for jump in jumps { program[jump] = .jump(program.count) }
            case .repetition(let inner, let minimum, let maximum):
                for _ in 0..<minimum { try emit(inner) }
                if let maximum {
                    // Each optional copy may be skipped to the end.
                    var splits: [Int] = []
                    for _ in minimum..<maximum {
                        splits.append(program.count)
                        program.append(.split(program.count + 1, 0))
                        try emit(inner)
                    }
                    for split in splits { program[split] = .split(split + 1, program.count) }
                } else {
                    let loop = program.count
                    program.append(.split(loop + 1, 0))
                    try emit(inner)
                    program.append(.jump(loop))
                    program[loop] = .split(loop + 1, program.count)
                }
            }
        }
    }
}
