import CZlib
import Glibc
public import SlabWatchCore

/// The state file's bytes on disk, and writing them so that a crash at any
/// moment leaves either the old file or the new one, whole.
///
/// Layout (integers little-endian):
///
///     "SLABWATCH-STATE\n"   16 bytes
///     format version        UInt32 (SavedState.formatVersion)
///     CRC-32 of the content UInt32 (of the compressed bytes that follow)
///     content length        UInt64 (before compression)
///     content               zlib-compressed `SavedState.serialized()`
///
/// The content is streamed through zlib to the file in 64 KiB pieces, the
/// ring's columns straight from its storage: a checkpoint of a 15 MB ring
/// needs well under a megabyte besides the ring itself.
public enum StateFile: Sendable {
    static let magic = Array("SLABWATCH-STATE\n".utf8)
    static let headerSize = 16 + 4 + 4 + 8
    /// Larger content is refused whatever the ring (`maximumContentBytes(for:)` is usually far below).
    static let maximumContentBytes: UInt64 = 1 << 30
    /// deflate cannot shrink anything more than this (zlib's FAQ: 1032:1), so
    /// a header claiming more per compressed byte lies, and is refused before
    /// anything is allocated for it.
    static let maximumCompressionRatio: UInt64 = 1032
    private static let chunkSize = 64 << 10

    /// The most content a state of a ring with `ring`'s geometry can hold: both
    /// tiers at full width (time, counters and every series' footprint per
    /// slot), twice over for columns added later, plus 64 MiB for series names,
    /// findings and alert memory. A file claiming more is not this daemon's.
    static func maximumContentBytes(for ring: SampleRing.Configuration) -> UInt64 {
        let slots = UInt64(ring.fineCapacity) + UInt64(ring.coarseCapacity)
        let perSlot = 8 + UInt64(SampleRing.Counter.allCases.count) * 8 + UInt64(ring.maxSeries) * 4
        let (ringBytes, overflow) = slots.multipliedReportingOverflow(by: 2 * perSlot)
        return overflow ? maximumContentBytes : min(maximumContentBytes, ringBytes + (64 << 20))
    }

    enum ReadError: Error, Equatable, CustomStringConvertible {
        case missing
        case unreadable(String)
        case corrupt(String)
        case newerFormat(UInt32)
        /// Whole and valid, but describing another source (procfs root).
        case foreign(String)

        var description: String {
            switch self {
            case .missing: "no state file"
            case .foreign(let why): why
            case .unreadable(let why): "cannot be read: \(why)"
            case .corrupt(let why): "corrupt: \(why)"
            case .newerFormat(let v): "written in format \(v), newer than this slabwatch reads (\(SavedState.formatVersion))"
            }
        }
    }

    /// The whole file in memory (tests, the bench).
    public static func encode(_ state: SavedState) throws -> [UInt8] {
        try encode(.state(state))
    }

    /// A file around content that need not be a valid state (tests of the reader).
    static func encode(content: [UInt8]) throws -> [UInt8] {
        try encode(.bytes(content))
    }

    /// What a file holds: a state, or (for tests) any bytes.
    private enum Content {
        case state(SavedState)
        case bytes([UInt8])

        func write(to sink: (UnsafeRawBufferPointer) -> Void) throws {
            switch self {
            case .state(let state): try state.write(to: sink)
            case .bytes(let bytes): bytes.withUnsafeBytes(sink)
            }
        }
    }

    private static func encode(_ content: Content) throws -> [UInt8] {
        var body: [UInt8] = []
        let header = try compress(content) { (piece: UnsafeRawBufferPointer) throws(FileError) in body.append(contentsOf: piece) }
        return header + body
    }

