/// Columns of 32-bit values, one value per slot (a tier's footprints in 4 KiB
/// units, or its inode caches' object counts), kept in blocks of
/// `blockSlots` consecutive slots: the newest block raw, every older block
/// packed per column by **frame of reference** — the block's minimum, a bit
/// width, and each slot's distance from the minimum in that many bits.
///
/// Slab counts move little between samples (on a real machine 96 % of 5 s
/// footprint deltas are zero), so most packed columns have width 0 and cost
/// only their 8-byte header; a column that moves costs bits for the range it
/// moved inside the block, never more than the raw 32 bits a slot. Any slot
/// reads in O(1) (its block, then `width` bits at `slot × width`).
///
/// Slots are numbered by a sequence that only grows (`end` is the next one).
/// The columns hold at least the newest `capacity` slots; a whole block is
/// dropped once every slot in it is older than that, so eviction is O(1).
/// `absent` (`UInt32.max`) is the value of a slot not measured; stored values
/// must be below it. Sealing a block reuses the buffers of the one it
/// evicts, so the steady state allocates nothing. A value type: copies share
/// storage until one of them writes.
struct PackedColumns: Sendable {
    static let absent = UInt32.max
    /// At most this many slots a block: 64 slots are 5 min 20 s at the 5 s
    /// default, and 64 codes of `width` bits are exactly `width` words.
    static let maximumBlockShift = 6

    /// log2 of the slots in a block (smaller for a tier of fewer slots).
    let blockShift: Int
    /// Next slot's sequence number (one past the newest).
    private(set) var end: Int
    /// First slot of the open block (a multiple of the block size).
    private var openStart: Int
    /// The open block: `blockSlots × columns` raw values, slot-major: the
    /// newest slot of every column side by side, so the detector's read of
    /// each cache's latest value walks one array in order instead of taking
    /// a cache miss a cache (a column-major block put them 256 bytes apart).
    private var open: [UInt32]
    /// Closed blocks in a circular array: `newest` holds the block just
    /// before the open one, `newest − k` (wrapping) the k-th before it. A
    /// block not sealed yet holds no column, so slots before the columns'
    /// start read as absent. (The fields are few on purpose: the detector
    /// copies the tier, and with it these, for every window it checks.)
    private var closed: [PackedBlock]
    private var newest = -1
    /// Closed blocks sealed so far (at most `closed.count`), for `packedSize`.
    private var sealedBlocks = 0
    /// Every closed block's header of every column, column by column:
    /// `headers[column × closed.count + block]` (see `PackedBlock`), so a
    /// column's headers share a cache line or two whatever block is read.
    private var headers: [UInt64]

    var columns: Int { open.count >> blockShift }

    var blockSlots: Int { 1 << blockShift }
    private var slotMask: Int { blockSlots - 1 }

    /// Empty columns for a tier of `capacity` slots, whose first slot will be `start`.
    init(columns: Int, capacity: Int, start: Int = 0) {
        var shift = 0
        while shift < Self.maximumBlockShift && (1 << shift) < capacity { shift += 1 }
        blockShift = shift
        end = start
        openStart = start & ~((1 << shift) - 1)
        open = Array(repeating: Self.absent, count: columns << shift)
        // The newest `capacity` slots span the open block (≥ 1 slot once
        // written) and at most ⌈(capacity − 1) / blockSlots⌉ closed blocks.
        closed = Array(repeating: PackedBlock(), count: (capacity - 1 + (1 << shift) - 1) >> shift)
        headers = Array(repeating: PackedBlock.absentColumn, count: columns * closed.count)
    }

    /// Starts the next slot, absent in every column until `set`.
    mutating func beginSlot() {
        if end - openStart == blockSlots { seal() }
        let columns = self.columns, row = (end - openStart) * columns
        open.withUnsafeMutableBufferPointer { raw in
            for column in 0..<columns { raw[row + column] = Self.absent }
        }
        end += 1
    }

    /// Sets `column` in the newest slot (`beginSlot` started it).
    mutating func setNewest(column: Int, _ value: UInt32) {
        open[(end - 1 - openStart) * columns + column] = value
    }

