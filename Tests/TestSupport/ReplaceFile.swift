public import Foundation
import Glibc

/// Writes `text` to a temporary file beside `url`, then renames it over `url`,
/// so a reader (the daemon sampling a fake procfs) never sees half a file.
/// Foundation's `atomically: true` does the same through a directory it makes
/// in /tmp and, on Linux, leaves behind (`TemporaryDirectory.*`); tests must
/// leave /tmp as they found it.
public func replaceFile(_ url: URL, with text: String) throws {
    let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp")
    try Data(text.utf8).write(to: temporary)
    guard rename(temporary.path, url.path) == 0 else {
        let code = errno
        try? FileManager.default.removeItem(at: temporary)
        throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO)
    }
}
