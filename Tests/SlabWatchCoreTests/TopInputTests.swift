import Testing
@testable import SlabWatchCore

/// The interactive top's keys, as bytes typed in a row.
struct TopInputTests {
    /// Types `keys` from the default options; returns the options, the
    /// prompt left open (if any) and whether a key asked to quit.
    static func type(_ keys: String, filter: String = "") -> (TopView.Options, String?, Bool) {
        var input = TopInput()
        var options = TopView.Options()
        options.filterText = filter
        for byte in keys.utf8 where input.handle(byte, &options) { return (options, input.prompt, true) }
        return (options, input.prompt, false)
    }

    @Test(arguments: [
        ("", TopView.SortKey.footprint), ("s", .growth), ("ss", .objects), ("sssss", .footprint), ("x s", .growth),
    ])
    func sNextSortKey(keys: String, sort: TopView.SortKey) {
        let (options, prompt, quit) = Self.type(keys)
        #expect(options.sort == sort && prompt == nil && !quit)
    }

    /// `/` opens the prompt; Enter (CR in raw mode, LF from a pipe) applies
    /// it, Esc cancels it, Backspace (DEL or ^H) deletes; keys inside the
    /// prompt are text, `q` and `s` included.
    @Test(arguments: [
        ("/kmalloc\r", "kmalloc", nil as String?),
        ("/kmalloc\n", "kmalloc", nil),
        ("/kmx\u{7f}alloc\r", "kmalloc", nil),
        ("/kmx\u{8}alloc\r", "kmalloc", nil),
        ("/qs", "", "qs"),
        ("/cache\u{1b}", "", nil),
        ("/\u{7f}\u{7f}x", "", "x"),
        ("/tab\u{9}\u{1}\r", "tab", nil),  // controls are not typed
    ])
    func slashTypesAFilter(keys: String, filter: String, prompt: String?) {
        let (options, open, quit) = Self.type(keys)
        #expect(options.filterText == filter && open == prompt && !quit, "\(keys.debugDescription)")
    }

    @Test func anEmptyFilterClearsAndEscKeepsTheOldOne() {
        #expect(Self.type("/\r", filter: "dentry").0.filterText == "")
        #expect(Self.type("/kmalloc\u{1b}", filter: "dentry").0.filterText == "dentry")
    }

    @Test func qQuitsOnlyOutsideThePrompt() {
        #expect(Self.type("q").2)
        #expect(Self.type("sq").2 && Self.type("sq").0.sort == .growth)
        #expect(!Self.type("/q").2)
        #expect(Self.type("/q\rq").2 && Self.type("/q\rq").0.filterText == "q")
    }

    /// The last line: the prompt while it is open, else the problem, else the keys.
    @Test func theStatusLine() {
        var input = TopInput()
        var options = TopView.Options()
        #expect(input.statusLine(problem: nil, width: 80) == "s: sort  /: filter  q: quit")
        #expect(input.statusLine(problem: "gone\u{1b}[2J", width: 80) == "! gone?[2J")
        #expect(input.statusLine(problem: "a long reason", width: 8) == "! a long")
        for byte in "/km".utf8 { _ = input.handle(byte, &options) }
        #expect(input.statusLine(problem: "gone", width: 80) == "/km")
    }
}
