/// Reads tracefs text (`trace_pipe` of an instance with `stacktrace` and
/// `sym-offset` on) one line at a time and keeps what attribution needs:
/// the objects allocated in the window and not yet freed, by call site and
/// stack. Lines from all CPUs arrive merged by time; a `<stack trace>`
/// belongs to the last allocation on its own CPU.
public struct TraceAccumulator: Sendable {
    public let cache: String
    /// A large-allocation session (kmalloc above the largest cache), where
    /// each allocation may come as two events: see `isSecondEvent`.
    public let largeAllocations: Bool
    private var live: [Substring: Live] = [:]
    private var sites: [SiteKey: SiteStats] = [:]
    private var siteOrder: [SiteKey] = []
    /// The allocation whose stack may follow, per CPU.
    private var awaitingStack: [Int: Substring] = [:]
    private var stackFrames: [Int: [String]] = [:]
    public private(set) var events: UInt64 = 0
    public private(set) var lost: UInt64 = 0
    public private(set) var malformedLines: UInt64 = 0

    private struct Live: Sendable {
        var site: SiteKey
        var bytes: UInt64
        var stack: [String]?
        /// The allocating thread, from the line's `comm-pid`.
        var thread: Substring?
    }

    private struct SiteKey: Hashable, Sendable {
        var function: String
        var module: String?
    }

    private struct SiteStats: Sendable {
        var allocations: UInt64 = 0
        var frees: UInt64 = 0
        var stackAllocations: [[String]: UInt64] = [:]
    }

    public init(cache: String, largeAllocations: Bool = false) {
        self.cache = cache
        self.largeAllocations = largeAllocations
    }

    /// How many allocations are being followed (the session bounds this).
    public var liveObjects: Int { live.count }

    public mutating func take(_ line: Substring) {
        if line.hasPrefix(" => ") {
            frame(line.dropFirst(4))
            return
        }
        if let lostCount = Self.lostEvents(line) { lost += lostCount; return }
        guard let cpu = Self.cpu(line) else {
            if !line.isEmpty && !line.hasPrefix("#") { malformedLines += 1 }
            return
        }
        finishStack(cpu: cpu)
        if line.firstRange(of: ": <stack trace>") != nil {
            stackFrames[cpu] = []
            return
        }
        if let fields = Self.fields(after: ": kmem_cache_alloc: ", in: line) ?? Self.fields(after: ": kmalloc: ", in: line) {
            allocation(fields, cpu: cpu, thread: Self.thread(line))
        } else if let fields = Self.fields(after: ": kmem_cache_free: ", in: line) ?? Self.fields(after: ": kfree: ", in: line) {
            awaitingStack[cpu] = nil  // a stack after a free is the free's
            free(fields)
        } else {
            malformedLines += 1
        }
    }

    /// Everything read so far as a ranked attribution.
    public func result(windowSeconds: Double, dropped: UInt64, stopReason: Attribution.StopReason,
                       endedMilliseconds: Int64) -> Attribution {
        var finished = self
        finished.finishStack(cpu: 0)  // the last stack ends with the input
        return finished.ranked(windowSeconds: windowSeconds, dropped: dropped, stopReason: stopReason, endedMilliseconds: endedMilliseconds)
    }

