import LinearRegex

/// libFuzzer entry point for `LinearRegex` alone (scripts/fuzz.sh runs it as
/// the `regex` target). The input is a pattern, a NUL byte and a text. Beyond
/// surviving any pattern and text, the engine must agree with itself: a
/// pattern that compiles answers the same inside a non-capturing group and
/// when it is the only alternative of an alternation, so a slip in the parser
/// or the compiler that changes what a pattern means is a finding, not only a
/// trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let parts = bytes.split(separator: 0, maxSplits: 1, omittingEmptySubsequences: false)
    let pattern = String(decoding: parts[0], as: UTF8.self)
    let text = String(decoding: parts.count > 1 ? parts[1] : [], as: UTF8.self)
    guard let regex = try? LinearRegex(pattern) else { return 0 }
    let matched = regex.wholeMatch(text)
    // Either rewrite may hit a bound the original did not (nesting depth,
    // program size); a refusal is fine, a different answer is not.
    for rewritten in ["(?:\(pattern))", "(?:\(pattern))|(?:\(pattern))"] {
        if let same = try? LinearRegex(rewritten), same.wholeMatch(text) != matched {
            fatalError("'\(pattern)' and '\(rewritten)' disagree on '\(text)'")
        }
    }
    return 0
}
