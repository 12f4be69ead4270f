import Glibc

/// A failed socket call, with the call's name and errno.
public struct SocketError: Error, CustomStringConvertible {
    public var call: String
    public var errno: Int32
    public var address: String?

    public var description: String {
        let what = address.map { " on \($0)" } ?? ""
        return "\(call)\(what) failed: \(String(cString: strerror(errno)))"
    }
}

/// Thin wrappers over the BSD socket calls the server needs; no policy here.
enum Socket {
    /// Opens a non-blocking listening socket. For `.any` it binds `[::]` with
    /// IPV6_V6ONLY off (one socket for both families) and falls back to
    /// `0.0.0.0` on hosts without IPv6.
    /// The backlog is the kernel's largest (`net.core.somaxconn` caps it):
    /// connections a burst brings wait there, not in SYN retries.
    static func listen(on address: ListenAddress, backlog: Int32 = SOMAXCONN) throws(SocketError) -> Int32 {
        switch address.host {
        case .any:
            do { return try bindIPv6("::", port: address.port, v6Only: false, backlog: backlog) } catch {
                return try bindIPv4("0.0.0.0", port: address.port, backlog: backlog)
            }
        case .ipv4(let host): return try bindIPv4(host, port: address.port, backlog: backlog)
        case .ipv6(let host): return try bindIPv6(host, port: address.port, v6Only: true, backlog: backlog)
        }
    }

    private static func bindIPv4(_ host: String, port: UInt16, backlog: Int32) throws(SocketError) -> Int32 {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        inet_pton(AF_INET, host, &addr.sin_addr)
        let fd = try open(AF_INET, "\(host):\(port)")
        let result = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return try finishListen(fd, result, backlog, "\(host):\(port)")
    }

    private static func bindIPv6(_ host: String, port: UInt16, v6Only: Bool, backlog: Int32) throws(SocketError) -> Int32 {
        var addr = sockaddr_in6()
        addr.sin6_family = sa_family_t(AF_INET6)
        addr.sin6_port = port.bigEndian
        inet_pton(AF_INET6, host, &addr.sin6_addr)
        let fd = try open(AF_INET6, "[\(host)]:\(port)")
        var flag: Int32 = v6Only ? 1 : 0
        setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &flag, socklen_t(MemoryLayout<Int32>.size))
        let result = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
            }
        }
        return try finishListen(fd, result, backlog, "[\(host)]:\(port)")
    }

    private static func open(_ family: Int32, _ label: String) throws(SocketError) -> Int32 {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError(call: "socket", errno: errno, address: label) }
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        return fd
    }

    private static func finishListen(_ fd: Int32, _ bindResult: Int32, _ backlog: Int32, _ label: String) throws(SocketError) -> Int32 {
        guard bindResult == 0 else {
            let error = SocketError(call: "bind", errno: errno, address: label)
            close(fd)
            throw error
        }
        guard Glibc.listen(fd, backlog) == 0 else {
            let error = SocketError(call: "listen", errno: errno, address: label)
            close(fd)
            throw error
        }
        return fd
    }

    /// The address a socket is bound to, as `host:port` (to report ephemeral ports).
    static func localAddress(_ fd: Int32) -> ListenAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard ok == 0 else { return nil }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        if Int32(storage.ss_family) == AF_INET {
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    var a = sin.pointee.sin_addr
                    inet_ntop(AF_INET, &a, &text, socklen_t(text.count))
                    return ListenAddress(host: .ipv4(text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }), port: UInt16(bigEndian: sin.pointee.sin_port))
                }
            }
        }
        return withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                var a = sin6.pointee.sin6_addr
                inet_ntop(AF_INET6, &a, &text, socklen_t(text.count))
                return ListenAddress(host: .ipv6(text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }), port: UInt16(bigEndian: sin6.pointee.sin6_port))
            }
        }
    }

    /// Non-blocking, close-on-exec and TCP_NODELAY (one write per response must
    /// not wait for Nagle) on an accepted connection.
    static func prepareAccepted(_ fd: Int32) {
        setNonBlocking(fd)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        var on: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
    }

    /// What a connection's socket holds, seen without reading it.
    struct Readiness: Equatable {
        /// The peer sent FIN or a reset.
        var peerGone: Bool
        /// Bytes wait to be read.
        var hasPendingBytes: Bool
    }

    /// Readiness of each descriptor, from one `poll` that does not wait; a
    /// descriptor poll cannot judge is left out.
    static func readiness(_ fds: [Int32]) -> [Int32: Readiness] {
        let POLLRDHUP: Int16 = 0x2000  // <poll.h> defines it only under _GNU_SOURCE
        var polls = fds.map { pollfd(fd: $0, events: Int16(POLLIN) | POLLRDHUP, revents: 0) }
        guard poll(&polls, nfds_t(polls.count), 0) >= 0 else { return [:] }
        var result: [Int32: Readiness] = [:]
        for entry in polls where entry.revents & Int16(POLLNVAL) == 0 {
            var byte: UInt8 = 0
            let pending = entry.revents & Int16(POLLIN) != 0
                && recv(entry.fd, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT)) == 1
            let gone = entry.revents & (POLLRDHUP | Int16(POLLHUP) | Int16(POLLERR)) != 0
            result[entry.fd] = Readiness(peerGone: gone, hasPendingBytes: pending)
        }
        return result
    }

    /// Sets O_NONBLOCK on an inherited descriptor (socket activation).
    static func setNonBlocking(_ fd: Int32) {
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
    }
}
