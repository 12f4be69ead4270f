/// Reads how far /proc/meminfo's slab counters may lag from /proc/zoneinfo.
public enum ZoneinfoParser: Sendable {
    /// The largest `vm stats threshold` over every zone and CPU, and the CPUs
    /// of the zone whose `pagesets` list the most (`cpu: N` lines): node
    /// counters such as the slab ones use the largest threshold of their
    /// node's zones. Nil when the file names no threshold or no CPU (not a
    /// zoneinfo, or cut short). Lines it does not know are ignored: the file
    /// is long and grows fields with kernels.
    public static func accuracy(_ bytes: ArraySlice<UInt8>, pageSize: UInt64) -> VmstatAccuracy? {
        var lines = LineCursor(bytes)
        var fields: [ArraySlice<UInt8>] = []
        var threshold: UInt64 = 0, cpus: UInt64 = 0, cpusOfZone: UInt64 = 0
        while let line = lines.next() {
            splitFields(line, into: &fields)
            guard let first = fields.first else { continue }
            if fieldEquals(first, "Node") {
                cpusOfZone = 0
            } else if fields.count == 2, fieldEquals(first, "cpu:"), parseUInt64(fields[1]) != nil {
                cpusOfZone += 1
                cpus = max(cpus, cpusOfZone)
            } else if fields.count == 4, fieldEquals(first, "vm"), fieldEquals(fields[1], "stats"),
                      fieldEquals(fields[2], "threshold:"), let value = parseUInt64(fields[3]) {
                threshold = max(threshold, value)
            }
        }
        guard threshold > 0, cpus > 0 else { return nil }
        return VmstatAccuracy(threshold: threshold, cpus: cpus, pageSize: pageSize)
    }
}
