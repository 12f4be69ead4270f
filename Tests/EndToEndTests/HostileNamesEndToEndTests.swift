import Foundation
import Glibc
import Testing
import TestSupport

/// Names that any user chooses — a process's `comm` (prctl PR_SET_NAME), a
/// cgroup directory, a report handed to `diff` — reach root's terminal only
/// through the sanitiser: no ESC, OSC, BEL, CR or C1 control in what
/// `attribute`, `measure` and `diff` print, and no forged line.
enum HostileNames {
    /// ESC ] 0 ; pwn BEL (sets the terminal's title), CR, then U+009B 2 J
    /// (CSI as one C1 scalar: clears the screen). 13 bytes: a comm keeps 15.
    static let comm = "\u{1b}]0;pwn\u{7}\r\u{9b}2J"
    static let commShown = "?]0;pwn???2J"

    /// ESC ] 2 ; … BEL, CR, and OSC … ST as C1 scalars (a cgroup name may hold
    /// anything but '/' and a newline).
    static func cgroup(_ id: Int32) -> String { "slabwatch-\u{1b}]2;owned\u{7}\r\u{9d}0;x\u{9c}-\(id)" }
    static func cgroupShown(_ id: Int32) -> String { "slabwatch-?]2;owned???0;x?-\(id)" }

    /// A control a terminal acts on, other than the line breaks of the report itself.
    static func hasControl(_ text: String) -> Bool { text.unicodeScalars.contains { HostileText.isControl($0) && $0 != "\n" } }

    /// Moves itself into the cgroup `argv[1]`, takes the comm whose bytes are
    /// `argv[2]` (hex), prints its pid and creates 3,000 files in `argv[3]`.
    static let workload = """
        import ctypes, os, sys
        with open(sys.argv[1] + '/cgroup.procs', 'w') as f: f.write(str(os.getpid()))
        ctypes.CDLL(None).prctl(15, bytes.fromhex(sys.argv[2]), 0, 0, 0)
        print(os.getpid(), flush=True)
        for i in range(3000): open('%s/h%d' % (sys.argv[3], i), 'w').close()
        """

    static var commHex: String { comm.utf8.map { String(format: "%02x", $0) }.joined() }
}

