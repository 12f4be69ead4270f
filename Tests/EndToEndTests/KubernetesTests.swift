import Foundation
import Glibc
import Testing
import TestSupport

/// deploy/kubernetes, offline: kustomize renders the base and the attribution
/// overlay, every object validates against the Kubernetes schemas or the
/// prometheus-operator CRDs, and the daemon started the way the DaemonSet runs
/// it (its user, its one capability, no new privileges, a read-only root)
/// reads /proc/slabinfo. Also the dashboard against Grafana's schema models.
extension EndToEndTests {
    static let kubernetes = Paths.repositoryRoot.appendingPathComponent("deploy/kubernetes")
    /// kubernetes-validate and grafana-foundation-sdk, installed by scripts/test.sh.
    static let venvPython = Paths.repositoryRoot.appendingPathComponent(".build-venv/bin/python").path

    /// The machine's kubectl, and Debian 12's (kustomize 2.0.3), unpacked by scripts/test.sh.
    static let kubectls = ["/usr/bin/kubectl", Paths.repositoryRoot.appendingPathComponent(".build-kubectl/usr/bin/kubectl").path]

    /// The objects `kubectl kustomize` renders from a directory, as JSON values.
    static func rendered(_ directory: String, kubectl: String = kubectls[0]) throws -> (yaml: String, objects: [[String: Any]]) {
        let render = try DaemonProcess.run(kubectl, ["kustomize", kubernetes.appendingPathComponent(directory).path])
        guard render.status == 0 else { throw DaemonProcess.Failure(message: "kubectl kustomize \(directory): \(render.error)") }
        let json = try DaemonProcess.run(venvPython, ["-c", "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(sys.stdin))))"],
                                         input: Data(render.output.utf8))
        let objects = try #require(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [[String: Any]], "\(json.error)")
        return (render.output, objects)
    }

