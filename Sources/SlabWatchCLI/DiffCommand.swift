import Glibc
import SlabWatch
import SlabWatchCore

/// `slabwatch diff BEFORE AFTER`: two measurements side by side.
struct DiffCommand: Subcommand {
    static let spec = CommandSpec(name: "diff", summary: "Compare two 'measure --json' reports (before and after a change), per cache and in total.",
                                  arguments: [.init("before", "the report of the run before the change"), .init("after", "the report of the run after it")])

    let before: String
    let after: String

    init(_ line: ParsedCommand) {
        before = line.arguments[0]
        after = line.arguments[1]
    }

    /// A file that is not a report is one line and exit 2.
    func run() -> Int32 {
        let measurements: (Measurement, Measurement)
        do {
            measurements = (try Self.measurement(at: before), try Self.measurement(at: after))
        } catch { return failed(.badConfiguration, error.description) }
        print(MeasurementDiff.text(before: measurements.0, after: measurements.1), terminator: "")
        return ExitStatus.success.rawValue
    }

    private static func measurement(at path: String) throws(MeasurementReader.ReadError) -> Measurement {
        do { return try MeasurementReader.read(readReport(path)) } catch {
            throw MeasurementReader.ReadError(description: "\(path): \(error.description)")
        }
    }

    /// A report written by `--json`: a regular file of at most 64 MiB (a
    /// report of every cache of a large machine is well under one).
    static func readReport(_ path: String) throws(MeasurementReader.ReadError) -> [UInt8] {
        func failure(_ call: String) -> MeasurementReader.ReadError {
            MeasurementReader.ReadError(description: "cannot \(call): \(String(cString: strerror(errno)))")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw failure("open") }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw failure("stat") }
        guard status.st_mode & S_IFMT == S_IFREG else { throw MeasurementReader.ReadError(description: "not a regular file") }
        let limit = 64 << 20
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw failure("read") }
            if count == 0 { return bytes }
            bytes += chunk[0..<count]
            guard bytes.count <= limit else { throw MeasurementReader.ReadError(description: "larger than 64 MiB: not a report") }
        }
    }
}
