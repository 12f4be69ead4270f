// Measures what one sample costs, next to what the kernel spends producing the
// same files. Prints a table; asserts nothing. See docs/development.md, "Benchmarks".
//
//   swift run -c release slabwatch-bench [iterations] [procfs] [sysfs]
//   swift run -c release slabwatch-bench --state-encoding-only
//   swift run -c release slabwatch-bench 200 --cgroups-only
//   swift run -c release slabwatch-bench --ring-recording RECORDING   (what the ring takes a value of a recording)
//   swift run -c release slabwatch-bench 20000 --tick-only   (whole sampler ticks alone, for a profiler)
//   swift run -c release slabwatch-bench 0 [procfs] --floor-process [kept]   (reads the files every 100 ms until killed)
import CAllocationCounter
import Dispatch
import Glibc
import Logging
import SlabWatch
import SlabWatchCore

let arguments = CommandLine.arguments
// [iterations] [procfs] [sysfs]: the arguments before the first flag, so that
// `0 DIR --floor-process` reads DIR and does not take the flag for a sysfs path.
let positional = Array(arguments.dropFirst().prefix { !$0.hasPrefix("--") })
let iterations = positional.first.flatMap { Int($0) } ?? 2000
let detectorOnly = arguments.contains("--detector-only")
let stateEncodingOnly = arguments.contains("--state-encoding-only")
let cgroupsOnly = arguments.contains("--cgroups-only")
let tickOnly = arguments.contains("--tick-only")
let ringRecording = arguments.firstIndex(of: "--ring-recording").flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
let paths = KernelPaths(procfs: positional.count > 1 ? positional[1] : "/proc", sysfs: positional.count > 2 ? positional[2] : "/sys")
let files = KernelPaths.procFiles.map { "\(paths.procfs)/\($0)" }

// The kernel's floor as a whole process, for scripts/compare.sh: reads the
// files every 100 ms as a daemon's sample does (/proc/meminfo twice,
// /proc/zoneinfo every 60th time; sysctl files 4 KiB a read, the rest
// 64 KiB), sleeping to each deadline, and nothing else, until killed. Its
// CPU, taken from outside as the daemon's is, is what any sampler at that
// pace pays, the wake included. With `kept`: through descriptors kept open,
// read from offset 0, as the daemon reads them.
if let index = arguments.firstIndex(of: "--floor-process") {
    let kept = arguments.dropFirst(index + 1).first == "kept"
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    let zoneinfo = "\(paths.procfs)/\(KernelPaths.procFiles[5])"
    let reads = ([KernelPaths.procFiles[1]] + KernelPaths.procFiles).map { file in
        let path = "\(paths.procfs)/\(file)"
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { print("--floor-process: cannot open \(path): \(String(cString: strerror(errno)))"); exit(1) }
        if !kept { close(fd) }
        return (path: path, chunk: file.hasPrefix("sys/") ? 4 << 10 : 64 << 10, fd: kept ? fd : -1)
    }
    var deadline = timespec()
    clock_gettime(CLOCK_MONOTONIC, &deadline)
    var round = 0
    while true {
        defer { round += 1 }
        for read in reads where read.path != zoneinfo || round % 60 == 0 {
            let fd = kept ? read.fd : open(read.path, O_RDONLY | O_CLOEXEC)
            var length = 0
            while true {
                let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + length, min(read.chunk, $0.count - length), off_t(length)) }
                guard n > 0 else { break }
                length += n
            }
            if !kept { close(fd) }
        }
        deadline.tv_nsec += 100_000_000
        if deadline.tv_nsec >= 1_000_000_000 { deadline.tv_sec += 1; deadline.tv_nsec -= 1_000_000_000 }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, nil)
    }
}

/// CPU seconds (user + system) of this process so far.
func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// CPU and heap allocations per run of `body`, run back to back (warm caches).
func measure(_ label: String, _ body: () -> Void) -> Double {
    measured(label, body).seconds
}

/// The same, returning both.
func measured(_ label: String, _ body: () -> Void) -> (seconds: Double, allocations: Double) {
    for _ in 0..<min(50, iterations) { body() }  // warm caches and buffers
    let allocationsBefore = slabwatch_allocation_count()
    let start = cpuSeconds()
    for _ in 0..<iterations { body() }
    let perIteration = (cpuSeconds() - start) / Double(iterations)
    let allocations = Double(slabwatch_allocation_count() - allocationsBefore) / Double(iterations)
    report(label, perIteration, allocations: allocations)
    return (perIteration, allocations)
}

