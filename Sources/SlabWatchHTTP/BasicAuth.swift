internal import CTLS
import Glibc
import Synchronization

/// HTTP basic authentication against bcrypt hashes, as exporter-toolkit's
/// `basic_auth_users` does, checked by libcrypt. Two promises:
///
/// - A wrong password costs the same whoever the user is: every refusal after
///   bcrypt has cost exactly one bcrypt at the highest cost among the
///   configured hashes (an unknown user is checked against a decoy of that
///   cost; a known user of lower cost is padded with checks at the costs in
///   between, 2^c + 2^c + 2^(c+1) + … + 2^(max−1) = 2^max), so timing tells
///   neither which names exist nor which cost a user's hash has.
/// - A scrape pays bcrypt once: credentials bcrypt accepted are remembered
///   (by SHA-256, never the password) in a bounded cache that only accepted
///   credentials enter, so wrong passwords, however many, evict nothing.
///
/// Thread-safe: `decide` is cheap and meant for the serving thread, `verify`
/// (the slow part) for another.
public final class BasicAuthenticator: Sendable {
    public enum Decision: Equatable, Sendable {
        case granted
        case refused
        /// Not seen before: someone must run bcrypt (slow) with `verify`.
        case needsCheck(Credentials)
    }

    public struct Credentials: Equatable, Sendable {
        let user: String
        let password: [UInt8]
        let hash: String
        let key: CacheKey
    }

    struct CacheKey: Hashable, Sendable {
        var digest: [UInt8]
    }

    /// Checks a password against a bcrypt hash (libcrypt's in the daemon; tests
    /// pass one that counts or holds the checks).
    typealias HashVerifier = @Sendable (_ password: [UInt8], _ hash: String) -> Bool

    private let users: [String: String]
    private let verified: VerifiedCredentials
    private let verifier: HashVerifier
    /// The highest cost among the users' hashes: what every refusal costs.
    let maximumCost: Int
    /// The salt and digest of a valid hash of a password nobody has; with any
    /// cost in front it makes a decoy bcrypt must run in full and never matches.
    private static let decoyTail = "NPt4cQSpUHwZTQ54vRy1xe9sp09H9ATn8YkOe8hfWQENb2w8ROyeS"

    /// - Parameter users: user name → bcrypt hash (`$2a$`, `$2b$` or `$2y$`).
    /// - Throws: `TLSError` when libcrypto or libcrypt cannot be loaded.
    public convenience init(users: [String: String]) throws(TLSError) {
        try self.init(users: users, verifier: Self.bcryptMatches)
    }

    init(users: [String: String], verifier: @escaping HashVerifier, cacheCapacity: Int = 256) throws(TLSError) {
        try TLSLibrary.load()
        self.users = users
        self.verifier = verifier
        verified = VerifiedCredentials(capacity: cacheCapacity)
        maximumCost = users.values.compactMap(Self.cost).max() ?? 10
    }

    /// True when `hash` has bcrypt's form, which libcrypt will accept.
    public static func isBcryptHash(_ hash: String) -> Bool {
        let bytes = Array(hash.utf8)
        guard bytes.count == 60, bytes[0] == UInt8(ascii: "$"), bytes[1] == UInt8(ascii: "2"),
              [UInt8(ascii: "a"), UInt8(ascii: "b"), UInt8(ascii: "y")].contains(bytes[2]),
              bytes[3] == UInt8(ascii: "$"), bytes[6] == UInt8(ascii: "$"),
              let cost = cost(of: hash), (4...31).contains(cost)
        else { return false }
        return bytes[7...].allSatisfy { isBcryptBase64($0) }
    }

    /// The cost (log2 of the rounds) of a `$2?$NN$…` hash.
    static func cost(of hash: String) -> Int? {
        let bytes = Array(hash.utf8)
        guard bytes.count > 6 else { return nil }
        return Int(String(decoding: bytes[4..<6], as: UTF8.self))
    }

    /// Decides from the `Authorization` header alone when it can.
    public func decide(authorization: String?) -> Decision {
        guard let authorization, let (user, password) = Self.parseBasic(authorization) else { return .refused }
        // crypt(3) reads a C string: it would check `secret\0anything` as `secret`.
        guard !password.contains(0) else { return .refused }
        let hash = users[user] ?? decoyHash(cost: maximumCost)
        let key = Self.cacheKey(user: user, password: password, hash: hash)
        if verified.contains(key) { return .granted }
        return .needsCheck(Credentials(user: user, password: password, hash: hash, key: key))
    }

    /// Runs bcrypt (tens of milliseconds at cost 10) and remembers a success.
    /// A failure returns only after one bcrypt's worth at `maximumCost`.
    public func verify(_ credentials: Credentials) -> Bool {
        let known = users[credentials.user] == credentials.hash
        if verifier(credentials.password, credentials.hash) && known {
            verified.insert(credentials.key, user: credentials.user, hash: credentials.hash)
            return true
        }
        padRefusal(after: Self.cost(of: credentials.hash) ?? maximumCost)
        return false
    }

    /// Keeps what `previous` verified for users whose hash is unchanged, so a
    /// reload does not make every scraper pay bcrypt again.
    public func adoptVerified(from previous: BasicAuthenticator) {
        guard previous !== self else { return }
        verified.adopt(previous.verified, keepingOnly: users)
    }

