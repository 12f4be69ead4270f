import Glibc

/// The process that made a slabwatch tracefs instance, as the instance's name
/// says: `slabwatch-NS-PID-START-N` — the inode of the process's PID namespace
/// (`/proc/self/ns/pid`), its pid there, when it started (clock ticks after
/// boot, field 22 of `/proc/PID/stat`), and the session's number in the process.
///
/// tracefs is one for the whole machine, the same in every container that
/// mounts it, and a pid alone names no one there: every pod's slabwatch is
/// PID 1, and a host's pid means nothing in a pod. The namespace says where
/// the pid can be looked up, the start time which process it was: namespace
/// inodes and pids are both reused, a pid with its start time is not.
/// Names of the older form, `slabwatch-PID-N`, say neither.
struct TraceInstanceOwner: Equatable, Sendable {
    /// nil in a name of the older form.
    var pidNamespace: UInt64?
    var pid: Int32
    /// nil in a name of the older form.
    var startTime: UInt64?

    static let prefix = "slabwatch-"

    /// The name of this owner's session `number`.
    func instanceName(number: Int) -> String {
        "\(Self.prefix)\(pidNamespace ?? 0)-\(pid)-\(startTime ?? 0)-\(number)"
    }

    /// The owner a slabwatch instance's name records (either form); nil for
    /// any other name.
    init?(instanceName name: String) {
        guard name.hasPrefix(Self.prefix) else { return nil }
        let fields = name.dropFirst(Self.prefix.count).split(separator: "-", omittingEmptySubsequences: false)
        switch fields.count {
        case 4:
            guard let namespace = UInt64(decimal: fields[0]), let pid = Int32(decimal: fields[1]),
                  let start = UInt64(decimal: fields[2]), Int(decimal: fields[3]) != nil else { return nil }
            self.init(pidNamespace: namespace, pid: pid, startTime: start)
        case 2:
            guard let pid = Int32(decimal: fields[0]), Int(decimal: fields[1]) != nil else { return nil }
            self.init(pidNamespace: nil, pid: pid, startTime: nil)
        default:
            return nil
        }
        guard pid > 0 else { return nil }
    }

    init(pidNamespace: UInt64?, pid: Int32, startTime: UInt64?) {
        self.pidNamespace = pidNamespace
        self.pid = pid
        self.startTime = startTime
    }

    /// Whether the owner may still run, as far as a process can tell.
    enum Liveness: Equatable, Sendable {
        /// Its pid runs the process that made the instance (the same start time).
        case alive
        /// No process has its pid.
        case gone
        /// Not to be told from here: another PID namespace, a name of the older
        /// form, a /proc of another namespace or one that hides the process,
        /// a zombie (a thread-group leader is one while its other threads
        /// still run), or a process started at another time — most likely
        /// the pid was reused, but a reader in another time namespace sees
        /// every start time shifted, so that proves no death. Only what the
        /// kernel shows of the instance can decide.
        case unknown
    }

    /// What a process sees of a pid in its own namespace.
    enum PidLookup: Equatable, Sendable {
        /// `kill(pid, 0)` fails with ESRCH.
        case noSuchProcess
        /// It exists, but /proc does not show it (hidepid, systemd's `ProtectProc=invisible`).
        case hidden
        /// Its `/proc/PID/stat`: the state letter and the start time.
        case process(state: Character, startTime: UInt64)
    }

    /// The owner's liveness as `observer` tells it, looking pids up with `lookup`.
    /// `observer` is nil where the observing process cannot judge pids at all
    /// (its /proc is not its own PID namespace's).
    func liveness(seenBy observer: TraceInstanceOwner?, lookup: (Int32) -> PidLookup) -> Liveness {
        guard let observer, let namespace = pidNamespace, namespace == observer.pidNamespace, let startTime else { return .unknown }
        switch lookup(pid) {
        case .noSuchProcess: return .gone
        case .hidden: return .unknown
        case .process(let state, let started):
            return started == startTime && state != "Z" && state != "X" ? .alive : .unknown
        }
    }
}

extension TraceInstanceOwner {
    /// This process as its instances name it, and as it judges other owners.
    /// nil where its /proc is not its own PID namespace's (a container given
    /// the host's /proc sees every process under the host's numbers) or
    /// there is none: then its instances say namespace 0, which no judge
    /// shares, and it leaves every owner to the kernel's rule.
    static let thisProcess: TraceInstanceOwner? = readThisProcess()

    /// The name a session of this process gives its instance `number`.
    static func nameForThisProcess(number: Int) -> String {
        (thisProcess ?? TraceInstanceOwner(pidNamespace: 0, pid: getpid(), startTime: 0)).instanceName(number: number)
    }

    /// `pid` as this process's /proc shows it (a pid of this process's namespace).
    static func lookUp(_ pid: Int32) -> PidLookup {
        if kill(pid, 0) == -1 && errno == ESRCH { return .noSuchProcess }
        guard let text = read("/proc/\(pid)/stat"), let stat = ProcessStat(text) else { return .hidden }
        return .process(state: stat.state, startTime: stat.startTime)
    }

    private static func readThisProcess() -> TraceInstanceOwner? {
        var status = stat()
        guard stat("/proc/self/ns/pid", &status) == 0,
              let text = read("/proc/self/status"), ownNamespaceOnly(status: text),
              let selfStat = read("/proc/self/stat").flatMap(ProcessStat.init) else { return nil }
        return TraceInstanceOwner(pidNamespace: UInt64(status.st_ino), pid: getpid(), startTime: selfStat.startTime)
    }

    /// True when /proc/self/status's `NSpid` holds one pid, and it is
    /// `getpid()`: the line lists the process's pid in every namespace from
    /// the one /proc belongs to down to its own, so one means the same.
    static func ownNamespaceOnly(status: String) -> Bool {
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("NSpid:") }) else { return false }
        let pids = line.dropFirst("NSpid:".count).split(whereSeparator: { $0 == "\t" || $0 == " " })
        return pids.count == 1 && Int32(decimal: pids[0]) == getpid()
    }

    private static func read(_ path: String) -> String? {
        guard let bytes = try? FileReader(initialCapacity: 4096, maximumSize: 64 << 10).read(path) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The fields of `/proc/PID/stat` an owner is judged by.
struct ProcessStat: Equatable {
    /// `R`, `S`, `Z`, … (field 3).
    var state: Character
    /// Clock ticks after boot (field 22).
    var startTime: UInt64

    /// Fields are counted after the command name, which may hold spaces and parentheses.
    init?(_ text: String) {
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // Numbered from 3 (state) as in proc(5).
        guard fields.count >= 20, fields[0].count == 1, let state = fields[0].first,
              let start = UInt64(decimal: fields[22 - 3]) else { return nil }
        self.state = state
        self.startTime = start
    }
}

extension FixedWidthInteger {
    /// Only ASCII digits (no sign, no spaces): the integer's own spelling in a name.
    fileprivate init?(decimal text: Substring) {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        self.init(text, radix: 10)
    }
}
