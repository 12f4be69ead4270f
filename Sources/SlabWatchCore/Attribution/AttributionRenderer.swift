/// An attribution as JSON (`slabwatch attribute --json`, a finding's
/// `attribution` in /snapshot) and as the table `slabwatch attribute` prints.
public enum AttributionRenderer: Sendable {
    public static func json(_ a: Attribution) -> [UInt8] {
        var json = JSONWriter(reservingCapacity: 2048)
        write(a, &json)
        json.newline()
        return json.bytes
    }

    public static func write(_ a: Attribution, _ json: inout JSONWriter) {
        json.beginObject()
        json.key("cache"); json.string(a.cache)
        json.key("source"); json.string(a.source.rawValue)
        json.key("window_seconds"); json.number(a.windowSeconds)
        json.key("events"); json.number(a.events)
        json.key("dropped"); json.number(a.dropped)
        json.key("stopped_by"); json.string(a.stopReason.rawValue)
        json.key("malformed_lines"); json.number(a.malformedLines)
        json.key("ended"); json.string(a.endedMilliseconds > 0 ? RFC3339.format(unixMilliseconds: a.endedMilliseconds) : nil)
        json.key("fallback"); json.string(a.fallback)
        json.key("larger_than_bytes"); json.number(a.largerThanBytes)
        json.key("allocations"); json.number(a.callSites.reduce(UInt64(0)) { $0 + $1.allocations })
        json.key("frees"); json.number(a.callSites.reduce(UInt64(0)) { $0 + $1.frees })
        json.key("net_count"); json.number(Double(a.callSites.reduce(Int64(0)) { $0 + $1.netCount }))
        json.key("net_bytes"); json.number(Double(a.callSites.reduce(Int64(0)) { $0 + $1.netBytes }))
        let limits = a.limits ?? .init()
        json.key("not_followed"); json.number(limits.notFollowed)
        json.key("stacks_lost"); json.number(limits.stacksLost)
        json.key("sites_full"); json.number(limits.sitesFull)
        json.key("owners_full"); json.number(limits.ownersFull)
        json.key("frees_unseen"); json.number(limits.freesUnseen ?? 0)
        json.key("call_sites"); json.beginArray()
        for site in a.callSites {
            json.beginObject()
            json.key("function"); json.string(site.function)
            json.key("module"); json.string(site.module)
            json.key("allocations"); json.number(site.allocations)
            json.key("frees"); json.number(site.frees)
            json.key("net_count"); json.number(Double(site.netCount))
            json.key("net_bytes"); json.number(Double(site.netBytes))
            json.key("share"); json.number(site.share)
            json.key("stacks"); json.beginArray()
            for stack in site.stacks {
                json.beginObject()
                json.key("allocations"); json.number(stack.allocations)
                json.key("net"); json.number(stack.net)
                json.key("frames"); json.beginArray()
                for frame in stack.frames { json.string(frame) }
                json.endArray()
                json.endObject()
            }
            json.endArray()
            json.key("processes"); json.beginArray()
            for owner in site.processes ?? [] {
                json.beginObject()
                json.key("pid"); json.number(Double(owner.pid))
                json.key("comm"); json.string(owner.comm)
                json.key("cgroup"); json.string(owner.cgroup)
                json.key("cgroup_id"); json.number(owner.cgroupID)
                json.key("memory_cgroup"); json.string(owner.memoryCgroup)
                json.key("memory_cgroup_id"); json.number(owner.memoryCgroupID)
                json.key("owner"); ownerObject(owner.owner, &json)
                json.key("allocations"); json.number(owner.allocations)
                json.key("net_count"); json.number(Double(owner.netCount))
                json.key("net_bytes"); json.number(Double(owner.netBytes))
                json.endObject()
            }
            json.endArray()
            json.endObject()
        }
        json.endArray()
        json.endObject()
    }

