import Foundation
import Testing
import TestSupport

/// The monitoring mixin in mixin/: what it generates is what ships, and the
/// dashboard it generates is well formed. (The fleet test runs its rules and
/// every panel's query against real daemons.)
extension EndToEndTests {
    /// One source: the committed rules, dashboard and PrometheusRule are what
    /// the mixin generates today, byte for byte.
    @Test func mixinOutputIsCommitted() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-mixin-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let script = Paths.repositoryRoot.appendingPathComponent("scripts/mixin.sh").path
        let result = try DaemonProcess.run("/bin/bash", [script, out.path])
        #expect(result.status == 0, "\(result.error)")
        for file in ["config/prometheus/slabwatch-rules.yml", "mixin/dashboards_out/slabwatch.json",
                     "deploy/kubernetes/base/prometheusrule.yaml"] {
            let generated = try Data(contentsOf: out.appendingPathComponent(file))
            let committed = try Data(contentsOf: Paths.repositoryRoot.appendingPathComponent(file))
            #expect(generated == committed, "\(file) differs from the mixin's output: run scripts/mixin.sh")
        }
    }

    /// The shipped dashboard parses, and every id is unique.
    @Test func dashboardIsWellFormed() throws {
        let dashboard = try Self.dashboard()
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        #expect(dashboard["uid"] as? String == "slabwatch")
        #expect(Set(panels.compactMap { $0["id"] as? Int }).count == panels.count)
        let variables = ((dashboard["templating"] as? [String: Any])?["list"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        #expect(variables == ["datasource", "instance", "slab"])
        for panel in panels {
            let targets = try #require(panel["targets"] as? [[String: Any]], "\(panel["title"] ?? "")")
            #expect(!targets.isEmpty && targets.allSatisfy { $0["expr"] is String && $0["refId"] is String })
            let grid = try #require(panel["gridPos"] as? [String: Int])
            #expect((grid["x"] ?? 99) + (grid["w"] ?? 99) <= 24)
        }
    }

    static func dashboard() throws -> [String: Any] {
        let file = Paths.repositoryRoot.appendingPathComponent("mixin/dashboards_out/slabwatch.json")
        return try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any])
    }
}
