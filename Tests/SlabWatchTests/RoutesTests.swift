import Testing
@testable import SlabWatch
import SlabWatchCore
import SlabWatchHTTP

/// The daemon's routes, called as the HTTP server calls them.
struct RoutesTests {
    static let routes: Routes = {
        var ring = SampleRing(configuration: .init(fineCapacity: 8, coarseCapacity: 4, coarseEvery: 2))
        for t in 0..<4 {
            ring.append(Sample(timestampMilliseconds: 1_795_600_000_000 + Int64(t) * 5000, caches: [
                SlabCache(name: "kmalloc-32", activeObjects: 1, objects: 1, objectSize: 32, objectsPerSlab: 128,
                          pagesPerSlab: 1, activeSlabs: 1, slabs: UInt64(t + 1), pageSize: 4096),
            ]))
        }
        let frozen = ring
        return Routes(store: StateStore()) { slab, seconds in HistoryPoint.collect(frozen, slab: slab, seconds: seconds) }
    }()

    static func status(_ query: String) throws -> Int {
        let request = try HTTPRequest.parse(head: Array("GET /snapshot?\(query) HTTP/1.1\r\nHost: test".utf8)[...])
        return routes.respond(to: request).status
    }

    /// `history=` is seconds in decimal digits: `0x10` is not 16 s.
    @Test(arguments: ["0x10", "0X10", "1e3", "inf", "nan", "-5", "%2B5", "%205", "5.", ".5", "1_000", "%D9%A3"])
    func historyOtherThanDecimalDigitsIsRefused(_ history: String) throws {
        #expect(try Self.status("slab=kmalloc-32&history=\(history)") == 400)
    }

    @Test(arguments: ["0", "16", "600", "1.5", "99999999999999999999"])
    func decimalHistoryIsServed(_ history: String) throws {
        #expect(try Self.status("slab=kmalloc-32&history=\(history)") == 200)
    }
}
