/// Reads how far /proc/meminfo's slab counters may lag from /proc/zoneinfo.
public enum ZoneinfoParser: Sendable {
    /// The largest `vm stats threshold` over every zone and CPU, and the CPUs
    /// of the zone whose `pagesets` list the most (`cpu: N` lines): node
    /// counters such as the slab ones use the largest threshold of their
    /// node's zones. Nil when the file names no threshold or no CPU (not a
    /// zoneinfo, or cut short). Lines it does not know are ignored: the file
    /// is long and grows fields with kernels.
    public static func accuracy(_ bytes: ArraySlice<UInt8>, pageSize: UInt64) -> VmstatAccuracy? {
        var threshold: UInt64 = 0, cpus: UInt64 = 0, cpusOfZone: UInt64 = 0
        bytes.withUnsafeBufferPointer { buffer in
            var lines = Lines(buffer)
            while let line = lines.next() {
                var fields = Fields(buffer, in: line)
                guard let first = fields.next() else { continue }
                let second = fields.next(), third = fields.next(), fourth = fields.next()
                let more = fields.next() != nil
                if buffer.spells("Node", at: first.range) {
                    cpusOfZone = 0
                } else if buffer.spells("cpu:", at: first.range), second?.number != nil, third == nil {
                    cpusOfZone += 1
                    cpus = max(cpus, cpusOfZone)
                } else if buffer.spells("vm", at: first.range), let second, let third, let fourth, !more,
                          buffer.spells("stats", at: second.range), buffer.spells("threshold:", at: third.range),
                          let value = fourth.number {
                    threshold = max(threshold, value)
                }
            }
        }
        guard threshold > 0, cpus > 0 else { return nil }
        return VmstatAccuracy(threshold: threshold, cpus: cpus, pageSize: pageSize)
    }
}