    /// Packs the full open block into the slot of the oldest closed block,
    /// which no read may ask for any more.
    private mutating func seal() {
        if !closed.isEmpty {
            newest = newest + 1 == closed.count ? 0 : newest + 1
            sealedBlocks = min(sealedBlocks + 1, closed.count)
            let (block, stride, columns, shift, raw) = (newest, closed.count, columns, blockShift, open)
            headers.withUnsafeMutableBufferPointer { headers in
                closed[block].pack(raw, columns: columns, shift: shift, headers: headers, stride: stride, block: block)
            }
        }
        openStart += blockSlots
    }

    /// The oldest sequence number still stored.
    @inline(__always)
    private var oldestStored: Int { openStart - closed.count << blockShift }

    /// The value of `column` at slot `sequence`; `absent` when not measured,
    /// for a column added later, or for a slot no longer (or never) stored.
    @inline(__always)
    func value(column: Int, at sequence: Int) -> UInt32 {
        guard column < columns, sequence < end else { return Self.absent }
        // The detector reads a slot of each window for every cache: the
        // checks above and the invariants of `seal` keep every index below
        // in bounds, so the reads skip Swift's checks.
        if sequence >= openStart {
            return open.withUnsafeBufferPointer { $0[(sequence &- openStart) &* columns &+ column] }
        }
        guard sequence >= oldestStored else { return Self.absent }
        // Through the buffer: the block is borrowed, not copied (a copy retains its payload).
        let block = blockIndex(sequence)
        let header = headers.withUnsafeBufferPointer { $0[column &* closed.count &+ block] }
        return closed.withUnsafeBufferPointer { $0[block].value(header: header, slot: sequence & slotMask) }
    }

    /// A value no present value of `column` at slot `sequence` is below:
    /// the minimum of the slot's block, read from its header alone (the
    /// value itself in the open block). `absent` only when the slot is
    /// absent for certain. The detector's quick growth test rules most
    /// caches out on it without unpacking a payload word.
    @inline(__always)
    func floor(column: Int, at sequence: Int) -> UInt32 {
        guard column < columns, sequence < end else { return Self.absent }
        if sequence >= openStart {
            return open.withUnsafeBufferPointer { $0[(sequence &- openStart) &* columns &+ column] }
        }
        guard sequence >= oldestStored else { return Self.absent }
        // Bits 0–31 of a header are the block's minimum, the absent marker when no slot holds the column.
        let header = headers.withUnsafeBufferPointer { $0[column &* closed.count &+ blockIndex(sequence)] }
        return UInt32(truncatingIfNeeded: header)
    }

    @inline(__always)
    private func blockIndex(_ sequence: Int) -> Int {
        let back = (openStart - 1 - sequence) >> blockShift
        return newest - back < 0 ? newest - back + closed.count : newest - back
    }

    /// Writes `column` at slots `from..<from+count` into `out[0..<count]` as
    /// Doubles times `scale`, block by block; false at the first absent slot
    /// (`out` then partly written).
    func copy(column: Int, from: Int, count: Int, scale: Double, into out: UnsafeMutableBufferPointer<Double>) -> Bool {
        guard column < columns, from >= oldestStored, from + count <= end, count <= out.count else { return count == 0 }
        var sequence = from, written = 0
        let complete = closed.withUnsafeBufferPointer { closed in
            while written < count, sequence < openStart {
                let slot = sequence & slotMask
                let run = min(blockSlots - slot, count - written)
                let block = blockIndex(sequence)
                guard closed[block].unpack(header: headers[column * closed.count + block], slot: slot, count: run, scale: scale,
                                           into: out.baseAddress! + written)
                else { return false }
                written += run
                sequence += run
            }
            return true
        }
        guard complete else { return false }
        guard written < count else { return true }
        return open.withUnsafeBufferPointer { raw in
            let (base, stride) = ((sequence - openStart) * columns + column, columns)
            for i in 0..<(count - written) {
                let value = raw[base + i * stride]
                if value == Self.absent { return false }
                out[written + i] = Double(value) * scale
            }
            return true
        }
    }

