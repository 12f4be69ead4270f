import CYAML

/// A YAML node as the configuration needs it: scalars, mappings and lists,
/// each with its line (1-based) for error messages.
indirect enum YAMLNode {
    case scalar(String, line: Int)
    case mapping([(key: YAMLNode, value: YAMLNode)], line: Int)
    case sequence([YAMLNode], line: Int)

    var line: Int {
        switch self {
        case .scalar(_, let line), .mapping(_, let line), .sequence(_, let line): line
        }
    }

    var scalar: String? {
        if case .scalar(let text, _) = self { text } else { nil }
    }

    /// "a value", "a mapping", "a list", for messages.
    var kind: String {
        switch self {
        case .scalar: "a value"
        case .mapping: "a mapping"
        case .sequence: "a list"
        }
    }
}

/// Why a YAML text was refused; `line` is 1-based when known.
struct YAMLError: Error, Equatable {
    var line: Int?
    var message: String
}

/// Reads one YAML document with libyaml's event parser (the C library Yams
/// wraps, without Foundation). Refuses what a configuration file never needs
/// and an attacker would: anchors and aliases (no billion-laughs expansion),
/// several documents, nesting deeper than `maximumDepth`, duplicate keys, and
/// texts over `maximumBytes`.
enum YAMLDocument {
    static let maximumBytes = 1 << 20
    static let maximumDepth = 32

    /// The document's root, or nil for an empty text.
    static func parse(_ text: String) throws(YAMLError) -> YAMLNode? {
        let bytes = Array(text.utf8)
        guard bytes.count <= maximumBytes else {
            throw YAMLError(line: nil, message: "larger than \(maximumBytes) bytes")
        }
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { throw YAMLError(line: nil, message: "out of memory") }
        defer { yaml_parser_delete(&parser) }
        return try bytes.withUnsafeBufferPointer { (buffer) throws(YAMLError) -> YAMLNode? in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var builder = Builder()
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else { throw syntaxError(parser) }
                defer { yaml_event_delete(&event) }
                if event.type == YAML_STREAM_END_EVENT { return builder.root }
                try builder.take(event)
            }
        }
    }

    private static func syntaxError(_ parser: yaml_parser_t) -> YAMLError {
        let problem = parser.problem.map { String(cString: $0) } ?? "unreadable"
        let context = parser.context.map { String(cString: $0) + ": " } ?? ""
        return YAMLError(line: Int(parser.problem_mark.line) + 1, message: "YAML syntax error: \(context)\(problem)")
    }

    /// Builds the tree from parser events with a stack of open collections.
    private struct Builder {
        private enum Open {
            case mapping([(key: YAMLNode, value: YAMLNode)], pendingKey: YAMLNode?, line: Int)
            case sequence([YAMLNode], line: Int)
        }

        private var stack: [Open] = []
        private(set) var root: YAMLNode?
        private var documents = 0

        mutating func take(_ event: yaml_event_t) throws(YAMLError) {
            let line = Int(event.start_mark.line) + 1
            switch event.type {
            case YAML_DOCUMENT_START_EVENT:
                documents += 1
                guard documents == 1 else { throw YAMLError(line: line, message: "more than one YAML document") }
            case YAML_ALIAS_EVENT:
                throw YAMLError(line: line, message: "aliases (*name) are not accepted in a configuration")
            case YAML_SCALAR_EVENT:
                try refuseAnchor(event.data.scalar.anchor, line)
                let scalar = event.data.scalar
                let text = scalar.value.map {
                    String(decoding: UnsafeBufferPointer(start: $0, count: scalar.length), as: UTF8.self)
                } ?? ""
                try add(.scalar(text, line: line))
            case YAML_MAPPING_START_EVENT:
                try refuseAnchor(event.data.mapping_start.anchor, line)
                try open(.mapping([], pendingKey: nil, line: line), line)
            case YAML_SEQUENCE_START_EVENT:
                try refuseAnchor(event.data.sequence_start.anchor, line)
                try open(.sequence([], line: line), line)
            case YAML_MAPPING_END_EVENT, YAML_SEQUENCE_END_EVENT:
                guard let closed = stack.popLast() else { return }
                switch closed {
                case .mapping(let pairs, _, let start): try add(.mapping(pairs, line: start))
                case .sequence(let items, let start): try add(.sequence(items, line: start))
                }
            default: break
            }
        }

        private func refuseAnchor(_ anchor: UnsafeMutablePointer<yaml_char_t>?, _ line: Int) throws(YAMLError) {
            guard anchor == nil else { throw YAMLError(line: line, message: "anchors (&name) are not accepted in a configuration") }
        }

        private mutating func open(_ collection: Open, _ line: Int) throws(YAMLError) {
            guard stack.count < YAMLDocument.maximumDepth else {
                throw YAMLError(line: line, message: "nested deeper than \(YAMLDocument.maximumDepth) levels")
            }
            stack.append(collection)
        }

        private mutating func add(_ node: YAMLNode) throws(YAMLError) {
            guard let top = stack.popLast() else { root = node; return }
            switch top {
            case .sequence(var items, let line):
                items.append(node)
                stack.append(.sequence(items, line: line))
            case .mapping(var pairs, let pendingKey, let line):
                guard let key = pendingKey else {
                    if let name = node.scalar, pairs.contains(where: { $0.key.scalar == name }) {
                        throw YAMLError(line: node.line, message: "duplicate key '\(name)'")
                    }
                    stack.append(.mapping(pairs, pendingKey: node, line: line))
                    return
                }
                pairs.append((key, node))
                stack.append(.mapping(pairs, pendingKey: nil, line: line))
            }
        }
    }
}
