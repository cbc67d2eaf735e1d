import JSONCore
import Refinement

/// Reads and checks a run file's first line.
///
/// The header is one line per run, so it goes through the generic `JSONValue` tree: that lets the
/// schema be checked before anything else, whatever order the members come in.
public enum HeaderDecoder {
    /// Why a first line is not a usable header.
    public enum Problem: Error, Equatable {
        /// Not JSON, not an object, or no `schema` of the form "gradflow.run/N[.M]".
        case notARunFile(String)
        /// A run file of a major version this reader does not know.
        case unsupportedSchema(String)
        /// A run file header with a missing or malformed member.
        case invalid(String)
    }

    /// The major version this reader understands.
    public static let supportedMajor = 1

    /// Parses "gradflow.run/MAJOR[.MINOR]"; nil when `schema` is not of that form.
    public static func version(of schema: String) -> (major: Int, minor: Int)? {
        let prefix = "gradflow.run/"
        guard schema.hasPrefix(prefix) else { return nil }
        let parts = schema.dropFirst(prefix.count).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2,
              let major = Int(parts[0]), major >= 0,
              let minor = parts.count == 2 ? Int(parts[1]) : 0, minor >= 0 else { return nil }
        return (major, minor)
    }

    public static func header(_ line: UnsafeBufferPointer<UInt8>) throws -> RunHeader {
        var s = JSONScanner(line)
        let root: JSONValue
        do {
            guard s.peek() == 0x7B else { throw Problem.notARunFile("the first line is not a JSON object") }
            root = try s.value()
            try s.expectEnd()
        } catch let e as JSONSyntaxError {
            throw Problem.notARunFile("the first line is not valid JSON (\(e))")
        }
        guard case let .string(schema)? = root["schema"] else {
            throw Problem.notARunFile("the first line has no \"schema\" member")
        }
        guard let v = version(of: schema) else {
            throw Problem.notARunFile("schema \"\(schema)\" is not a gradflow run schema")
        }
        guard v.major == supportedMajor else {
            throw Problem.unsupportedSchema("schema \"\(schema)\" has major version \(v.major); this reader understands \(supportedMajor).x only")
        }
        return try fields(root, schema: schema, seed: try seed(line))
    }

    public static func header(_ bytes: [UInt8]) throws -> RunHeader {
        try bytes.withUnsafeBufferPointer { try header($0) }
    }

    static func fields(_ root: JSONValue, schema: String, seed: UInt64) throws -> RunHeader {
        typealias Member = (value: JSONValue?, name: String)
        func string(_ m: Member) throws -> String {
            guard case let .string(x)? = m.value else { throw Problem.invalid("header member \"\(m.name)\" must be a string") }
            return x
        }
        func number(_ m: Member) throws -> Double {
            guard case let .number(x)? = m.value else { throw Problem.invalid("header member \"\(m.name)\" must be a number") }
            return x
        }
        func int(_ m: Member) throws -> Int {
            let x = try number(m)
            guard x == x.rounded(), abs(x) < 9.0e15 else { throw Problem.invalid("header member \"\(m.name)\" must be an integer") }
            return Int(x)
        }
        func array(_ m: Member) throws -> [JSONValue] {
            guard case let .array(x)? = m.value else { throw Problem.invalid("header member \"\(m.name)\" must be an array") }
            return x
        }
        /// The members of an object that `table` lists, after checking the required ones are there.
        func members<F>(_ object: JSONValue, _ table: FieldTable<F>) throws -> (F) -> Member {
            guard case .object = object else { throw Problem.invalid("header member \"\(table.object)\" must hold objects") }
            for name in table.required where object[name] == nil {
                throw Problem.invalid(table.object == "header" ? "header lacks member \"\(name)\"" : "header member \"\(table.object)\" lacks \"\(name)\"")
            }
            return { field in
                (object[field.rawValue], table.object == "header" ? field.rawValue : "\(table.object).\(field.rawValue)")
            }
        }
        let header = try members(root, HeaderField.table)
        let config = header(.config).value ?? .null
        guard case .object = config else { throw Problem.invalid("header member \"config\" must be an object") }
        var data: [DataSourceInfo] = []
        for item in try array(header(.data)) {
            let d = try members(item, DataSourceField.table)
            data.append(DataSourceInfo(name: try string(d(.name)), path: try string(d(.path)),
                                       bytes: try int(d(.bytes)), hash: try string(d(.hash))))
        }
        var axes: [AxisInfo] = []
        for item in try array(header(.axes)) {
            let a = try members(item, AxisInfoField.table)
            let name = try string(a(.axis))
            guard let axis = ScaleAxis(rawValue: name) else { throw Problem.invalid("unknown axis \"\(name)\" in the header") }
            var bands: [BandInfo] = []
            for band in try array(a(.bands)) {
                let b = try members(band, BandInfoField.table)
                bands.append(BandInfo(name: try string(b(.name)), extent: try string(b(.extent)),
                                      floor: try number(b(.floor)), ceiling: try number(b(.ceiling))))
            }
            let edges = try array(a(.edges)).map { try number((value: $0, name: "axes.edges")) }
            axes.append(AxisInfo(axis: axis, bands: bands, edges: edges))
        }
        var parent: RunParent?
        if header(.parent).value != nil {
            let p = try members(header(.parent).value!, ParentField.table)
            parent = RunParent(run: try string(p(.run)), step: try int(p(.step)), checkpoint: try string(p(.checkpoint)))
        }
        var runHeader = RunHeader(
            schema: schema, runName: try string(header(.runName)), config: config, axes: axes,
            seed: seed, data: data, startTime: try number(header(.startTime)),
            threads: try int(header(.threads)), parameters: try int(header(.parameters)),
            totalSteps: try int(header(.totalSteps)), preset: try string(header(.preset)),
            ranks: header(.ranks).value == nil ? 1 : try int(header(.ranks)))
        runHeader.parent = parent
        if header(.runId).value != nil { runHeader.runId = try string(header(.runId)) }
        return runHeader
    }

    /// The seed is a full UInt64, which a Double cannot hold: read its digits exactly.
    static func seed(_ line: UnsafeBufferPointer<UInt8>) throws -> UInt64 {
        var s = JSONScanner(line)
        do {
            try s.beginObject()
            var first = true
            while let key = try s.nextMember(&first) {
                if key == HeaderField.table.key(.seed) { return try s.uint64() }
                try s.skipValue(depth: 1)
            }
        } catch let e as JSONSyntaxError {
            throw Problem.invalid("header member \"seed\" must be a non-negative integer (\(e))")
        }
        throw Problem.invalid("header lacks member \"seed\"")
    }
}
