import Foundation
import Synchronization
import Testing
@testable import SlabWatchHTTP

struct BasicAuthTests {
    /// `hello` at bcrypt cost 10 with the `$2y$` prefix htpasswd writes.
    static let hash = "$2y$10$vaGhZBVTv0F./3cFfFMOf.dVvoKnM14swfFqxR/CzI/5qhKkuoQQO"

    static func header(_ credentials: String) -> String {
        // Encoded by hand so the test does not use the code it checks.
        switch credentials {
        case "alice:hello": "Basic YWxpY2U6aGVsbG8="
        case "alice:wrong": "Basic YWxpY2U6d3Jvbmc="
        case "bob:hello": "Basic Ym9iOmhlbGxv"
        default: fatalError(credentials)
        }
    }

    @Test func rightPasswordIsCheckedOnceThenRemembered() throws {
        let auth = try BasicAuthenticator(users: ["alice": Self.hash])
        guard case .needsCheck(let credentials) = auth.decide(authorization: Self.header("alice:hello")) else {
            Issue.record("first sight must need bcrypt"); return
        }
        #expect(auth.verify(credentials))
        #expect(auth.decide(authorization: Self.header("alice:hello")) == .granted)
    }

    @Test func wrongPasswordAndUnknownUserAreRefused() throws {
        let auth = try BasicAuthenticator(users: ["alice": Self.hash])
        for attempt in ["alice:wrong", "bob:hello"] {
            guard case .needsCheck(let credentials) = auth.decide(authorization: Self.header(attempt)) else {
                Issue.record("\(attempt) must be checked like any other (no timing difference)"); continue
            }
            #expect(!auth.verify(credentials))
            // Failures are not remembered: the next try pays bcrypt again (and evicts nothing).
            guard case .needsCheck = auth.decide(authorization: Self.header(attempt)) else {
                Issue.record("\(attempt): a failure must not be cached"); continue
            }
        }
    }

    /// `hello` at costs 4 and 6 (libcrypt, `$2b$`).
    static let hello4 = "$2b$04$B0ZszdYeuSjryreOPIUPUOwpnWnBhz1mGLn2PafOxlEgfbzIOnQXO"
    static let hello6 = "$2b$06$mhW7EPZVwmNX.XSWbsIj0uOI7z72XUbBS1dZnz8GJPN75z6w5ZyfO"

    static func basic(_ user: String, _ password: [UInt8]) -> String {
        "Basic " + Data(Array(user.utf8) + [UInt8(ascii: ":")] + password).base64EncodedString()
    }

    /// Real bcrypt, recording the cost of every check it runs.
    final class CountingVerifier: Sendable {
        let costs = Mutex<[Int]>([])
        func verify(_ password: [UInt8], _ hash: String) -> Bool {
            costs.withLock { $0.append(BasicAuthenticator.cost(of: hash) ?? -1) }
            return BasicAuthenticator.bcryptMatches(password: password, hash: hash)
        }
        /// Work done since the last call, in cost-0 bcrypt units (2^cost each).
        func takeWork() -> Int { costs.withLock { costs in defer { costs = [] }; return costs.reduce(0) { $0 + 1 << $1 } } }
    }

    /// A cost-4 user, a cost-6 user and an unknown one: each wrong password
    /// costs one cost-6 check's work, so timing tells nothing about who exists
    /// or how their hash was made.
    @Test func everyRefusalCostsOneCheckAtTheHighestCost() throws {
        let counter = CountingVerifier()
        let auth = try BasicAuthenticator(users: ["alice": Self.hello4, "carol": Self.hello6], verifier: counter.verify)
        #expect(auth.maximumCost == 6)
        for (user, password) in [("alice", "wrong"), ("carol", "wrong"), ("mallory", "hello"), ("mallory", "")] {
            guard case .needsCheck(let credentials) = auth.decide(authorization: Self.basic(user, Array(password.utf8))) else {
                Issue.record("\(user) must be checked"); continue
            }
            #expect(!auth.verify(credentials))
            #expect(counter.takeWork() == 1 << 6, "\(user):\(password)")
        }
        // A right password needs no padding: who knows it learns nothing from timing.
        guard case .needsCheck(let right) = auth.decide(authorization: Self.basic("alice", Array("hello".utf8))) else {
            Issue.record("first sight must need bcrypt"); return
        }
        #expect(auth.verify(right))
        #expect(counter.takeWork() == 1 << 4)
    }

    /// crypt(3) reads a C string: `hello\0anything` would pass for `hello`.
    @Test func aPasswordWithANULIsRefusedBeforeBcrypt() throws {
        let counter = CountingVerifier()
        let auth = try BasicAuthenticator(users: ["alice": Self.hello4], verifier: counter.verify)
        for password in [Array("hello".utf8) + [0] + Array("anything".utf8), Array("hello".utf8) + [0], [0]] {
            let decision = auth.decide(authorization: Self.basic("alice", password))
            if case .needsCheck(let credentials) = decision {
                #expect(!auth.verify(credentials), "\(password) accepted")
            }
            #expect(decision == .refused, "\(password)")
        }
        #expect(counter.takeWork() == 0)
    }

