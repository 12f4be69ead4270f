import Foundation
import Glibc
import Testing
import TestSupport

/// A fleet through the real chain: three slabwatch daemons on fixture roots, a
/// real Prometheus loading the mixin's rules, a real Alertmanager, and a webhook
/// receiver, all on loopback. Node a's kmalloc-32 grows 4 KiB per inode for the
/// whole test; node b's grew 1 KiB per inode and gave it back (a resolved
/// finding, remembered); node c is quiet, then its daemon stops. Each node has
/// more caches than the default exports, so the mixin is tested on the bound.
/// Node a also has a cgroup v2 tree whose one pod container's unreclaimable
/// slab keeps rising: the v2 alert, which reads that slab, reaches the webhook
/// with the pod's labels (the v1 one, on kernel memory, is promtool's to test).
extension EndToEndTests {
    @Test func fleetAlertReachesTheWebhookAndTheDashboardHasData() throws {
        let a = try FleetNode(bytesPerInode: 4096, cgroups: true)
        let b = try FleetNode(bytesPerInode: 1024)
        let c = try FleetNode(bytesPerInode: 0)
        defer { [a, b, c].forEach { $0.stop() } }
        let webhook = try WebhookReceiver()
        defer { webhook.stop() }
        let alertmanager = try Alertmanager(webhookPort: webhook.port)
        defer { alertmanager.stop() }
        let rules = FleetNode.scratch.appendingPathComponent("fleet-rules-\(UUID().uuidString).yml")
        defer { try? FileManager.default.removeItem(at: rules) }
        try replaceFile(rules, with: try Self.mixinRules(growsPerFileFor: "10s", slabwatchDownFor: "3s",
                                                         cgroupRise: (bytes: 64 << 20, window: "40s", step: "10s", for: "5s")))
        let prometheus = try PrometheusServer(
            scrapeConfigs: """
              - job_name: slabwatch
                static_configs:
                  - targets: ["\(a.instance)", "\(b.instance)", "\(c.instance)"]

            """,
            configuration: """
            rule_files: ["\(rules.path)"]
            alerting:
              alertmanagers:
                - static_configs:
                    - targets: ["127.0.0.1:\(alertmanager.port)"]

            """)
        try a.daemon.waitFor("Prometheus to scrape all three", timeout: 60) {
            try prometheus.value("count(up{job=\"slabwatch\"} == 1)") == "3"
        }
        // The default bound leaves caches out on every node.
        #expect(try prometheus.value("count(slabwatch_caches{state=\"beyond_top\"} > 0)") == "3")

        // b's cache gives its memory back: its finding resolves, and stays
        // remembered with its bytes per unit, no longer flagged.
        try b.daemon.waitFor("b's finding", timeout: 30) { try Self.detectorFinding(b.daemon, "kmalloc-32") != nil }
        b.evict()
        try b.daemon.waitFor("b's finding to resolve", timeout: 30) {
            try Self.detectorFinding(b.daemon, "kmalloc-32")?["state"] as? String == "resolved"
        }

        // The alert reaches the webhook for a, with the node, cache and bytes per unit.
        try a.daemon.waitFor("SlabCacheGrowsPerFile at the webhook", timeout: 60) {
            !webhook.alerts(named: "SlabCacheGrowsPerFile").isEmpty
        }
        let alert = try #require(webhook.alerts(named: "SlabCacheGrowsPerFile").first)
        let labels = try #require(alert["labels"] as? [String: String])
        let annotations = try #require(alert["annotations"] as? [String: String])
        #expect(labels["instance"] == a.instance && labels["slab"] == "kmalloc-32" && labels["driver"] == "inodes", "\(labels)")
        let perUnit = try #require(Double(annotations["bytes_per_unit"] ?? ""), "\(annotations)")
        #expect(abs(perUnit - 4096) < 41, "\(perUnit)")
        let description = annotations["description"] ?? ""
        #expect(description.range(of: #"^Slab cache kmalloc-32 grows by (3\.9|4)[0-9.]*kiB per unit of inodes\."#, options: .regularExpression) != nil,
                "\(annotations)")

        // The fleet rules: a median over a and b, and a alone above it.
        try a.daemon.waitFor("the fleet median", timeout: 20) {
            try prometheus.query("instance:slabwatch_finding_bytes_per_unit:above_fleet_median{driver=\"inodes\"}").count == 1
        }
        let median = try #require(Double(try prometheus.value("slabwatch:finding_bytes_per_unit:median{slab=\"kmalloc-32\",driver=\"inodes\"}") ?? ""))
        #expect(abs(median - 2560) < 60, "\(median)")
        let above = try prometheus.query("instance:slabwatch_finding_bytes_per_unit:above_fleet_median{driver=\"inodes\"}")
        #expect(above.compactMap { ($0["metric"] as? [String: String])?["instance"] } == [a.instance])

