import Dispatch
import Testing
@testable import SlabWatch
import SlabWatchCore
import SlabWatchHTTP

/// A tick renders nothing; the first request after it renders once, however
/// many ask, and reads slabwatch's own figures then; `/metrics` never waits
/// for the history's lock.
struct PublishedStateTests {
    /// A state of `sample` published in `store` (a new one unless told),
    /// whose own figures come from `own`, the sampler's from `sampler`.
    @discardableResult
    static func state(_ sample: Sample, own: any SelfStatisticsSource = Counted(), sampler: SamplerStatistics = .init(),
                      publishedAtNanoseconds: UInt64 = 0, in store: StateStore = StateStore()) -> PublishedState {
        store.publish(sample: sample, report: .init(), publishedAtNanoseconds: publishedAtNanoseconds, intervalSeconds: 5,
                      exposition: .init(selection: SharedCacheSelection(CacheSelection(filter: .all, bound: .unbounded)), version: "test",
                                        sampler: sampler, own: own, sizeHint: SizeHint()))
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

    /// A store keeps the bodies of the newest tick rendered, for every state
    /// of it: a state of an older tick, held by a request while a newer one
    /// was rendered, gets its own bodies (not the newer tick's), rendered for
    /// it alone each time, and the newer tick's stay rendered once.
    @Test func aStateOlderThanTheRenderedTickRendersItsOwnBodies() throws {
        let store = StateStore(), own = Counted()
        func samples(_ total: UInt64) -> SamplerStatistics {
            var statistics = SamplerStatistics()
            statistics.samplesTotal = total
            return statistics
        }
        func metrics(_ state: PublishedState) -> String { String(decoding: state.metrics, as: UTF8.self) }
        let first = Self.state(Self.sample, own: own, sampler: samples(1), in: store)
        #expect(metrics(first).contains("slabwatch_samples_total 1\n") && own.calls == 1)
        let second = Self.state(Self.sample, own: own, sampler: samples(2), in: store)
        #expect(metrics(first).contains("slabwatch_samples_total 1\n") && own.calls == 1, "kept until a newer tick renders")
        #expect(metrics(second).contains("slabwatch_samples_total 2\n") && own.calls == 2)
        for _ in 0..<2 {
            #expect(metrics(first).contains("slabwatch_samples_total 1\n"))
            #expect(try #require(first.gzipped(.metrics)).starts(with: [0x1f, 0x8b]))
        }
        #expect(own.calls == 6, "the older tick rendered for each request, kept by none")
        #expect(metrics(try #require(store.latest)).contains("slabwatch_samples_total 2\n") && second.snapshot == second.bytes(.snapshot))
        #expect(own.calls == 6, "the newest tick's /metrics rendered once")
    }

    /// The render lists the caches the selection exports, and the selection
    /// keeps deciding for the states after it.
    @Test func theSelectionChoosesTheCachesAtRenderTime() throws {
        let selection = SharedCacheSelection(CacheSelection(filter: try CacheFilter(include: "dentry|kmalloc-.*")))
        let exposition = PublishedState.Exposition(selection: selection, version: "test", sampler: .init(), own: Counted(), sizeHint: SizeHint())
        let metrics = String(decoding: StateStore().publish(sample: Self.sample, report: .init(), publishedAtNanoseconds: 0, intervalSeconds: 5,
                                                            exposition: exposition).metrics, as: UTF8.self)
        #expect(metrics.contains("slab=\"dentry\""))
        #expect(!metrics.contains("slab=\"inode_cache\""))
        #expect(selection.choose(Self.sample).caches.allSatisfy { $0.name == "dentry" || $0.name.hasPrefix("kmalloc-") })
    }

    /// While the history is locked (a sampler appending, or anything else
    /// holding it), `/metrics`, `/snapshot` and `/healthz` still answer.
    @Test func metricsAnswersWhileTheHistoryIsLocked() throws {
        let store = StateStore(), history = HistoryReader()
        Self.state(Self.sample, publishedAtNanoseconds: Clock.monotonicNanoseconds(), in: store)
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
