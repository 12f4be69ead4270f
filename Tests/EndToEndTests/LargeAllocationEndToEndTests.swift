import Foundation
import Glibc
import Testing
import TestSupport

/// What the large-allocation tests share: pipes resized to 1 MiB, whose
/// `pipe_buffer` arrays are kmallocs too large for any cache.
enum LargeAllocationTesting {
    static let pipes = 1_000
    /// The name a large-allocation session goes by on the command line.
    static let outsideCaches = "(outside caches, unreclaimable)"

    /// The size of the largest kmalloc cache here, from the kernel's own list
    /// (`kmalloc-8k` and its `-cg-`, `-rcl-`, `dma-` copies: 8,192 B with 4 KiB pages).
    static func largestKmallocCache() -> Int? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/kernel/slab")) ?? []
        return names.compactMap { name -> Int? in
            guard let size = name.split(separator: "-").last, name.hasPrefix("kmalloc-") || name.hasPrefix("dma-kmalloc-") else { return nil }
            return size.hasSuffix("k") ? Int(size.dropLast()).map { $0 * 1024 } : Int(size)
        }.max()
    }

    /// What one pipe's ring at 1 MiB costs outside the caches: 1 MiB of
    /// pages is 256 `pipe_buffer`s of 40 bytes (x86_64), 10,240 bytes, above
    /// the largest cache, so SLUB takes a whole order of pages for it:
    /// PAGE_SIZE << get_order(10,240). nil where 10,240 bytes fit a cache
    /// (large pages): then no ring is a large allocation.
    static var bytesPerPipe: Int? {
        let request = (1 << 20) / Int(getpagesize()) * 40
        guard let largest = largestKmallocCache(), request > largest else { return nil }
        var bytes = Int(getpagesize())
        while bytes < request { bytes *= 2 }
        return bytes
    }

    static var available: Bool { bytesPerPipe != nil && getuid() == 0 }

    /// A python3 that makes `count` pipes, sets each to 1 MiB
    /// (`fcntl(F_SETPIPE_SZ)`: root passes the per-user pipe limit) and holds
    /// them until `close()`; first it moves itself into `cgroups` (their
    /// `cgroup.procs`). Its standard input ending (the test gone) ends it.
    final class PipeHolder {
        private let process = Process()
        private let input = Pipe(), output = Pipe()
        private(set) var pid: Int32 = 0

        init(count: Int = LargeAllocationTesting.pipes, cgroups: [String] = []) throws {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = ["-c", """
                import fcntl, os, resource, sys
                soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
                resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
                for group in \(cgroups):
                    with open(group + '/cgroup.procs', 'w') as f: f.write(str(os.getpid()))
                pipes = []
                for i in range(\(count)):
                    r, w = os.pipe()
                    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 1 << 20)
                    pipes.append((r, w))
                print(os.getpid(), flush=True)
                sys.stdin.readline()
                for r, w in pipes: os.close(r); os.close(w)
                print('closed', flush=True)
                sys.stdin.readline()
                """]
            process.standardInput = input
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            guard let line = readLine(), let pid = Int32(line) else {
                throw DaemonProcess.Failure(message: "the pipes' process did not start (RLIMIT_NOFILE below \(2 * count + 100)?)")
            }
            self.pid = pid
        }

        /// Closes every pipe (their rings are freed at once) and waits until it has.
        func close() {
            input.fileHandleForWriting.write(Data("\n".utf8))
            _ = readLine()
        }

        deinit {
            try? input.fileHandleForWriting.close()
            process.waitUntilExit()
        }

        private func readLine() -> String? {
            var line = Data()
            while true {
                let byte = output.fileHandleForReading.readData(ofLength: 1)
                if byte.isEmpty || byte == Data("\n".utf8) { break }
                line.append(byte)
            }
            return line.isEmpty ? nil : String(decoding: line, as: UTF8.self)
        }
    }

    static func json(_ result: DaemonProcess.RunResult) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any], "\(result.output)\n\(result.error)")
    }

    static func sites(_ json: [String: Any]) -> [[String: Any]] { json["call_sites"] as? [[String: Any]] ?? [] }

    static func number(_ object: [String: Any]?, _ key: String) -> Double { object?[key] as? Double ?? .nan }

    /// The session's part of `pid` under the site whose function starts with `prefix`.
    static func owner(_ json: [String: Any], site prefix: String, pid: Int32) -> [String: Any]? {
        sites(json).first { ($0["function"] as? String)?.hasPrefix(prefix) == true }
            .flatMap { ($0["processes"] as? [[String: Any]])?.first { $0["pid"] as? Double == Double(pid) } }
    }
}

