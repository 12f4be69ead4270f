/// The `k`-th largest of some values, found in place: what a bound on the
/// caches a sample keeps needs, without sorting every cache.
enum LargestValues {
    /// The `k`-th largest of `values` (1 ≤ `k` ≤ `values.count`; ties
    /// counted, so the 2nd largest of 5, 5, 3 is 5), reordering them:
    /// quickselect with a median-of-three pivot, linear on average, no
    /// allocation.
    static func kthLargest(_ values: inout [UInt64], _ k: Int) -> UInt64 {
        precondition(k >= 1 && k <= values.count, "k out of range")
        return values.withUnsafeMutableBufferPointer { values in
            let target = k - 1  // its index were the values sorted largest first
            var (low, high) = (0, values.count - 1)
            while low < high {
                let (a, b, c) = (values[low], values[low + (high - low) / 2], values[high])
                let pivot = max(min(a, b), min(max(a, b), c))
                // Hoare's partition, largest first: [low...j] ≥ pivot, [i...high] ≤ pivot, between them = pivot.
                var (i, j) = (low, high)
                while i <= j {
                    while values[i] > pivot { i += 1 }
                    while values[j] < pivot { j -= 1 }
                    if i <= j {
                        values.swapAt(i, j)
                        i += 1
                        j -= 1
                    }
                }
                if target <= j { high = j } else if target >= i { low = i } else { return pivot }
            }
            return values[target]
        }
    }
}