        // Every panel's query of the shipped dashboard returns series; the
        // growth panel ranks a's growing cache first.
        for query in try Self.dashboardQueries(instance: a.instance, slab: "kmalloc-32") {
            #expect(!(try prometheus.query(query)).isEmpty, "no series for \(query)")
        }
        let growth = try prometheus.query("topk(1, delta(slabwatch_slab_footprint_bytes{instance=\"\(a.instance)\"}[1m]))")
        #expect(growth.compactMap { ($0["metric"] as? [String: String])?["slab"] } == ["kmalloc-32"], "\(growth)")

        // a's pod container's unreclaimable slab keeps rising: the v2 alert reaches the webhook with
        // the pod's UID and container id; the kernel-memory alert, v1's, is not for a cgroup with slab.
        try a.daemon.waitFor("CgroupUnreclaimableSlabKeepsRising at the webhook", timeout: 90) {
            !webhook.alerts(named: "CgroupUnreclaimableSlabKeepsRising").isEmpty
        }
        let cgroupAlert = try #require(webhook.alerts(named: "CgroupUnreclaimableSlabKeepsRising").first?["labels"] as? [String: String])
        #expect(cgroupAlert["instance"] == a.instance && cgroupAlert["cgroup"] == FleetNode.container, "\(cgroupAlert)")
        #expect(cgroupAlert["pod_uid"] == FleetNode.podUID && cgroupAlert["container_id"] == FleetNode.containerID, "\(cgroupAlert)")
        #expect(cgroupAlert["memory"] == "unreclaimable", "\(cgroupAlert)")
        #expect(webhook.alerts(named: "CgroupKernelMemoryKeepsRising").isEmpty)

        // c's daemon stops: the down alert reaches the webhook for c.
        _ = c.daemon.terminate()
        try a.daemon.waitFor("SlabwatchDown at the webhook", timeout: 60) { !webhook.alerts(named: "SlabwatchDown").isEmpty }
        let down = try #require(webhook.alerts(named: "SlabwatchDown").first?["labels"] as? [String: String])
        #expect(down["instance"] == c.instance, "\(down)")

        // Only a ever paged for growth: not b (flagged for seconds, under the
        // alert's `for`), not c.
        let growthInstances = Set(webhook.alerts(named: "SlabCacheGrowsPerFile").compactMap { ($0["labels"] as? [String: String])?["instance"] })
        #expect(growthInstances == [a.instance])
        let firing = try prometheus.query("ALERTS{alertname=\"SlabCacheGrowsPerFile\",alertstate=\"firing\"}")
        #expect(firing.compactMap { ($0["metric"] as? [String: String])?["instance"] } == [a.instance])
    }

    /// Every target's expr and every variable's series, with the variables filled
    /// in as Grafana would (`$__range` as one minute: the test's Prometheus is young).
    static func dashboardQueries(instance: String, slab: String) throws -> [String] {
        let dashboard = try dashboard()
        let panels = dashboard["panels"] as? [[String: Any]] ?? []
        var queries = panels.flatMap { ($0["targets"] as? [[String: Any]] ?? []).compactMap { $0["expr"] as? String } }
        for variable in (dashboard["templating"] as? [String: Any])?["list"] as? [[String: Any]] ?? [] {
            // label_values(SERIES, label): SERIES must exist.
            guard let query = (variable["query"] as? [String: Any])?["query"] as? String,
                  query.hasPrefix("label_values("), let comma = query.lastIndex(of: ",") else { continue }
            queries.append(String(query[query.index(query.startIndex, offsetBy: 13)..<comma]))
        }
        return queries.map {
            $0.replacingOccurrences(of: "$instance", with: instance)  // its dots match themselves
                .replacingOccurrences(of: "$slab", with: slab)
                .replacingOccurrences(of: "$__range", with: "1m")
        }
    }

    /// The mixin's rules as one rule file, with the `for` durations a test can wait for
    /// (in JSON, which Prometheus reads as YAML: jsonnet's YAML writer takes seconds).
    static func mixinRules(growsPerFileFor: String, slabwatchDownFor: String,
                           cgroupRise: (bytes: Int, window: String, step: String, for: String) = (512 << 20, "6h", "30m", "30m")) throws -> String {
        let program = """
            local mixin = (import "mixin/mixin.libsonnet") + { _config+:: { growsPerFileFor: "\(growsPerFileFor)", slabwatchDownFor: "\(slabwatchDownFor)",
              cgroupRiseBytes: \(cgroupRise.bytes), cgroupRiseWindow: "\(cgroupRise.window)", cgroupRiseStep: "\(cgroupRise.step)", cgroupRiseFor: "\(cgroupRise.for)" } };
            { groups: mixin.prometheusRules.groups + mixin.prometheusAlerts.groups }
            """
        let result = try DaemonProcess.run("/usr/bin/jsonnet", ["-J", Paths.repositoryRoot.path, "-e", program])
        guard result.status == 0 else { throw DaemonProcess.Failure(message: "jsonnet: \(result.error)") }
        return result.output
    }
}