    /// The table: one line per call site (the top `limit`), its stacks under
    /// it. Names from elsewhere (a process's `comm`, a cgroup directory, a
    /// module's symbols) reach the terminal only through `TerminalText`.
    public static func text(_ a: Attribution, limit: Int = 10) -> String {
        var lines = ["\(a.cache): \(Human.decimal(a.windowSeconds, 1)) s traced (\(a.source.rawValue)), \(Human.grouped(Double(a.events))) events, "
                     + "\(Human.grouped(Double(a.dropped))) lost, stopped by \(a.stopReason.rawValue)"]
        if let bound = a.largerThanBytes {
            lines.append("  (every kmalloc of more than \(Human.bytes(Double(bound))), the largest kmalloc cache: SLUB takes them from the page allocator)")
        }
        if a.dropped > 0 { lines.append("  (events were lost: counts are lower bounds; raise attribution.buffer-size or shorten the window)") }
        if let fallback = a.fallback { lines.append("  (\(fallback))") }
        if let limits = a.limits, limits.anyFull {
            lines.append("  (maps full: \(Human.grouped(Double(limits.notFollowed))) allocations not followed (attribution.max-live-objects), "
                         + "\(Human.grouped(Double(limits.stacksLost))) stacks lost, \(Human.grouped(Double(limits.sitesFull))) at sites not kept, "
                         + "\(Human.grouped(Double(limits.ownersFull))) without their process)")
        }
        if let unseen = a.limits?.freesUnseen, unseen > 0 {
            lines.append("  (\(Human.grouped(Double(unseen))) frees were not seen — bulk or RCU-batched frees fire no tracepoint — "
                         + "and showed when their address came back: net is an upper bound)")
        }
        guard !a.callSites.isEmpty else {
            let none = a.largerThanBytes.map { "no kmalloc of more than \(Human.bytes(Double($0))) was seen in the window" }
            return TerminalText.printable(lines: lines + [none ?? "no allocation from this cache was seen in the window"])
        }
        lines.append(pad("NET BYTES", 11) + pad("SHARE", 7) + pad("ALLOCS", 10) + pad("FREES", 10) + pad("NET", 10) + "  CALL SITE")
        for site in a.callSites.prefix(limit) {
            lines.append(pad(Human.bytes(Double(site.netBytes)), 11) + pad("\(Int((site.share * 100).rounded())) %", 7)
                         + pad(Human.grouped(Double(site.allocations)), 10) + pad(Human.grouped(Double(site.frees)), 10)
                         + pad(Human.grouped(Double(site.netCount)), 10) + "  " + site.symbol)
            for stack in site.stacks {
                lines.append("      \(Human.grouped(Double(stack.net))) net of \(Human.grouped(Double(stack.allocations))): "
                             + stack.frames.prefix(8).joined(separator: " < "))
            }
            for owner in (site.processes ?? []).prefix(3) {
                lines.append("      \(Human.bytes(Double(owner.netBytes))) net (\(Human.grouped(Double(owner.netCount))) of "
                             + "\(Human.grouped(Double(owner.allocations)))) from \(owner.phrase)")
            }
        }
        if let sentence = a.sentence { lines.append(sentence) }
        return TerminalText.printable(lines: lines)
    }

    private static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? " " + text : String(repeating: " ", count: width - text.count) + text
    }

    /// `{kind, pod_uid, qos_class, container_id, runtime, unit}`, or null.
    static func ownerObject(_ owner: CgroupOwner?, _ json: inout JSONWriter) {
        guard let owner else { return json.string(nil) }
        json.beginObject()
        json.key("kind"); json.string(owner.kind.rawValue)
        json.key("pod_uid"); json.string(owner.podUID)
        json.key("qos_class"); json.string(owner.qosClass)
        json.key("container_id"); json.string(owner.containerID)
        json.key("runtime"); json.string(owner.runtime)
        json.key("unit"); json.string(owner.unit)
        json.endObject()
    }
}
