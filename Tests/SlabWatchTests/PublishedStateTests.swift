import Dispatch
import Testing
@testable import SlabWatch
import SlabWatchCore
import SlabWatchHTTP

/// A tick renders nothing; the first request after it renders once, however
/// many ask, and reads slabwatch's own figures then; `/metrics` never waits
/// for the history's lock.
struct PublishedStateTests {
    /// A published state of `sample` whose own figures come from `own`.
    static func state(_ sample: Sample, own: any SelfStatisticsSource = Counted(), publishedAtNanoseconds: UInt64 = 0) -> PublishedState {
        PublishedState(sample: sample, report: .init(), publishedAtNanoseconds: publishedAtNanoseconds, intervalSeconds: 5,
                       exposition: .init(selection: SharedCacheSelection(CacheSelection(filter: .all, bound: .unbounded)), version: "test", sampler: .init(), own: own, sizeHint: SizeHint()))
    }

    static let sample = ProcReader(paths: TestPaths.localKernelPaths, pageSize: 4096).sample(timestampMilliseconds: 1_795_600_000_000)

    @Test func aTickNobodyScrapesReadsNothingAndOneRenderReadsOnce() async throws {
        let own = Counted()
        let states = (0..<3).map { _ in Self.state(Self.sample, own: own) }
        #expect(own.calls == 0)  // published: nothing rendered, nothing read

        let state = states[2]
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<16 { group.addTask { #expect(String(decoding: state.metrics, as: UTF8.self).contains("slabwatch_build_info")) } }
        }
        #expect(state.metrics == state.bytes(.metrics))
        #expect(try #require(state.gzipped(.metrics)).starts(with: [0x1f, 0x8b]))  // gzip's magic
        #expect(own.calls == 1)
        #expect(state.snapshot == state.bytes(.snapshot) && own.calls == 1)
    }

    /// The render lists the caches the selection exports, and the selection
    /// keeps deciding for the states after it.
    @Test func theSelectionChoosesTheCachesAtRenderTime() throws {
        let selection = SharedCacheSelection(CacheSelection(filter: try CacheFilter(include: "dentry|kmalloc-.*")))
        let exposition = PublishedState.Exposition(selection: selection, version: "test", sampler: .init(), own: Counted(), sizeHint: SizeHint())
        let metrics = String(decoding: PublishedState(sample: Self.sample, report: .init(), publishedAtNanoseconds: 0, intervalSeconds: 5,
                                                      exposition: exposition).metrics, as: UTF8.self)
        #expect(metrics.contains("slab=\"dentry\""))
        #expect(!metrics.contains("slab=\"inode_cache\""))
        #expect(selection.choose(Self.sample).caches.allSatisfy { $0.name == "dentry" || $0.name.hasPrefix("kmalloc-") })
    }

    /// While the history is locked (a sampler appending, or anything else
    /// holding it), `/metrics`, `/snapshot` and `/healthz` still answer.
    @Test func metricsAnswersWhileTheHistoryIsLocked() throws {
        let store = StateStore(), history = HistoryReader()
        store.publish(Self.state(Self.sample, publishedAtNanoseconds: Clock.monotonicNanoseconds()))
        let routes = Routes(store: store, history: history)
        let holding = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            history.replace { _ in
                holding.signal()
                release.wait()
            }
        }
        defer { release.signal() }
        #expect(holding.wait(timeout: .now() + 30) == .success)
        let answered = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            for target in ["/metrics", "/snapshot", "/healthz"] {
                let request = try? HTTPRequest.parse(head: Array("GET \(target) HTTP/1.1\r\nHost: test".utf8)[...])
                #expect(request.map { routes.respond(to: $0).status } == 200, "\(target)")
            }
            answered.signal()
        }
        // Generous: only an answer that waits for the lock (released after this) trips it.
        #expect(answered.wait(timeout: .now() + 30) == .success)
    }
}