    /// Writes `column` at slots `from..<from+count` into `out` as stored,
    /// `absent` where it was not measured (a state file's raw layout).
    func copyRaw(column: Int, from: Int, count: Int, into out: UnsafeMutableBufferPointer<UInt32>) {
        for i in 0..<count { out[i] = Self.absent }
        guard column < columns, from >= oldestStored, from + count <= end, count <= out.count else { return }
        var sequence = from, written = 0
        closed.withUnsafeBufferPointer { closed in
            while written < count, sequence < openStart {
                let slot = sequence & slotMask
                let run = min(blockSlots - slot, count - written)
                let block = blockIndex(sequence)
                closed[block].unpackRaw(header: headers[column * closed.count + block], slot: slot, count: run,
                                        into: out.baseAddress! + written)
                written += run
                sequence += run
            }
        }
        for i in written..<count { out[i] = open[(sequence + i - written - openStart) * columns + column] }
    }

    /// Marks `column` absent in every stored slot.
    mutating func clear(column: Int) {
        guard column < columns else { return }
        let columns = self.columns
        for offset in 0..<blockSlots { open[offset * columns + column] = Self.absent }
        for block in closed.indices { headers[column * closed.count + block] = PackedBlock.absentColumn }
    }

    /// Adds columns, absent in every slot so far.
    mutating func widen(to newColumns: Int) {
        guard newColumns > columns else { return }
        headers.append(contentsOf: repeatElement(PackedBlock.absentColumn, count: (newColumns - columns) * closed.count))
        // Slot-major: each slot's row gets the new columns at its end.
        var widened = [UInt32](repeating: Self.absent, count: newColumns << blockShift)
        let columns = self.columns
        for offset in 0..<blockSlots {
            widened[(offset * newColumns)..<(offset * newColumns + columns)] = open[(offset * columns)..<((offset + 1) * columns)]
        }
        open = widened
    }

    /// New columns holding `kept` (renumbered 0, 1, … in that order),
    /// `width` wide, for the slots from `first` on (of a tier of `capacity`): packed again from scratch,
    /// which a rare rebuild can afford.
    func keeping(_ kept: [Int], width: Int, from first: Int, capacity: Int) -> PackedColumns {
        var copy = PackedColumns(columns: width, capacity: capacity, start: first)
        for sequence in first..<end {
            copy.beginSlot()
            for (newColumn, oldColumn) in kept.enumerated() { copy.setNewest(column: newColumn, value(column: oldColumn, at: sequence)) }
        }
        return copy
    }

    /// The closed blocks' bytes, and the values they hold (each column
    /// present in any slot of a block counts a block's worth): what packing
    /// costs a value, without the open block.
    var packedSize: (bytes: Int, values: Int) {
        // Blocks not sealed yet hold absent headers and no payload: only the sealed ones count.
        let present = headers.count(where: { $0 != PackedBlock.absentColumn })
        return (closed.reduce(sealedBlocks * columns * MemoryLayout<UInt64>.stride) { $0 + $1.storageBytes }, present << blockShift)
    }

    /// Bytes held: what each buffer was sized for, and its 32-byte header.
    var storageBytes: Int {
        closed.reduce(heapBytes(open.count, of: UInt32.self) + heapBytes(closed.count, of: PackedBlock.self)
                      + heapBytes(headers.count, of: UInt64.self)) { $0 + $1.storageBytes }
    }
}

/// Bytes a Swift array of `count` elements takes on the heap, its header
/// included; the allocator's rounding (which depends on what was freed
/// before) left out, so the figure is the same on every run.
func heapBytes<Element>(_ count: Int, of _: Element.Type) -> Int {
    count == 0 ? 0 : 32 + count * MemoryLayout<Element>.stride
}