    private func ranked(windowSeconds: Double, dropped: UInt64, stopReason: Attribution.StopReason,
                        endedMilliseconds: Int64) -> Attribution {
        var liveBySite: [SiteKey: (count: UInt64, bytes: UInt64, stacks: [[String]: UInt64])] = [:]
        for object in live.values {
            var entry = liveBySite[object.site] ?? (0, 0, [:])
            entry.count += 1
            entry.bytes += object.bytes
            if let stack = object.stack { entry.stacks[stack, default: 0] += 1 }
            liveBySite[object.site] = entry
        }
        // A site whose every event was taken back (a large allocation's first, inside the allocator) is none.
        let callSites = siteOrder.filter { sites[$0]!.allocations + sites[$0]!.frees > 0 }.map { key -> Attribution.CallSite in
            let stats = sites[key]!
            let still = liveBySite[key] ?? (0, 0, [:])
            let stacks = stats.stackAllocations.map { frames, count in
                Attribution.Stack(frames: frames, allocations: count, net: still.stacks[frames] ?? 0)
            }.sorted { ($0.net, $0.allocations, $1.frames.joined()) > ($1.net, $1.allocations, $0.frames.joined()) }
            return Attribution.CallSite(
                function: key.function, module: key.module, allocations: stats.allocations, frees: stats.frees,
                netCount: Int64(stats.allocations) - Int64(stats.frees), netBytes: Int64(still.bytes), share: 0,
                stacks: Array(stacks.prefix(3)))
        }
        return Attribution(cache: cache, source: .trace, callSites: Attribution.ranked(callSites), events: events,
                           dropped: dropped + lost, windowSeconds: windowSeconds, stopReason: stopReason,
                           malformedLines: malformedLines, endedMilliseconds: endedMilliseconds)
    }

    // MARK: events

    private mutating func allocation(_ fields: [Substring: Substring], cpu: Int, thread: Substring?) {
        guard let callSite = fields["call_site"], let ptr = fields["ptr"],
              let bytes = fields["bytes_alloc"].flatMap({ UInt64($0) }) else { malformedLines += 1; return }
        events += 1
        let symbol = Attribution.symbol(callSite, module: fields["call_site.module"])
        let key = SiteKey(function: symbol.function, module: symbol.module)
        if sites[key] == nil { sites[key] = SiteStats(); siteOrder.append(key) }
        if let previous = live.removeValue(forKey: ptr) {
            // (Its stack trace, if it has one, follows this event, as the first one's followed that.)
            if isSecondEvent(of: previous, thread: thread, bytes: bytes) { takeBack(previous) }
            // The same address again: its free was lost or filtered; the old object is gone.
            else { sites[previous.site]?.frees += 1 }
        }
        sites[key]!.allocations += 1
        live[ptr] = Live(site: key, bytes: bytes, stack: nil, thread: thread)
        awaitingStack[cpu] = ptr
    }

    /// A kmalloc too large for any cache fires the kmalloc event twice with
    /// the same pointer (mm/slub.c, 6.1 onwards): first from inside the
    /// allocator (`call_site=__kmalloc_noprof+0x4b5`, the large path's own
    /// trace), then for the real caller (`call_site=pipe_resize_ring+0x30`),
    /// from the same thread with the same size, before anyone can free it. So
    /// in a large session a live pointer allocated again by the same thread
    /// with the same size is the same allocation: counted once, at the later
    /// (outer) call site. Anywhere else it is a free this session missed.
    private func isSecondEvent(of previous: Live, thread: Substring?, bytes: UInt64) -> Bool {
        largeAllocations && thread != nil && previous.thread == thread && previous.bytes == bytes
    }

    /// Undoes an allocation that was a large allocation's first event: its
    /// site (and stack) lose it as an allocation, not as a free.
    private mutating func takeBack(_ object: Live) {
        sites[object.site]?.allocations -= 1
        if let stack = object.stack, let count = sites[object.site]?.stackAllocations[stack] {
            sites[object.site]?.stackAllocations[stack] = count > 1 ? count - 1 : nil
        }
    }

    private mutating func free(_ fields: [Substring: Substring]) {
        guard let ptr = fields["ptr"] else { malformedLines += 1; return }
        // Frees of objects allocated before the window say nothing about it.
        guard let object = live.removeValue(forKey: ptr) else { return }
        events += 1
        sites[object.site]?.frees += 1
    }

