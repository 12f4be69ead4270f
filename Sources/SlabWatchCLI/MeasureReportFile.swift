import Glibc
import SlabWatch

/// Where `measure` writes its report: stderr, or the file `--output` names.
/// The file is opened before anything runs, so that a path that cannot be
/// written fails at once instead of after the workload. A symbolic link is
/// refused, not followed (root writing through a link someone else planted
/// in a shared directory could overwrite any file); so is anything but a
/// regular file or a character device (a terminal, /dev/null): a FIFO would
/// block the report. What the file held before is replaced only when the new
/// report is written.
struct MeasureReportFile {
    let descriptor: Int32
    /// For messages: the path, or "stderr".
    let name: String
    /// The file as this run created it, removed again if the run ends
    /// without a report; nil when it was there before, or for stderr.
    private let created: (device: UInt64, inode: UInt64)?
    private let isRegular: Bool

    /// stderr when `path` is nil. A path that cannot be opened for writing
    /// is one line and exit 2.
    static func open(_ path: String?) -> MeasureReportFile {
        guard let path else { return MeasureReportFile(descriptor: 2, name: "stderr", created: nil, isRegular: false) }
        // Non-blocking: opening a FIFO for writing would wait for a reader.
        let flags = O_WRONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC
        var descriptor = Glibc.open(path, flags | O_CREAT | O_EXCL, 0o644)
        let made = descriptor >= 0
        if !made && errno == EEXIST { descriptor = Glibc.open(path, flags) }
        guard descriptor >= 0 else { fail(.badConfiguration, "--output: cannot write '\(path)': \(whyNot(path))") }
        var status = stat()
        let type = fstat(descriptor, &status) == 0 ? status.st_mode & S_IFMT : 0
        guard type == S_IFREG || type == S_IFCHR else {
            close(descriptor)
            fail(.badConfiguration, "--output: cannot write '\(path)': not a regular file")
        }
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) & ~O_NONBLOCK)
        return MeasureReportFile(descriptor: descriptor, name: path,
                                 created: made ? (UInt64(status.st_dev), UInt64(status.st_ino)) : nil, isRegular: type == S_IFREG)
    }

    /// Why `path` could not be opened, errno being open's: what is there when
    /// that says more than the errno (a FIFO without a reader is ENXIO).
    private static func whyNot(_ path: String) -> String {
        let error = errno
        var status = stat()
        switch lstat(path, &status) == 0 ? status.st_mode & S_IFMT : 0 {
        case S_IFLNK: return "it is a symbolic link (name the file itself; a report is never written through a link)"
        case S_IFIFO, S_IFSOCK: return "not a regular file"
        default: return String(cString: strerror(error))
        }
    }

    /// Replaces what the file held with `bytes`; a failure is one line and exit 1.
    func write(_ bytes: [UInt8]) {
        func failed() -> Never { fail(.runtimeFailure, "--output: cannot write '\(name)': \(String(cString: strerror(errno)))") }
        if isRegular, ftruncate(descriptor, 0) != 0 || lseek(descriptor, 0, SEEK_SET) != 0 { failed() }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { failed() }
            offset += written
        }
    }

    /// The run ends without a report: a file it created goes again (when
    /// the name still leads to that file), one that was there is left as it was.
    func discard() {
        guard let created else { return }
        var status = stat()
        if lstat(name, &status) == 0, UInt64(status.st_dev) == created.device, UInt64(status.st_ino) == created.inode {
            unlink(name)
        }
    }
}
