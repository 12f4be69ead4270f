public import LinearRegex

/// Decides which caches `/metrics` exports, to keep cardinality under control.
///
/// A cache is exported when its name fully matches `include` (if set), does
/// not fully match `exclude` (if set), and its footprint is at least
/// `minimumFootprintBytes`. Patterns are `LinearRegex` (RE2 syntax, linear-time
/// matching), and decisions are remembered per name, so a tick pays for a
/// match only the first time a cache name is seen.
/// Not thread-safe: owned by the sampler.
public struct CacheFilter: Sendable {
    public let includePattern: String?
    public let excludePattern: String?
    public let minimumFootprintBytes: UInt64
    private let include: LinearRegex?
    private let exclude: LinearRegex?
    private var decisions: [String: Bool] = [:]

    /// - Throws: `LinearRegex.SyntaxError` when a pattern does not compile.
    public init(include: String? = nil, exclude: String? = nil, minimumFootprintBytes: UInt64 = 0) throws(LinearRegex.SyntaxError) {
        self.includePattern = include
        self.excludePattern = exclude
        self.minimumFootprintBytes = minimumFootprintBytes
        self.include = try Self.compile(include)
        self.exclude = try Self.compile(exclude)
    }

    /// Exports everything.
    public static var all: CacheFilter {
        // Cannot throw: no patterns.
        try! CacheFilter()
    }

    private static func compile(_ pattern: String?) throws(LinearRegex.SyntaxError) -> LinearRegex? {
        guard let pattern, !pattern.isEmpty else { return nil }
        return try LinearRegex(pattern)
    }

    /// A derived series is never admitted: `slabwatch_slab_*` are the
    /// caches, and their sum must stay the caches'.
    public mutating func admits(_ cache: SlabCache) -> Bool {
        guard !cache.isDerived, cache.footprintBytes >= minimumFootprintBytes else { return false }
        if include == nil && exclude == nil { return true }
        if let known = decisions[cache.name] { return known }
        let decision = (include?.wholeMatch(cache.name) ?? true) && !(exclude?.wholeMatch(cache.name) ?? false)
        if decisions.count > 4096 { decisions.removeAll(keepingCapacity: true) }
        decisions[cache.name] = decision
        return decision
    }

    /// The exported caches of `caches`, sorted by name (the order `/metrics` needs).
    public mutating func exported(_ caches: [SlabCache]) -> [SlabCache] {
        var kept = caches.filter { admits($0) }
        kept.sort { $0.name < $1.name }
        return kept
    }
}