extension EndToEndTests {
    /// A process with a hostile comm in a cgroup with a hostile name, traced
    /// by BPF (which names both): `attribute`'s table and sentence, and
    /// `measure --attribute`'s report, show each control as `?`.
    @Test(.enabled(if: BPFTesting.available && BPFTesting.cgroup2Mount() != nil))
    func hostileProcessAndCgroupNamesReachNoTerminal() throws {
        let fs = try AttributionTesting.Tmpfs()
        let mount = try #require(BPFTesting.cgroup2Mount())
        let cgroup = HostileNames.cgroup(getpid())
        guard mkdir("\(mount)/\(cgroup)", 0o755) == 0 else { throw DaemonProcess.Failure(message: "mkdir cgroup: errno \(errno)") }
        defer { rmdir("\(mount)/\(cgroup)") }
        var child: Int32 = 0
        let attributed = try AttributionTesting.attribute(["shmem_inode_cache", "--source", "bpf", "--duration", "3s"]) {
            let run = try? DaemonProcess.run("/usr/bin/python3", ["-c", HostileNames.workload, "\(mount)/\(cgroup)", HostileNames.commHex, fs.path])
            child = Int32(run?.output.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
        }
        #expect(attributed.status == 0 && child > 0, "\(attributed.error)")
        #expect(!HostileNames.hasControl(attributed.output) && !HostileNames.hasControl(attributed.error), "\(attributed.output.debugDescription)")
        let owner = "from \(HostileNames.commShown) (pid \(child)) in /\(HostileNames.cgroupShown(getpid()))"
        #expect(attributed.output.contains("(3,000 of 3,000) \(owner)"), "the table: \(attributed.output.debugDescription)")
        let sentence = attributed.output.unicodeScalars.split(separator: "\n").last.map { String($0) } ?? ""
        // The workload moves itself only in the cgroup2 hierarchy: its memory cgroup is the test's, named after the
        // cgroup as it is another. (Where memory is on cgroup2, it is the cgroup's, or an ancestor's where the
        // controller is not enabled below it.)
        let named = BPFTesting.ownMemoryCgroupV1().map { [", \(owner), memory cgroup \($0)."] } ?? [", \(owner).", ", \(owner), memory cgroup /."]
        #expect(sentence.hasPrefix("Allocated mostly by ") && named.contains { sentence.hasSuffix($0) }, "\(sentence.debugDescription)")

        // measure --attribute: the report on stderr names the same process.
        let files = fs.path + "/measured"  // new files, new inodes
        #expect(mkdir(files, 0o755) == 0)
        let measured = try DaemonProcess.run(DaemonProcess.binary.path, [
            "measure", "--attribute", "shmem_inode_cache", "--baseline", "200ms", "--settle", "500ms", "--",
            "/usr/bin/python3", "-c", HostileNames.workload, "\(mount)/\(cgroup)", HostileNames.commHex, files,
        ])
        #expect(measured.status == 0 && !HostileNames.hasControl(measured.error), "\(measured.error.debugDescription)")
        #expect(measured.error.contains("mostly from \(HostileNames.commShown) (pid "), "\(measured.error.debugDescription)")
    }

    /// A report crafted to set the terminal's title, clear the screen and
    /// print a line of its own, given to `diff`: shown with `?`, one line per cache.
    @Test func aCraftedReportReachesNoTerminalThroughDiff() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-diff-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // JSON must escape C0 controls (ESC, BEL, CR, LF); C1 ones it may carry raw, as here.
        let report = #"""
            {"command":["make","\u001b]0;pwned\u0007"],"exit_status":0,"wall_seconds":1,"interval_seconds":0.2,"settle_seconds":1,
             "samples":10,"run_samples":5,"noise_bytes":1048576,
             "drivers":[{"driver":"inodes","inode_cache":"evil\u001b[2J_inode_cache","before":0,"peak":1000,"after":1000}],
             "caches":[{"slab":"kmalloc-32\r\nkmalloc-64: 0 B per inode (forged)","reclaimable":false,"before_bytes":0,
                        "peak_bytes":1048576,"after_bytes":1048576,"driver":"inodes","inode_cache":"evil\u001b[2J_inode_cache",
                        "bytes_per_unit":1024,"r_squared":0.99,"driver_change":1000,"fits":[]},
                       {"slab":"x\#u{9d}0;title\#u{9c}","reclaimable":false,"before_bytes":0,"peak_bytes":1048576,"after_bytes":0,
                        "driver":null,"not_judged":"\#u{9b}31mred","fits":[]}],
             "slab_unreclaimable":null}
            """#
        let file = directory.appendingPathComponent("crafted.json")
        try Data(report.utf8).write(to: file)
        let result = try DaemonProcess.run(DaemonProcess.binary.path, ["diff", file.path, file.path])
        #expect(result.status == 0, "\(result.error)")
        #expect(!HostileNames.hasControl(result.output), "\(result.output.debugDescription)")
        // By scalar: "\r\n" is one Character, and a terminal starts a line at its "\n".
        let lines = result.output.unicodeScalars.split(separator: "\n").map { String($0) }
        #expect(!lines.contains { $0.hasPrefix("kmalloc-64") }, "no line of the report's own: \(result.output)")
        let forged = lines.first { $0.hasPrefix("kmalloc-32??kmalloc-64: 0 B per inode (forged): ") }
        #expect(forged?.contains(" per inode of evil?[2J_inode_cache") == true, "one line, names shown with ?: \(result.output)")
        #expect(lines.first == "before: `make ?]0;pwned?`; after: `make ?]0;pwned?`", "\(result.output)")
    }

    /// A recording is anyone's files: a cache named to set the title and
    /// return the carriage reaches `replay`'s timeline as `?`.
    @Test func aHostileCacheNameInARecordingReachesNoTerminalThroughReplay() throws {
        let recording = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-hostile-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: recording) }
        try writeSeedRecording(recording)
        let name = "kmalloc-32\u{1b}]0;owned\u{7}\r\u{9b}2J"  // slabinfo fields are split at spaces: none in it
        for sample in try FileManager.default.contentsOfDirectory(atPath: recording.path) {
            let slabinfo = recording.appendingPathComponent("\(sample)/proc/slabinfo")
            let text = try String(contentsOf: slabinfo, encoding: .utf8)
            try Data(text.replacingOccurrences(of: "kmalloc-32 ", with: name + " ").utf8).write(to: slabinfo)
            let sysfs = recording.appendingPathComponent("\(sample)/sys/kernel/slab")
            if FileManager.default.fileExists(atPath: sysfs.appendingPathComponent("kmalloc-32").path) {
                try FileManager.default.moveItem(at: sysfs.appendingPathComponent("kmalloc-32"), to: sysfs.appendingPathComponent(name))
            }
        }
        let result = try DaemonProcess.run(DaemonProcess.binary.path, ["replay", recording.path])
        #expect(result.status == 0, "\(result.error)")
        #expect(!HostileNames.hasControl(result.output) && !HostileNames.hasControl(result.error), "\(result.output.debugDescription)")
        #expect(result.output.contains(" opened ") && result.output.contains("kmalloc-32?]0;owned?"), "the finding, named with ?: \(result.output)")
    }
}