/// One node of the fleet: a procfs root whose kmalloc-32 grows `bytesPerInode`
/// for every inode (2000 inodes every 100 ms), and the daemon reading it.
final class FleetNode: @unchecked Sendable {  // inodes and running guarded by `lock`
    static let scratch = FileManager.default.temporaryDirectory
    let root = scratch.appendingPathComponent("slabwatch-fleet-\(UUID().uuidString)")
    let bytesPerInode: UInt64
    private let lock = NSLock()
    private var inodes: UInt64 = 100_000
    private var growing = true
    private var running = true
    private var thread: Thread?
    /// Signalled by the writer as it ends, so `stop` removes nothing it still writes.
    private let writerEnded = DispatchSemaphore(value: 0)
    private(set) var daemon: DaemonProcess!
    /// Samples every 200 ms; a 10 s window opens a finding within seconds of
    /// growth, and memory back for 3 s resolves it.
    static let detector = [
        "--sampler.interval", "200ms", "--detector.windows", "10s", "--detector.min-growth-bytes", "8MiB",
        "--detector.min-driver-change", "5000", "--detector.open-after", "2", "--detector.resolve-after", "3s",
    ]

    /// Caches besides the three that matter: more than `/metrics` lists by default.
    static let fillers = 30

    /// With a cgroup v2 tree (the memory controller on, one pod container under the
    /// kubelet's systemd driver) whose kernel memory rises 512 B per inode.
    let cgroups: Bool
    static let podUID = "1d3a5b7c-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
    static let containerID = String(repeating: "3f2a1b9c", count: 8)
    static let container = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1d3a5b7c_9e0f_4a1b_8c2d_3e4f5a6b7c8d.slice/"
        + "cri-containerd-\(containerID).scope"

    init(bytesPerInode: UInt64, cgroups: Bool = false) throws {
        self.bytesPerInode = bytesPerInode
        self.cgroups = cgroups
        do {
            if cgroups {
                // /proc/self/mountinfo's line for a cgroup2 mount, as the kernel writes it.
                try FileManager.default.createDirectory(at: root.appendingPathComponent("proc/self"), withIntermediateDirectories: true)
                try FileManager.default.createDirectory(at: root.appendingPathComponent("sys/fs/cgroup" + Self.container), withIntermediateDirectories: true)
                try replaceFile(root.appendingPathComponent("proc/self/mountinfo"),
                                with: "30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw\n")
                try replaceFile(root.appendingPathComponent("sys/fs/cgroup/cgroup.controllers"), with: "cpuset cpu io memory pids\n")
            }
            let slab = root.appendingPathComponent("sys/kernel/slab/kmalloc-32")
            try FileManager.default.createDirectory(at: slab, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(at: root.appendingPathComponent("proc/sys/fs"), withIntermediateDirectories: true)
            try replaceFile(slab.appendingPathComponent("reclaim_account"), with: "0\n")
            try write()
            let thread = Thread { [self] in
                while lock.withLock({ running }) {
                    lock.withLock { if growing && bytesPerInode > 0 { inodes += 2000 } }
                    try? write()
                    usleep(100_000)
                }
                writerEnded.signal()
            }
            self.thread = thread
            thread.start()
            daemon = try DaemonProcess(arguments: [
                "--path.procfs", root.appendingPathComponent("proc").path, "--path.sysfs", root.appendingPathComponent("sys").path,
                "--alerts.journal-socket", "/nonexistent/journal-socket",
            ] + Self.detector)
        } catch {
            stop()
            throw error
        }
    }

    /// host:port, as Prometheus labels the target.
    var instance: String { "127.0.0.1:\(daemon.port)" }

    /// The inodes are evicted and growth stops; the cache follows them down.
    func evict() { lock.withLock { growing = false; inodes = 100_000 } }

    func stop() {
        if daemon?.process.isRunning == true { _ = daemon.terminate() }
        let wasRunning = lock.withLock { defer { running = false }; return running }
        if wasRunning && thread != nil { writerEnded.wait() }
        thread = nil
        try? FileManager.default.removeItem(at: root)
    }

    private func write() throws {
        let n = lock.withLock { inodes }
        let slabs = 2048 + (n - 100_000) * bytesPerInode / 4096  // kmalloc-32: one 4 KiB page per slab
        let slabKiB = slabs * 4 + 800 + 2000 + UInt64(Self.fillers) * 4
        // Small steady caches, one 4 KiB slab each: beyond the default's top 20.
        let fillers = (0..<Self.fillers).map { "filler-\($0) 128 128 32 128 1 : tunables 0 0 0 : slabdata 1 1 0\n" }.joined()
        var files = [
            "proc/slabinfo": "slabinfo - version: 2.1\n"
                + "kmalloc-32 \(slabs * 128) \(slabs * 128) 32 128 1 : tunables 0 0 0 : slabdata \(slabs) \(slabs) 0\n"
                + "dentry 4200 4200 192 21 1 : tunables 0 0 0 : slabdata 200 200 0\n"
                + "ext4_inode_cache 7000 7000 1128 14 4 : tunables 0 0 0 : slabdata 500 500 0\n" + fillers,
            "proc/meminfo": "MemTotal: 268435456 kB\nMemAvailable: 200000000 kB\nSlab: \(slabKiB) kB\n"
                + "SReclaimable: 2800 kB\nSUnreclaim: \(slabKiB - 2800) kB\n",
            "proc/sys/fs/inode-nr": "\(n)\t0\n",
            "proc/sys/fs/dentry-state": "50000\t0\t45\t0\t0\t0\n",
            "proc/sys/fs/file-nr": "1000\t0\t100000\n",
        ]
        if cgroups {
            // memory.stat's keys as cgroup-v2.rst documents them (a few of them; the reader takes these by name).
            let kernel = 50 << 20 + (n - 100_000) * 512
            files["sys/fs/cgroup" + Self.container + "/memory.stat"] = "anon 1048576\nfile 4096\nkernel \(kernel)\nkernel_stack 16384\n"
                + "pagetables 8192\nsock 0\nslab_reclaimable \(kernel / 4)\nslab_unreclaimable \(kernel / 2)\nslab \(kernel / 4 + kernel / 2)\n"
        }
        for (path, text) in files {
            try replaceFile(root.appendingPathComponent(path), with: text)  // rename: never half a file
        }
    }
}

/// A real Alertmanager on loopback (no cluster port), routing every alert at
/// once to one webhook; its data removed when stopped.
final class Alertmanager {
    let port = freePort()
    private let process = Process()
    private let directory = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-am-\(UUID().uuidString)")

