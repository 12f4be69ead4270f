/// Names kernel addresses as the kernel's own traces do (`shmem_alloc_inode+0x1d`,
/// and the module for a module's code), from `/proc/kallsyms` read line by
/// line. Only the addresses asked for are kept, so a kallsyms of 200,000
/// symbols costs a pass, not a table: the nearest symbol at or below each
/// address wins.
public struct KernelSymbols: Sendable {
    private let addresses: [UInt64]  // sorted
    /// The best symbol seen whose address is at or below `addresses[i]` and above `addresses[i - 1]`.
    private var candidates: [(address: UInt64, name: String, module: String?)?]
    /// kallsyms lines whose address was 0: the reader may not see addresses (no CAP_SYSLOG).
    public private(set) var hiddenAddresses = 0
    public private(set) var symbolLines = 0

    public init(resolving wanted: Set<UInt64>) {
        addresses = wanted.sorted()
        candidates = Array(repeating: nil, count: addresses.count)
    }

    /// One kallsyms line: `ffffffff815c99e0 t shmem_alloc_inode` (then `\t[mod]` for a module's).
    public mutating func take(_ line: Substring) {
        let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard fields.count >= 3, let address = UInt64(fields[0], radix: 16),
              let type = fields[1].first, "tTwW".contains(type) else { return }
        symbolLines += 1
        guard address != 0 else { hiddenAddresses += 1; return }
        // The first wanted address at or above the symbol: the symbol may name
        // it and every wanted address after it, which the prefix maximum in
        // `symbol(_:)` takes care of.
        var low = 0, high = addresses.count
        while low < high {
            let middle = (low + high) / 2
            if addresses[middle] < address { low = middle + 1 } else { high = middle }
        }
        guard low < addresses.count else { return }
        if let current = candidates[low], current.address >= address { return }
        let module = fields.count > 3 && fields[3].hasPrefix("[") ? String(fields[3].dropFirst().dropLast()) : nil
        candidates[low] = (address, String(fields[2]), module)
    }

    /// Every wanted address with its symbol, once all lines were taken.
    public func resolved() -> [UInt64: (function: String, module: String?)] {
        var names: [UInt64: (function: String, module: String?)] = [:]
        var best: (address: UInt64, name: String, module: String?)?
        for (index, address) in addresses.enumerated() {
            if let candidate = candidates[index], candidate.address > best?.address ?? 0 { best = candidate }
            guard let best else { continue }
            names[address] = ("\(best.name)+0x\(String(address - best.address, radix: 16))", best.module)
        }
        return names
    }

    /// True when kallsyms listed symbols but showed none of their addresses.
    public var addressesHidden: Bool { symbolLines > 0 && hiddenAddresses == symbolLines }
}