/// Whole sampler ticks through `sampleOnce`, which runs each on the
/// sampler's queue with a `DispatchQueue.sync`; beside them that sync alone
/// (of a closure returning a value, as sampleOnce's does, measured the same
/// way), and the difference: what the tick itself costs, whatever runs it on
/// the queue (a sync of any closure allocates 2 or 3 times: the block made of
/// it, and the box of its result). Returns the first.
func measureTicks(_ sampler: Sampler) -> Double {
    let tick = measured("slabwatch: whole sampler tick") { sampler.sampleOnce() }
    let queue = DispatchQueue(label: "bench")
    var answers = 0
    let sync = measured("  of which DispatchQueue.sync, as sampleOnce calls it") { answers += queue.sync { 1 } }
    // Two places: what is left is a walk of the memory cgroups every 12th
    // tick, and the hour-back footprints when the coarse tier moves.
    report("  less that sync: the tick itself", tick.seconds - sync.seconds,
           allocations: tick.allocations - sync.allocations, places: 2)
    return tick.seconds
}

/// The same, one run every `intervalMilliseconds` as the daemon does: between
/// runs the CPU's caches go to other work, which a tight loop never shows.
func measureAtCadence(_ label: String, runs: Int = 100, intervalMilliseconds: Int = 100, _ body: () -> Void) -> Double {
    var total = 0.0
    for _ in 0..<runs {
        usleep(useconds_t(intervalMilliseconds * 1000))
        let start = cpuSeconds()
        body()
        total += cpuSeconds() - start
    }
    report(label, total / Double(runs), allocations: nil)
    return total / Double(runs)
}

func report(_ label: String, _ seconds: Double, allocations: Double?, places: Int = 1) {
    let allocationText = allocations.map { "  \(fixed($0, width: 7, places: places)) allocations" } ?? ""
    print("\(padded(label, 52)) \(fixed(seconds * 1e6, width: 8, places: 1)) µs CPU\(allocationText)")
}

/// Opens, reads to EOF with `buffer`, closes; returns the number of read(2) calls.
@discardableResult
func readWhole(_ path: String, into buffer: inout [UInt8], chunk: Int) -> Int {
    let fd = path.withCString { open($0, O_RDONLY) }
    guard fd >= 0 else { return 0 }
    defer { close(fd) }
    var calls = 1
    while buffer.withUnsafeMutableBytes({ read(fd, $0.baseAddress, min(chunk, $0.count)) }) > 0 { calls += 1 }
    return calls
}

/// The kernel's floor: open, read to EOF and close the sample's files, as a
/// reader that knows them would. The one-line sysctl files (/proc/sys/fs/*)
/// are read with 4 KiB: the kernel allocates and zeroes a buffer of the size
/// asked for on every sysctl read, so asking for more only costs more. The
/// seq_file files (slabinfo, meminfo) hand out a page or more per read(2)
/// whatever is asked, so 64 KiB, as slabwatch reads them.
func readFloor(into buffer: inout [UInt8]) {
    for (path, chunk) in floorReads { readWhole(path, into: &buffer, chunk: chunk) }
}
let floorReads = zip(files, KernelPaths.procFiles).map { path, file in (path, file.hasPrefix("sys/") ? 4 << 10 : 64 << 10) }

/// The floor as this bench measured it before: every file with 1 MiB reads,
/// which made each sysctl read cost ≈ 100 µs of zeroing (README's older figures).
func readFloorAsBefore(into buffer: inout [UInt8]) {
    for path in files { readWhole(path, into: &buffer, chunk: 1 << 20) }
}