    /// Writes `state` to `directory/name` via a temporary file: the content
    /// streamed in, the header put in front, fsync, rename over the old file,
    /// fsync the directory.
    ///
    /// The temporary file is always a new one (unlinked, then created with
    /// O_EXCL): whatever stood in its place — a FIFO that would block open(2)
    /// until someone reads it, a symlink — is never opened.
    public static func write(_ state: SavedState, directory: String, name: String) throws -> Int {
        let path = "\(directory)/\(name)", temporary = "\(directory)/.\(name).tmp"
        unlink(temporary)  // a directory there stays, and O_EXCL below says so
        let fd = temporary.withCString { open($0, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600) }
        guard fd >= 0 else { throw FileError(path: temporary, call: "open", errno: errno) }
        var size = headerSize
        do {
            // The header goes in last (its CRC and length are known only then).
            guard lseek(fd, off_t(headerSize), SEEK_SET) == off_t(headerSize) else { throw FileError(path: temporary, call: "lseek", errno: errno) }
            let header = try compress(.state(state)) { (piece: UnsafeRawBufferPointer) throws(FileError) in
                try writeAll(fd, piece, path: temporary)
                size += piece.count
            }
            let written = header.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
            guard written == header.count else { throw FileError(path: temporary, call: "pwrite", errno: errno) }
            guard fsync(fd) == 0 else { throw FileError(path: temporary, call: "fsync", errno: errno) }
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        close(fd)
        guard rename(temporary, path) == 0 else { let e = errno; unlink(temporary); throw FileError(path: path, call: "rename", errno: e) }
        let directoryFD = directory.withCString { open($0, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        guard directoryFD >= 0 else { throw FileError(path: directory, call: "open", errno: errno) }
        defer { close(directoryFD) }
        guard fsync(directoryFD) == 0 else { throw FileError(path: directory, call: "fsync", errno: errno) }
        return size
    }

    /// - Parameter limit: the most content this daemon's ring can need
    ///   (`maximumContentBytes(for:)`); a header claiming more is refused
    ///   before anything is allocated.
    static func decode(_ file: [UInt8], limit: UInt64 = maximumContentBytes) throws(ReadError) -> SavedState {
        guard file.count >= headerSize else { throw .corrupt("\(file.count) bytes, shorter than the header") }
        guard file.starts(with: magic) else { throw .corrupt("not a slabwatch state file") }
        let version: UInt32 = read(file, at: 16)
        guard version <= SavedState.formatVersion else { throw .newerFormat(version) }
        guard version == SavedState.formatVersion else { throw .corrupt("format \(version) is no longer read") }
        let crc = file.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress! + headerSize, uInt($0.count - headerSize))) }
        guard crc == read(file, at: 20) else { throw .corrupt("checksum mismatch (truncated or damaged)") }
        let length: UInt64 = read(file, at: 24)
        guard length <= min(limit, maximumContentBytes) else {
            throw .corrupt("content of \(length) bytes, more than a ring of this configuration holds (\(min(limit, maximumContentBytes)))")
        }
        let compressed = UInt64(file.count - headerSize)
        guard length <= compressed * maximumCompressionRatio else {
            throw .corrupt("content of \(length) bytes claimed for \(compressed) compressed bytes (deflate expands at most \(maximumCompressionRatio)-fold)")
        }
        var content = [UInt8](repeating: 0, count: Int(length))
        var produced = uLong(length)
        let status = content.withUnsafeMutableBufferPointer { out in
            file.withUnsafeBufferPointer { uncompress(out.baseAddress, &produced, $0.baseAddress! + headerSize, uLong($0.count - headerSize)) }
        }
        guard status == Z_OK, produced == uLong(length) else { throw .corrupt("content does not decompress (zlib status \(status))") }
        do { return try SavedState.parse(content) } catch { throw .corrupt("\(error)") }
    }

    static func read(_ path: String, limit: UInt64 = maximumContentBytes) throws(ReadError) -> SavedState {
        let bytes: ArraySlice<UInt8>
        // Compressed content is never much larger than the content itself.
        let fileLimit = Int(min(limit, maximumContentBytes)) + Int(min(limit, maximumContentBytes) / 64) + (1 << 16)
        do { bytes = try FileReader(initialCapacity: 64 << 10, maximumSize: fileLimit).read(path) } catch {
            if error.errno == ENOENT { throw .missing }
            throw .unreadable(error.description)
        }
        return try decode(Array(bytes), limit: limit)
    }

    /// Streams the serialized content through zlib's deflate into `emit`, 64 KiB
    /// at a time; returns the header that belongs in front of what was emitted.
    private static func compress(
        _ content: Content, emit: (UnsafeRawBufferPointer) throws(FileError) -> Void
    ) throws -> [UInt8] {
        var stream = z_stream()
        guard deflateInit_(&stream, 6, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw FileError(path: "state", call: "deflateInit", errno: ENOMEM)
        }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: chunkSize)
        var crc = crc32(0, nil, 0)
        var contentLength: UInt64 = 0
        var failure: FileError?
        /// Runs deflate over `input` (nil: finish) and emits every full output buffer.
        func deflatePiece(_ input: UnsafeRawBufferPointer?) {
            stream.next_in = UnsafeMutablePointer(mutating: input?.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.avail_in = uInt(input?.count ?? 0)
            let flush = input == nil ? Z_FINISH : Z_NO_FLUSH
            repeat {
                let status = output.withUnsafeMutableBytes { out -> Int32 in
                    stream.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
                    stream.avail_out = uInt(out.count)
                    return deflate(&stream, flush)
                }
                let produced = chunkSize - Int(stream.avail_out)
                if produced > 0, failure == nil {
                    output.withUnsafeBytes { out in
                        let piece = UnsafeRawBufferPointer(rebasing: out[0..<produced])
                        crc = crc32(crc, piece.baseAddress!.assumingMemoryBound(to: Bytef.self), uInt(produced))
                        do throws(FileError) { try emit(piece) } catch { failure = error }
                    }
                }
                if status == Z_STREAM_END { return }
                guard status == Z_OK || status == Z_BUF_ERROR else {
                    failure = failure ?? FileError(path: "state", call: "deflate", errno: EIO, reason: "zlib status \(status)")
                    return
                }
            } while stream.avail_out == 0 || (flush == Z_FINISH)
        }
        try content.write { piece in
            contentLength += UInt64(piece.count)
            // zlib takes at most 4 GiB per call; pieces are the ring's columns at most.
            deflatePiece(piece)
        }
        deflatePiece(nil)
        if let failure { throw failure }
        var header = magic
        append(SavedState.formatVersion, to: &header)
        append(UInt32(crc), to: &header)
        append(contentLength, to: &header)
        return header
    }

    private static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws(FileError) {
        var written = 0
        while written < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + written, bytes.count - written)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw FileError(path: path, call: "write", errno: n < 0 ? errno : EIO) }
            written += n
        }
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        var v = value.littleEndian
        withUnsafeBytes(of: &v) { bytes.append(contentsOf: $0) }
    }

    private static func read<T: FixedWidthInteger>(_ bytes: [UInt8], at offset: Int) -> T {
        bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }
}
