/// A compact JSON encoder that appends UTF-8 bytes to a buffer.
///
/// Hand-written rather than JSONEncoder because records are encoded on the trainer's side of the
/// bus at every step and a million of them are written by the benchmark: this writes keys in a
/// fixed order (stable, diffable lines), needs no Codable boxing, and formats numbers the way the
/// reader expects: integers as digits, Doubles as Swift's shortest round-trip representation
/// (`"\(double)"`, with a trailing ".0" dropped), NaN and infinities as `null`.
public struct JSONWriter {
    public var bytes: [UInt8] = []
    /// Bit i set: the container at depth i has no member yet.
    private var firstAtDepth: UInt64 = 0
    private var depth = 0

    public init(capacity: Int = 1024) {
        bytes.reserveCapacity(capacity)
    }

    public mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
        firstAtDepth = 0
        depth = 0
    }

    // MARK: - Containers

    public mutating func beginObject() {
        separator()
        bytes.append(0x7B)
        push()
    }

    public mutating func endObject() {
        depth -= 1
        bytes.append(0x7D)
    }

    public mutating func beginArray() {
        separator()
        bytes.append(0x5B)
        push()
    }

    public mutating func endArray() {
        depth -= 1
        bytes.append(0x5D)
    }

    private mutating func push() {
        precondition(depth < 63, "JSONWriter nests at most 63 levels")
        depth += 1
        firstAtDepth |= 1 << UInt64(depth)
    }

    /// Writes a comma unless this is the first value in the current container.
    private mutating func separator() {
        guard depth > 0 else { return }
        let bit: UInt64 = 1 << UInt64(depth)
        if firstAtDepth & bit != 0 { firstAtDepth &= ~bit } else { bytes.append(0x2C) }
    }

    /// Writes `"name":`; the next value call writes the member's value.
    public mutating func key(_ name: StaticString) {
        separator()
        bytes.append(0x22)
        bytes.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        bytes.append(0x22)
        bytes.append(0x3A)
        // The value that follows must not write a separator.
        firstAtDepth |= 1 << UInt64(depth)
    }

    /// The key of a member named by a string enum's case (a run-file table: `StepField.loss`
    /// writes `"loss":`); such keys must need no escaping.
    public mutating func key<Field: RawRepresentable>(_ field: Field) where Field.RawValue == String {
        separator()
        bytes.append(0x22)
        var name = field.rawValue
        name.withUTF8 { bytes.append(contentsOf: $0) }
        bytes.append(0x22)
        bytes.append(0x3A)
        firstAtDepth |= 1 << UInt64(depth)
    }

    /// A key that is not a literal (object members whose names are data, e.g. in the config).
    public mutating func key(_ name: String) {
        separator()
        writeString(name)
        bytes.append(0x3A)
        firstAtDepth |= 1 << UInt64(depth)
    }

    // MARK: - Values

    public mutating func null() {
        separator()
        append("null")
    }

    public mutating func bool(_ v: Bool) {
        separator()
        append(v ? "true" : "false")
    }

    public mutating func int(_ v: Int) {
        separator()
        appendDigits(UInt64(v.magnitude), negative: v < 0)
    }

    public mutating func uint64(_ v: UInt64) {
        separator()
        appendDigits(v, negative: false)
    }

    /// A Double in shortest round-trip form; NaN and ±infinity become `null`.
    public mutating func double(_ v: Double) {
        separator()
        guard v.isFinite else { append("null"); return }
        if v == v.rounded(.towardZero) && v.magnitude < 9.007_199_254_740_992e15 {
            if v == 0 && v.sign == .minus { append("-0"); return }
            appendDigits(UInt64(v.magnitude), negative: v < 0)
            return
        }
        var text = v.description
        text.withUTF8 { bytes.append(contentsOf: $0) }
    }

    /// A statistic at single precision: the shortest text that reads back as the same Float
    /// (9 significant digits at most, about half a Double's); NaN and ±infinity become `null`.
    /// For measurements whose precision is far below a Float's (energies, attention mass,
    /// oscillation, timings): it halves the run file. A value beyond Float's range keeps Double.
    public mutating func float(_ v: Double) {
        let f = Float(v)
        guard v.isFinite, f.isFinite else { double(v); return }
        separator()
        if f == f.rounded(.towardZero) && f.magnitude < 16_777_216 {
            if f == 0 && f.sign == .minus { append("-0"); return }
            appendDigits(UInt64(f.magnitude), negative: f < 0)
            return
        }
        var text = f.description
        text.withUTF8 { bytes.append(contentsOf: $0) }
    }

    public mutating func floats(_ values: [Double]) {
        beginArray()
        for v in values { float(v) }
        endArray()
    }

    public mutating func floatMatrix(_ rows: [[Double]]) {
        beginArray()
        for r in rows { floats(r) }
        endArray()
    }

    public mutating func optionalDouble(_ v: Double?) {
        if let v { double(v) } else { null() }
    }

    /// A string known to need no escaping (record type names, enum raw values).
    public mutating func literal(_ s: StaticString) {
        separator()
        bytes.append(0x22)
        append(s)
        bytes.append(0x22)
    }

    public mutating func string(_ s: String) {
        separator()
        writeString(s)
    }

    public mutating func doubles(_ values: [Double]) {
        beginArray()
        for v in values { double(v) }
        endArray()
    }

    /// Any `JSONValue` (the run configuration).
    public mutating func value(_ v: JSONValue) {
        switch v {
        case .null: null()
        case let .bool(b): bool(b)
        case let .number(d): double(d)
        case let .string(s): string(s)
        case let .array(items):
            beginArray()
            for item in items { value(item) }
            endArray()
        case let .object(members):
            beginObject()
            for (k, item) in members {
                key(k)
                value(item)
            }
            endObject()
        }
    }

    // MARK: - Bytes

    private mutating func append(_ s: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    private mutating func appendDigits(_ magnitude: UInt64, negative: Bool) {
        if negative { bytes.append(0x2D) }
        if magnitude < 10 { bytes.append(0x30 + UInt8(magnitude)); return }
        var tmp: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch, enough for 20 digits
        var n = 0
        var m = magnitude
        withUnsafeMutableBytes(of: &tmp) { buf in
            while m > 0 {
                buf[23 - n] = 0x30 + UInt8(m % 10)
                m /= 10
                n += 1
            }
            bytes.append(contentsOf: buf[(24 - n)...])
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    private mutating func writeString(_ s: String) {
        bytes.append(0x22)
        for c in s.utf8 {
            switch c {
            case 0x22: bytes.append(0x5C); bytes.append(0x22)
            case 0x5C: bytes.append(0x5C); bytes.append(0x5C)
            case 0x0A: bytes.append(0x5C); bytes.append(0x6E)
            case 0x0D: bytes.append(0x5C); bytes.append(0x72)
            case 0x09: bytes.append(0x5C); bytes.append(0x74)
            case 0..<0x20, 0x7F:
                bytes.append(contentsOf: [0x5C, 0x75, 0x30, 0x30])
                bytes.append(JSONWriter.hexDigits[Int(c >> 4)])
                bytes.append(JSONWriter.hexDigits[Int(c & 15)])
            default: bytes.append(c)
            }
        }
        bytes.append(0x22)
    }
}
