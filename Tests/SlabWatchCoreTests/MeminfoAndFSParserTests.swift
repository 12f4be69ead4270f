import Testing
@testable import SlabWatchCore

struct MeminfoParserTests {
    @Test(arguments: [
        "local-6.18-firecracker", "coreos-sosreport-4.18.0-80.11.2.el8_0.x86_64",
        "chromeos-syslogs-6.6.119-x86_64", "pcp-qa-meminfo-root-001", "pcp-qa-meminfo-root-007",
        "prometheus-procfs-fixtures-5.8-era", "lkml-2.6.5-x86_64-slab-v2.0-statistics",
        "innofirmware-4.4.0-xilinx-armv7-slab",
    ])
    func everyFieldOfARealCapture(folder: String) throws {
        let bytes = try Fixtures.capture(folder, "proc/meminfo")
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
        let result = MeminfoParser.parse(bytes)
        #expect(result.malformedLines == 0)
        #expect(result.meminfo.fields.count == lines.count)
        let total = try #require(lines.first { $0.hasPrefix("MemTotal:") })
        let kB = try #require(UInt64(total.split(separator: " ")[1]))
        #expect(result.meminfo.totalBytes == kB * 1024)
    }

    @Test func legacy24TableIsSkippedNotCounted() throws {
        let result = MeminfoParser.parse(try Fixtures.capture("lkml-2.4.15-pre1-smp-slab-v1.1", "proc/meminfo"))
        #expect(result.malformedLines == 0)
        #expect(result.meminfo.totalBytes == 3_343_692 * 1024)
        #expect(result.meminfo["Mem"] == nil)
    }

    @Test func unitlessFieldsAndParenthesesInKeys() {
        let text = "MemTotal: 100 kB\nHugePages_Total:     7\nActive(anon):  3 kB\nVmallocTotal:   34359738367 kB\n"
        let m = MeminfoParser.parse(ArraySlice(text: text)).meminfo
        #expect(m["HugePages_Total"] == 7)
        #expect(m.fields[1].isBytes == false)
        #expect(m["Active(anon)"] == 3 * 1024)
        #expect(m["VmallocTotal"] == 34_359_738_367 * 1024)
        #expect(m.slabBytes == nil)
    }

    @Test(arguments: [
        "Slab: lots kB", "Slab: 12 MB", "Slab 12 kB", ": 12 kB", "Slab: 18446744073709551615 kB", "Slab: 1 2 kB x",
    ])
    func malformedLineIsCounted(line: String) {
        let result = MeminfoParser.parse(ArraySlice(text: "MemTotal: 1 kB\n\(line)\nSUnreclaim: 2 kB\n"))
        #expect(result.malformedLines == 1)
        #expect(result.meminfo.totalBytes == 1024 && result.meminfo.slabUnreclaimableBytes == 2048)
    }

    @Test func emptyAndGarbageLoseNothingAndThrowNothing() {
        #expect(MeminfoParser.parse([]).meminfo.fields.isEmpty)
        let garbage = MeminfoParser.parse(ArraySlice([0xFF, 0x00, 0x3A, 0x0A, 0x41]))
        #expect(garbage.meminfo.fields.isEmpty)
        #expect(garbage.malformedLines == 2)
    }
}

struct FSCountersParserTests {
    @Test func realCaptures() throws {
        let inodes = try FSCountersParser.inodeNr(Fixtures.capture("coreos-sosreport-4.18.0-80.11.2.el8_0.x86_64", "proc/sys/fs/inode-nr"))
        #expect(inodes.inodes > 0)
        let dentries = try FSCountersParser.dentryState(Fixtures.capture("local-6.18-firecracker", "proc/sys/fs/dentry-state"))
        #expect(dentries.negativeDentries ?? 0 > 0)
        let files = try FSCountersParser.fileNr(Fixtures.capture("d2000-2.6.16-arm720t-slab", "proc/sys/fs/file-nr"))
        #expect(files.maximum > files.allocated)
    }

    @Test func tabSeparatedValues() throws {
        let d = try FSCountersParser.dentryState(ArraySlice(text: "1291890\t1290375\t45\t0\t22642\t0\n"))
        #expect(d == DentryCounts(dentries: 1_291_890, unusedDentries: 1_290_375, negativeDentries: 22642))
        let f = try FSCountersParser.fileNr(ArraySlice(text: "3264\t0\t9223372036854775807\n"))
        #expect(f == FileHandleCounts(allocated: 3264, maximum: 9_223_372_036_854_775_807))
    }

    @Test(arguments: ["", "\n", "12\n", "12 x\n", "\u{FF}\u{FE}\n", "-1 2\n"])
    func malformedInodeNrThrows(text: String) {
        #expect(throws: FSCountersParser.Failure.self) { try FSCountersParser.inodeNr(ArraySlice(text: text)) }
    }
}

struct RFC3339Tests {
    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"),
        (951_782_400_000, "2000-02-29T00:00:00.000Z"),
        (1_795_611_213_889, "2026-11-25T12:53:33.889Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
    ])
    func formats(millis: Int64, text: String) {
        #expect(RFC3339.format(unixMilliseconds: millis) == text)
    }
}
