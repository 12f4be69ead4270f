/// Writes the Prometheus text exposition format 0.0.4: `# HELP`, `# TYPE`,
/// then samples, with label values and help text escaped as the format requires.
public struct PrometheusText: Sendable {
    public enum MetricType: Sendable {
        case gauge, counter

        var keyword: StaticString { self == .gauge ? "gauge" : "counter" }
    }

    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public private(set) var text: TextBuffer

    public init(reservingCapacity capacity: Int = 0) {
        text = TextBuffer(reservingCapacity: capacity)
    }

    public var bytes: [UInt8] { text.bytes }

    public mutating func family(_ name: StaticString, _ type: MetricType, help: StaticString) {
        text.append("# HELP "); text.append(name); text.append(byte: 0x20)
        text.append(help); text.append(byte: 0x0A)
        text.append("# TYPE "); text.append(name); text.append(byte: 0x20)
        text.append(type.keyword); text.append(byte: 0x0A)
    }

    public mutating func sample(_ name: StaticString, _ value: UInt64) {
        text.append(name); text.append(byte: 0x20); text.append(value); text.append(byte: 0x0A)
    }

    public mutating func sample(_ name: StaticString, _ value: Double) {
        text.append(name); text.append(byte: 0x20); text.append(value); text.append(byte: 0x0A)
    }

    public mutating func sample(_ name: StaticString, label: StaticString, _ labelValue: String, _ value: UInt64) {
        labelled(name, label, labelValue)
        text.append(value); text.append(byte: 0x0A)
    }

    public mutating func sample(_ name: StaticString, label: StaticString, _ labelValue: String, _ value: Double) {
        labelled(name, label, labelValue)
        text.append(value); text.append(byte: 0x0A)
    }

    private mutating func labelled(_ name: StaticString, _ label: StaticString, _ labelValue: String) {
        text.append(name); text.append(byte: 0x7B); text.append(label); text.append("=\"")
        appendEscapedLabelValue(labelValue)
        text.append("\"} ")
    }

    /// Label values escape backslash, double quote and newline (and nothing else).
    mutating func appendEscapedLabelValue(_ value: String) {
        if !containsByte(value, where: { $0 == 0x5C || $0 == 0x22 || $0 == 0x0A }) {
            text.append(value)  // the common case: one bulk copy
            return
        }
        for byte in value.utf8 {
            switch byte {
            case 0x5C: text.append("\\\\")
            case 0x22: text.append("\\\"")
            case 0x0A: text.append("\\n")
            default: text.append(byte: byte)
            }
        }
    }

    /// For samples with several labels: writes `name{a="x",b="y"} value`.
    public mutating func sample(_ name: StaticString, labels: KeyValuePairs<StaticString, String>, _ value: UInt64) {
        labelled(name, labels)
        text.append(value); text.append(byte: 0x0A)
    }

    public mutating func sample(_ name: StaticString, labels: KeyValuePairs<StaticString, String>, _ value: Double) {
        labelled(name, labels)
        text.append(value); text.append(byte: 0x0A)
    }

    /// Labels must be given in byte order of their names (the output stays sorted).
    private mutating func labelled(_ name: StaticString, _ labels: KeyValuePairs<StaticString, String>) {
        text.append(name); text.append(byte: 0x7B)
        var first = true
        for (label, labelValue) in labels {
            if !first { text.append(byte: 0x2C) }
            first = false
            text.append(label); text.append("=\""); appendEscapedLabelValue(labelValue); text.append(byte: 0x22)
        }
        text.append("} ")
    }
}