// 0. Memory cgroups: one walk and read of 1,000 leaves in a fixture tree of
//    each version (plain files under /tmp, so it runs anywhere: cgroupfs
//    answers from memory, a disk filesystem from its page cache),
//    and of the live hierarchy as it is; then what a walk's reading costs the
//    history, and ranking one finding against a full history (720 readings × 50).
if cgroupsOnly {
    let scratch = "/tmp/slabwatch-bench-cgroups-\(getpid())"
    for version in [CgroupMemory.Version.v1, .v2] {
        let root = "\(scratch)/\(version.rawValue)"
        mkdir(scratch, 0o755)
        mkdir(root, 0o755)
        // 100 pods of 10 containers, as the kubelet's cgroupfs driver lays them out.
        for pod in 0..<100 {
            let podPath = "\(root)/pod\(pod)"
            mkdir(podPath, 0o755)
            for container in 0..<10 {
                let path = "\(podPath)/c\(container)"
                mkdir(path, 0o755)
                let (file, text) = version == .v1
                    ? ("memory.kmem.usage_in_bytes", "\(1_000_000 + pod * 10 + container)\n")
                    : ("memory.stat", "anon 1048576\nfile 4096\nkernel \(1_000_000 + pod)\nkernel_stack 16384\npagetables 8192\n"
                        + "percpu 0\nsock 0\nvmalloc 0\nshmem 0\nslab_reclaimable 65536\nslab_unreclaimable 131072\nslab 196608\n")
                let fd = open("\(path)/\(file)", O_CREAT | O_WRONLY | O_TRUNC, 0o644)
                _ = text.utf8CString.withUnsafeBytes { write(fd, $0.baseAddress, $0.count - 1) }
                close(fd)
            }
        }
        let reader = CgroupMemoryReader(root: root, version: version, limit: 50)
        _ = measure("cgroups: walk + read 1,000 leaves (\(version.rawValue) fixture)") { _ = reader.read() }
    }
    _ = system("rm -rf \(scratch)")
    if let live = ["/sys/fs/cgroup/memory"].first(where: { access("\($0)/memory.kmem.usage_in_bytes", R_OK) == 0 }) {
        let reader = CgroupMemoryReader(root: live, version: .v1, limit: 50)
        let leaves = reader.read()
        _ = measure("cgroups: the live v1 hierarchy (\(leaves.entries.count + leaves.others) leaves)") { _ = reader.read() }
    }
    // sampler.max-cgroups exported, and the history's columns (the largest of them, at most CgroupHistory.maxColumns).
    for (exported, columns) in [(50, 50), (512, CgroupHistory.maxColumns), (512, 512)] {
        var history = CgroupHistory(columns: columns)
        var time: Int64 = 0
        let reading = CgroupMemory.largest((0..<1000).map { .init(path: "/kubepods/pod\($0 / 10)/c\($0 % 10)", kernelBytes: UInt64($0) * 4096) },
                                           limit: exported, version: .v1)
        _ = measure("cgroups: keep one reading of \(exported) in the history (\(columns) + other)") { time += 1; history.append(reading, at: time) }
        let footprint: [Double?] = (0..<720).map { Double($0) * 1e6 }
        let series = (0..<columns).map { column in
            ChargeRanking.Series(cgroup: "/c\(column)", bytes: (0..<720).map { Double($0 * (column % 3)) * 1e5 })
        }
        _ = measure("cgroups: rank one finding (720 readings × \(columns) cgroups)") {
            _ = ChargeRanking.byKernelMemory(footprint: footprint, cgroups: series, other: footprint, version: .v1, windowSeconds: 43_200)
        }
        print("cgroup history: \(history.storageBytes) bytes at 720 readings × \(columns) cgroups")
        let kubelet = CgroupMemory.largest((0..<1000).map {
            .init(path: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod\(String(repeating: "a", count: 8))_5b6f_4c7d_9e0a_\($0 / 10)"
                    + ".slice/cri-containerd-\(String(repeating: "3f2a1b9c", count: 7))\($0).scope",
                  kernelBytes: UInt64($0) * 4096, slabReclaimableBytes: UInt64($0) * 1024, slabUnreclaimableBytes: UInt64($0) * 2048)
        }, limit: exported, version: .v2)
        var sample = Sample(timestampMilliseconds: 0)
        sample.cgroupMemory = kubelet
        var bytes = 0
        _ = measure("cgroups: /metrics with \(exported) v2 cgroups of kubelet paths") {
            bytes = MetricsRenderer.render(.init(sample: sample, exportedCaches: [], version: "bench")).count
        }
        print("/metrics with \(exported) v2 cgroups: \(bytes) bytes")
    }
    exit(0)
}

