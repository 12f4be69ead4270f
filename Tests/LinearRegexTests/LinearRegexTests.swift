import Testing
@testable import LinearRegex

/// The cache filter's regular expressions: RE2 syntax, whole-name matches,
/// linear time.
struct LinearRegexTests {
    @Test(arguments: [
        ("kmalloc-.*", "kmalloc-32", true),
        ("kmalloc-.*", "dma-kmalloc-32", false),  // anchored at both ends
        ("kmalloc-[0-9]+", "kmalloc-4k", false),
        ("kmalloc-(\\d+|\\d+k)", "kmalloc-4k", true),
        ("(?:ext4|xfs)_inode(_cache)?", "xfs_inode", true),
        ("(?P<fs>ext4)_inode_cache", "ext4_inode_cache", true),
        ("dentry|inode_cache", "inode_cache", true),
        ("a{2,3}", "aaaa", false),
        ("a{2,3}", "aaa", true),
        ("a{2}", "aa", true),
        ("a{2,}", "aaaaaaa", true),
        ("x{,2}", "x{,2}", true),  // not a count: literal braces, as in RE2
        ("[^-]+", "kmalloc-32", false),
        ("[a-z_]+", "shmem_inode_cache", true),
        ("[\\w-]+", "kmalloc-rcl-64", true),
        ("\\S+", "two words", false),
        ("^dentry$", "dentry", true),
        ("(?i)DENTRY", "dentry", true),
        ("DENTRY", "dentry", false),
        ("a.c", "a\nc", false),
        ("", "", true),
        ("(a*)*b", "aaaab", true),
        ("(a+)+$", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!", false),  // exponential for a backtracker
        ("(a|aa)*c", String(repeating: "a", count: 5000), false),
        ("TCPv6|UDPv6", "UDPv6", true),
        ("L2TP/IPv6", "L2TP/IPv6", true),
        ("kmalloc-\\.\\*", "kmalloc-.*", true),
        ("ab??c", "ac", true),
        // Code points, as RE2 writes them: two hex digits, or any number in braces up to 10FFFF.
        ("\\x41", "A", true),
        ("\\x61", "A", false),
        ("(?i)\\x61", "A", true),
        ("\\x2e", ".", true),  // a literal, not "any character"
        ("\\x2e", "a", false),
        ("\\x{41}", "A", true),
        ("\\x{000041}", "A", true),
        ("\\x{e9}", "é", true),
        ("\\x{10FFFF}", "\u{10FFFF}", true),
        ("\\x{1F600}+", "\u{1F600}\u{1F600}", true),
        ("kmalloc-\\x{33}\\x32", "kmalloc-32", true),
        ("[\\x30-\\x{39}]+", "2024", true),
        ("[\\x30-\\x{39}]+", "20a4", false),
        ("\\x410", "A0", true),  // two digits, then a literal 0
    ] as [(String, String, Bool)])
    func matchesTheWholeName(_ pattern: String, _ name: String, _ expected: Bool) throws {
        let regex = try LinearRegex(pattern)
        #expect(regex.wholeMatch(name) == expected, "\(pattern) ~ \(name)")
    }

    @Test(arguments: [
        ("kmalloc-[", "missing ']'"),
        ("(a", "missing ')'"),
        ("a)", "unmatched ')'"),
        ("*a", "nothing to repeat"),
        ("(a)\\1", "backreferences are not supported"),
        ("foo(?=bar)", "lookaround is not supported"),
        ("(?<!x)y", "lookaround is not supported"),
        ("a{1001}", "repeat count above 1000"),
        ("a{3,2}", "backwards"),
        ("((a{1000}){1000}){1000}", "pattern too large"),
        ("[z-a]", "backwards"),
        ("\\q", "unknown escape"),
        ("a\\", "trailing backslash"),
        (String(repeating: "(", count: 300) + String(repeating: ")", count: 300), "nested deeper"),
        ("\\x{110000}", "invalid escape '\\x{110000'"),  // above Unicode's last code point
        ("\\x{FFFFFFFFF}", "invalid escape '\\x{FFFFFF'"),  // refused at the first digit too many, before it overflows
        ("\\x{}", "invalid escape '\\x{}'"),
        ("\\x{41", "invalid escape '\\x{41'"),
        ("\\x{4G}", "invalid escape '\\x{4G'"),
        ("\\x{ 41}", "invalid escape '\\x{ '"),
        ("\\x4", "invalid escape '\\x4'"),
        ("\\xG1", "invalid escape '\\xG'"),
        ("a\\x", "invalid escape '\\x'"),
        ("[\\x{110000}]", "invalid escape"),
        ("[a-\\x{110000}]", "invalid escape"),
    ] as [(String, String)])
    func refusesWithAClearReason(_ pattern: String, _ reason: String) {
        #expect {
            try LinearRegex(pattern)
        } throws: { error in
            (error as? LinearRegex.SyntaxError)?.message.contains(reason) == true
        }
    }

    /// The same answers as Swift's own (backtracking) Regex on patterns both
    /// understand, over real cache names.
    @Test(arguments: ["kmalloc-.*", ".*inode.*", "(kmalloc|dma-kmalloc)-(rcl-|cg-)?[0-9]+k?", "[a-z]+_cache",
                      "ext4_.*|xfs_.*|btrfs_.*", "(.)*_(.)*", "[^_]*", "\\w+-\\d+", "a|b|kmem_cache(_node)?",
                      "\\x6bmalloc-\\x{33}\\x{32}", "[\\x41-\\x{5A}\\x{3a}]+\\x{30}*\\d+"])
    func agreesWithSwiftRegex(_ pattern: String) throws {
        let names = ["kmalloc-32", "kmalloc-rcl-64", "kmalloc-cg-8k", "dma-kmalloc-512", "ext4_inode_cache",
                     "xfs_ili", "shmem_inode_cache", "dentry", "kmem_cache", "kmem_cache_node", "TCPv6", "L2TP/IPv6",
                     ":0000024", "btrfs_inode", "names_cache", "a", ""]
        let ours = try LinearRegex(pattern)
        let reference = try Regex(pattern)
        for name in names {
            #expect(ours.wholeMatch(name) == (name.wholeMatch(of: reference) != nil), "\(pattern) ~ \(name)")
        }
    }
}
