import Dispatch
import Foundation
import Glibc
import SlabWatchCore
import SlabWatchHTTP
import Testing
import TestSupport
@testable import SlabWatch

/// The daemon's parts started and stopped in process, as `run()` does
/// between the start and SIGTERM: on the recorded procfs of Tests/Fixtures
/// (the real reader on real files), an ephemeral loopback port, and a state
/// directory removed afterwards.
struct DaemonLifecycleTests {
    /// Opens `published` at the first tick the sampler publishes.
    final class FirstTick: SamplerOutput {
        let published = DispatchSemaphore(value: 0)
        func evaluated(_ step: Pipeline.Step) {}
        func published(_ state: PublishedState) { published.signal() }
        func transitions(_ events: [GrowthDetector.Event]) {}
    }

    @Test func aStoppedDaemonHasCheckpointedAndClosedItsPort() throws {
        let directory = try TemporaryDirectory()
        var configuration = Configuration()
        configuration.sampler.paths = TestPaths.localKernelPaths
        configuration.listenAddresses = [ListenAddress(host: .ipv4("127.0.0.1"), port: 0)]
        configuration.state.directory = directory.path("state")
        configuration.journalSocket = directory.path("no-journal")  // alerts stay in the test
        let firstTick = FirstTick()
        let daemon = Daemon(source: ConfigurationSource(file: nil, overrides: []), configuration: configuration,
                            logger: quietLogger, observer: firstTick)

        // The daemon's signal part sets these to ignored; the test process gets its own back.
        let dispositions = SignalDispositions([SIGHUP, SIGTERM, SIGINT, SIGUSR1, SIGUSR2])
        defer { dispositions.restore() }
        let running = try daemon.start()
        let port = try #require(running.listening.bound.first?.port)
        #expect(Self.connects(to: port), "the server listens once started")
        // A generous bound that only trips when the first tick never comes (a hung start), not a timing claim.
        #expect(firstTick.published.wait(timeout: .now() + 60) == .success, "no tick published")
        // The first tick's checkpoint is already on its way (the first is due at once):
        // one more sample makes the final checkpoint tell itself apart from it.
        let second = running.sampler.sampleOnce().sample.timestampMilliseconds
        daemon.stop(running)

        let final = try #require(running.sampler.finalState(), "no final state after a clean stop")
        #expect(final.sample.timestampMilliseconds >= second)
        let saved = try StateFile.read(directory.path("state/\(StatePersistence.fileName)"))
        #expect(saved.metadata.lastSampleMilliseconds == final.sample.timestampMilliseconds, "the final checkpoint is written")
        #expect(!Self.connects(to: port), "the port is closed once stopped")
    }

    @Test func anAddressInUseFailsTheStartWithItsExitStatus() throws {
        let directory = try TemporaryDirectory()
        let taken = HTTPServer(limits: .init(), logger: quietLogger) { _ in HTTPResponse(status: 200) }
        let port = try #require(taken.start(listeningOn: [ListenAddress(host: .ipv4("127.0.0.1"), port: 0)]).first?.port)
        defer { taken.stop() }
        var configuration = Configuration()
        configuration.sampler.paths = TestPaths.localKernelPaths
        configuration.listenAddresses = [ListenAddress(host: .ipv4("127.0.0.1"), port: port)]
        configuration.state.directory = directory.path("state")
        configuration.journalSocket = directory.path("no-journal")
        let daemon = Daemon(source: ConfigurationSource(file: nil, overrides: []), configuration: configuration,
                            logger: quietLogger, observer: nil)
        let dispositions = SignalDispositions([SIGHUP, SIGTERM, SIGINT, SIGUSR1, SIGUSR2])
        defer { dispositions.restore() }

        #expect { _ = try daemon.start() } throws: { ($0 as? ServiceError)?.status == .cannotListen }
    }

    /// Signal dispositions as they were when made.
    struct SignalDispositions {
        private var saved: [(Int32, sigaction)] = []

        init(_ signals: [Int32]) {
            for number in signals {
                var old = sigaction()
                sigaction(number, nil, &old)
                saved.append((number, old))
            }
        }

        func restore() {
            for (number, old) in saved {
                var old = old
                sigaction(number, &old, nil)
            }
        }
    }

    /// Whether a TCP connection to 127.0.0.1:`port` is accepted.
    static func connects(to port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}
