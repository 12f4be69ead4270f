import Foundation
import Glibc
import Testing
import TestSupport

extension EndToEndTests {
    /// deploy/kubernetes: kustomize renders every kustomization, every object
    /// validates against the Kubernetes schemas or the prometheus-operator CRDs,
    /// and the binary runs as each manifest's container would (KubernetesContainer:
    /// its user, capabilities, no new privileges, read-only root and volumes): it
    /// reads every source, and cannot open a file of the node by handle. Also the
    /// dashboard against Grafana's schema models.
    ///
    /// Nested in the serialized end-to-end suite, as its containers read and
    /// trace the live kernel; `swift test --filter Kubernetes` runs them.
    @Suite struct Kubernetes {
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

        /// Every kustomization under deploy/kubernetes.
        static let kustomizations = ["base", "overlays/attribution", "overlays/attribution-tracefs", "overlays/cgroups", "overlays/web-config"]
        /// Those whose daemon runs without a Secret (web-config's has a test of its own).
        static let withoutSecrets = kustomizations.filter { $0 != "overlays/web-config" }

        /// The manifest's arguments, listening on an ephemeral loopback port
        /// instead of its own: the container's network namespace is not emulated.
        static func loopback(_ arguments: [String]) -> [String] {
            guard let listen = arguments.firstIndex(of: "--web.listen-address") else { return arguments }
            return Array(arguments[..<listen] + arguments[(listen + 2)...])
        }

        /// `objects` with the DaemonSet's first container changed by `edit`.
        static func editingContainer(_ objects: [[String: Any]], _ edit: (inout [String: Any]) -> Void) -> [[String: Any]] {
            objects.map { object in
                guard object["kind"] as? String == "DaemonSet", var spec = object["spec"] as? [String: Any],
                      var template = spec["template"] as? [String: Any], var podSpec = template["spec"] as? [String: Any],
                      var containers = podSpec["containers"] as? [[String: Any]], !containers.isEmpty else { return object }
                edit(&containers[0])
                podSpec["containers"] = containers
                template["spec"] = podSpec
                spec["template"] = template
                var edited = object
                edited["spec"] = spec
                return edited
            }
        }