// 0. The ring on a recording of a real machine (`slabwatch record`): what a
//    footprint value costs packed, every sample and every 5th (the default
//    5 s interval from a 1 s recording), and what a full default ring of
//    those caches would hold at that cost.
if let ringRecording {
    let reader = { (path: String) in ProcReader(paths: KernelPaths(procfs: "\(path)/proc", sysfs: "\(ringRecording)/.none"),
                                               pageSize: UInt64(sysconf(Int32(_SC_PAGESIZE)))) }
    let samples = try Recording.sampleDirectories(ringRecording).map { reader($0.path).sample(timestampMilliseconds: $0.milliseconds) }
    for every in [1, 5] {
        let kept = samples.indices.filter { $0 % every == 0 }.map { samples[$0] }
        var ring = SampleRing(configuration: .init(fineCapacity: kept.count, coarseCapacity: 1, coarseEvery: kept.count))
        for sample in kept { ring.append(sample) }
        let packed = ring.fine.packedFootprints
        let perValue = Double(packed.bytes) / Double(max(1, packed.values))
        // A full default ring: 1,440 slots of time and counters, and per series each tier's raw newest
        // block and 2 × 12 packed blocks of 64 values at this cost.
        let series = ring.seriesNames.count
        let fullRing = 1440 * 64 + series * (2 * 64 * 4 + Int(2 * 12 * 64 * perValue))
        print("ring, every \(every) of \(samples.count) recorded samples, \(series) caches: \(packed.values) packed values, "
              + "\(Human.decimal(perValue, 3)) bytes a value (headers included; 4 unpacked); a full default ring of them ≈ "
              + "\(Human.decimal(Double(fullRing) / 1e6, 2)) MB")
    }
    exit(0)
}

// 0. Whole sampler ticks alone, `iterations` of them back to back (for
//    `perf record`): CPU and heap allocations per tick, and without those
//    of the `DispatchQueue.sync` that runs it (see `measureTicks`).
if tickOnly {
    let sampler = try Sampler(settings: .init(paths: paths), ring: .init(), store: StateStore(),
                              logger: Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() })
    _ = measureTicks(sampler)
    exit(0)
}

if !detectorOnly && !stateEncodingOnly {
// 1. The kernel's cost: open, read to EOF and close the same files, no parsing.
var raw = [UInt8](repeating: 0, count: 1 << 20)
let kernel = measure("kernel: read the sample's \(files.count) files (no parsing)") { readFloor(into: &raw) }
let kernelAsBefore = measure("kernel, as measured before: 1 MiB reads") { readFloorAsBefore(into: &raw) }

// 1b. seq_file hands /proc/slabinfo out at most a page per read(2) and formats
//     the line that did not fit again on the next call, so the buffer size only
//     matters below a page. Read calls and CPU per whole read, by buffer size.
for chunk in [1 << 10, 4 << 10, 64 << 10, 1 << 20] {
    let calls = readWhole(files[0], into: &raw, chunk: chunk)
    _ = measure("kernel: slabinfo alone, \(chunk >> 10) KiB buffer, \(calls) reads") {
        readWhole(files[0], into: &raw, chunk: chunk)
    }
}

// 2. slabwatch's read + parse (sysfs is re-read only when caches change).
let reader = ProcReader(paths: paths, pageSize: UInt64(sysconf(Int32(_SC_PAGESIZE))))
var sample = reader.sample(timestampMilliseconds: 0)
let readParse = measure("slabwatch: read + parse (ProcReader)") {
    sample = reader.sample(timestampMilliseconds: 0)
}

// 3. The rest of a tick: ring append and rendering both bodies.
var ring = SampleRing()
var everyCache = CacheSelection(filter: .all, bound: .unbounded)
let renderCost = measure("slabwatch: ring append + /metrics + /snapshot") {
    ring.append(sample)
    let choice = everyCache.choose(sample)
    _ = MetricsRenderer.render(.init(sample: sample, exportedCaches: choice.caches, cachesBeyondTop: choice.beyondTop, version: "bench"))
    _ = SnapshotRenderer.render(sample, intervalSeconds: 5)
}

// 3b. /metrics alone, as the first request after a tick renders it: the
//     choice of caches included, bounded (the default) and with every cache.
func metricsRender(_ bound: ExportBound) -> (seconds: Double, bytes: Int) {
    var selection = CacheSelection(filter: .all, bound: bound)
    // The same caches an hour before the sample: every growth is looked up.
    var hourAgo = SampleRing()
    hourAgo.append(Sample(timestampMilliseconds: sample.timestampMilliseconds - 3_600_000, caches: sample.caches))
    let growth = FootprintBaseline(ring: hourAgo, windowSeconds: ExportBound.growthWindowSeconds)
    var bytes = 0
    let seconds = measure("slabwatch: /metrics render, slab.export: \(bound.all ? "all" : "bounded")") {
        let choice = selection.choose(sample, growth: growth)
        bytes = MetricsRenderer.render(.init(sample: sample, exportedCaches: choice.caches, cachesBeyondTop: choice.beyondTop,
                                             version: "bench")).count
    }
    return (seconds, bytes)
}
let boundedRender = metricsRender(ExportBound())
let allRender = metricsRender(.unbounded)

// 4. A whole tick through the real Sampler (includes /proc/self process stats).
let sampler = try Sampler(settings: .init(paths: paths), ring: .init(), store: StateStore(),
                          logger: Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() })
