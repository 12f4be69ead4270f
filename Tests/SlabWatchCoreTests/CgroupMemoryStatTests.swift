import Testing
@testable import SlabWatchCore

/// v2's `memory.stat` is read in every leaf of a walk; its parser goes over
/// the bytes without building strings. These tests hold it to the plain
/// reading it replaced: lines split on newlines, words on spaces, a value
/// read as `UInt64(String)` reads it.
struct CgroupMemoryStatTests {
    /// The reading the byte parser must match, kept as the model.
    static func model(_ text: String) -> (UInt64?, UInt64?, UInt64?) {
        var kernel: UInt64?, reclaimable: UInt64?, unreclaimable: UInt64?
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 2, let value = UInt64(fields[1]) else { continue }
            switch fields[0] {
            case "kernel": kernel = value
            case "slab_reclaimable": reclaimable = value
            case "slab_unreclaimable": unreclaimable = value
            default: continue
            }
        }
        return (kernel, reclaimable, unreclaimable)
    }

    static func parsed(_ text: String) -> CgroupMemory.Entry? {
        // A slice not starting at 0, as a read into a larger buffer hands it over.
        let bytes = Array("xx".utf8) + Array(text.utf8)
        return CgroupMemory.entry(path: "/p", memoryStat: bytes[2...])
    }

    @Test func readsAKernelsMemoryStat() {
        let text = "anon 1234\nfile 0\nkernel 73728\nkernel_stack 16384\nslab_reclaimable 4096\nslab_unreclaimable 8192\nslab 12288\n"
        let entry = Self.parsed(text)
        #expect(entry?.kernelBytes == 73728 && entry?.slabReclaimableBytes == 4096 && entry?.slabUnreclaimableBytes == 8192)
        // Before 5.18 there is no `kernel`: the slab's two parts stand in.
        #expect(Self.parsed("slab_reclaimable 4096\nslab_unreclaimable 8192")?.kernelBytes == 12288)
        #expect(Self.parsed("anon 5\n") == nil)
    }

    /// Random lines of the three keys and others, with odd spacing, signs,
    /// letters, overflow and missing newlines: every one reads as the model reads it.
    @Test func readsEveryLineAsThePlainSplitDid() {
        var state: UInt64 = 7
        func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(bound))
        }
        let keys = ["kernel", "slab_reclaimable", "slab_unreclaimable", "slab", "anon", "kernel_stack", "", "kernel1"]
        let values = ["0", "4096", "18446744073709551615", "18446744073709551616", "+5", "-0", "-5", "-", "+", "12a", "007", ""]
        let spaces = ["", " ", "  ", "\t"]
        for _ in 0..<3000 {
            var text = ""
            for _ in 0..<next(6) {
                text += spaces[next(4)] + keys[next(keys.count)] + spaces[next(4)] + " " + values[next(values.count)]
                    + (next(5) == 0 ? " x" : "") + spaces[next(4)] + (next(8) == 0 ? "" : "\n")
            }
            let (kernel, reclaimable, unreclaimable) = Self.model(text)
            let slab = reclaimable.flatMap { r in unreclaimable.map { r.addingSaturating($0) } }
            let entry = Self.parsed(text)
            #expect(entry?.kernelBytes == kernel ?? slab, "\(text.debugDescription)")
            if let entry {
                #expect(entry.slabReclaimableBytes == reclaimable && entry.slabUnreclaimableBytes == unreclaimable, "\(text.debugDescription)")
            }
        }
    }
}