/// `slabwatch attribute '(outside caches, unreclaimable)'` on the live
/// kernel: 1,000 pipes at 1 MiB, each ring one allocation above the largest
/// kmalloc cache that the kernel traces twice (from inside the allocator,
/// then for pipe_resize_ring), counted once, at pipe_resize_ring, and its
/// free matched.
extension EndToEndTests {
    @Test(.enabled(if: BPFTesting.available && LargeAllocationTesting.available))
    func bpfCountsEachLargeAllocationOnceAtItsCaller() throws {
        let perPipe = try #require(LargeAllocationTesting.bytesPerPipe), pipes = LargeAllocationTesting.pipes
        // The pipes' process in a memory cgroup of the test's own, where the memory controller is on v1 (here).
        let memory = try BPFTesting.memoryV1Mount().map { try BPFTesting.Cgroup(in: $0, name: "slabwatch-test-large-\(getpid())") }
        var holder: LargeAllocationTesting.PipeHolder?
        let held = try AttributionTesting.attribute([LargeAllocationTesting.outsideCaches, "--source", "bpf", "--duration", "3s", "--json"], bpfPrograms: 2) {
            holder = try? LargeAllocationTesting.PipeHolder(cgroups: memory.map { [$0.path] } ?? [])
        }
        let pid = try #require(holder?.pid)
        holder?.close()
        holder = nil
        #expect(held.status == 0, "\(held.error)")
        let json = try LargeAllocationTesting.json(held)
        #expect(json["source"] as? String == "bpf" && json["cache"] as? String == LargeAllocationTesting.outsideCaches, "\(json)")
        #expect(LargeAllocationTesting.number(json, "larger_than_bytes") == Double(try #require(LargeAllocationTesting.largestKmallocCache())))
        // Once each, at the caller: not twice, and not at the allocator's own event.
        let mine = try #require(LargeAllocationTesting.owner(json, site: "pipe_resize_ring+", pid: pid), "\(LargeAllocationTesting.sites(json))")
        #expect(LargeAllocationTesting.number(mine, "allocations") == Double(pipes), "\(mine)")
        #expect(LargeAllocationTesting.number(mine, "net_count") == Double(pipes), "\(mine)")
        #expect(LargeAllocationTesting.number(mine, "net_bytes") == Double(pipes * perPipe), "\(mine)")
        #expect(LargeAllocationTesting.owner(json, site: "__kmalloc", pid: pid) == nil, "\(LargeAllocationTesting.sites(json))")
        #expect(LargeAllocationTesting.number(json, "frees_unseen") == 0, "the second event is no address reused")
        if let memory { #expect(mine["memory_cgroup"] as? String == memory.name, "\(mine)") }

        // Made and closed while traced: every ring's free matched, nothing net.
        let churn = try AttributionTesting.attribute([LargeAllocationTesting.outsideCaches, "--source", "bpf", "--duration", "3s", "--json"], bpfPrograms: 2) {
            if let pipes = try? LargeAllocationTesting.PipeHolder() {
                holder = pipes
                pipes.close()
            }
        }
        let churned = try #require(holder?.pid)
        holder = nil
        #expect(churn.status == 0, "\(churn.error)")
        let after = try LargeAllocationTesting.json(churn)
        let closed = try #require(LargeAllocationTesting.owner(after, site: "pipe_resize_ring+", pid: churned), "\(LargeAllocationTesting.sites(after))")
        #expect(LargeAllocationTesting.number(closed, "allocations") == Double(pipes), "\(closed)")
        #expect(LargeAllocationTesting.number(closed, "net_count") == 0 && LargeAllocationTesting.number(closed, "net_bytes") == 0, "\(closed)")
        #expect(LargeAllocationTesting.number(after, "frees_unseen") == 0)
    }

    /// The same through the tracefs stream. It names no process, so its
    /// truth is the site's: the 1,000 rings within the events it says it
    /// lost (`dropped`), and never the allocator's own event as a site.
    @Test(.enabled(if: LargeAllocationTesting.available))
    func tracefsCountsEachLargeAllocationOnceAtItsCaller() throws {
        let tracefs = try AttributionTesting.TracefsAsFound(mount: true)  // to see that no instance is left
        defer { withExtendedLifetime(tracefs) {} }
        let perPipe = try #require(LargeAllocationTesting.bytesPerPipe), pipes = Double(LargeAllocationTesting.pipes)
        var holder: LargeAllocationTesting.PipeHolder?
        let held = try AttributionTesting.attribute([LargeAllocationTesting.outsideCaches, "--source", "trace", "--duration", "3s", "--json"]) {
            holder = try? LargeAllocationTesting.PipeHolder()
        }
        #expect(holder != nil)
        holder?.close()
        holder = nil
        #expect(held.status == 0, "\(held.error)")
        let json = try LargeAllocationTesting.json(held)
        #expect(json["source"] as? String == "trace" && LargeAllocationTesting.number(json, "larger_than_bytes") > 0, "\(json)")
        let lost = LargeAllocationTesting.number(json, "dropped")
        let sites = LargeAllocationTesting.sites(json)
        let ring = try #require(sites.first { ($0["function"] as? String)?.hasPrefix("pipe_resize_ring+") == true }, "\(sites)")
        #expect(abs(LargeAllocationTesting.number(ring, "allocations") - pipes) <= lost, "\(ring)")
        #expect(abs(LargeAllocationTesting.number(ring, "net_bytes") - pipes * Double(perPipe)) <= lost * Double(perPipe), "\(ring)")
        #expect(!sites.contains { ($0["function"] as? String)?.hasPrefix("__kmalloc") == true }, "\(sites.map { $0["function"] ?? "" })")

        let churn = try AttributionTesting.attribute([LargeAllocationTesting.outsideCaches, "--source", "trace", "--duration", "3s", "--json"]) {
            (try? LargeAllocationTesting.PipeHolder())?.close()
        }
        #expect(churn.status == 0, "\(churn.error)")
        let after = try LargeAllocationTesting.json(churn)
        let churnLost = LargeAllocationTesting.number(after, "dropped")
        let closed = try #require(LargeAllocationTesting.sites(after).first { ($0["function"] as? String)?.hasPrefix("pipe_resize_ring+") == true })
        #expect(abs(LargeAllocationTesting.number(closed, "allocations") - pipes) <= churnLost, "\(closed)")
        #expect(abs(LargeAllocationTesting.number(closed, "net_count")) <= churnLost, "\(closed)")
        // A hist trigger would count both events of each: forced, the session says so in one line instead.
        let hist = try DaemonProcess.run(DaemonProcess.binary.path, ["attribute", LargeAllocationTesting.outsideCaches, "--source", "hist"])
        #expect(hist.status == 4 && hist.output.isEmpty, "\(hist.output)")
        #expect(hist.error == "slabwatch: --source hist: a hist trigger counts each of a large allocation's two kmalloc events and matches no pointer\n",
                "\(hist.error)")
        #expect(AttributionTesting.slabwatchInstances().isEmpty)
    }
}
