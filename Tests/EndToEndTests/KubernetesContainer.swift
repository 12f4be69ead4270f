import Foundation
import Glibc
import Testing
import TestSupport

/// The container of a rendered DaemonSet, run as a container runtime
/// (containerd with runc) runs it, with this machine's tools: `unshare` for a
/// mount and PID namespace of its own, a tmpfs root holding the image, the
/// runtime's own /proc (its read-only paths) and a read-only sysfs at /sys,
/// the pod's volumes bind-mounted where its volumeMounts say (`readOnly` at
/// their own mount only, as runc does; `recursiveReadOnly: Enabled` down to
/// every submount, with mount_setattr(2) as runc's `rro` does), the root remounted read-only for
/// `readOnlyRootFilesystem`, then `chroot` and `setpriv`: the user and group,
/// the capability set the runtime computes from its defaults and the
/// manifest's `add` and `drop`, and no_new_privs for
/// `allowPrivilegeEscalation: false`.
///
/// Not emulated, because they cannot run here or do not change what is
/// tested: the seccomp profile (RuntimeDefault; the tests rely on the
/// kernel's own capability checks, which hold under any profile), the
/// network namespace (callers listen on loopback instead), cgroups and the
/// cgroup namespace, AppArmor. `recursiveReadOnly: IfPossible` is taken as
/// `Enabled` (this kernel has mount_setattr).
struct KubernetesContainer {
    /// containerd's default capability set (Docker's), which `drop` and `add` change.
    static let runtimeDefaultCapabilities: Set<String> = [
        "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
        "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
    ]
    /// Capability bits, from linux/capability.h.
    static let capabilityBits: [String: Int] = [
        "CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4, "KILL": 5, "SETGID": 6,
        "SETUID": 7, "SETPCAP": 8, "LINUX_IMMUTABLE": 9, "NET_BIND_SERVICE": 10, "NET_BROADCAST": 11,
        "NET_ADMIN": 12, "NET_RAW": 13, "IPC_LOCK": 14, "IPC_OWNER": 15, "SYS_MODULE": 16, "SYS_RAWIO": 17,
        "SYS_CHROOT": 18, "SYS_PTRACE": 19, "SYS_PACCT": 20, "SYS_ADMIN": 21, "SYS_BOOT": 22, "SYS_NICE": 23,
        "SYS_RESOURCE": 24, "SYS_TIME": 25, "SYS_TTY_CONFIG": 26, "MKNOD": 27, "LEASE": 28, "AUDIT_WRITE": 29,
        "AUDIT_CONTROL": 30, "SETFCAP": 31, "MAC_OVERRIDE": 32, "MAC_ADMIN": 33, "SYSLOG": 34, "WAKE_ALARM": 35,
        "BLOCK_SUSPEND": 36, "AUDIT_READ": 37, "PERFMON": 38, "BPF": 39, "CHECKPOINT_RESTORE": 40,
    ]
    /// The paths runc makes read-only in the container's /proc (containerd's defaults).
    static let procReadOnlyPaths = ["bus", "fs", "irq", "sys", "sysrq-trigger"]

    /// Where the process's root comes from.
    enum Image {
        /// This machine's /usr (and the directories of the libraries `binary`
        /// loads from elsewhere), and the directory of `binary`, read-only.
        case hostSystem(binary: String)
        /// Copies of these files, at the same paths, and nothing else: a jail.
        case files([String])
    }

    struct VolumeMount {
        let volume: String
        let mountPath: String
        let readOnly: Bool
        /// `recursiveReadOnly` set to `Enabled` or `IfPossible` (with `readOnly`).
        let recursive: Bool
    }

    let uid: Int
    let gid: Int
    /// Upper case, without `CAP_`, as Kubernetes writes them.
    let capabilities: Set<String>
    let noNewPrivileges: Bool
    let readOnlyRoot: Bool
    let arguments: [String]
    let volumeMounts: [VolumeMount]
    /// Volume name → its hostPath on the node.
    let hostPaths: [String: String]
    /// Volume name → the Secret it shows.
    let secrets: [String: String]

