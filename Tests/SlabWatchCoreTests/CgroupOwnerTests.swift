import Testing
@testable import SlabWatchCore

/// Cgroup paths as the kubelet (both cgroup drivers), containerd, CRI-O,
/// Docker, Podman and systemd make them, read back into the names their
/// owners use. The layouts are the kubelet's (`kubepods[-<qos>]-pod<UID>.slice`
/// under the systemd driver, `kubepods/<qos>/pod<UID>` under cgroupfs) and the
/// runtimes' scope prefixes (`cri-containerd-`, `crio-`, `docker-`, `libpod-`).
struct CgroupOwnerTests {
    static let uid = "1d3a8e2c-5b6f-4c7d-9e0a-2f4b6c8d0e1f"
    static let id = "3f2a1b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a"
    static let underscored = uid.replacing("-", with: "_")

    @Test(arguments: [
        // systemd driver, cgroup v2 (or v1's memory hierarchy)
        ("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod\(underscored).slice/cri-containerd-\(id).scope",
         CgroupOwner(kind: .pod, podUID: uid, qosClass: "burstable", containerID: id, runtime: "containerd")),
        ("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod\(underscored).slice/crio-\(id).scope",
         CgroupOwner(kind: .pod, podUID: uid, qosClass: "besteffort", containerID: id, runtime: "cri-o")),
        ("/kubepods.slice/kubepods-pod\(underscored).slice/docker-\(id).scope",
         CgroupOwner(kind: .pod, podUID: uid, qosClass: "guaranteed", containerID: id, runtime: "docker")),
        ("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod\(underscored).slice/crio-conmon-\(id).scope",
         CgroupOwner(kind: .pod, podUID: uid, qosClass: "burstable", containerID: id, runtime: "cri-o conmon")),
        ("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod\(underscored).slice",
         CgroupOwner(kind: .pod, podUID: uid, qosClass: "burstable")),
        // kind and other nested nodes put the kubelet's tree under a slice of their own
        ("/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod\(underscored).slice/cri-containerd-\(id).scope",
         CgroupOwner(kind: .pod, podUID: uid, qosClass: "besteffort", containerID: id, runtime: "containerd")),
        // cgroupfs driver
        ("/kubepods/besteffort/pod\(uid)/\(id)", CgroupOwner(kind: .pod, podUID: uid, qosClass: "besteffort", containerID: id)),
        ("/kubepods/pod\(uid)/\(id)", CgroupOwner(kind: .pod, podUID: uid, qosClass: "guaranteed", containerID: id)),
        ("/kubepods/burstable/pod\(uid)", CgroupOwner(kind: .pod, podUID: uid, qosClass: "burstable")),
        // Docker and Podman alone
        ("/system.slice/docker-\(id).scope", CgroupOwner(kind: .container, containerID: id, runtime: "docker")),
        ("/docker/\(id)", CgroupOwner(kind: .container, containerID: id, runtime: "docker")),
        ("/machine.slice/libpod-\(id).scope/container", CgroupOwner(kind: .container, containerID: id, runtime: "podman")),
        ("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-\(id).scope",
         CgroupOwner(kind: .container, containerID: id, runtime: "podman")),
        ("/libpod_parent/libpod-\(id)", CgroupOwner(kind: .container, containerID: id, runtime: "podman")),
        // systemd units: the innermost one
        ("/system.slice/foo.service", CgroupOwner(kind: .unit, unit: "foo.service")),
        ("/system.slice/foo.service/worker", CgroupOwner(kind: .unit, unit: "foo.service")),
        ("/user.slice/user-1000.slice/user@1000.service/app.slice/bar.service", CgroupOwner(kind: .unit, unit: "bar.service")),
        ("/user.slice/user-1000.slice/session-3.scope", CgroupOwner(kind: .unit, unit: "session-3.scope")),
        // a scope whose name only looks like a runtime's is the unit it is
        ("/system.slice/docker-xyz.scope", CgroupOwner(kind: .unit, unit: "docker-xyz.scope")),
        ("/system.slice/docker-\(id.uppercased()).scope", CgroupOwner(kind: .unit, unit: "docker-\(id.uppercased()).scope")),
    ])
    func aPathNamesItsOwner(_ path: String, _ owner: CgroupOwner) {
        #expect(CgroupOwner.of(path) == owner)
    }

    /// Paths of no one in particular, and look-alikes, name nobody rather than the wrong owner.
    @Test(arguments: [
        "/", "", "/process_api/7", "/user.slice", "/kubepods.slice", "/kubepods.slice/kubepods-burstable.slice",
        "/kubepods/burstable/podnot-a-uid/\(id)", "/kubepods/besteffort", "/docker", "/docker/not-an-id",
    ])
    func otherPathsNameNobody(_ path: String) {
        #expect(CgroupOwner.of(path) == nil, "\(CgroupOwner.of(path).map(\.phrase) ?? "")")
    }

    @Test func thePhraseIsWhatPeopleCallIt() throws {
        let pod = try #require(CgroupOwner.of("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod\(Self.underscored).slice/cri-containerd-\(Self.id).scope"))
        #expect(pod.phrase == "pod \(Self.uid) (burstable), containerd container 3f2a1b9c8d7e")
        #expect(CgroupOwner.of("/kubepods/pod\(Self.uid)/\(Self.id)")?.phrase == "pod \(Self.uid) (guaranteed), container 3f2a1b9c8d7e")
        #expect(CgroupOwner.of("/docker/\(Self.id)")?.phrase == "docker container 3f2a1b9c8d7e")
        #expect(CgroupOwner.of("/system.slice/foo.service")?.phrase == "foo.service")
    }
}