        /// The base runs the image of this very version: `newTag` is what the
        /// binary says it is (`slabwatch --version`, the image's version label).
        @Test func theImageTagIsTheBinarysVersion() throws {
            let kustomization = try String(contentsOf: Self.kubernetes.appendingPathComponent("base/kustomization.yaml"), encoding: .utf8)
            let tag = try #require(kustomization.split(separator: "\n").first { $0.contains("newTag:") }?
                .split(separator: ":").last?.trimmingCharacters(in: .whitespaces))
            let version = try DaemonProcess.run(DaemonProcess.binary.path, ["--version"])
            #expect(version.status == 0 && tag == version.output.trimmingCharacters(in: .whitespacesAndNewlines),
                    "deploy/kubernetes/base/kustomization.yaml runs \(tag); the binary is \(version.output)")
        }

        @Test(arguments: kustomizations, kubectls)
        func manifestsRenderAndValidate(_ directory: String, kubectl: String) throws {
            let (yaml, objects) = try Self.rendered(directory, kubectl: kubectl)
            #expect(Set(objects.compactMap { $0["kind"] as? String }) ==
                    ["Namespace", "ServiceAccount", "PriorityClass", "DaemonSet", "Service", "NetworkPolicy", "PodMonitor", "PrometheusRule"])
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-k8s-\(UUID().uuidString).yaml")
            defer { try? FileManager.default.removeItem(at: file) }
            try replaceFile(file, with: yaml)
            let crds = Paths.repositoryRoot.appendingPathComponent("Tests/Fixtures/crds")
            let check = try DaemonProcess.run(Self.venvPython, [
                Paths.repositoryRoot.appendingPathComponent("scripts/check-kubernetes.py").path,
                "--crd", crds.appendingPathComponent("monitoring.coreos.com_podmonitors.yaml").path,
                "--crd", crds.appendingPathComponent("monitoring.coreos.com_prometheusrules.yaml").path, file.path,
            ])
            #expect(check.status == 0 && check.output.contains("8 objects checked, 0 failed"), "\(check.output)\(check.error)")
            #expect(yaml.contains("--attribution.enabled=true") == directory.hasPrefix("overlays/attribution"))
            #expect(yaml.contains("mountPath: /sys/kernel/tracing") == (directory == "overlays/attribution-tracefs"))
            #expect(yaml.contains("--path.cgroupfs=/host/sys/fs/cgroup") == (directory == "overlays/cgroups"))
        }

        /// The NetworkPolicy selects the DaemonSet's pods, lets in only their
        /// metrics port from the namespace named `monitoring`, and lets nothing
        /// out; the patch docs/operating/kubernetes.md gives names another namespace, with both
        /// kubectls. (Checked offline: no network plugin enforces it here.)
        @Test(arguments: kubectls)
        func theNetworkPolicyAdmitsScrapesFromOneNamespaceOnly(kubectl: String) throws {
            let objects = try Self.rendered("base", kubectl: kubectl).objects
            let policy = try #require(objects.first { $0["kind"] as? String == "NetworkPolicy" }?["spec"] as? [String: Any])
            let template = try #require((objects.first { $0["kind"] as? String == "DaemonSet" }?["spec"] as? [String: Any])?["template"] as? [String: Any])
            let podLabels = try #require((template["metadata"] as? [String: Any])?["labels"] as? [String: String])
            let selected = try #require((policy["podSelector"] as? [String: Any])?["matchLabels"] as? [String: String])
            #expect(!selected.isEmpty && selected.allSatisfy { podLabels[$0.key] == $0.value }, "\(selected) \(podLabels)")
            #expect(policy["policyTypes"] as? [String] == ["Ingress", "Egress"] && policy["egress"] == nil)
            let ingress = try #require(policy["ingress"] as? [[String: Any]])
            #expect(ingress.count == 1)
            #expect(Self.scrapingNamespace(ingress) == "monitoring", "\(ingress)")
            let ports = try #require(ingress.first?["ports"] as? [[String: String]])
            let containerPorts = ((template["spec"] as? [String: Any])?["containers"] as? [[String: Any]])?.first?["ports"] as? [[String: Any]] ?? []
            #expect(ports == [["port": "http-metrics", "protocol": "TCP"]] && containerPorts.contains { $0["name"] as? String == "http-metrics" })

            // docs/operating/kubernetes.md's overlay of one's own: the base, and a patch naming the namespace.
            let scratch = try ScratchDirectory()
            let overlay = try scratch.make("overlay")
            let base = String(repeating: "../", count: URL(fileURLWithPath: overlay).pathComponents.count - 1)
                + Self.kubernetes.appendingPathComponent("base").path.dropFirst()
            try replaceFile(URL(fileURLWithPath: overlay + "/kustomization.yaml"), with: """
                bases:
                  - \(base)
                patchesJson6902:
                  - path: scrapers.yaml
                    target: { group: networking.k8s.io, version: v1, kind: NetworkPolicy, name: slabwatch, namespace: slabwatch }

                """)
            try replaceFile(URL(fileURLWithPath: overlay + "/scrapers.yaml"), with: """
                - op: replace
                  path: /spec/ingress/0/from/0/namespaceSelector/matchLabels/kubernetes.io~1metadata.name
                  value: observability

                """)
            let render = try DaemonProcess.run(kubectl, ["kustomize", overlay])
            #expect(render.status == 0, "\(render.error)")
            let patched = try #require(try JSONSerialization.jsonObject(with: Data(try DaemonProcess.run(Self.venvPython, [
                "-c", "import json, sys, yaml; print(json.dumps([o for o in yaml.safe_load_all(sys.stdin) if o['kind'] == 'NetworkPolicy']))",
            ], input: Data(render.output.utf8)).output.utf8)) as? [[String: Any]])
            #expect(Self.scrapingNamespace((patched.first?["spec"] as? [String: Any])?["ingress"] as? [[String: Any]] ?? []) == "observability")
        }

        /// The namespace a NetworkPolicy's first ingress rule admits, by name.
        static func scrapingNamespace(_ ingress: [[String: Any]]) -> String? {
            let from = ingress.first?["from"] as? [[String: Any]]
            guard from?.count == 1, let selector = from?.first?["namespaceSelector"] as? [String: Any], from?.first?["podSelector"] == nil,
                  let labels = selector["matchLabels"] as? [String: String], labels.count == 1 else { return nil }
            return labels["kubernetes.io/metadata.name"]
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

        /// The DaemonSet's container as its runtime runs it (its user, its
        /// capabilities, no new privileges, a read-only root, its volumes; see
        /// KubernetesContainer): every source is up, the state is kept, and
        /// SIGTERM to its PID 1 stops it cleanly, as the kubelet stops a pod.
        @Test(.enabled(if: getuid() == 0, "sets a uid, mounts and namespaces"), arguments: withoutSecrets)
        func daemonReadsEverySourceAsTheManifestRunsIt(_ directory: String) throws {
            let container = try KubernetesContainer(renderedObjects: try Self.rendered(directory).objects)
            // What the manifests may grant at most: what a BPF attribution session needs.
            #expect(container.capabilities.isSubset(of: ["BPF", "PERFMON", "SYSLOG"]), "\(container.capabilities)")
            let scratch = try ScratchDirectory()
            let stateVolume = try #require(container.volume(at: "/var/lib/slabwatch"))
            let daemon = try DaemonProcess(
                arguments: Self.loopback(container.arguments) + ["--sampler.interval", "500ms"],
                wrapper: try container.wrapper(image: .hostSystem(binary: DaemonProcess.binary.path), root: try scratch.make("root"),
                                               sources: [stateVolume: try scratch.make("state")]))
            let pid = try #require(try KubernetesContainer.containerProcess(of: daemon.pid))
            let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
            #expect(status.contains("CapEff:\t\(container.capabilityMask)\n") && status.contains("CapBnd:\t\(container.capabilityMask)\n"), "\(status)")
            let uid = container.uid
            #expect(status.contains("NoNewPrivs:\t1") && status.contains("Uid:\t\(uid)\t\(uid)\t\(uid)\t\(uid)\n"))
            let mounts = try String(contentsOfFile: "/proc/\(pid)/mountinfo", encoding: .utf8)
            let root = try #require(mounts.split(separator: "\n").first { $0.split(separator: " ")[4] == "/" })
            #expect(root.split(separator: " ")[5].hasPrefix("ro"), "\(root)")

            let values = samples(try daemon.get("/metrics").body)
            let sources = values.filter { $0.key.hasPrefix("slabwatch_source_up{") }
            #expect(everySourceUp(values), "\(sources)\n\(daemon.log)")
            #expect(values["slabwatch_state_enabled"] == 1)
            #expect(values["slabwatch_slab_footprint_bytes{slab=\"dentry\"}"] ?? 0 > 0)

            let stop = daemon.terminate()
            #expect(stop.status == 0 && daemon.log.contains("msg=stopped"), "\(daemon.log)")
            #expect(!(try FileManager.default.contentsOfDirectory(atPath: scratch.path("state"))).isEmpty, "a last checkpoint")
        }

        /// Nothing of the node is writable in the container but its state volume
        /// (and the node's tracefs, where an overlay grants it): every other mount
        /// it sees is read-only, down to the submounts of a read-only volume,
        /// except the runtime's own /proc (whose /proc/sys is) and /dev. (A
        /// volume's `readOnly` covers only its own mount: the node's /sys mounted
        /// so left the node's cgroup hierarchies writable below it.) The state
        /// volume is a directory of its own below one the pod cannot see, so the
        /// node decides who reaches it.
        @Test(.enabled(if: getuid() == 0, "sets a uid, mounts and namespaces"), arguments: kustomizations)
        func nothingButTheStateIsWritableInTheContainer(_ directory: String) throws {
            let container = try KubernetesContainer(renderedObjects: try Self.rendered(directory).objects)
            let writableVolumes = container.volumeMounts.filter { !$0.readOnly }.map(\.mountPath)
            #expect(writableVolumes.filter { $0 != "/sys/kernel/tracing" } == ["/var/lib/slabwatch"], "\(writableVolumes)")
            let stateVolume = try #require(container.volume(at: "/var/lib/slabwatch"))
            let node = try #require(container.hostPaths[stateVolume])
            #expect((node as NSString).deletingLastPathComponent == "/var/lib/slabwatch", "\(node)")

            let scratch = try ScratchDirectory()
            let wrapper = try container.wrapper(image: .hostSystem(binary: DaemonProcess.binary.path), root: try scratch.make("root"),
                                                sources: try Self.standIns(for: container, in: scratch))
            let mountinfo = try DaemonProcess.run(wrapper[0], Array(wrapper.dropFirst()) + ["/usr/bin/cat", "/proc/self/mountinfo"])
            #expect(mountinfo.status == 0, "\(mountinfo.error)")
            let writable = mountinfo.output.split(separator: "\n").compactMap { line -> String? in
                let fields = line.split(separator: " ")
                guard fields.count > 5, !fields[5].split(separator: ",").contains("ro") else { return nil }
                return String(fields[4])
            }
            let theRuntimes = { (mountPoint: String) in mountPoint == "/proc" || mountPoint == "/dev" || mountPoint.hasPrefix("/dev/") }
            #expect(writable.filter { !theRuntimes($0) }.sorted() == writableVolumes.sorted(), "\(mountinfo.output)")
        }

        /// Empty directories of `scratch` standing in for the container's state
        /// volume and for each of its Secrets.
        static func standIns(for container: KubernetesContainer, in scratch: ScratchDirectory) throws -> [String: String] {
            var sources = [try #require(container.volume(at: "/var/lib/slabwatch")): try scratch.make("state")]
            for volume in container.secrets.keys { sources[volume] = try scratch.make("secret-\(volume)") }
            return sources
        }

        /// Why uid 0: a non-root user cannot read /proc/slabinfo in a pod even
        /// with CAP_DAC_READ_SEARCH added, because Kubernetes gives it no ambient
        /// capabilities (the same manifest with runAsUser 65534).
        @Test(.enabled(if: getuid() == 0, "sets a uid, mounts and namespaces"))
        func aNonRootUserCannotReadSlabinfoEvenWithTheCapability() throws {
            let objects = Self.editingContainer(try Self.rendered("base").objects) { container in
                container["securityContext"] = ["runAsUser": 65534, "runAsGroup": 65534, "allowPrivilegeEscalation": false,
                                                "readOnlyRootFilesystem": true, "capabilities": ["drop": ["ALL"], "add": ["DAC_READ_SEARCH"]]]
            }
            let container = try KubernetesContainer(renderedObjects: objects)
            let scratch = try ScratchDirectory()
            let daemon = try DaemonProcess(
                arguments: Self.loopback(container.arguments) + ["--sampler.interval", "500ms", "--state.directory", ""],
                wrapper: try container.wrapper(image: .hostSystem(binary: DaemonProcess.binary.path), root: try scratch.make("root"),
                                               sources: [try #require(container.volume(at: "/var/lib/slabwatch")): try scratch.make("state")]))
            let pid = try #require(try KubernetesContainer.containerProcess(of: daemon.pid))
            let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
            #expect(status.contains("CapEff:\t0000000000000000\n") && status.contains("CapBnd:\t0000000000000004\n"), "\(status)")
            let values = samples(try daemon.get("/metrics").body)
            #expect(values["slabwatch_source_up{source=\"slabinfo\"}"] == 0 && values["slabwatch_source_up{source=\"meminfo\"}"] == 1)
        }

        /// The "shocker" escape (Tests/Fixtures/kubernetes/open-by-handle.c) from
        /// a jail whose only directory of the node is the state volume, with the
        /// manifest's grant: open_by_handle_at(2) is refused (EPERM), whatever the
        /// seccomp profile, because the kernel asks for CAP_DAC_READ_SEARCH.
        @Test(.enabled(if: getuid() == 0, "sets a uid, mounts and namespaces"), arguments: kustomizations)
        func theManifestsGrantCannotOpenAFileByHandle(_ directory: String) throws {
            let container = try KubernetesContainer(renderedObjects: try Self.rendered(directory).objects)
            let result = try HandleEscape().run(in: container)
            #expect(result.status == 3 && result.output == "open_by_handle_at: Operation not permitted\n", "\(result.output)\(result.error)")
        }

        /// The same jail and program with CAP_DAC_READ_SEARCH added back to the
        /// base manifest (the grant it had before): it reads a file of the node
        /// outside the jail. Where the state directory is on ext4, whose root
        /// directory's handle needs no guessing.
        @Test(.enabled(if: getuid() == 0 && HandleEscape.rootHandleIsKnown, "root, and /tmp on ext4"))
        func aManifestThatAddsDACReadSearchEscapesThroughTheStateVolume() throws {
            let objects = Self.editingContainer(try Self.rendered("base").objects) { container in
                var security = container["securityContext"] as? [String: Any] ?? [:]
                security["capabilities"] = ["drop": ["ALL"], "add": ["DAC_READ_SEARCH"]]
                container["securityContext"] = security
            }
            let escape = try HandleEscape()
            let result = try escape.run(in: try KubernetesContainer(renderedObjects: objects))
            #expect(result.status == 0 && result.output == "escaped: \(escape.secret)\n", "\(result.output)\(result.error)")
        }

        /// The attribution overlay's grant, exactly (uid 0, CAP_BPF, CAP_PERFMON,
        /// CAP_SYSLOG, no new privileges, its volumes and its attribution
        /// settings): a session takes the BPF path and names the call site, the
        /// process and its exact net. kmalloc-cg-512: a 400-byte user xattr on
        /// tmpfs is one simple_xattr_alloc of 512 bytes.
        @Test(.enabled(if: BPFTesting.available, "root, BTF and bpftool"))
        func theAttributionOverlaysGrantTracesWithBPF() throws {
            let container = try KubernetesContainer(renderedObjects: try Self.rendered("overlays/attribution").objects)
            let fs = try AttributionTesting.Tmpfs()
            let result = try Self.attribute(in: container, ["kmalloc-cg-512", "--duration", "3s", "--json"]) {
                EndToEndTests.createFilesWithXattrs(URL(fileURLWithPath: fs.path), count: 3000, perSecond: 100_000)
            }
            #expect(result.status == 0, "\(result.error)")
            let json = try BPFTesting.json(result)
            #expect(json["source"] as? String == "bpf" && json["fallback"] is NSNull, "\(json)")
            let sites = try BPFTesting.sites(json)
            let xattr = try #require(sites.first { ($0["function"] as? String)?.hasPrefix("simple_xattr_alloc+") == true }, "\(sites)\n\(result.error)")
            let mine = try #require(BPFTesting.processes(xattr).first { $0["pid"] as? Double == Double(getpid()) }, "\(xattr)")
            #expect(mine["net_count"] as? Double == 3000 && mine["net_bytes"] as? Double == 3000 * 512, "\(mine)")
        }

        /// The base grants none of it: forced onto the BPF path, a session is refused (exit 5).
        @Test(.enabled(if: BPFTesting.available, "root, BTF and bpftool"))
        func theBasesGrantCannotLoadBPF() throws {
            let container = try KubernetesContainer(renderedObjects: try Self.rendered("base").objects)
            let result = try Self.attribute(in: container, ["dentry", "--source", "bpf", "--duration", "1s"]) {}
            #expect(result.status == 5 && result.error.contains("CAP_BPF and CAP_PERFMON"), "\(result.error)")
        }

        /// The tracefs overlay's grant, exactly (uid 0, no capability, the node's
        /// tracefs read-write): a session through tracefs names the call site the
        /// kernel's own trace prints, and removes its instance.
        @Test(.enabled(if: getuid() == 0, "mounts tracefs, sets a uid"))
        func theTracefsOverlaysGrantTracesWithTheNodesTracefs() throws {
            let tracefs = try AttributionTesting.TracefsAsFound(mount: true)
            defer { withExtendedLifetime(tracefs) {} }
            let container = try KubernetesContainer(renderedObjects: try Self.rendered("overlays/attribution-tracefs").objects)
            #expect(container.capabilities.isEmpty)
            let fs = try AttributionTesting.Tmpfs()
            let expected = try AttributionTesting.kernelsOwnCallSite(fs)
            let result = try Self.attribute(in: container, ["shmem_inode_cache", "--duration", "3s", "--json"]) {
                fs.create(2000, prefix: "grow")
            }
            #expect(result.status == 0, "\(result.error)")
            let json = try BPFTesting.json(result)
            #expect(json["source"] as? String == "trace", "\(json)")
            let top = try #require(try BPFTesting.sites(json).first)
            #expect(top["function"] as? String == expected && (top["net_count"] as? Double ?? 0) >= 1900, "\(top)")
            #expect(AttributionTesting.slabwatchInstances().isEmpty)
        }

        /// The web-config overlay's container with its Secret made as the docs
        /// says (the overlay's web.yml with a bcrypt hash, a certificate for the
        /// name the PodMonitor checks, files mode 0400): a client configured as
        /// the PodMonitor says (that CA and name, a user and password) scrapes
        /// over TLS, one without credentials is refused, and the kubelet's probes,
        /// as the manifest writes them, are answered without.
        @Test(.enabled(if: getuid() == 0, "sets a uid, mounts and namespaces"))
        func theWebConfigOverlayServesOverTLSToWhoeverLogsIn() throws {
            let objects = try Self.rendered("overlays/web-config").objects
            let container = try KubernetesContainer(renderedObjects: objects)
            let podMonitor = try #require(objects.first { $0["kind"] as? String == "PodMonitor" }?["spec"] as? [String: Any])
            let endpoint = try #require((podMonitor["podMetricsEndpoints"] as? [[String: Any]])?.first)
            let serverName = try #require((endpoint["tlsConfig"] as? [String: Any])?["serverName"] as? String)
            #expect(endpoint["scheme"] as? String == "https" && endpoint["basicAuth"] != nil)

            let pki = try TestPKI()
            try pki.issue("tls", subject: "/CN=\(serverName)", san: "DNS:\(serverName)")
            let scratch = try ScratchDirectory()
            let sources = try Self.standIns(for: container, in: scratch)
            let secretVolume = try #require(container.volume(at: "/etc/slabwatch/web"))
            let secret = try #require(sources[secretVolume])
            let example = try String(contentsOf: Self.kubernetes.appendingPathComponent("overlays/web-config/web.yml"), encoding: .utf8)
            #expect(example.contains("prometheus: REPLACE-WITH-A-BCRYPT-HASH"))
            try replaceFile(URL(fileURLWithPath: secret + "/web.yml"),
                            with: example.replacingOccurrences(of: "REPLACE-WITH-A-BCRYPT-HASH", with: TLSEndToEndTests.helloHash))
            for name in ["tls.crt", "tls.key"] { try FileManager.default.copyItem(atPath: pki.path(name), toPath: secret + "/" + name) }
            for name in ["web.yml", "tls.crt", "tls.key"] { chmod(secret + "/" + name, 0o400) }
            let daemon = try DaemonProcess(
                arguments: Self.loopback(container.arguments) + ["--sampler.interval", "500ms"],
                wrapper: try container.wrapper(image: .hostSystem(binary: DaemonProcess.binary.path), root: try scratch.make("root"),
                                               sources: sources),
                scheme: "https", clientOptions: ["--insecure"])  // the kubelet's probes do not verify

            func scrape(_ path: String, _ options: [String]) throws -> String {
                try DaemonProcess.run("/usr/bin/curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                                                        "--resolve", "\(serverName):\(daemon.port):127.0.0.1"]
                                      + options + ["https://\(serverName):\(daemon.port)\(path)"]).output
            }
            #expect(try scrape("/metrics", ["--cacert", pki.path("ca.crt"), "-u", "prometheus:hello"]) == "200")
            #expect(try scrape("/metrics", ["--cacert", pki.path("ca.crt")]) == "401")
            #expect(try scrape("/snapshot", ["--cacert", pki.path("ca.crt"), "-u", "prometheus:nope"]) == "401")
            let probes = try #require(((objects.first { $0["kind"] as? String == "DaemonSet" }?["spec"] as? [String: Any])?["template"]
                as? [String: Any]).flatMap { (($0["spec"] as? [String: Any])?["containers"] as? [[String: Any]])?.first })
            for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
                let get = try #require((probes[probe] as? [String: Any])?["httpGet"] as? [String: Any])
                #expect(get["scheme"] as? String == "HTTPS", "\(probe)")
                let path = try #require(get["path"] as? String)
                #expect(try scrape(path, ["--insecure"]) == "200", "\(probe)")
            }
        }

        /// The cgroups overlay's grant, exactly (uid 0, no capability, the node's
        /// /sys/fs/cgroup recursively read-only): its daemon names a cgroup of
        /// this machine's v1 memory hierarchy, made by the test in the kubelet's
        /// systemd-driver shape and charged by a process making 20,000 tmpfs
        /// files, by its node path with the pod UID and container id, at what
        /// the kernel charged it. Neither the volume's own mount (a tmpfs here)
        /// nor the memory controller's mount below it can be written: EROFS.
        @Test(.enabled(if: getuid() == 0 && BPFTesting.memoryV1Mount() == "/sys/fs/cgroup/memory", "root, and cgroup v1's memory controller"))
        func theCgroupsOverlayReadsTheNodesCgroupsByTheirNodePaths() throws {
            let container = try KubernetesContainer(renderedObjects: try Self.rendered("overlays/cgroups").objects)
            let volume = try #require(container.volume(at: "/host/sys/fs/cgroup"))
            #expect(container.hostPaths[volume] == "/sys/fs/cgroup" && container.capabilities.isEmpty)
            let hierarchy = "/sys/fs/cgroup/memory"
            let uid = UUID().uuidString.lowercased()
            let containerID = (UUID().uuidString + UUID().uuidString).lowercased().replacingOccurrences(of: "-", with: "")  // 64 hex digits
            let parent = "slabwatch-test-\(uid.prefix(8))"
            let components = [parent, "kubepods.slice", "kubepods-burstable.slice",
                              "kubepods-burstable-pod\(uid.replacingOccurrences(of: "-", with: "_")).slice", "cri-containerd-\(containerID).scope"]
            var cgroups: [BPFTesting.Cgroup] = []
            defer {
                while !cgroups.isEmpty { cgroups.removeLast() }  // leaves before their parents
                #expect(access("\(hierarchy)/\(parent)", F_OK) != 0, "the test's cgroups are gone")
            }
            for name in components { cgroups.append(try BPFTesting.Cgroup(in: cgroups.last?.path ?? hierarchy, name: name)) }
            let probe = "\(hierarchy)/\(parent)/written-from-the-pod"
            defer {  // made only if the mounts were writable
                rmdir(probe)
                unlink("/sys/fs/cgroup/written-from-the-pod")
            }
            let tmpfs = try AttributionTesting.Tmpfs()
            let maker = try FileMaker(cgroup: try #require(cgroups.last).path, directory: tmpfs.path, xattr: false)
            defer {
                maker.stop()
                maker.removeFiles()
                withExtendedLifetime(tmpfs) {}
            }
            try maker.waitUntilDone()

            let scratch = try ScratchDirectory()
            let sources = try Self.standIns(for: container, in: scratch)
            let probing = try container.wrapper(image: .hostSystem(binary: DaemonProcess.binary.path), root: try scratch.make("probe"), sources: sources)
            let write = try DaemonProcess.run(probing[0], Array(probing.dropFirst()) + [
                "/bin/sh", "-c", "mkdir /host/sys/fs/cgroup/memory/\(parent)/written-from-the-pod; touch /host/sys/fs/cgroup/written-from-the-pod; exit 0",
            ])
            #expect(write.error.components(separatedBy: "Read-only file system").count - 1 == 2 && access(probe, F_OK) != 0, "\(write.error)")

            let daemon = try DaemonProcess(
                arguments: Self.loopback(container.arguments) + ["--sampler.interval", "250ms", "--state.directory", ""],
                wrapper: try container.wrapper(image: .hostSystem(binary: DaemonProcess.binary.path), root: try scratch.make("root"), sources: sources))
            let path = "/" + components.joined(separator: "/")
            let key = "slabwatch_cgroup_kernel_memory_bytes{cgroup=\"\(path)\",container_id=\"\(containerID)\",pod_uid=\"\(uid)\",unit=\"\"}"
            let charged = try EndToEndTests.kmemUsage(try #require(cgroups.last).path)
            #expect(charged > 20_000 * 500, "the kernel charged \(charged) B for 20,000 files")
            try daemon.waitFor("\(path) in /metrics within 2 % of the \(charged) B the kernel charged", timeout: 20) {
                let seen = samples((try? daemon.get("/metrics").body) ?? "")[key]
                return seen.map { abs($0 - Double(charged)) / Double(charged) < 0.02 } ?? false
            }
            #expect(daemon.terminate().status == 0, "\(daemon.log)")
            #expect(!daemon.log.contains("no memory cgroup hierarchy"), "\(daemon.log)")
        }

        /// `slabwatch attribute` run in `container` with the manifest's
        /// attribution settings, `workload` running here once it traces.
        static func attribute(in container: KubernetesContainer, _ arguments: [String],
                              whileRunning workload: () -> Void) throws -> DaemonProcess.RunResult {
            let scratch = try ScratchDirectory()
            let stateVolume = try #require(container.volume(at: "/var/lib/slabwatch"))
            let wrapper = try container.wrapper(image: .hostSystem(binary: DaemonProcess.binary.path), root: try scratch.make("root"),
                                                sources: [stateVolume: try scratch.make("state")])
            var settings: [String] = []
            for (index, argument) in container.arguments.enumerated() where argument.hasPrefix("--attribution.") {
                settings += container.arguments[index...].prefix(2)
            }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: wrapper[0])
            process.arguments = Array(wrapper.dropFirst()) + [DaemonProcess.binary.path, "attribute"] + arguments + settings
            let output = Pipe(), error = Pipe()
            process.standardOutput = output
            process.standardError = error
            try process.run()
            if let session = try KubernetesContainer.containerProcess(of: process.processIdentifier) {
                let deadline = Date().addingTimeInterval(10)  // a session is ready in well under a second; only a hung machine takes this long
                while AttributionTesting.slabwatchInstances().isEmpty && AttributionTesting.bpfLinks(session) < 3
                        && kill(session, 0) == 0 && Date() < deadline { usleep(20_000) }
            }
            usleep(300_000)  // events are enabled after the instance appears (the last link after the third)
            workload()
            let out = output.fileHandleForReading.readDataToEndOfFile(), err = error.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return .init(status: process.terminationStatus, output: String(decoding: out, as: UTF8.self), error: String(decoding: err, as: UTF8.self))
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
}

/// A directory of the test's own in the temporary directory, removed with
/// everything in it when released. (A container's root is mounted on one of
/// its subdirectories only inside the container's mount namespace.)
final class ScratchDirectory {
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-k8s-\(UUID().uuidString)")

    init() throws { try FileManager.default.createDirectory(at: base, withIntermediateDirectories: false) }

    deinit { try? FileManager.default.removeItem(at: base) }

    func path(_ name: String) -> String { base.appendingPathComponent(name).path }

    /// Creates the subdirectory `name` and returns its path.
    func make(_ name: String) throws -> String {
        try FileManager.default.createDirectory(atPath: path(name), withIntermediateDirectories: false)
        return path(name)
    }
}

/// The "shocker" escape, set up on this machine: the program
/// (Tests/Fixtures/kubernetes/open-by-handle.c, built statically), a secret
/// file outside every jail, and a stand-in for the node's state directory
/// beside it, on the same file system.
final class HandleEscape {
    static let source = Paths.repositoryRoot.appendingPathComponent("Tests/Fixtures/kubernetes/open-by-handle.c").path

    /// The temporary directory's file system: its type, where it is mounted,
    /// and which of its directories that mount shows.
    static let temporaryFileSystem: (type: String, target: String, root: String)? = {
        let found = try? DaemonProcess.run("/usr/bin/findmnt", ["-n", "-r", "-o", "FSTYPE,TARGET,FSROOT", "-T",
                                                                FileManager.default.temporaryDirectory.path])
        let fields = found?.output.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? []
        return fields.count == 3 ? (fields[0], fields[1], fields[2]) : nil
    }()

    /// On ext4 the root directory is inode 2, which the program opens without guessing.
    static var rootHandleIsKnown: Bool { temporaryFileSystem?.type == "ext4" }

    let scratch: ScratchDirectory
    let secret = "outside the jail \(UUID().uuidString)"
    let program: String

    init() throws {
        scratch = try ScratchDirectory()
        try replaceFile(URL(fileURLWithPath: scratch.path("secret")), with: secret + "\n")
        program = scratch.path("open-by-handle")
        let compiler = try #require(Self.compiler(), "no clang or cc on PATH")
        let build = try DaemonProcess.run(compiler, ["-static", "-O2", "-o", program, Self.source])
        guard build.status == 0 else { throw DaemonProcess.Failure(message: "\(compiler) open-by-handle.c: \(build.error)") }
    }

    /// Runs the program in `container`, jailed: its root holds copies of the
    /// program and of setpriv with its libraries, and its volumes; the state
    /// volume is the stand-in directory beside the secret.
    func run(in container: KubernetesContainer) throws -> DaemonProcess.RunResult {
        let setprivLibraries = try KubernetesContainer.libraries(of: "/usr/bin/setpriv")
        let wrapper = try container.wrapper(image: .files([program, "/usr/bin/setpriv"] + setprivLibraries), root: try scratch.make("jail"),
                                            sources: try EndToEndTests.Kubernetes.standIns(for: container, in: scratch))
        return try DaemonProcess.run(wrapper[0], Array(wrapper.dropFirst()) + [program, "/var/lib/slabwatch", try secretFromFileSystemRoot()])
    }

    /// The secret's path from the root directory of its file system.
    private func secretFromFileSystemRoot() throws -> String {
        let fileSystem = try #require(Self.temporaryFileSystem)
        let path = scratch.path("secret")
        let inMount = path.dropFirst(fileSystem.target == "/" ? 1 : fileSystem.target.count + 1)
        return fileSystem.root == "/" ? String(inMount) : String(fileSystem.root.dropFirst()) + "/" + inMount
    }

    /// clang or cc on PATH, or the Swift toolchain's clang beside the real `swift` (as scripts/bpf.sh finds it).
    private static func compiler() -> String? {
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":").map(String.init)
        for name in ["clang", "cc"] {
            if let directory = directories.first(where: { access("\($0)/\(name)", X_OK) == 0 }) { return "\(directory)/\(name)" }
        }
        guard let directory = directories.first(where: { access("\($0)/swift", X_OK) == 0 }),
              let swift = realpath("\(directory)/swift", nil) else { return nil }
        defer { free(swift) }
        let clang = (String(cString: swift) as NSString).deletingLastPathComponent + "/clang"
        return access(clang, X_OK) == 0 ? clang : nil
    }
}