    /// The first container of the DaemonSet in `objects` (kubectl kustomize's output).
    init(renderedObjects objects: [[String: Any]]) throws {
        let daemonSet = try #require(objects.first { $0["kind"] as? String == "DaemonSet" })
        let podSpec = try #require(((daemonSet["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])
        let container = try #require((podSpec["containers"] as? [[String: Any]])?.first)
        let pod = podSpec["securityContext"] as? [String: Any] ?? [:]
        let security = container["securityContext"] as? [String: Any] ?? [:]
        // The container's settings win over the pod's; an image's user is 0:0 (scripts/image.sh).
        uid = security["runAsUser"] as? Int ?? pod["runAsUser"] as? Int ?? 0
        gid = security["runAsGroup"] as? Int ?? pod["runAsGroup"] as? Int ?? 0
        let requested = security["capabilities"] as? [String: [String]] ?? [:]
        capabilities = Self.capabilities(add: requested["add"] ?? [], drop: requested["drop"] ?? [])
        // Kubernetes' default for allowPrivilegeEscalation is true.
        noNewPrivileges = security["allowPrivilegeEscalation"] as? Bool == false
        readOnlyRoot = security["readOnlyRootFilesystem"] as? Bool == true
        arguments = (container["args"] as? [String] ?? []).flatMap(Self.separated)
        volumeMounts = (container["volumeMounts"] as? [[String: Any]] ?? []).map {
            VolumeMount(volume: $0["name"] as? String ?? "", mountPath: $0["mountPath"] as? String ?? "",
                        readOnly: $0["readOnly"] as? Bool ?? false,
                        recursive: ["Enabled", "IfPossible"].contains($0["recursiveReadOnly"] as? String ?? "Disabled"))
        }
        var hostPaths: [String: String] = [:], secrets: [String: String] = [:]
        for volume in podSpec["volumes"] as? [[String: Any]] ?? [] {
            let name = volume["name"] as? String ?? ""
            if let path = (volume["hostPath"] as? [String: Any])?["path"] as? String { hostPaths[name] = path }
            if let secret = (volume["secret"] as? [String: Any])?["secretName"] as? String { secrets[name] = secret }
        }
        self.hostPaths = hostPaths
        self.secrets = secrets
    }

    /// What containerd's CRI plugin does: `ALL` in add grants every
    /// capability and `ALL` in drop removes every one, before the named ones
    /// are added and then dropped.
    static func capabilities(add: [String], drop: [String]) -> Set<String> {
        var set = runtimeDefaultCapabilities
        if add.contains("ALL") { set = Set(capabilityBits.keys) }
        if drop.contains("ALL") { set = [] }
        set.formUnion(add.filter { $0 != "ALL" }.map(Self.unprefixed))
        set.subtract(drop.filter { $0 != "ALL" }.map(Self.unprefixed))
        return set
    }

