/// The kmalloc cache families: `kmalloc-32`, `kmalloc-1k`, `kmalloc-cg-64`,
/// `kmalloc-rcl-128`, `dma-kmalloc-256`, `kmalloc-rnd-05-32`.
public struct KmallocCache: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case normal, accounted, reclaimable, dma, random }
    public var size: Int
    public var kind: Kind

    public init?(name: String) {
        var rest = Substring(name)
        var kind = Kind.normal
        if rest.hasPrefix("dma-") { kind = .dma; rest = rest.dropFirst(4) }
        guard rest.hasPrefix("kmalloc-") else { return nil }
        rest = rest.dropFirst(8)
        if rest.hasPrefix("cg-") { kind = .accounted; rest = rest.dropFirst(3) }
        else if rest.hasPrefix("rcl-") { kind = .reclaimable; rest = rest.dropFirst(4) }
        else if rest.hasPrefix("rnd-"), let dash = rest.dropFirst(4).firstIndex(of: "-") { kind = .random; rest = rest[rest.index(after: dash)...] }
        var multiplier = 1
        if rest.hasSuffix("k") { multiplier = 1024; rest = rest.dropLast() }
        guard let number = Int(rest), number > 0 else { return nil }
        size = number * multiplier
        self.kind = kind
    }

    /// `kmalloc-512` for `kmalloc-rnd-07-512`; nil for any name but a random copy's.
    public static func sizeClass(ofRandomCopy name: String) -> String? {
        guard KmallocCache(name: name)?.kind == .random, let rnd = name.firstRange(of: "rnd-") else { return nil }
        let rest = name[rnd.upperBound...]
        guard let dash = rest.firstIndex(of: "-") else { return nil }
        return String(name[..<rnd.lowerBound]) + rest[rest.index(after: dash)...]
    }

    /// The random copies of the plain kmalloc cache `name` among `names`
    /// (`kmalloc-rnd-01-32` … `kmalloc-rnd-15-32` for `kmalloc-32`), sorted.
    /// A kernel built with `CONFIG_RANDOM_KMALLOC_CACHES` serves each call
    /// site's kmallocs from one of 16 copies, `kmalloc-32` the first, chosen
    /// by the call site's address and a seed drawn at boot: a module's
    /// allocations land in another copy after each reboot. Empty for any
    /// other cache, and on kernels without the copies.
    public static func randomCopies(of name: String, in names: some Sequence<String>) -> [String] {
        guard let plain = KmallocCache(name: name), plain.kind == .normal else { return [] }
        return names.filter { other in KmallocCache(name: other).map { $0.kind == .random && $0.size == plain.size } ?? false }.sorted()
    }
}
