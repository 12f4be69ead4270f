/// A measurement as JSON (`slabwatch measure --json`, in the `/snapshot`
/// vocabulary: snake_case, bytes as integers, `slab`, `driver`,
/// `inode_cache`, `filesystem`, `bytes_per_unit`, `r_squared`) and as the
/// text report a person reads. `MeasurementReader` reads the JSON back.
public enum MeasurementRenderer: Sendable {
    /// One budget and how it fared, for rendering.
    public typealias Judged = (budget: Budget, verdict: Budget.Verdict)

    public static func json(_ m: Measurement, budgets: [Judged] = [], attributions: [Attribution] = []) -> [UInt8] {
        var json = JSONWriter(reservingCapacity: 4096 + m.caches.count * 1024 + m.quietCaches.count * 96)
        json.beginObject()
        json.key("command"); json.beginArray()
        for argument in m.command.arguments { json.string(argument) }
        json.endArray()
        json.key("exit_status"); json.number(Double(m.command.exitStatus))
        json.key("wall_seconds"); json.number(m.command.wallSeconds)
        json.key("interval_seconds"); json.number(m.intervalSeconds)
        json.key("settle_seconds"); json.number(m.settleSeconds)
        json.key("samples"); json.number(Double(m.samples))
        json.key("run_samples"); json.number(Double(m.runSamples))
        json.key("noise_bytes"); json.number(m.noiseBytes)
        json.key("drivers"); json.beginArray()
        for d in m.drivers {
            json.beginObject()
            json.key("driver"); json.string(d.driver.rawValue)
            json.key("inode_cache"); json.string(d.inodeCache)
            json.key("filesystem"); json.string(d.inodeCache.flatMap(InodeCacheSelector.filesystem(of:)))
            json.key("before"); json.number(d.before)
            json.key("peak"); json.number(d.peak)
            json.key("after"); json.number(d.after)
            json.endObject()
        }
        json.endArray()
        json.key("caches"); json.beginArray()
        for cache in m.caches { write(cache, &json) }
        json.endArray()
        json.key("slab_unreclaimable")
        if let total = m.slabUnreclaimable { write(total, &json) } else { json.string(nil) }
        json.key("quiet_caches"); json.beginArray()
        for quiet in m.quietCaches {
            json.beginObject()
            json.key("slab"); json.string(quiet.slab)
            json.key("noise_floor_bytes"); json.number(quiet.noiseFloorBytes)
            json.key("kept_bytes"); json.number(quiet.keptBytes)
            json.endObject()
        }
        json.endArray()
        json.key("kept_bytes"); json.number(m.keptBytes)
        json.key("kept_unreclaimable_bytes"); json.number(m.keptUnreclaimableBytes)
        json.key("budgets"); json.beginArray()
        for (budget, verdict) in budgets {
            json.beginObject()
            json.key("budget"); json.string(budget.text)
            json.key("limit_bytes"); json.number(budget.limitBytes)
            json.key("unit"); json.string(budget.unit?.rawValue)
            switch verdict {
            case .within(let measured, let atMost, let reason):
                json.key("verdict"); json.string("within"); json.key("measured_bytes"); json.number(measured)
                json.key("at_most_bytes"); json.number(atMost); json.key("reason"); json.string(reason)
            case .exceeded(let measured):
                json.key("verdict"); json.string("exceeded"); json.key("measured_bytes"); json.number(measured)
                json.key("at_most_bytes"); json.string(nil); json.key("reason"); json.string(nil)
            case .cannotJudge(let why):
                json.key("verdict"); json.string("cannot_judge"); json.key("measured_bytes"); json.string(nil)
                json.key("at_most_bytes"); json.string(nil); json.key("reason"); json.string(why)
            }
            json.endObject()
        }
        json.endArray()
        json.key("attributions"); json.beginArray()
        for attribution in attributions { AttributionRenderer.write(attribution, &json) }
        json.endArray()
        json.endObject()
        json.newline()
        return json.bytes
    }

    private static func write(_ cache: Measurement.CacheReport, _ json: inout JSONWriter) {
        json.beginObject()
        json.key("slab"); json.string(cache.slab)
        json.key("reclaimable"); json.bool(cache.reclaimable)
        json.key("before_bytes"); json.number(cache.footprints.beforeBytes)
        json.key("peak_bytes"); json.number(cache.footprints.peakBytes)
        json.key("after_bytes"); json.number(cache.footprints.afterBytes)
        json.key("kept_bytes"); json.number(cache.footprints.keptBytes)
        json.key("driver"); json.string(cache.cost?.driver.rawValue)
        json.key("inode_cache"); json.string(cache.cost?.inodeCache)
        json.key("filesystem"); json.string(cache.cost?.filesystem)
        json.key("bytes_per_unit"); json.number(cache.cost?.bytesPerUnit)
        json.key("r_squared"); json.number(cache.cost?.rSquared)
        json.key("driver_change"); json.number(cache.cost?.driverChange)
        json.key("peak_bytes_per_unit"); json.number(cache.cost?.peakBytesPerUnit)
        json.key("not_judged"); json.string(cache.notJudged)
        json.key("fits"); json.beginArray()
        for fit in cache.fits { json.driverFit(fit, includingFlagged: true) }
        json.endArray()
        json.endObject()
    }

