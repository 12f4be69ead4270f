import Testing
import TestSupport
@testable import SlabWatchCore

/// /proc/zoneinfo as far as the vmstat error needs it: the largest `vm stats
/// threshold` and the CPUs of a zone's pagesets.
struct ZoneinfoParserTests {
    /// This machine's layout (Linux 6.18, 2 CPUs), cut to the lines around the pagesets.
    static func zone(_ name: String, thresholds: [Int]) -> String {
        var text = "Node 0, zone \(name)\n  pages free     3840\n        min      32\n  pagesets\n"
        for (cpu, threshold) in thresholds.enumerated() {
            text += "    cpu: \(cpu)\n              count: 0\n              high:  0\n              batch: 1\n  vm stats threshold: \(threshold)\n"
        }
        return text + "  node_unreclaimable:  0\n  start_pfn:           1\n"
    }

    @Test func theLargestThresholdAndTheCPUsOfAZone() throws {
        let text = Self.zone("DMA", thresholds: [4, 4]) + Self.zone("DMA32", thresholds: [24, 24]) + Self.zone("Normal", thresholds: [28, 28])
        let accuracy = try #require(ZoneinfoParser.accuracy(ArraySlice(text.utf8), pageSize: 4096))
        #expect(accuracy == VmstatAccuracy(threshold: 28, cpus: 2, pageSize: 4096))
        #expect(accuracy.errorBytes == 229_376)  // the study's bound on this machine
    }

    /// CPUs are counted per zone, not summed over zones; a zone of more CPUs decides.
    @Test func cpusAreAZonesNotASum() throws {
        let text = Self.zone("DMA", thresholds: [4]) + Self.zone("Normal", thresholds: [125, 125, 125, 125])
        #expect(ZoneinfoParser.accuracy(ArraySlice(text.utf8), pageSize: 4096) == VmstatAccuracy(threshold: 125, cpus: 4, pageSize: 4096))
    }

    @Test(arguments: ["", "Node 0, zone DMA\n  pagesets\n    cpu: 0\n", "  vm stats threshold: 28\n", "garbage\n\u{0}\u{ff}\n",
                      "Node 0, zone DMA\n    cpu: x\n  vm stats threshold: 28\n", "    cpu: 0\n  vm stats threshold: many\n"])
    func withoutAThresholdOrACPUThereIsNoAccuracy(_ text: String) {
        #expect(ZoneinfoParser.accuracy(ArraySlice(text.utf8), pageSize: 4096) == nil)
    }
}
