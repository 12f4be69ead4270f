/// Whom a cgroup belongs to, in the names its owners use: a Kubernetes pod
/// (and its container), a Docker or Podman container, or a systemd unit.
///
/// Read from the path alone, the way the kubelet and the runtimes name their
/// cgroups, under either cgroup driver and on either cgroup version:
///
/// - systemd driver: `/kubepods.slice/kubepods-burstable.slice/
///   kubepods-burstable-pod<UID, _ for ->.slice/cri-containerd-<id>.scope`
///   (`crio-<id>.scope` for CRI-O, `docker-<id>.scope` for Docker); a
///   guaranteed pod sits right under `kubepods.slice` (`kubepods-pod<UID>.slice`);
/// - cgroupfs driver: `/kubepods/besteffort/pod<UID>/<id>`, guaranteed `/kubepods/pod<UID>/<id>`;
/// - Docker and Podman alone: `docker-<id>.scope`, `/docker/<id>`, `libpod-<id>.scope`;
/// - anything else under systemd: the innermost `.service` or `.scope`.
///
/// The pod UID is given with dashes, as kube-state-metrics' `uid` label has it.
public struct CgroupOwner: Sendable, Equatable {
    public enum Kind: String, Sendable { case pod, container, unit }

    public var kind: Kind
    /// The pod's UID (Kubernetes).
    public var podUID: String?
    /// `guaranteed`, `burstable` or `besteffort` (Kubernetes).
    public var qosClass: String?
    /// The container's id: nil for a pod's own cgroup.
    public var containerID: String?
    /// `containerd`, `cri-o`, `docker` or `podman`; nil where the path does not
    /// say (a container under the cgroupfs driver is named by its id alone).
    public var runtime: String?
    /// The systemd unit (`foo.service`, `session-3.scope`) of a `unit`.
    public var unit: String?

    public init(kind: Kind, podUID: String? = nil, qosClass: String? = nil, containerID: String? = nil,
                runtime: String? = nil, unit: String? = nil) {
        self.kind = kind
        self.podUID = podUID
        self.qosClass = qosClass
        self.containerID = containerID
        self.runtime = runtime
        self.unit = unit
    }

    /// The owner of the cgroup at `path`; nil for a path that follows none of
    /// the layouts (`/`, `/process_api/7`, a QoS class's own cgroup).
    public static func of(_ path: String) -> CgroupOwner? {
        let components = path.split(separator: "/")
        if let kubepods = components.firstIndex(where: { $0 == "kubepods" || $0.hasSuffix("kubepods.slice") }) {
            return pod(components[(kubepods + 1)...])
        }
        for (index, component) in components.enumerated() {
            if let container = container(component, next: components.dropFirst(index + 1).first) { return container }
        }
        return components.last { $0.hasSuffix(".service") || $0.hasSuffix(".scope") }.map { CgroupOwner(kind: .unit, unit: String($0)) }
    }

    /// `pod 1d3a…-… (burstable), containerd container 3f2a1b9c8d7e`,
    /// `docker container 3f2a1b9c8d7e`, `foo.service`.
    public var phrase: String {
        let container = containerID.map { "\(runtime.map { "\($0) " } ?? "")container \($0.prefix(12))" }
        switch kind {
        case .pod: return "pod \(podUID ?? "?") (\(qosClass ?? "?"))" + (container.map { ", \($0)" } ?? "")
        case .container: return container ?? "container"
        case .unit: return unit ?? "?"
        }
    }

    // MARK: layouts

    /// The components after `kubepods`: an optional QoS class, the pod, an optional container.
    private static func pod(_ rest: ArraySlice<Substring>) -> CgroupOwner? {
        var qos: String?
        var remaining = rest
        if let first = remaining.first, let named = qosClass(first) {
            qos = named
            remaining = remaining.dropFirst()
        }
        guard let podComponent = remaining.first, let uid = podUID(podComponent) else { return nil }
        var owner = CgroupOwner(kind: .pod, podUID: uid, qosClass: qos ?? "guaranteed")
        if let next = remaining.dropFirst().first {
            if let scope = runtimeScope(next) {
                (owner.runtime, owner.containerID) = (scope.runtime, scope.id)
            } else if isContainerID(next) {
                owner.containerID = String(next)
            }
        }
        return owner
    }

    /// `kubepods-burstable.slice` or `burstable` → `burstable`.
    private static func qosClass(_ component: Substring) -> String? {
        ["burstable", "besteffort"].first { component == $0 || component.hasSuffix("kubepods-\($0).slice") }
    }

    /// `kubepods-burstable-pod1d3a_….slice`, `kubepods-pod1d3a_….slice` or `pod1d3a-…` → the UID with dashes.
    private static func podUID(_ component: Substring) -> String? {
        var name = component
        if name.hasSuffix(".slice") {
            name = name.dropLast(".slice".count)
            guard let range = name.firstRange(of: "-pod") else { return nil }
            name = name[range.upperBound...]
        } else {
            guard name.hasPrefix("pod") else { return nil }
            name = name.dropFirst(3)
        }
        let uid = String(name).replacingUnderscores()
        return uid.count >= 32 && uid.utf8.allSatisfy { isHex($0) || $0 == UInt8(ascii: "-") } ? uid : nil
    }

    /// A Docker or Podman container outside Kubernetes: `docker-<id>.scope`,
    /// `libpod-<id>.scope`, or `docker`/`libpod_parent` followed by the id.
    private static func container(_ component: Substring, next: Substring?) -> CgroupOwner? {
        if let scope = runtimeScope(component), scope.runtime == "docker" || scope.runtime == "podman" {
            return CgroupOwner(kind: .container, containerID: scope.id, runtime: scope.runtime)
        }
        guard let next else { return nil }
        if component == "docker", isContainerID(next) { return CgroupOwner(kind: .container, containerID: String(next), runtime: "docker") }
        if component == "libpod_parent", let scope = runtimeScope(next) {
            return CgroupOwner(kind: .container, containerID: scope.id, runtime: scope.runtime)
        }
        return nil
    }

    /// The runtimes' own names for a container's cgroup, with `.scope` under
    /// systemd and without under cgroupfs (Podman's `libpod-<id>`).
    private static let prefixes: [(prefix: String, runtime: String)] = [
        ("cri-containerd-", "containerd"), ("crio-conmon-", "cri-o conmon"), ("crio-", "cri-o"), ("docker-", "docker"),
        ("libpod-conmon-", "podman conmon"), ("libpod-", "podman"),
    ]

    private static func runtimeScope(_ component: Substring) -> (runtime: String, id: String)? {
        let name = component.hasSuffix(".scope") ? component.dropLast(".scope".count) : component
        guard let match = prefixes.first(where: { name.hasPrefix($0.prefix) }) else { return nil }
        let id = name.dropFirst(match.prefix.count)
        return isContainerID(id) ? (match.runtime, String(id)) : nil
    }

    /// Docker, containerd and CRI-O ids are 64 hex digits; 12 is the shortest a tool prints.
    private static func isContainerID(_ text: Substring) -> Bool {
        text.utf8.count >= 12 && text.utf8.count <= 64 && text.utf8.allSatisfy(isHex)
    }

    private static func isHex(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }
}

private extension String {
    /// The systemd driver writes a pod UID's dashes as `_` (a dash separates slice names).
    func replacingUnderscores() -> String {
        String(decoding: utf8.map { $0 == UInt8(ascii: "_") ? UInt8(ascii: "-") : $0 }, as: UTF8.self)
    }
}
