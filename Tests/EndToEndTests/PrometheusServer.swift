import Foundation
import TestSupport

/// A real Prometheus server on a free loopback port, scraping what
/// `scrapeConfigs` says; stopped and its data removed when released.
final class PrometheusServer {
    let port = freePort()
    private let process = Process()
    private let directory: URL

    /// - Parameters:
    ///   - scrapeConfigs: the YAML list under `scrape_configs:`, indented two spaces.
    ///   - configuration: more top-level YAML (`rule_files:`, `alerting:`), evaluated every second.
    init(scrapeConfigs: String, configuration: String = "") throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-prom-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let config = directory.appendingPathComponent("prometheus.yml")
        try replaceFile(config, with: "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n" + configuration
                        + "scrape_configs:\n" + scrapeConfigs)
        process.executableURL = URL(fileURLWithPath: Paths.prometheus)
        process.arguments = [
            "--config.file=\(config.path)",
            "--storage.tsdb.path=\(directory.appendingPathComponent("data").path)",
            "--web.listen-address=127.0.0.1:\(port)",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    deinit {
        process.terminate()
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: directory)
    }

    /// An instant query's result vector (empty while Prometheus is starting).
    func query(_ promQL: String) throws -> [[String: Any]] {
        let encoded = promQL.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let result = try DaemonProcess.run("/usr/bin/curl", ["-sS", "--max-time", "5", "http://127.0.0.1:\(port)/api/v1/query?query=\(encoded)"])
        guard let json = try? JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any],
              let data = json["data"] as? [String: Any] else { return [] }
        return data["result"] as? [[String: Any]] ?? []
    }

    /// The first sample's value as Prometheus prints it, e.g. "1".
    func value(_ promQL: String) throws -> String? {
        (try query(promQL).first?["value"] as? [Any])?.last as? String
    }

    /// What Prometheus says of the target's last scrape (`lastError`), for failure messages.
    func targetErrors() throws -> String {
        try DaemonProcess.run("/usr/bin/curl", ["-sS", "--max-time", "5", "http://127.0.0.1:\(port)/api/v1/targets"]).output
    }
}
