/// What a cache's footprint may grow with (the x of the regression).
public enum GrowthDriver: String, CaseIterable, Sendable, Comparable, Codable {
    case inodes
    case dentries
    case openFiles = "open_files"
    case time

    public static func < (a: GrowthDriver, b: GrowthDriver) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// The ring column holding this driver (time is the slot's timestamp).
    var ringCounter: SampleRing.Counter? {
        switch self {
        case .inodes: .inodes
        case .dentries: .dentries
        case .openFiles: .openFiles
        case .time: nil
        }
    }

    /// The driver's value in one sample; nil when its source was down. Read
    /// through its ring column, so a sample and the ring cannot disagree.
    func value(in sample: Sample) -> Double? {
        guard let counter = ringCounter else { return Double(sample.timestampMilliseconds) / 1000 }
        return counter.value(in: sample).map { Double($0) }
    }

    /// "per cached inode", for the sentence.
    var perUnit: String {
        switch self {
        case .inodes: "per cached inode"
        case .dentries: "per dentry"
        case .openFiles: "per open file"
        case .time: "per second"
        }
    }

    /// "inodes".
    var plural: String {
        switch self {
        case .inodes: "inodes"
        case .dentries: "dentries"
        case .openFiles: "open files"
        case .time: "time"
        }
    }

    /// "inode".
    var singular: String {
        switch self {
        case .inodes: "inode"
        case .dentries: "dentry"
        case .openFiles: "open file"
        case .time: "second"
        }
    }

    /// How the driver falls: "evicted", "closed".
    var fallVerb: String { self == .openFiles ? "closed" : "evicted" }
}