    // MARK: text

    /// The report a person reads: the command, the drivers, each moved cache, the totals, the budgets.
    public static func text(_ m: Measurement, budgets: [Judged] = [], attributions: [Attribution] = []) -> String {
        var lines: [String] = []
        let ended = m.command.exitStatus == 0 ? "exited 0" : "failed with status \(m.command.exitStatus)"
        lines.append("measured `\(m.command.arguments.joined(separator: " "))`: \(ended) after \(Human.decimal(m.command.wallSeconds, 2)) s; "
                     + "\(m.samples) samples, one every \(Human.decimal(m.intervalSeconds * 1000, 0)) ms, \(m.runSamples) during the run, settled \(Human.decimal(m.settleSeconds, 1)) s")
        let moved = m.drivers.filter { $0.peak != $0.before || $0.after != $0.before }
        if !moved.isEmpty {
            lines.append("drivers (before → peak → after):")
            for d in moved {
                let name = d.inodeCache.map { "\($0) objects" } ?? d.driver.plural
                lines.append("  \(name): \(Human.grouped(d.before)) → \(Human.grouped(d.peak)) → \(Human.grouped(d.after))")
            }
        }
        if m.caches.isEmpty {
            lines.append("no cache moved by more than \(Human.bytes(Double(m.noiseBytes)))")
        }
        for cache in m.caches { lines += describe(cache) }
        if let total = m.slabUnreclaimable { lines += describe(total, name: "unreclaimable slab (SUnreclaim)") }
        let share = m.keptBytes > 0 ? " (\(Human.decimal(100 * m.keptUnreclaimableBytes / m.keptBytes, 0)) % of it)" : ""
        lines.append("kept after exit, moved caches: \(Human.bytes(m.keptBytes)), unreclaimable \(Human.bytes(m.keptUnreclaimableBytes))\(share)")
        for attribution in attributions {
            // Which path traced, and who allocated most: a tracefs session's
            // net is a lower bound where events were lost, and only BPF names processes.
            lines.append("call sites of \(attribution.cache) (\(attribution.source.rawValue), \(Human.decimal(attribution.windowSeconds, 1)) s traced):")
            if let fallback = attribution.fallback { lines.append("  (\(fallback))") }
            for site in attribution.callSites.prefix(5) {
                let owner = site.processes?.first.map { ", mostly from \($0.phrase)" } ?? ""
                lines.append("  \(site.symbol): \(Human.bytes(Double(site.netBytes))) net, "
                             + "\(Human.decimal(100 * site.share, 1)) %\(owner)")
            }
        }
        for (budget, verdict) in budgets { lines.append(budget.sentence(verdict)) }
        return TerminalText.printable(lines: lines)  // names from the kernel, from processes, from the command line
    }

    private static func describe(_ cache: Measurement.CacheReport, name: String? = nil) -> [String] {
        let f = cache.footprints
        let kind = cache.reclaimable.map { $0 ? "reclaimable" : "unreclaimable" } ?? "reclaimability unknown"
        let title = name ?? "\(cache.slab) (\(kind))"
        var lines = ["\(title): \(Human.bytes(Double(f.beforeBytes))) → peak \(Human.bytes(Double(f.peakBytes))) → after \(Human.bytes(Double(f.afterBytes)))"]
        if let cost = cache.cost {
            let ratio = cost.peakBytesPerUnit.map { "; before → peak \(Human.bytes($0))" } ?? ""
            lines.append("  cost: \(Human.bytes(cost.bytesPerUnit)) \(perUnit(cost.driver, cost.inodeCache)), R² \(Human.decimal(cost.rSquared, 3)) "
                         + "over \(Human.grouped(cost.driverChange)) \(cost.driver.plural)\(ratio)")
        } else {
            lines.append("  cost: not judged, \(cache.notJudged ?? "no fit passed")")
        }
        lines.append("  kept after exit: \(Human.bytes(f.keptBytes))")
        return lines
    }

    /// "per inode of shmem_inode_cache (tmpfs)", "per dentry".
    static func perUnit(_ driver: GrowthDriver, _ inodeCache: String?) -> String {
        guard let inodeCache else { return "per \(driver.singular)" }
        let filesystem = InodeCacheSelector.filesystem(of: inodeCache).map { " (\($0))" } ?? ""
        return "per inode of \(inodeCache)\(filesystem)"
    }
}
