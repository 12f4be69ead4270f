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

    /// The live sysctl files the sampler reads are one line, well inside one page
    /// (the premise of reading them a page at a time).
    @Test(arguments: ["sys/fs/inode-nr", "sys/fs/dentry-state", "sys/fs/file-nr"])
    func theLiveSysctlFilesReadWithOnePage(file: String) throws {
        let bytes = try FileReader().read("/proc/\(file)", readSize: FileReader.sysctlReadSize)
        #expect(bytes.count > 0 && bytes.count < FileReader.sysctlReadSize)
        #expect(bytes.last == UInt8(ascii: "\n"))
    }
}