    init(webhookPort: UInt16) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let config = directory.appendingPathComponent("alertmanager.yml")
        try replaceFile(config, with: """
            route:
              receiver: webhook
              group_by: [alertname, instance]
              group_wait: 0s
              group_interval: 1s
              repeat_interval: 1h
            receivers:
              - name: webhook
                webhook_configs:
                  - url: http://127.0.0.1:\(webhookPort)/
                    send_resolved: false

            """)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/prometheus-alertmanager")
        process.arguments = [
            "--config.file=\(config.path)", "--storage.path=\(directory.appendingPathComponent("data").path)",
            "--web.listen-address=127.0.0.1:\(port)", "--cluster.listen-address=",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    func stop() {
        if process.isRunning { process.terminate(); process.waitUntilExit() }
        try? FileManager.default.removeItem(at: directory)
    }
}

/// An HTTP receiver on a loopback port (python3's http.server) that keeps every
/// webhook body Alertmanager posts, one file per notification.
final class WebhookReceiver {
    private(set) var port: UInt16 = 0
    private let process = Process()
    private let directory = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-webhook-\(UUID().uuidString)")

    private static let server = """
        import http.server, os, sys
        out = sys.argv[1]
        class Receiver(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                name = os.path.join(out, "%06d" % len(os.listdir(out)))
                with open(name + ".part", "wb") as f:
                    f.write(body)
                os.rename(name + ".part", name + ".json")
                self.send_response(200)
                self.end_headers()
            def log_message(self, *args):
                pass
        server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
        print(server.server_port, flush=True)
        server.serve_forever()
        """

    init() throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", Self.server, directory.path]
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        var line = ""
        while !line.contains("\n") {
            let data = output.fileHandleForReading.availableData
            guard !data.isEmpty else {
                stop()
                throw DaemonProcess.Failure(message: "webhook receiver did not start")
            }
            line += String(decoding: data, as: UTF8.self)
        }
        port = UInt16(line.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    /// Every alert received so far with this alertname, oldest notification first.
    func alerts(named name: String) -> [[String: Any]] {
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasSuffix(".json") }.sorted()
        return files.flatMap { file -> [[String: Any]] in
            guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent(file).path),
                  let body = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [] }
            return (body["alerts"] as? [[String: Any]] ?? []).filter { ($0["labels"] as? [String: String])?["alertname"] == name }
        }
    }

    /// SIGKILL: python3 inherits the test runner's blocked signals, SIGTERM included.
    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        try? FileManager.default.removeItem(at: directory)
    }
}