    private mutating func frame(_ text: Substring) {
        // Frames belong to the stack being read on some CPU; lines carry no CPU,
        // but a stack's frames always follow its header directly.
        guard let cpu = stackFrames.keys.first(where: { stackFrames[$0] != nil }) else { return }
        let parts = text.split(separator: " ", omittingEmptySubsequences: true)
        guard let first = parts.first else { return }
        let symbol = Attribution.symbol(first, module: parts.count > 1 && parts[1].hasPrefix("[") ? parts[1] : nil)
        stackFrames[cpu]!.append(symbol.module.map { "\(symbol.function) [\($0)]" } ?? symbol.function)
    }

    /// A stack ends at the next event line: it goes with its CPU's last allocation.
    private mutating func finishStack(cpu _: Int) {
        for (stackCPU, frames) in stackFrames {
            stackFrames[stackCPU] = nil
            guard let ptr = awaitingStack.removeValue(forKey: stackCPU), var object = live[ptr],
                  let trimmed = Self.fromCallSite(frames, object.site.function) else { continue }
            events += 1
            object.stack = trimmed
            live[ptr] = object
            sites[object.site]?.stackAllocations[trimmed, default: 0] += 1
        }
    }

    /// Drops the tracing and allocator frames above the call site's function;
    /// nil when the stack does not pass through it (not this allocation's:
    /// its event was lost, or the stack is a free's).
    static func fromCallSite(_ frames: [String], _ function: String) -> [String]? {
        let name = function.prefix { $0 != "+" }
        guard let start = frames.firstIndex(where: { $0.prefix { $0 != "+" } == name }) else { return nil }
        return Array(frames[start...])
    }

    // MARK: line parsing

    /// The CPU of an event line: `task-123 [001] ..... 20860.1: event: …`.
    static func cpu(_ line: Substring) -> Int? {
        guard let colon = line.firstRange(of: ": ") else { return nil }
        let head = line[..<colon.lowerBound]
        guard let close = head.lastIndex(of: "]"), let open = head[..<close].lastIndex(of: "[") else { return nil }
        return Int(head[head.index(after: open)..<close])
    }

    /// The thread of an event line, the pid of its `comm-pid` (`python3-31425
    /// [000] ….`; a command may hold spaces and dashes, a pid neither).
    static func thread(_ line: Substring) -> Substring? {
        guard let colon = line.firstRange(of: ": ") else { return nil }
        let head = line[..<colon.lowerBound]
        guard let close = head.lastIndex(of: "]"), let open = head[..<close].lastIndex(of: "[") else { return nil }
        var task = head[..<open]
        while task.last == " " { task = task.dropLast() }
        guard let dash = task.lastIndex(of: "-") else { return nil }
        let pid = task[task.index(after: dash)...]
        return !pid.isEmpty && pid.allSatisfy({ $0.isASCII && $0.isNumber }) ? pid : nil
    }

    /// `CPU:1 [LOST 123 EVENTS]`
    static func lostEvents(_ line: Substring) -> UInt64? {
        guard line.hasPrefix("CPU:"), let start = line.firstRange(of: "[LOST "), let end = line.firstRange(of: " EVENTS]") else { return nil }
        return UInt64(line[start.upperBound..<end.lowerBound])
    }

    /// `key=value` pairs after `marker`; a `[mod]` after `call_site=` is kept as `call_site.module`.
    static func fields(after marker: String, in line: Substring) -> [Substring: Substring]? {
        guard let range = line.firstRange(of: marker) else { return nil }
        var fields: [Substring: Substring] = [:]
        var lastKey: Substring?
        for token in line[range.upperBound...].split(separator: " ", omittingEmptySubsequences: true) {
            if let equals = token.firstIndex(of: "=") {
                let key = token[..<equals]
                fields[key] = token[token.index(after: equals)...]
                lastKey = key
            } else if token.hasPrefix("["), token.hasSuffix("]"), lastKey == "call_site" {
                fields["call_site.module"] = token
            }
        }
        return fields
    }
}
