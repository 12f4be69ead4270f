internal import CTLS
import Glibc
import Synchronization

/// HTTP basic authentication against bcrypt hashes, as exporter-toolkit's
/// `basic_auth_users` does: libcrypt checks the hash, the comparison takes the
/// same time whatever it finds, and verified credentials are remembered so a
/// scrape every 15 s does not pay bcrypt's ~70 ms every time.
public final class BasicAuthenticator: Sendable {
    public enum Decision: Equatable {
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

    private let users: [String: String]
    private let cache = Mutex<[CacheKey: Bool]>([:])
    /// Bounds the memory an attacker can make us spend on remembered failures.
    private let cacheLimit = 256
    /// A valid hash of a password nobody has, checked for unknown users so
    /// that timing does not say which user names exist.
    private static let decoyHash = "$2b$10$NPt4cQSpUHwZTQ54vRy1xe9sp09H9ATn8YkOe8hfWQENb2w8ROyeS"

    /// - Parameter users: user name → bcrypt hash (`$2a$`, `$2b$` or `$2y$`).
    /// - Throws: `TLSError` when libcrypto or libcrypt cannot be loaded.
    public init(users: [String: String]) throws(TLSError) {
        try TLSLibrary.load()
        self.users = users
    }

    /// True when `hash` has bcrypt's form, which libcrypt will accept.
    public static func isBcryptHash(_ hash: String) -> Bool {
        let bytes = Array(hash.utf8)
        guard bytes.count == 60, bytes[0] == UInt8(ascii: "$"), bytes[1] == UInt8(ascii: "2"),
              [UInt8(ascii: "a"), UInt8(ascii: "b"), UInt8(ascii: "y")].contains(bytes[2]),
              bytes[3] == UInt8(ascii: "$"), bytes[6] == UInt8(ascii: "$"),
              let cost = Int(String(decoding: bytes[4..<6], as: UTF8.self)), (4...31).contains(cost)
        else { return false }
        return bytes[7...].allSatisfy { isBcryptBase64($0) }
    }

    /// Decides from the `Authorization` header alone when it can.
    public func decide(authorization: String?) -> Decision {
        guard let authorization, let (user, password) = Self.parseBasic(authorization) else { return .refused }
        let hash = users[user] ?? Self.decoyHash
        let key = Self.cacheKey(user: user, password: password, hash: hash)
        if let known = cache.withLock({ $0[key] }) { return known && users[user] != nil ? .granted : .refused }
        return .needsCheck(Credentials(user: user, password: password, hash: hash, key: key))
    }

    /// Runs bcrypt (tens of milliseconds at cost 10) and remembers the answer.
    public func verify(_ credentials: Credentials) -> Bool {
        let matches = Self.bcryptMatches(password: credentials.password, hash: credentials.hash)
        cache.withLock { cache in
            if cache.count >= cacheLimit { cache.removeAll(keepingCapacity: true) }
            cache[credentials.key] = matches
        }
        return matches && users[credentials.user] != nil
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