/// One closed block: its columns' codes packed into 64-bit words, each
/// column from a word boundary, read through each column's 64-bit header
/// (which `PackedColumns` keeps, a column's headers side by side).
///
/// A header holds the column's minimum (bits 0–31), its first payload word
/// (bits 32–57) and a 6-bit code (bits 58–63): 0…32 is the bit width of
/// each slot's distance from the minimum; 33…63 a width of code − 32 in a
/// block where some slot is absent, whose distance is then the highest
/// (`2^width − 1`, which no present slot needs). Width 32 always reads the
/// highest distance as absent: no present value is that far from any
/// minimum. Width 0 with the absent marker as minimum: no slot holds the
/// column. One header a column keeps the detector's read of a window's
/// first slot to one cache line for a column that held still.
struct PackedBlock: Sendable {
    private var payload: [UInt64] = []
    /// Words the payload was last sized for: a block reuses it unless it is
    /// too small or more than twice what the block needs.
    private var payloadRoom = 0

    /// Bits of a header's first payload word: 64 Mi words, room for 2 Mi
    /// columns of 32-bit codes (`SampleRing.Configuration.maximumSeries`).
    static let wordBits = 26
    static let absentColumn = UInt64(PackedColumns.absent)

    /// Packs `columns` columns of `1 << shift` raw slots each (slot-major:
    /// slot `i` of column `c` at `i × columns + c`) into this block's payload and each column's header at
    /// `headers[column × stride + block]`, reusing the payload's buffer when
    /// it is not much larger than needed.
    mutating func pack(_ raw: [UInt32], columns: Int, shift: Int, headers: UnsafeMutableBufferPointer<UInt64>, stride: Int, block: Int) {
        var words = 0
        Self.withColumns(raw, columns: columns, shift: shift) { column, values in
            let (minimum, code) = Self.frame(values)
            headers[column * stride + block] = UInt64(minimum) | (code == 0 ? 0 : UInt64(words) << 32) | UInt64(code) << 58
            words += (Self.width(code) << shift + 63) >> 6
        }
        precondition(words < 1 << Self.wordBits, "a block of more columns than the ring allows")
        if payloadRoom < words || payloadRoom > 2 * words + 64 {
            payload = []
            payload.reserveCapacity(words)
            payloadRoom = words
        } else {
            payload.removeAll(keepingCapacity: true)
        }
        payload.append(contentsOf: repeatElement(0, count: words))
        payload.withUnsafeMutableBufferPointer { payload in
            Self.withColumns(raw, columns: columns, shift: shift) { column, values in
                let header = headers[column * stride + block], width = Self.width(Int(header >> 58))
                guard width > 0 else { return }
                Self.write(values, minimum: UInt32(truncatingIfNeeded: header), width: width, at: Self.firstWord(header), into: payload)
            }
        }
    }

