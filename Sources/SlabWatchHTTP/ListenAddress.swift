import Glibc

/// A listen address as operators write it: `127.0.0.1:10077`, `[::1]:10077`,
/// `[::]:10077`, `:10077` (every interface, IPv6 and IPv4) or `localhost:10077`.
/// Port 0 asks the kernel for an ephemeral port.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public enum Host: Sendable, Equatable {
        case any
        case ipv4(String)
        case ipv6(String)
    }

    public var host: Host
    public var port: UInt16

    public struct Invalid: Error, CustomStringConvertible {
        public var text: String
        public var reason: String
        public var description: String { "invalid listen address '\(text)': \(reason)" }
    }

    public init(host: Host, port: UInt16) {
        self.host = host
        self.port = port
    }

    public init(parsing text: String) throws(Invalid) {
        guard let colon = text.lastIndex(of: ":") else {
            throw Invalid(text: text, reason: "expected HOST:PORT, [IPv6]:PORT or :PORT")
        }
        let hostPart = String(text[..<colon])
        guard let port = UInt16(text[text.index(after: colon)...]) else {
            throw Invalid(text: text, reason: "port must be a number from 0 to 65535")
        }
        self.port = port
        if hostPart.isEmpty {
            host = .any
        } else if hostPart.hasPrefix("["), hostPart.hasSuffix("]") {
            let literal = String(hostPart.dropFirst().dropLast())
            var probe = in6_addr()
            guard inet_pton(AF_INET6, literal, &probe) == 1 else {
                throw Invalid(text: text, reason: "'\(literal)' is not an IPv6 address")
            }
            host = .ipv6(literal)
        } else if hostPart == "localhost" {
            host = .ipv4("127.0.0.1")
        } else {
            var probe = in_addr()
            guard inet_pton(AF_INET, hostPart, &probe) == 1 else {
                throw Invalid(text: text, reason: "'\(hostPart)' is not an IPv4 address (write IPv6 as [addr]:port)")
            }
            host = .ipv4(hostPart)
        }
    }

    public var description: String {
        switch host {
        case .any: ":\(port)"
        case .ipv4(let a): "\(a):\(port)"
        case .ipv6(let a): "[\(a)]:\(port)"
        }
    }
}
