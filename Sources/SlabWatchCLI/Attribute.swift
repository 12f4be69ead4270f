import Glibc
import SlabWatch
import SlabWatchCore

/// `slabwatch attribute CACHE`: one bounded tracing session, printed as a
/// table or JSON. Exit codes: 2 unknown cache or bad flag, 4 no tracefs,
/// 5 not permitted (tracefs needs root).
enum Attribute {
    nonisolated(unsafe) static var interrupted: sig_atomic_t = 0

    static func run(_ command: ParsedCommand, configuration: Configuration) -> Never {
        let cache = command.arguments[0]
        var settings = configuration.attribution
        if let text = command.options["duration"] {
            guard let seconds = Units.seconds(text), seconds >= 0.1, seconds <= 600 else {
                SlabWatchCommand.fail(.badConfiguration, "--duration: '\(text)' is not a duration from 100ms to 10m")
            }
            settings.durationSeconds = seconds
        }
        if let text = command.options["max-events"] {
            guard let count = Int(text), count > 0 else { SlabWatchCommand.fail(.badConfiguration, "--max-events: '\(text)' is not a positive number") }
            settings.maxEvents = count
        }
        guard cacheExists(cache, sysfs: configuration.sampler.paths.sysfs, procfs: configuration.sampler.paths.procfs) else {
            SlabWatchCommand.fail(.badConfiguration, "no slab cache named '\(cache)' (see /sys/kernel/slab or slabwatch top)")
        }
        // Ctrl-C ends the session early; it still reports and cleans up.
        // Unblocked too: a mask inherited from whatever started us would swallow them.
        var handled = sigset_t()
        sigemptyset(&handled)
        for signalNumber in [SIGINT, SIGTERM, SIGHUP] {
            signal(signalNumber) { _ in Attribute.interrupted = 1 }
            sigaddset(&handled, signalNumber)
        }
        pthread_sigmask(SIG_UNBLOCK, &handled, nil)
        let result: Attribution
        do {
            if command.flags.contains("allocinfo") {
                result = try allocInfo(cache, procfs: configuration.sampler.paths.procfs, seconds: settings.durationSeconds)
            } else {
                result = try AttributionSession.run(cache: cache, settings: settings, say: { printError($0) }, cancelled: { interrupted != 0 })
            }
        } catch {
            switch error {
            case .unavailable(let why): SlabWatchCommand.fail(.tracingUnavailable, why)
            case .permission(let why): SlabWatchCommand.fail(.notPermitted, why)
            case .failed(let why): SlabWatchCommand.fail(.runtimeFailure, why)
            }
        }
        if command.flags.contains("json") {
            let bytes = AttributionRenderer.json(result)
            _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
        } else {
            print(AttributionRenderer.text(result), terminator: "")
        }
        exit(ExitStatus.success.rawValue)
    }

    /// SLUB lists every cache (and every alias) in /sys/kernel/slab; SLAB
    /// kernels only in /proc/slabinfo.
    static func cacheExists(_ name: String, sysfs: String, procfs: String) -> Bool {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else { return false }
        if faccessat(AT_FDCWD, "\(sysfs)/kernel/slab/\(name)", F_OK, AT_EACCESS) == 0 { return true }
        guard let file = fopen("\(procfs)/slabinfo", "r") else { return false }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0 {
            if let line, String(cString: line).split(separator: " ").first.map(String.init) == name { return true }
        }
        return false
    }

    /// Two reads of /proc/allocinfo `seconds` apart: the call sites whose bytes grew.
    static func allocInfo(_ cache: String, procfs: String, seconds: Double) throws(Tracefs.Failure) -> Attribution {
        func read() throws(Tracefs.Failure) -> [KernelAllocationTables.AllocInfoRow] {
            let path = "\(procfs)/allocinfo"
            guard let file = fopen(path, "r") else {
                let code = errno
                if code == EACCES || code == EPERM { throw .permission("cannot read \(path): \(String(cString: strerror(code)))") }
                throw .unavailable("no \(path): this kernel is built without CONFIG_MEM_ALLOC_PROFILING (Linux 6.10 and later have it)")
            }
            defer { fclose(file) }
            var bytes: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 64 << 10)
            while true {
                let n = fread(&buffer, 1, buffer.count, file)
                if n <= 0 { break }
                bytes += buffer[0..<n]
            }
            guard let parsed = KernelAllocationTables.parseAllocInfo(Substring(String(decoding: bytes, as: UTF8.self))) else {
                throw .failed("\(path) does not start with 'allocinfo - version:'")
            }
            return parsed.rows
        }
        let before = try read()
        usleep(useconds_t(seconds * 1e6))
        return KernelAllocationTables.attribution(cache: cache, from: before, to: try read(), windowSeconds: seconds)
    }
}