    /// Brings a refusal after a check at `cost` up to one at `maximumCost`:
    /// one check at each cost from `cost` to `maximumCost − 1` doubles the work
    /// done so far each time.
    private func padRefusal(after cost: Int) {
        guard cost < maximumCost else { return }
        for padding in cost..<maximumCost { _ = verifier(Self.decoyPassword, decoyHash(cost: padding)) }
    }

    private static let decoyPassword = Array("slabwatch decoy".utf8)

    private func decoyHash(cost: Int) -> String {
        "$2b$\(cost < 10 ? "0" : "")\(cost)$" + Self.decoyTail
    }

    static func bcryptMatches(password: [UInt8], hash: String) -> Bool {
        var phrase = password.map { CChar(bitPattern: $0) } + [0]
        defer { for i in phrase.indices { phrase[i] = 0 } }
        var out = [CChar](repeating: 0, count: 128)
        guard slabwatch_crypt(phrase, hash, &out, out.count) == 1 else { return false }
        let result = out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        let expected = Array(hash.utf8)
        guard result.count == expected.count else { return false }
        return slabwatch_equal(result, expected, expected.count) == 1
    }

    /// `Basic base64(user:password)` → user, password. The user name cannot
    /// contain a colon; the password can (RFC 7617).
    static func parseBasic(_ header: String) -> (String, [UInt8])? {
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "basic",
              let decoded = Base64.decode(parts[1].trimmingSpaces()),
              let colon = decoded.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        return (String(decoding: decoded[..<colon], as: UTF8.self), Array(decoded[(colon + 1)...]))
    }

    /// SHA-256 of user, hash and password: the cache never holds a password.
    private static func cacheKey(user: String, password: [UInt8], hash: String) -> CacheKey {
        var input = Array(user.utf8) + [0] + Array(hash.utf8) + [0] + password
        defer { for i in input.indices { input[i] = 0 } }
        var digest = [UInt8](repeating: 0, count: 32)
        _ = slabwatch_sha256(input, input.count, &digest)
        return CacheKey(digest: digest)
    }

    private static func isBcryptBase64(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "/")
    }
}

/// Credentials bcrypt accepted, by their SHA-256 digest, with the user and
/// hash they were accepted for. Bounded: at capacity the entry used least
/// recently goes. Only accepted credentials enter, so only a client that knows
/// a password can make another's entry go.
final class VerifiedCredentials: Sendable {
    private struct Entry {
        var user: String
        var hash: String
        var lastUsed: UInt64
    }

    private struct Table {
        var entries: [BasicAuthenticator.CacheKey: Entry] = [:]
        var clock: UInt64 = 0
    }

    let capacity: Int
    private let table = Mutex(Table())

    init(capacity: Int) { self.capacity = max(1, capacity) }

    var count: Int { table.withLock { $0.entries.count } }

    /// True when `key` was accepted (and marks it used).
    func contains(_ key: BasicAuthenticator.CacheKey) -> Bool {
        table.withLock { table in
            guard table.entries[key] != nil else { return false }
            table.clock += 1
            table.entries[key]?.lastUsed = table.clock
            return true
        }
    }

    func insert(_ key: BasicAuthenticator.CacheKey, user: String, hash: String) {
        table.withLock { table in
            table.clock += 1
            if table.entries[key] == nil, table.entries.count >= capacity,
               let oldest = table.entries.min(by: { $0.value.lastUsed < $1.value.lastUsed })?.key {
                table.entries[oldest] = nil
            }
            table.entries[key] = Entry(user: user, hash: hash, lastUsed: table.clock)
        }
    }

    /// Takes `other`'s entries whose user still has the hash they were accepted for.
    func adopt(_ other: VerifiedCredentials, keepingOnly users: [String: String]) {
        let kept = other.table.withLock { $0.entries.filter { users[$0.value.user] == $0.value.hash } }
        for (key, entry) in kept.sorted(by: { $0.value.lastUsed < $1.value.lastUsed }) {
            insert(key, user: entry.user, hash: entry.hash)
        }
    }
}

private extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return s
    }
}

/// Standard base64 (RFC 4648 §4) decoding, padding required as RFC 7617 sends it.
enum Base64 {
    static func decode(_ text: Substring) -> [UInt8]? {
        let bytes = Array(text.utf8)
        guard bytes.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count / 4 * 3)
        var index = 0
        while index < bytes.count {
            var quad: UInt32 = 0, padding = 0
            for offset in 0..<4 {
                let byte = bytes[index + offset]
                if byte == UInt8(ascii: "=") {
                    guard index + 4 == bytes.count, offset >= 2 else { return nil }
                    padding += 1
                    quad <<= 6
                    continue
                }
                guard padding == 0, let value = sextet(byte) else { return nil }
                quad = quad << 6 | UInt32(value)
            }
            out.append(UInt8(truncatingIfNeeded: quad >> 16))
            if padding < 2 { out.append(UInt8(truncatingIfNeeded: quad >> 8)) }
            if padding < 1 { out.append(UInt8(truncatingIfNeeded: quad)) }
            index += 4
        }
        return out
    }

    private static func sextet(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): byte - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): byte - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): 62
        case UInt8(ascii: "/"): 63
        default: nil
        }
    }
}