    /// Calls `body` with each column of a slot-major block, gathered into a
    /// buffer on the stack (a block has at most 64 slots).
    private static func withColumns(_ raw: [UInt32], columns: Int, shift: Int,
                             _ body: (Int, Slice<UnsafeBufferPointer<UInt32>>) -> Void) {
        let slots = 1 << shift
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: slots) { column in
            raw.withUnsafeBufferPointer { raw in
                for c in 0..<columns {
                    for slot in 0..<slots { column[slot] = raw[slot * columns + c] }
                    body(c, UnsafeBufferPointer(column)[0..<slots])
                }
            }
        }
    }

    @inline(__always)
    static func width(_ code: Int) -> Int { code > 32 ? code &- 32 : code }

    @inline(__always)
    static func firstWord(_ header: UInt64) -> Int { Int(truncatingIfNeeded: (header &>> 32) & (1 << wordBits - 1)) }

    /// The minimum of the present values and the code of their width (the
    /// absent marker and 0 when none is present).
    private static func frame(_ values: Slice<UnsafeBufferPointer<UInt32>>) -> (UInt32, Int) {
        var low = UInt32.max, high = UInt32.min, anyAbsent = false
        for value in values {
            if value == PackedColumns.absent { anyAbsent = true; continue }
            low = min(low, value)
            high = max(high, value)
        }
        guard low <= high else { return (PackedColumns.absent, 0) }
        // With gaps, the highest distance is reserved: distances 0…range and one more.
        let largest = UInt64(high - low) + (anyAbsent ? 1 : 0)
        let width = UInt64.bitWidth - largest.leadingZeroBitCount
        return (low, anyAbsent && width < 32 ? width + 32 : width)
    }

    private static func write(_ values: Slice<UnsafeBufferPointer<UInt32>>, minimum: UInt32, width: Int, at firstWord: Int,
                              into payload: UnsafeMutableBufferPointer<UInt64>) {
        let mask = UInt64.max >> (64 - width)
        var bit = 0
        for value in values {
            let code = value == PackedColumns.absent ? mask : UInt64(value - minimum)
            let word = firstWord + bit >> 6, shift = bit & 63
            payload[word] |= code << shift
            if shift + width > 64 { payload[word + 1] |= code >> (64 - shift) }
            bit += width
        }
    }

    func value(header: UInt64, slot: Int) -> UInt32 {
        let minimum = UInt32(truncatingIfNeeded: header), code = Int(truncatingIfNeeded: header &>> 58)
        if code == 0 { return minimum }  // held still, or absent throughout
        // `pack` sized the payload for every column's codes: the words read are inside it.
        let width = Self.width(code)
        let bit = slot &* width, word = Self.firstWord(header) &+ bit &>> 6, shift = bit & 63
        let mask = UInt64.max &>> (64 &- width)
        let distance = payload.withUnsafeBufferPointer { payload in
            var distance = payload[word] &>> shift
            if shift &+ width > 64 { distance |= payload[word &+ 1] &<< (64 &- shift) }
            return distance & mask
        }
        if code >= 32 && distance == mask { return PackedColumns.absent }
        return minimum &+ UInt32(truncatingIfNeeded: distance)
    }

    /// Writes `count` slots from `slot` on as Doubles times `scale`; false
    /// at the first absent one. Width 0 is a fill; otherwise one shift and
    /// mask a slot, walking the bits without a multiply.
    func unpack(header: UInt64, slot: Int, count: Int, scale: Double, into out: UnsafeMutablePointer<Double>) -> Bool {
        let code = Int(header >> 58), width = Self.width(code)
        let minimum = Double(UInt32(truncatingIfNeeded: header))
        if width == 0 {
            guard header != Self.absentColumn else { return false }
            out.update(repeating: minimum * scale, count: count)
            return true
        }
        let mask = UInt64.max >> (64 - width), checksGaps = code >= 32
        return payload.withUnsafeBufferPointer { payload in
            var bit = slot * width
            let firstWord = Self.firstWord(header)
            for i in 0..<count {
                let word = firstWord + bit >> 6, shift = bit & 63
                var distance = payload[word] >> shift
                if shift + width > 64 { distance |= payload[word + 1] << (64 - shift) }
                distance &= mask
                if checksGaps && distance == mask { return false }
                out[i] = (minimum + Double(distance)) * scale
                bit += width
            }
            return true
        }
    }

    /// Writes `count` slots from `slot` on as stored, `absent` where absent.
    func unpackRaw(header: UInt64, slot: Int, count: Int, into out: UnsafeMutablePointer<UInt32>) {
        let code = Int(header >> 58), width = Self.width(code)
        let minimum = UInt32(truncatingIfNeeded: header)
        if width == 0 {
            out.update(repeating: minimum, count: count)  // the absent marker when no slot holds it
            return
        }
        let mask = UInt64.max >> (64 - width), checksGaps = code >= 32
        payload.withUnsafeBufferPointer { payload in
            var bit = slot * width
            let firstWord = Self.firstWord(header)
            for i in 0..<count {
                let word = firstWord + bit >> 6, shift = bit & 63
                var distance = payload[word] >> shift
                if shift + width > 64 { distance |= payload[word + 1] << (64 - shift) }
                distance &= mask
                out[i] = checksGaps && distance == mask ? PackedColumns.absent : minimum &+ UInt32(truncatingIfNeeded: distance)
                bit += width
            }
        }
    }

    var storageBytes: Int { heapBytes(payloadRoom, of: UInt64.self) }
}