    @Test(arguments: ["base", "overlays/attribution"], kubectls)
    func manifestsRenderAndValidate(_ directory: String, kubectl: String) throws {
        let (yaml, objects) = try Self.rendered(directory, kubectl: kubectl)
        #expect(Set(objects.compactMap { $0["kind"] as? String }) ==
                ["Namespace", "ServiceAccount", "PriorityClass", "DaemonSet", "Service", "PodMonitor", "PrometheusRule"])
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-k8s-\(UUID().uuidString).yaml")
        defer { try? FileManager.default.removeItem(at: file) }
        try replaceFile(file, with: yaml)
        let crds = Paths.repositoryRoot.appendingPathComponent("Tests/Fixtures/crds")
        let check = try DaemonProcess.run(Self.venvPython, [
            Paths.repositoryRoot.appendingPathComponent("scripts/check-kubernetes.py").path,
            "--crd", crds.appendingPathComponent("monitoring.coreos.com_podmonitors.yaml").path,
            "--crd", crds.appendingPathComponent("monitoring.coreos.com_prometheusrules.yaml").path, file.path,
        ])
        #expect(check.status == 0 && check.output.contains("7 objects checked, 0 failed"), "\(check.output)\(check.error)")
        if directory.hasPrefix("overlays/attribution") {
            #expect(yaml.contains("--attribution.enabled=true") && yaml.contains("mountPath: /sys/kernel/tracing"))
        }
    }

    /// The validator can fail: a misspelt field in the DaemonSet and in the PodMonitor.
    @Test func manifestValidationRejectsUnknownFields() throws {
        let (yaml, _) = try Self.rendered("base")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-k8s-\(UUID().uuidString).yaml")
        defer { try? FileManager.default.removeItem(at: file) }
        try replaceFile(file, with: yaml.replacingOccurrences(of: "readOnlyRootFilesystem", with: "readOnlyRootFS")
            .replacingOccurrences(of: "podMetricsEndpoints", with: "podMetricEndpoints"))
        let crds = Paths.repositoryRoot.appendingPathComponent("Tests/Fixtures/crds")
        let check = try DaemonProcess.run(Self.venvPython, [
            Paths.repositoryRoot.appendingPathComponent("scripts/check-kubernetes.py").path,
            "--crd", crds.appendingPathComponent("monitoring.coreos.com_podmonitors.yaml").path, file.path,
        ])
        #expect(check.status == 1)
        #expect(check.error.contains("DaemonSet/slabwatch") && check.error.contains("readOnlyRootFS"), "\(check.error)")
        #expect(check.error.contains("PodMonitor/slabwatch") && check.error.contains("podMetricEndpoints"), "\(check.error)")
    }

    /// The DaemonSet's user, capabilities and read-only root, applied with
    /// setpriv in a private mount namespace: slabinfo and sysfs are read.
    @Test(.enabled(if: getuid() == 0, "sets a uid and a read-only root"))
    func daemonReadsSlabinfoAsTheDaemonSetRunsIt() throws {
        let daemonSet = try #require(try Self.rendered("base").objects.first { $0["kind"] as? String == "DaemonSet" })
        let pod = try #require((daemonSet["spec"] as? [String: Any])?["template"] as? [String: Any])
        let podSpec = try #require(pod["spec"] as? [String: Any])
        let podSecurity = try #require(podSpec["securityContext"] as? [String: Any])
        let container = try #require((podSpec["containers"] as? [[String: Any]])?.first)
        let security = try #require(container["securityContext"] as? [String: Any])
        let capabilities = try #require(security["capabilities"] as? [String: [String]])
        #expect(capabilities["drop"] == ["ALL"])
        #expect(security["allowPrivilegeEscalation"] as? Bool == false)
        #expect(security["readOnlyRootFilesystem"] as? Bool == true)
        let uid = try #require(podSecurity["runAsUser"] as? Int), gid = try #require(podSecurity["runAsGroup"] as? Int)
        let added = (capabilities["add"] ?? []).map { "+" + $0.lowercased() }.joined(separator: ",")

        // The runtime's grant: that user, no groups, only the added capabilities
        // in the bounding set (uid 0 gains exactly those at exec), no new
        // privileges, and / mounted read-only in the pod's own mount namespace.
        let grant = "setpriv --reuid=\(uid) --regid=\(gid) --clear-groups --inh-caps=-all --bounding-set=-all,\(added) --no-new-privs"
        let daemon = try DaemonProcess(
            arguments: ["--sampler.interval", "500ms"],
            wrapper: ["/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
                      "mount -o remount,bind,ro / && exec \(grant) \"$@\"", "sh"])
        let status = try String(contentsOfFile: "/proc/\(daemon.pid)/status", encoding: .utf8)
        #expect(status.contains("CapEff:\t0000000000000004\n") && status.contains("CapBnd:\t0000000000000004\n"), "\(status)")
        #expect(status.contains("NoNewPrivs:\t1"))
        let mounts = try String(contentsOfFile: "/proc/\(daemon.pid)/mountinfo", encoding: .utf8)
        let root = try #require(mounts.split(separator: "\n").first { $0.split(separator: " ")[4] == "/" })
        #expect(root.split(separator: " ")[5].hasPrefix("ro"), "\(root)")
        let values = samples(try daemon.get("/metrics").body)
        #expect(values["slabwatch_source_up{source=\"slabinfo\"}"] == 1, "\(daemon.log)")
        #expect(values["slabwatch_source_up{source=\"sysfs_slab\"}"] == 1)
        #expect(values["slabwatch_slab_memory_bytes{slab=\"dentry\"}"] ?? 0 > 0)
    }

    /// Every field of the dashboard is one Grafana's schema knows (see the script for what it cannot check).
    @Test func dashboardFieldsAreInGrafanasSchema() throws {
        let check = try DaemonProcess.run(Self.venvPython, [
            Paths.repositoryRoot.appendingPathComponent("scripts/check-dashboard.py").path,
            Paths.repositoryRoot.appendingPathComponent("mixin/dashboards_out/slabwatch.json").path,
        ])
        #expect(check.status == 0, "\(check.output)\(check.error)")
    }
}