    /// The capability mask /proc/PID/status shows (CapEff, CapBnd) for a uid-0 process with `capabilities`.
    var capabilityMask: String {
        let bits = capabilities.reduce(UInt64(0)) { $0 | (1 << UInt64(Self.capabilityBits[$1] ?? 63)) }
        let hex = String(bits, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// The volume mounted at `mountPath`, if any.
    func volume(at mountPath: String) -> String? { volumeMounts.first { $0.mountPath == mountPath }?.volume }

    /// The command that runs a command in this container: `/bin/sh -c …`, to
    /// which the caller appends the command and its arguments. `root` is an
    /// empty directory of the caller's, where the container's root is mounted
    /// inside its namespace (nothing stays mounted on it outside). `sources`
    /// maps each volume to the directory that stands in for it here: the
    /// test's own for the node's state directory or a Secret; a hostPath not
    /// given is mounted from this machine. SIGTERM to the wrapper's process
    /// goes on to the container's PID 1, as the kubelet stops a pod.
    func wrapper(image: Image, root: String, sources: [String: String] = [:]) throws -> [String] {
        var script = ["set -e", "root=$1; shift", "mount -t tmpfs -o mode=0755 slabwatch-pod \"$root\""]
        script += try Self.imageCommands(image)
        script += [
            "mkdir -p \"$root/proc\" \"$root/sys\" \"$root/dev\"",
            "mount -t proc -o nosuid,nodev,noexec proc \"$root/proc\"",
            "for p in \(Self.procReadOnlyPaths.joined(separator: " ")); do [ ! -e \"$root/proc/$p\" ] || "
                + "{ mount --bind \"$root/proc/$p\" \"$root/proc/$p\" && mount -o remount,bind,ro \"$root/proc/$p\"; }; done",
            "mount -t sysfs -o ro,nosuid,nodev,noexec sysfs \"$root/sys\"",
            "mount -t tmpfs -o mode=0755,nosuid,size=64k slabwatch-dev \"$root/dev\"",
            "for d in null zero full random urandom; do touch \"$root/dev/$d\" && mount --bind \"/dev/$d\" \"$root/dev/$d\"; done",
        ]
        for mount in volumeMounts {
            let source = try #require(sources[mount.volume] ?? hostPaths[mount.volume],
                                      "volume \(mount.volume) (a Secret) needs a directory to stand in for it")
            let target = "\"$root\"" + Self.quoted(mount.mountPath)
            script += ["mkdir -p \(target)", "mount --rbind \(Self.quoted(source)) \(target)"]
            // runc remounts only the volume's own mount read-only: its
            // submounts keep their own flags, as here.
            if mount.readOnly { script.append("mount -o remount,bind,ro \(target)") }
            if mount.readOnly && mount.recursive { script.append("/usr/bin/python3 -c \(Self.quoted(Self.recursivelyReadOnly)) \(target)") }
        }
        if readOnlyRoot { script.append("mount -o remount,ro \"$root\"") }
        let bounding = (["-all"] + capabilities.sorted().map { "+" + $0.lowercased() }).joined(separator: ",")
        script.append("exec chroot \"$root\" /usr/bin/setpriv --reuid=\(uid) --regid=\(gid) --clear-groups --inh-caps=-all "
                      + "--ambient-caps=-all --bounding-set=\(bounding)\(noNewPrivileges ? " --no-new-privs" : "") -- \"$@\"")
        return ["/usr/bin/python3", "-c", Self.runtime, "/usr/bin/unshare", "--mount", "--pid", "--fork", "--kill-child",
                "--propagation", "private", "/bin/sh", "-c", script.joined(separator: "\n"), "sh", root]
    }

    /// runc's `rro`: mount_setattr(2) (syscall 442 on every architecture)
    /// with MOUNT_ATTR_RDONLY and AT_RECURSIVE on the mount at argv[1] and
    /// every mount below it, in one call.
    static let recursivelyReadOnly = """
        import ctypes, os, sys
        libc = ctypes.CDLL(None, use_errno=True)
        attributes = (ctypes.c_uint64 * 4)(1, 0, 0, 0)  # struct mount_attr: attr_set = MOUNT_ATTR_RDONLY
        if libc.syscall(442, -100, sys.argv[1].encode(), 0x8000, attributes, 32) != 0:  # AT_FDCWD, AT_RECURSIVE
            sys.exit(f"mount_setattr {sys.argv[1]}: {os.strerror(ctypes.get_errno())}")
        """

    /// Runs its arguments (unshare) and passes SIGTERM and SIGINT on to the
    /// container's PID 1: unshare's forking parent blocks both, and a shell
    /// cannot trap a signal it was started with blocked (as a test's child is).
    static let runtime = """
        import os, signal, subprocess, sys
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        runtime = subprocess.Popen(sys.argv[1:])
        def stop(number, frame):
            with open(f"/proc/{runtime.pid}/task/{runtime.pid}/children") as children:
                for pid in children.read().split():
                    os.kill(int(pid), number)
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        sys.exit(runtime.wait())
        """

    /// The container's PID 1, the process its runtime started, found below
    /// `wrapper`'s process; nil once the wrapper has ended.
    static func containerProcess(of wrapper: Int32) throws -> Int32? {
        let deadline = Date().addingTimeInterval(10)  // the runtime forks at once; only a hung machine takes this long
        while Date() < deadline {
            let state = (try? String(contentsOfFile: "/proc/\(wrapper)/stat", encoding: .utf8))?.split(separator: ")").last?.split(separator: " ").first
            guard let state, state != "Z" else { return nil }
            var pending = [wrapper]
            while let pid = pending.popLast() {
                let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
                if status.split(separator: "\n").contains(where: { $0.hasPrefix("NSpid:") && $0.hasSuffix("\t1") }) { return pid }
                let children = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
                pending += children.split(separator: " ").compactMap { Int32($0) }
            }
            usleep(10_000)
        }
        throw DaemonProcess.Failure(message: "no container process below \(wrapper)")
    }

    private static func imageCommands(_ image: Image) throws -> [String] {
        switch image {
        case .hostSystem(let binary):
            // Merged /usr, as on Debian 12: /bin, /lib, /lib64 and /sbin are links into it.
            let elsewhere = try libraries(of: binary).filter { !$0.hasPrefix("/usr/") && !$0.hasPrefix("/lib") }
            let directories = ["/usr", (binary as NSString).deletingLastPathComponent]
                + elsewhere.map { ($0 as NSString).deletingLastPathComponent }
            var commands = ["for l in bin lib lib64 sbin; do ln -s \"usr/$l\" \"$root/$l\"; done"]
            for directory in Set(directories).sorted() {
                commands += ["mkdir -p \"$root\"\(quoted(directory))", "mount -o bind,ro \(quoted(directory)) \"$root\"\(quoted(directory))"]
            }
            return commands
        case .files(let paths):
            return paths.flatMap { path in
                ["mkdir -p \"$root\"\(quoted((path as NSString).deletingLastPathComponent))",
                 "cp \(quoted(path)) \"$root\"\(quoted(path))"]
            }
        }
    }

    /// The shared libraries `binary` loads, and the dynamic loader, as ldd resolves them here.
    static func libraries(of binary: String) throws -> [String] {
        try DaemonProcess.run("/usr/bin/ldd", [binary]).output.split(separator: "\n").compactMap { line in
            line.split(whereSeparator: { $0 == " " || $0 == "\t" }).first { $0.hasPrefix("/") }.map(String.init)
        }
    }

    /// `--key=value` as two arguments, as DaemonProcess looks for flags.
    private static func separated(_ argument: String) -> [String] {
        guard argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") else { return [argument] }
        return [String(argument[..<equals]), String(argument[argument.index(after: equals)...])]
    }

    private static func unprefixed(_ name: String) -> String {
        let upper = name.uppercased()
        return upper.hasPrefix("CAP_") ? String(upper.dropFirst(4)) : upper
    }

    static func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }
}
