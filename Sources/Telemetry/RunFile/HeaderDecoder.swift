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
        func string(_ v: JSONValue?, _ name: String) throws -> String {
            guard case let .string(x)? = v else { throw Problem.invalid("header member \"\(name)\" must be a string") }
            return x
        }
        func number(_ v: JSONValue?, _ name: String) throws -> Double {
            guard case let .number(x)? = v else { throw Problem.invalid("header member \"\(name)\" must be a number") }
            return x
        }
        func int(_ v: JSONValue?, _ name: String) throws -> Int {
            let x = try number(v, name)
            guard x == x.rounded(), abs(x) < 9.0e15 else { throw Problem.invalid("header member \"\(name)\" must be an integer") }
            return Int(x)
        }
        func array(_ v: JSONValue?, _ name: String) throws -> [JSONValue] {
            guard case let .array(x)? = v else { throw Problem.invalid("header member \"\(name)\" must be an array") }
            return x
        }
        let config = root["config"] ?? .null
        guard case .object = config else { throw Problem.invalid("header member \"config\" must be an object") }
        var data: [DataSourceInfo] = []
        for item in try array(root["data"], "data") {
            data.append(DataSourceInfo(name: try string(item["name"], "data.name"), path: try string(item["path"], "data.path"),
                                       bytes: try int(item["bytes"], "data.bytes"), hash: try string(item["hash"], "data.hash")))
        }
        var axes: [AxisInfo] = []
        for item in try array(root["axes"], "axes") {
            let name = try string(item["axis"], "axes.axis")
            guard let axis = ScaleAxis(rawValue: name) else { throw Problem.invalid("unknown axis \"\(name)\" in the header") }
            var bands: [BandInfo] = []
            for b in try array(item["bands"], "axes.bands") {
                bands.append(BandInfo(name: try string(b["name"], "bands.name"), extent: try string(b["extent"], "bands.extent"),
                                      floor: try number(b["floor"], "bands.floor"), ceiling: try number(b["ceiling"], "bands.ceiling")))
            }
            let edges = try array(item["edges"], "axes.edges").map { try number($0, "axes.edges") }
            axes.append(AxisInfo(axis: axis, bands: bands, edges: edges))
        }
        var parent: RunParent?
        if let p = root["parent"] {
            parent = RunParent(run: try string(p["run"], "parent.run"), step: try int(p["step"], "parent.step"),
                               checkpoint: try string(p["checkpoint"], "parent.checkpoint"))
        }
        var header = RunHeader(
            schema: schema, runName: try string(root["run_name"], "run_name"), config: config, axes: axes,
            seed: seed, data: data, startTime: try number(root["start_time"], "start_time"),
            threads: try int(root["threads"], "threads"), parameters: try int(root["parameters"], "parameters"),
            totalSteps: try int(root["total_steps"], "total_steps"), preset: try string(root["preset"], "preset"))
        header.parent = parent
        return header
    }

    /// The seed is a full UInt64, which a Double cannot hold: read its digits exactly.
    static func seed(_ line: UnsafeBufferPointer<UInt8>) throws -> UInt64 {
        var s = JSONScanner(line)
        do {
            try s.beginObject()
            var first = true
            while let key = try s.nextMember(&first) {
                if key == JSONKey("seed") { return try s.uint64() }
                try s.skipValue(depth: 1)
            }
        } catch let e as JSONSyntaxError {
            throw Problem.invalid("header member \"seed\" must be a non-negative integer (\(e))")
        }
        throw Problem.invalid("header lacks member \"seed\"")
    }
}
