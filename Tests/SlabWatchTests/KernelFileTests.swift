import Foundation
import Glibc
import Testing
import TestSupport
@testable import SlabWatch
import SlabWatchCore

/// How the files read every sample are read: sysctl files a page per read(2),
/// and still whole whatever their size.
struct KernelFileTests {
    /// A file larger than the size asked for per read is still read whole.
    @Test func aFileLargerThanOneReadIsReadWhole() throws {
        let directory = try TemporaryDirectory()
        let text = String(repeating: "0123456789abcdef", count: 1_000)  // 16,000 bytes: four 4 KiB reads
        try directory.write("file-nr", text)
        #expect(Array(try FileReader().read(directory.path("file-nr"), readSize: FileReader.sysctlReadSize)) == Array(text.utf8))
    }

    /// At the edges of one read: exactly one read's worth, one byte more, nothing.
    @Test(arguments: [FileReader.sysctlReadSize, FileReader.sysctlReadSize + 1, 1, 0])
    func aFileAtTheEdgeOfOneReadIsReadWhole(size: Int) throws {
        let directory = try TemporaryDirectory()
        let text = String(repeating: "7", count: size)
        try directory.write("inode-nr", text)
        #expect(Array(try FileReader().read(directory.path("inode-nr"), readSize: FileReader.sysctlReadSize)) == Array(text.utf8))
    }

    /// A file read every sample that needs a megabyte of buffer (slabinfo
    /// at 5,000 caches) keeps it: the buffer is not given back and grown
    /// again between its reads. One huge file is a burst: the buffer goes
    /// back to its usual size once the reads after it need no more.
    @Test func theBufferIsKeptForAFileReadEverySampleAndGivenBackAfterABurst() throws {
        let dir = try TemporaryDirectory()
        try dir.write("slabinfo", String(repeating: "x", count: 700 << 10))
        try dir.write("huge", String(repeating: "y", count: 5 << 20))
        try dir.write("small", "1 2 3\n")
        let reader = FileReader(maximumSize: 16 << 20)
        _ = try reader.read(dir.path("slabinfo"))
        let grown = reader.timesGrown
        for _ in 0..<(3 * FileReader.readsRemembered) {
            #expect(try reader.read(dir.path("slabinfo")).count == 700 << 10)
            for _ in 0..<3 { _ = try reader.read(dir.path("small")) }
        }
        #expect(reader.timesGrown == grown, "grown again between reads of the same file")
        #expect(try reader.read(dir.path("huge")).count == 5 << 20)
        #expect(reader.bufferSize >= 5 << 20)
        for _ in 0..<(2 * FileReader.readsRemembered + 1) { _ = try reader.read(dir.path("small")) }
        #expect(reader.bufferSize == 64 << 10, "back to its usual size after the burst")
    }

    /// A procfs file is read through the descriptor it keeps, afresh each
    /// time: /proc/self/io counts the bytes this process read, so the
    /// second read must show more than the first (a read that did not
    /// start again at offset 0 would see the end of the file, and a reader
    /// that kept the bytes the same count).
    @Test func aKeptProcfsFileIsReadAfreshThroughOneDescriptor() throws {
        let file = KeptFile("/proc/self/io")
        let reader = FileReader()
        let first = try #require(Self.bytesRead(try reader.read(file, readSize: FileReader.sysctlReadSize)))
        let descriptor = file.descriptor
        #expect(descriptor >= 0)
        let second = try #require(Self.bytesRead(try reader.read(file, readSize: FileReader.sysctlReadSize)))
        #expect(second > first)
        #expect(file.descriptor == descriptor)
    }

    /// A file outside procfs is opened for every read and not kept: a
    /// fixture replaced by a rename is read as it is now.
    @Test func aFileOutsideProcfsIsOpenedForEveryRead() throws {
        let directory = try TemporaryDirectory()
        try directory.write("slabinfo", "before\n")
        let file = KeptFile(directory.path("slabinfo"))
        let reader = FileReader()
        #expect(Array(try reader.read(file)) == Array("before\n".utf8))
        #expect(file.descriptor == -1)
        try directory.write("slabinfo.new", "after\n")
        #expect(rename(directory.path("slabinfo.new"), directory.path("slabinfo")) == 0)
        #expect(Array(try reader.read(file)) == Array("after\n".utf8))
    }

    /// A read through a kept descriptor that fails lets the descriptor go
    /// and says why from a fresh open: a process's /proc file, kept, fails
    /// once the process is gone (the reopen then finds no file).
    @Test func aKeptDescriptorThatFailsIsLetGo() throws {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/sleep")
        child.arguments = ["60"]
        try child.run()
        let file = KeptFile("/proc/\(child.processIdentifier)/stat")
        let reader = FileReader()
        #expect(try reader.read(file).count > 0)
        #expect(file.descriptor >= 0)
        kill(child.processIdentifier, SIGKILL)  // (a SIGTERM the test process ignores, the child ignores too)
        child.waitUntilExit()
        #expect(throws: FileError.self) { try reader.read(file) }
        #expect(file.descriptor == -1)
    }

    /// The sampler's reader keeps one descriptor for each procfs file it
    /// reads every sample, the same ones sample after sample.
    @Test func theLiveReaderKeepsItsDescriptorsAcrossSamples() {
        let reader = ProcReader(paths: KernelPaths(), pageSize: 4096)
        _ = reader.sample(timestampMilliseconds: 0)
        let kept = reader.keptDescriptors
        _ = reader.sample(timestampMilliseconds: 1)
        #expect(reader.keptDescriptors == kept)
        for (path, descriptor) in kept {
            var target = [CChar](repeating: 0, count: 256)
            let n = readlink("/proc/self/fd/\(descriptor)", &target, 255)
            let opened = n > 0 ? String(decoding: target[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
            // /proc/net is /proc/self/net: the descriptor names the process.
            #expect(opened == path || (path == "/proc/net/sockstat" && opened.hasSuffix("/net/sockstat")), "\(path) → \(opened)")
        }
        #expect(kept.keys.contains("/proc/slabinfo") || getuid() != 0)  // root can read it
        #expect(kept.keys.contains("/proc/meminfo") && kept.keys.contains("/proc/sys/fs/inode-nr"))
    }

    /// The `rchar` count of /proc/self/io.
    private static func bytesRead(_ bytes: ArraySlice<UInt8>) -> UInt64? {
        String(decoding: bytes, as: UTF8.self).split(separator: "\n")
            .first { $0.hasPrefix("rchar:") }
            .flatMap { UInt64($0.dropFirst("rchar:".count).trimmingCharacters(in: .whitespaces)) }
    }

    /// The live sysctl files the sampler reads are one line, well inside one page
    /// (the premise of reading them a page at a time).
    @Test(arguments: ["sys/fs/inode-nr", "sys/fs/dentry-state", "sys/fs/file-nr"])
    func theLiveSysctlFilesReadWithOnePage(file: String) throws {
        let bytes = try FileReader().read("/proc/\(file)", readSize: FileReader.sysctlReadSize)
        #expect(bytes.count > 0 && bytes.count < FileReader.sysctlReadSize)
        #expect(bytes.last == UInt8(ascii: "\n"))
    }
}
