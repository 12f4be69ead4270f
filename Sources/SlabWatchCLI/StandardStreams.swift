import Glibc
import SlabWatch

/// Standard input, output and error (descriptors 0, 1 and 2).
enum StandardStreams {
    /// Opens /dev/null onto each of them that is closed, before anything
    /// else opens a descriptor, as daemons and coreutils do: started with
    /// `2>&-`, the next descriptor opened (libdispatch's epoll instance, a
    /// report file) would become "stderr", and messages, the report and the
    /// command `measure` runs would write into it. Exits 1 when /dev/null
    /// cannot be opened: there is then no safe place to write anything.
    static func ensureOpen() {
        for descriptor: Int32 in 0...2 where fcntl(descriptor, F_GETFD) == -1 && errno == EBADF {
            // The lowest free descriptor, which is this one: those below it are open.
            // Not close-on-exec: a command measure runs inherits its streams.
            let opened = open("/dev/null", descriptor == 0 ? O_RDONLY : O_WRONLY)
            guard opened == descriptor else { exit(ExitStatus.runtimeFailure.rawValue) }
        }
    }
}