let tick = measureTicks(sampler)

// 5. The same at the daemon's pace (one every 100 ms), kernel reads and tick alike.
let kernelAtCadence = measureAtCadence("kernel: the \(files.count) files, one read every 100 ms") { readFloor(into: &raw) }
let kernelAsBeforeAtCadence = measureAtCadence("kernel, as measured before: 1 MiB reads, every 100 ms") {
    readFloorAsBefore(into: &raw)
}
let tickAtCadence = measureAtCadence("slabwatch: whole tick, one every 100 ms") { sampler.sampleOnce() }

let metricsBytes = sampler.sampleOnce().metrics.count
print("")
print("caches: \(sample.caches.count), /metrics body: \(metricsBytes) bytes, ring: \(SampleRing().storageBytes) bytes")
print("/metrics render: bounded \(boundedRender.bytes) bytes, all caches \(allRender.bytes) bytes")
print("whole tick / kernel read cost: \(Human.decimal(tick / kernel, 2))x back to back, \(Human.decimal(tickAtCadence / kernelAtCadence, 2))x at a 100 ms pace; at a 5 s interval one tick is \(Human.decimal(tick / 5 * 100, 4)) % of one core")
print("… against the floor as measured before (1 MiB reads): \(Human.decimal(tick / kernelAsBefore, 2))x back to back, \(Human.decimal(tickAtCadence / kernelAsBeforeAtCadence, 2))x at a 100 ms pace")
_ = readParse
_ = renderCost

// 6. A state checkpoint at defaults (a full 12 h ring of these caches): what
//    the persistence queue spends once a minute, and the file's size.
do {
    var ring = SampleRing()
    var live = sample
    for step in 0..<(720 * 12) {
        live.timestampMilliseconds = Int64(step) * 5000
        ring.append(live)
    }
    let saved = SavedState(metadata: .init(pageSize: 4096, bootID: "", version: "bench", lastSampleMilliseconds: 0),
                           ring: ring, detector: GrowthDetector().memory, alerts: AlertPolicy().memory)
    var fileBytes = 0
    let rounds = max(3, iterations / 200)
    let start = cpuSeconds()
    for _ in 0..<rounds { fileBytes = (try? StateFile.encode(saved).count) ?? 0 }
    report("state checkpoint: encode + compress a full ring", (cpuSeconds() - start) / Double(rounds), allocations: nil)
    print("state file: \(fileBytes) bytes for a ring of \(ring.storageBytes) bytes")
}

}

