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
            #expect(auth.decide(authorization: Self.header(attempt)) == .refused)
        }
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