    /// 300 different wrong passwords (past the old 256-entry cache that a
    /// failure could clear) leave the scraper's verified entry in place.
    @Test func wrongPasswordsNeverEvictAVerifiedCredential() throws {
        let auth = try BasicAuthenticator(users: ["alice": Self.hello4])
        guard case .needsCheck(let right) = auth.decide(authorization: Self.basic("alice", Array("hello".utf8))) else {
            Issue.record("first sight must need bcrypt"); return
        }
        #expect(auth.verify(right))
        for attempt in 0..<300 {
            let user = attempt.isMultiple(of: 2) ? "alice" : "user\(attempt)"
            if case .needsCheck(let wrong) = auth.decide(authorization: Self.basic(user, Array("guess\(attempt)".utf8))) {
                #expect(!auth.verify(wrong))
            }
        }
        #expect(auth.decide(authorization: Self.basic("alice", Array("hello".utf8))) == .granted)
    }

    /// At capacity the entry used least recently goes, and only a success can push it out.
    @Test func verifiedCacheEvictsTheLeastRecentlyUsed() throws {
        let auth = try BasicAuthenticator(users: ["a": Self.hello4, "b": Self.hello4, "c": Self.hello4],
                                          verifier: BasicAuthenticator.bcryptMatches, cacheCapacity: 2)
        func login(_ user: String) -> BasicAuthenticator.Decision {
            let decision = auth.decide(authorization: Self.basic(user, Array("hello".utf8)))
            if case .needsCheck(let credentials) = decision { _ = auth.verify(credentials) }
            return decision
        }
        _ = login("a")
        _ = login("b")
        #expect(login("a") == .granted)  // a is now the most recently used
        _ = login("c")  // evicts b
        #expect(login("a") == .granted)
        #expect(login("c") == .granted)
        #expect(login("b") != .granted)
    }

    /// A reload builds a new authenticator: what the old one verified carries
    /// over for users whose hash is the same, and only for them.
    @Test func aReloadKeepsVerifiedCredentialsOfUnchangedHashes() throws {
        let old = try BasicAuthenticator(users: ["alice": Self.hello4, "carol": Self.hello4])
        for user in ["alice", "carol"] {
            guard case .needsCheck(let credentials) = old.decide(authorization: Self.basic(user, Array("hello".utf8))) else {
                Issue.record("first sight must need bcrypt"); return
            }
            #expect(old.verify(credentials))
        }
        let reloaded = try BasicAuthenticator(users: ["alice": Self.hello4, "carol": Self.hello6])
        reloaded.adoptVerified(from: old)
        #expect(reloaded.decide(authorization: Self.basic("alice", Array("hello".utf8))) == .granted)
        guard case .needsCheck = reloaded.decide(authorization: Self.basic("carol", Array("hello".utf8))) else {
            Issue.record("a changed hash must be checked again"); return
        }
        let removed = try BasicAuthenticator(users: ["carol": Self.hello4])
        removed.adoptVerified(from: old)
        #expect(removed.decide(authorization: Self.basic("alice", Array("hello".utf8))) != .granted)
    }

    @Test func malformedHeadersAreRefusedWithoutBcrypt() throws {
        let auth = try BasicAuthenticator(users: ["alice": Self.hash])
        for header in [nil, "", "Bearer abc", "Basic", "Basic !!!!", "Basic YWxpY2U", "Basic YWxpY2U=", "Basic YW=xpY2U6aGVsbG8="] {
            #expect(auth.decide(authorization: header) == .refused, "\(header ?? "nil")")
        }
    }

    @Test func bcryptFormIsRecognised() throws {
        try TLSLibrary.load()
        #expect(BasicAuthenticator.isBcryptHash(Self.hash))
        #expect(BasicAuthenticator.isBcryptHash(Self.hash.replacingOccurrences(of: "$2y$", with: "$2b$")))
        #expect(!BasicAuthenticator.isBcryptHash("$1$abc$def"))
        #expect(!BasicAuthenticator.isBcryptHash(String(Self.hash.dropLast())))
        #expect(!BasicAuthenticator.isBcryptHash(Self.hash.replacingOccurrences(of: "$10$", with: "$99$")))
        // libcrypt agrees: the hash of "hello" matches "hello" only.
        #expect(BasicAuthenticator.bcryptMatches(password: Array("hello".utf8), hash: Self.hash))
        #expect(!BasicAuthenticator.bcryptMatches(password: Array("hellO".utf8), hash: Self.hash))
        #expect(!BasicAuthenticator.bcryptMatches(password: Array("hello".utf8), hash: "not a hash"))
    }

    @Test func base64DecodesRFC4648Vectors() {
        let vectors = ["": "", "Zg==": "f", "Zm8=": "fo", "Zm9v": "foo", "Zm9vYg==": "foob", "Zm9vYmE=": "fooba", "Zm9vYmFy": "foobar"]
        for (encoded, decoded) in vectors {
            #expect(Base64.decode(Substring(encoded)) == Array(decoded.utf8), "\(encoded)")
        }
        for bad in ["Zg=", "Z===", "Zg==Zg==", "Zm9*"] { #expect(Base64.decode(Substring(bad)) == nil, "\(bad)") }
    }
}
