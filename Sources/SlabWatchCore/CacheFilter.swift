/// Decides which caches `/metrics` exports, to keep cardinality under control.
///
/// A cache is exported when its name fully matches `include` (if set), does
/// not fully match `exclude` (if set), and its footprint is at least
/// `minimumMemoryBytes`. Regex decisions are remembered per name, so a tick
/// pays for a regex match only the first time a cache name is seen.
/// Not thread-safe: owned by the sampler.
public struct CacheFilter {
    public let includePattern: String?
    public let excludePattern: String?
    public let minimumMemoryBytes: UInt64
    private let include: Regex<AnyRegexOutput>?
    private let exclude: Regex<AnyRegexOutput>?
    private var decisions: [String: Bool] = [:]

    public struct InvalidPattern: Error, CustomStringConvertible {
        public var pattern: String
        public var reason: String
        public var description: String { "invalid regular expression '\(pattern)': \(reason)" }
    }

    /// - Throws: `InvalidPattern` when a pattern does not compile.
    public init(include: String? = nil, exclude: String? = nil, minimumMemoryBytes: UInt64 = 0) throws {
        self.includePattern = include
        self.excludePattern = exclude
        self.minimumMemoryBytes = minimumMemoryBytes
        self.include = try Self.compile(include)
        self.exclude = try Self.compile(exclude)
    }

    /// Exports everything.
    public static var all: CacheFilter {
        // Cannot throw: no patterns.
        try! CacheFilter()
    }

    private static func compile(_ pattern: String?) throws -> Regex<AnyRegexOutput>? {
        guard let pattern, !pattern.isEmpty else { return nil }
        do { return try Regex(pattern) } catch {
            throw InvalidPattern(pattern: pattern, reason: "\(error)")
        }
    }

    public mutating func admits(_ cache: SlabCache) -> Bool {
        guard cache.memoryBytes >= minimumMemoryBytes else { return false }
        if include == nil && exclude == nil { return true }
        if let known = decisions[cache.name] { return known }
        let decision = (include.map { cache.name.wholeMatch(of: $0) != nil } ?? true)
            && !(exclude.map { cache.name.wholeMatch(of: $0) != nil } ?? false)
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