// 7. The detector: one evaluation over a full ring (12 h of 5 s samples), at
//    250 and 5,000 caches, with quiet caches (most rejected by the growth
//    check) and with every cache growing (every cache fitted against every
//    driver). Beside them, 16 inode caches as on a real machine; while the
//    caches grow, 4 of them move with the inodes too, so every growing cache
//    is also fitted against 4 per-filesystem drivers. Negative dentries move
//    with the dentries (half of them), the dearest case: every growing cache
//    fits them too, and they tie with the dentries.
print("")
// `--detector-only [CACHES] [quiet]`: one case alone (5,000 growing unless told), for a profiler.
let detectorCases: [(Int, Bool)] = arguments.firstIndex(of: "--detector-only").map { flag in
    let caches = arguments.count > flag + 1 ? Int(arguments[flag + 1]) ?? 5000 : 5000
    return [(caches, !arguments.contains("quiet"))]
} ?? [(250, false), (250, true), (5000, false), (5000, true)]
for (cacheCount, growing) in stateEncodingOnly ? [] : detectorCases {
    do {
        // Room for every cache: the default ring keeps at most 2,560 series.
        var pipeline = Pipeline(settings: .init(ring: .init(maxSeries: 16 + cacheCount + cacheCount / 4)))
        var state: UInt64 = 1
        func jitter() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53) - 0.5
        }
        func sample(_ step: Int) -> Sample {
            let inodes = 100_000 + Double(step) * (growing ? 100 : 0) + jitter() * 1000
            let inodeCaches = (0..<16).map { i in
                let objects = UInt64(5000 + (growing && i < 4 ? Double(step) * 25 : 0) + jitter() * 100)
                return SlabCache(name: "fs\(i)_inode_cache", activeObjects: objects, objects: objects, objectSize: 1024,
                                 objectsPerSlab: 32, pagesPerSlab: 8, activeSlabs: objects / 32, slabs: objects / 32,
                                 pageSize: 4096, reclaimable: true)
            }
            return Sample(
                timestampMilliseconds: Int64(step) * 5000,
                caches: inodeCaches + (0..<cacheCount).map { i in
                    let bytes = 10e6 + (growing ? Double(step) * 50_000 : 0) + jitter() * 1e5
                    return SlabCache(name: "cache\(i)", activeObjects: 1, objects: 1, objectSize: 64, objectsPerSlab: 64,
                                     pagesPerSlab: 1, activeSlabs: 1, slabs: UInt64(bytes / 4096), pageSize: 4096, reclaimable: false)
                },
                meminfo: Meminfo(fields: [.init(name: "MemTotal", value: 1 << 40, isBytes: true)]),
                inodes: .init(inodes: UInt64(inodes), freeInodes: 0),
                dentries: .init(dentries: UInt64(inodes), unusedDentries: 0, negativeDentries: UInt64(inodes / 2)),
                fileHandles: .init(allocated: 1000, maximum: 100_000))
        }
        var latest = Sample(timestampMilliseconds: 0)
        for step in 0..<(720 * 12) {
            latest = pipeline.record(sample(step))  // as recorded (the derived series joined), as the sampler evaluates it
        }
        // The step's second half alone, as the sampler runs it outside the ring's lock.
        let rounds = max(3, iterations / (cacheCount >= 5000 ? 400 : 40))
        for _ in 0..<3 { _ = pipeline.evaluate(latest: latest) }  // open the findings first
        let start = cpuSeconds()
        for _ in 0..<rounds { _ = pipeline.evaluate(latest: latest) }
        let perEvaluation = (cpuSeconds() - start) / Double(rounds)
        let label = "detector: \(cacheCount) caches, \(growing ? "all growing" : "quiet")"
        print("\(padded(label, 46)) \(fixed(perEvaluation * 1e6, width: 8, places: 1)) µs CPU")
        // The same full ring's appends: 10 blocks more of the same samples
        // (built beforehand), each block sealed and one evicted per 64.
        let more = (0..<64).map { sample(720 * 12 + $0) }
        let allocationsBefore = slabwatch_allocation_count()
        let appendStart = cpuSeconds()
        for round in 0..<640 {
            var next = more[round % 64]
            next.timestampMilliseconds = Int64(720 * 12 + round) * 5000
            pipeline.record(next)
        }
        let perAppend = (cpuSeconds() - appendStart) / 640
        let allocations = Double(slabwatch_allocation_count() - allocationsBefore) / 640
        print("\(padded("  ring append, same ring", 46)) \(fixed(perAppend * 1e6, width: 8, places: 1)) µs CPU  "
              + "\(fixed(allocations, width: 7, places: 1)) allocations; ring \(Human.decimal(Double(pipeline.ring.storageBytes) / 1e6, 2)) MB")
    }
}

// 8. The state encoder on long lists and many keys (a ring's series names, a
//    detector's findings): each insert must cost the same however many came
//    before, so doubling the count doubles the time.
print("")
for count in [10_000, 20_000, 40_000] {
    let names = (0..<count).map { "cache-\($0)" }
    let keyed = Dictionary(uniqueKeysWithValues: names.map { ($0, UInt64($0.utf8.count)) })
    let start = cpuSeconds()
    _ = try StateEncoder.encode(names)
    _ = try StateEncoder.encode(keyed)
    report("state encoder: \(count) list items + \(count) keys", cpuSeconds() - start, allocations: nil)
}

// Without Foundation: fixed-width columns for the table above.
func padded(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}

func fixed(_ value: Double, width: Int, places: Int) -> String {
    let text = Human.decimal(value, places)
    return text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
}
