import Foundation

/// A syntax or shape error inside one JSON text; `offset` is the 0-based byte offset in it.
public struct JSONSyntaxError: Error, Equatable, CustomStringConvertible {
    public var offset: Int
    public var message: String

    public init(offset: Int, message: String) {
        self.offset = offset
        self.message = message
    }

    public var description: String { "column \(offset + 1): \(message)" }
}

/// A strict, allocation-light JSON reader over one line of bytes (RFC 8259, no extensions).
///
/// Why not Foundation's JSONDecoder: the run-file reader is meant to read and summarise 1,000,000
/// step records (2.5 GB at preset S) in about 3 s on this machine's two cores. Measured here on
/// 20,000 such step lines (release build), JSONDecoder with Codable structs decoded about 5,800
/// lines per CPU-second and JSONSerialization about 3,900: 3 to 4 minutes per million. This
/// scanner walks the bytes once, matches keys without building Strings, parses numbers with
/// `DecimalToDouble`, and lets the record decoder build records directly (docs/PERFORMANCE.md,
/// "Run file", has its figures).
///
/// The scanner is a cursor: callers ask for the value they expect next (`double()`, `int()`,
/// `string()`, `beginObject()`/`nextMember()` …) and it throws `JSONSyntaxError` on anything else.
/// Nesting is limited to `maxDepth` so hostile input cannot exhaust the stack.
public struct JSONScanner {
    @usableFromInline let base: UnsafePointer<UInt8>
    @usableFromInline let end: Int
    @usableFromInline var pos: Int
    public static let maxDepth = 64
    /// When false, `skipValue` passes over an array of numbers by its brackets alone, without
    /// checking each number's grammar: for a reader that builds nothing from those values and must
    /// be fast (`gradflow attach` reading in a long run; `RunFileReader.CatchUp`). Strings and
    /// objects are still checked, and so is everything a decoder builds.
    public var checksSkippedNumbers = true

    /// `bytes` must stay valid while the scanner is used.
    public init(_ bytes: UnsafeBufferPointer<UInt8>) {
        // An empty buffer may have a nil base; point at a static byte instead.
        self.base = bytes.baseAddress ?? JSONScanner.emptyByte
        self.end = bytes.count
        self.pos = 0
    }

    private static let emptyByte: UnsafePointer<UInt8> = {
        let p = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
        p.pointee = 0
        return UnsafePointer(p)
    }()

    public var offset: Int { pos }

    @inlinable
    func fail(_ message: String, at offset: Int? = nil) -> JSONSyntaxError {
        JSONSyntaxError(offset: offset ?? pos, message: message)
    }

    @inlinable
    mutating func skipSpace() {
        while pos < end {
            let c = base[pos]
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { pos += 1 } else { return }
        }
    }

    /// The next non-space byte without consuming it, or nil at the end.
    @inlinable
    public mutating func peek() -> UInt8? {
        skipSpace()
        return pos < end ? base[pos] : nil
    }

    @inlinable
    mutating func expect(_ c: UInt8, _ what: @autoclosure () -> String) throws {
        skipSpace()
        guard pos < end else { throw fail("expected \(what()), found end of line") }
        guard base[pos] == c else { throw fail("expected \(what()), found \(describe(base[pos]))") }
        pos += 1
    }

    @usableFromInline
    func describe(_ c: UInt8) -> String {
        if c >= 0x20 && c < 0x7F { return "'\(Character(Unicode.Scalar(c)))'" }
        return String(format: "byte 0x%02X", c)
    }

    /// After the whole value: only spaces may follow.
    public mutating func expectEnd() throws {
        skipSpace()
        if pos < end { throw fail("unexpected \(describe(base[pos])) after the end of the value") }
    }

    // MARK: - Objects and arrays

    /// Consumes `{`.
    @inlinable
    public mutating func beginObject() throws { try expect(0x7B, "'{'") }

    /// Moves to the next member of the object begun with `beginObject`: returns its key (the
    /// cursor then stands at the value) or nil after consuming `}`. `first` must start true.
    @inlinable
    public mutating func nextMember(_ first: inout Bool) throws -> JSONKey? {
        skipSpace()
        guard pos < end else { throw fail("expected '}' or a member, found end of line") }
        if base[pos] == 0x7D { pos += 1; return nil }
        if first {
            first = false
        } else {
            guard base[pos] == 0x2C else { throw fail("expected ',' or '}', found \(describe(base[pos]))") }
            pos += 1
            skipSpace()
        }
        let key = try keyString()
        try expect(0x3A, "':' after a key")
        return key
    }

    /// Consumes `[`.
    @inlinable
    public mutating func beginArray() throws { try expect(0x5B, "'['") }

    /// True when another element follows (the cursor stands at it); false after consuming `]`.
    @inlinable
    public mutating func nextElement(_ first: inout Bool) throws -> Bool {
        skipSpace()
        guard pos < end else { throw fail("expected ']' or a value, found end of line") }
        if base[pos] == 0x5D { pos += 1; return false }
        if first {
            first = false
        } else {
            guard base[pos] == 0x2C else { throw fail("expected ',' or ']', found \(describe(base[pos]))") }
            pos += 1
        }
        return true
    }

    /// A whole array of numbers (or nulls, read as NaN), appended to `out`: the hot loop of step
    /// records, with a fast path for the usual "," or "]" right after a number.
    public mutating func doubleArray(into out: inout [Double]) throws {
        try beginArray()
        skipSpace()
        if pos < end && base[pos] == 0x5D { pos += 1; return }
        while true {
            out.append(try double())
            if pos < end {
                let c = base[pos]
                if c == 0x2C { pos += 1; continue }
                if c == 0x5D { pos += 1; return }
            }
            skipSpace()
            guard pos < end else { throw fail("expected ',' or ']', found end of line") }
            let c = base[pos]
            pos += 1
            if c == 0x2C { continue }
            if c == 0x5D { return }
            pos -= 1
            throw fail("expected ',' or ']', found \(describe(c))")
        }
    }

    /// As `doubleArray`, for numbers stored at single precision: each is rounded to Float and
    /// widened back, so a value written by `JSONWriter.float` reads back exactly as it was.
    public mutating func floatArray(into out: inout [Double]) throws {
        let start = out.count
        try doubleArray(into: &out)
        for i in start..<out.count { out[i] = Double(Float(out[i])) }
    }

    // MARK: - Scalars

    /// A number written at single precision (`JSONWriter.float`), or null (NaN): the value rounded
    /// to Float and widened back.
    @inlinable
    public mutating func float() throws -> Double {
        Double(Float(try double()))
    }

    /// A JSON number, or `null` (read as NaN: the writer stores NaN and infinities as null).
    @inlinable
    public mutating func double() throws -> Double {
        skipSpace()
        guard pos < end else { throw fail("expected a number, found end of line") }
        if base[pos] == 0x6E { try literal("null"); return .nan }
        return try number()
    }

    /// A JSON number or null (→ nil).
    @inlinable
    public mutating func optionalDouble() throws -> Double? {
        skipSpace()
        if pos < end && base[pos] == 0x6E { try literal("null"); return nil }
        return try number()
    }

    @inlinable
    mutating func number() throws -> Double {
        // Locals instead of `self.pos`/`self.base`, so the loops run in registers.
        let base = self.base, end = self.end
        let start = pos
        var p = pos
        var negative = false
        if p < end && base[p] == 0x2D { negative = true; p += 1 }
        guard p < end, base[p] &- 0x30 < 10 else { throw fail("expected a number", at: start) }
        var w: UInt64 = 0
        var digits = 0          // significant digits accumulated in w
        var dropped = false     // more than 19 significant digits
        var scale = 0           // power of ten to apply to w
        if base[p] == 0x30 {
            p += 1
            if p < end && base[p] &- 0x30 < 10 { throw fail("leading zero in a number", at: start) }
        } else {
            while p < end {
                let d = base[p] &- 0x30
                if d >= 10 { break }
                if digits < 19 { w = w &* 10 &+ UInt64(d); digits += 1 } else { dropped = true; scale += 1 }
                p += 1
            }
        }
        if p < end && base[p] == 0x2E {
            p += 1
            let fracStart = p
            if w == 0 {
                // Leading zeros of a fraction are not significant.
                while p < end && base[p] == 0x30 { p += 1 }
                scale -= p - fracStart
            }
            // Eight digits at a time while they fit in w (most digits of a shortest-form Double
            // are in its fraction), then one at a time.
            while digits <= 11 && p + 8 <= end,
                  let eight = JSONScanner.eightDigits(UnsafeRawPointer(base + p).loadUnaligned(as: UInt64.self)) {
                w = w &* 100_000_000 &+ eight
                digits += 8
                scale -= 8
                p += 8
            }
            while p < end {
                let d = base[p] &- 0x30
                if d >= 10 { break }
                if digits < 19 {
                    w = w &* 10 &+ UInt64(d); digits += 1; scale -= 1
                } else {
                    dropped = true
                }
                p += 1
            }
            if p == fracStart { throw fail("expected a digit after '.'", at: p) }
        }
        if p < end && (base[p] | 0x20) == 0x65 {
            p += 1
            var expNegative = false
            if p < end && (base[p] == 0x2B || base[p] == 0x2D) { expNegative = base[p] == 0x2D; p += 1 }
            let expStart = p
            var e = 0
            while p < end {
                let d = base[p] &- 0x30
                if d >= 10 { break }
                if e < 100_000 { e = e * 10 + Int(d) }
                p += 1
            }
            if p == expStart { throw fail("expected a digit in the exponent", at: p) }
            scale += expNegative ? -e : e
        }
        pos = p
        if !dropped, let d = DecimalToDouble.value(w: w, q: scale, negative: negative) { return d }
        return slowNumber(from: start)
    }

    /// The value of eight ASCII digits loaded little-endian, or nil if any byte is not a digit
    /// (the SWAR method of fast_float).
    @inlinable
    static func eightDigits(_ raw: UInt64) -> UInt64? {
        let v = UInt64(littleEndian: raw)
        guard (v & 0xF0F0_F0F0_F0F0_F0F0) | (((v &+ 0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) >> 4) == 0x3333_3333_3333_3333 else { return nil }
        var x = v &- 0x3030_3030_3030_3030
        x = (x &* 10) &+ (x >> 8)
        let lo = (x & 0x0000_00FF_0000_00FF) &* (100 &+ (1_000_000 << 32))
        let hi = ((x >> 16) & 0x0000_00FF_0000_00FF) &* (1 &+ (10_000 << 32))
        return ((lo &+ hi) >> 32) & 0xFFFF_FFFF
    }

    @usableFromInline
    func slowNumber(from start: Int) -> Double {
        let text = String(decoding: UnsafeBufferPointer(start: base + start, count: pos - start), as: UTF8.self)
        return Double(text) ?? .nan
    }

    /// A JSON integer that fits in Int (no fraction, no exponent).
    @inlinable
    public mutating func int() throws -> Int {
        skipSpace()
        let start = pos
        var negative = false
        if pos < end && base[pos] == 0x2D { negative = true; pos += 1 }
        let magnitude = try unsignedDigits(start: start)
        guard magnitude <= UInt64(Int.max) + (negative ? 1 : 0) else { throw fail("integer out of range", at: start) }
        return negative ? Int(truncatingIfNeeded: 0 &- magnitude) : Int(magnitude)
    }

    /// A non-negative JSON integer that fits in UInt64.
    public mutating func uint64() throws -> UInt64 {
        skipSpace()
        return try unsignedDigits(start: pos)
    }

    @inlinable
    mutating func unsignedDigits(start: Int) throws -> UInt64 {
        guard pos < end, base[pos] &- 0x30 < 10 else { throw fail("expected an integer", at: start) }
        if base[pos] == 0x30 && pos + 1 < end && base[pos + 1] &- 0x30 < 10 {
            throw fail("leading zero in a number", at: start)
        }
        var v: UInt64 = 0
        while pos < end {
            let d = base[pos] &- 0x30
            if d >= 10 { break }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(d))
            if o1 || o2 { throw fail("integer out of range", at: start) }
            v = s
            pos += 1
        }
        if pos < end && (base[pos] == 0x2E || base[pos] | 0x20 == 0x65) {
            throw fail("expected an integer, found a fraction or exponent", at: start)
        }
        return v
    }

    /// An integer or null (→ nil).
    @inlinable
    public mutating func optionalInt() throws -> Int? {
        skipSpace()
        if pos < end && base[pos] == 0x6E { try literal("null"); return nil }
        return try int()
    }

    @inlinable
    public mutating func bool() throws -> Bool {
        skipSpace()
        if pos < end && base[pos] == 0x74 { try literal("true"); return true }
        if pos < end && base[pos] == 0x66 { try literal("false"); return false }
        throw fail("expected true or false")
    }

    @usableFromInline
    mutating func literal(_ word: StaticString) throws {
        let n = word.utf8CodeUnitCount
        let start = pos
        guard pos + n <= end, memcmp(base + pos, word.utf8Start, n) == 0 else {
            throw fail("expected \(word)", at: start)
        }
        pos += n
    }

    // MARK: - Strings

    /// A JSON string, unescaped and checked to be valid UTF-8.
    public mutating func string() throws -> String {
        skipSpace()
        guard pos < end, base[pos] == 0x22 else {
            throw fail(pos < end ? "expected a string, found \(describe(base[pos]))" : "expected a string, found end of line")
        }
        pos += 1
        let start = pos
        // Fast path: no escapes.
        while pos < end {
            let c = base[pos]
            if c == 0x22 {
                let raw = UnsafeBufferPointer(start: base + start, count: pos - start)
                pos += 1
                guard let s = String(validating: raw, as: UTF8.self) else { throw fail("invalid UTF-8 in a string", at: start) }
                return s
            }
            if c == 0x5C { break }
            if c < 0x20 { throw fail("control character in a string") }
            pos += 1
        }
        var bytes = Array(UnsafeBufferPointer(start: base + start, count: pos - start))
        while true {
            guard pos < end else { throw fail("unterminated string", at: start - 1) }
            let c = base[pos]
            if c == 0x22 { pos += 1; break }
            if c < 0x20 { throw fail("control character in a string") }
            if c != 0x5C { bytes.append(c); pos += 1; continue }
            pos += 1
            guard pos < end else { throw fail("unterminated escape") }
            let e = base[pos]
            pos += 1
            switch e {
            case 0x22, 0x5C, 0x2F: bytes.append(e)
            case 0x62: bytes.append(0x08)
            case 0x66: bytes.append(0x0C)
            case 0x6E: bytes.append(0x0A)
            case 0x72: bytes.append(0x0D)
            case 0x74: bytes.append(0x09)
            case 0x75:
                var scalar = try hex4()
                if scalar >= 0xD800 && scalar < 0xDC00 {
                    guard pos + 1 < end, base[pos] == 0x5C, base[pos + 1] == 0x75 else { throw fail("unpaired surrogate") }
                    pos += 2
                    let low = try hex4()
                    guard low >= 0xDC00 && low < 0xE000 else { throw fail("unpaired surrogate") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if scalar >= 0xDC00 && scalar < 0xE000 {
                    throw fail("unpaired surrogate")
                }
                guard let u = Unicode.Scalar(scalar) else { throw fail("invalid \\u escape") }
                bytes.append(contentsOf: Array(String(Character(u)).utf8))
            default:
                throw fail("invalid escape '\\\(Character(Unicode.Scalar(e)))'", at: pos - 2)
            }
        }
        guard let s = String(validating: bytes, as: UTF8.self) else { throw fail("invalid UTF-8 in a string", at: start) }
        return s
    }

    /// Checks and passes over a string without building it (unknown members, the `type` member
    /// the decoder has already read).
    public mutating func skipString() throws {
        skipSpace()
        guard pos < end, base[pos] == 0x22 else {
            throw fail(pos < end ? "expected a string, found \(describe(base[pos]))" : "expected a string, found end of line")
        }
        let start = pos
        pos += 1
        while pos < end {
            let c = base[pos]
            if c == 0x22 { pos += 1; return }
            if c == 0x5C || c < 0x20 || c >= 0x80 {
                // Escapes, control or non-ASCII bytes: the full check.
                pos = start
                _ = try string()
                return
            }
            pos += 1
        }
        throw fail("unterminated string", at: start)
    }

    mutating func hex4() throws -> UInt32 {
        guard pos + 4 <= end else { throw fail("expected 4 hex digits after \\u") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = base[pos]
            let d: UInt8
            switch c {
            case 0x30...0x39: d = c - 0x30
            case 0x41...0x46: d = c - 0x41 + 10
            case 0x61...0x66: d = c - 0x61 + 10
            default: throw fail("expected a hex digit after \\u")
            }
            v = v << 4 | UInt32(d)
            pos += 1
        }
        return v
    }

    /// An object key, packed for fast comparison without allocating.
    @inlinable
    mutating func keyString() throws -> JSONKey {
        guard pos < end, base[pos] == 0x22 else {
            throw fail(pos < end ? "expected a key string, found \(describe(base[pos]))" : "expected a key, found end of line")
        }
        let start = pos + 1
        var p = start
        while p < end {
            let c = base[p]
            if c == 0x22 {
                pos = p + 1
                return JSONKey(bytes: UnsafeBufferPointer(start: base + start, count: p - start))
            }
            if c == 0x5C || c < 0x20 || c >= 0x80 { break }
            p += 1
        }
        // Escapes, control or non-ASCII bytes: decode properly (and validate).
        let s = try string()
        var copy = s
        return copy.withUTF8 { JSONKey(bytes: $0) }
    }

    // MARK: - Generic values

    /// Skips one value of any kind, checking its syntax without building anything: the path a
    /// summary takes over a step record's statistics, so arrays of numbers get a tight loop.
    public mutating func skipValue(depth: Int = 0) throws {
        guard depth < JSONScanner.maxDepth else { throw fail("nesting deeper than \(JSONScanner.maxDepth)") }
        skipSpace()
        guard pos < end else { throw fail("expected a value, found end of line") }
        switch base[pos] {
        case 0x5B:
            pos += 1
            if !checksSkippedNumbers && skipArrayByBrackets() { return }
            var took = false
            if skipNumbersToClose(took: &took) { return }
            // The general path, from the start of the element the fast loop did not take.
            skipSpace()
            if !took && pos < end && base[pos] == 0x5D { pos += 1; return }
            while true {
                skipSpace()
                guard pos < end else { throw fail("expected a value, found end of line") }
                let c = base[pos]
                if c == 0x2D || c &- 0x30 < 10 { try skipNumber() } else { try skipValue(depth: depth + 1) }
                skipSpace()
                guard pos < end else { throw fail("expected ',' or ']', found end of line") }
                let next = base[pos]
                pos += 1
                if next == 0x2C { continue }
                if next == 0x5D { return }
                pos -= 1
                throw fail("expected ',' or ']', found \(describe(next))")
            }
        case 0x7B:
            pos += 1
            var first = true
            while true {
                skipSpace()
                guard pos < end else { throw fail("expected '}' or a member, found end of line") }
                if base[pos] == 0x7D { pos += 1; return }
                if first { first = false } else {
                    guard base[pos] == 0x2C else { throw fail("expected ',' or '}', found \(describe(base[pos]))") }
                    pos += 1
                    skipSpace()
                }
                guard pos < end, base[pos] == 0x22 else {
                    throw fail(pos < end ? "expected a key string, found \(describe(base[pos]))" : "expected a key string, found end of line")
                }
                try skipString()
                try expect(0x3A, "':' after a key")
                try skipValue(depth: depth + 1)
            }
        case 0x22:
            try skipString()
        case 0x74, 0x66:
            _ = try bool()
        case 0x6E:
            try literal("null")
        default:
            try skipNumber()
        }
    }

    /// Reads one value of any kind as a `JSONValue`.
    public mutating func value(depth: Int = 0) throws -> JSONValue {
        guard depth < JSONScanner.maxDepth else { throw fail("nesting deeper than \(JSONScanner.maxDepth)") }
        guard let c = peek() else { throw fail("expected a value, found end of line") }
        switch c {
        case 0x7B:
            pos += 1
            var members: [(String, JSONValue)] = []
            var first = true
            while true {
                skipSpace()
                guard pos < end else { throw fail("expected '}' or a member, found end of line") }
                if base[pos] == 0x7D { pos += 1; break }
                if first { first = false } else {
                    guard base[pos] == 0x2C else { throw fail("expected ',' or '}', found \(describe(base[pos]))") }
                    pos += 1
                }
                let key = try string()
                try expect(0x3A, "':' after a key")
                members.append((key, try value(depth: depth + 1)))
            }
            return .object(members)
        case 0x5B:
            pos += 1
            var items: [JSONValue] = []
            var first = true
            while try nextElement(&first) { items.append(try value(depth: depth + 1)) }
            return .array(items)
        case 0x22:
            return .string(try string())
        case 0x74, 0x66:
            return .bool(try bool())
        case 0x6E:
            try literal("null")
            return .null
        default:
            return .number(try number())
        }
    }

    /// The tight loop for the usual statistic array (numbers separated by commas, no spaces),
    /// from just after its '[': checks each number's grammar and passes the closing ']' (true).
    /// At anything else it stops at the start of the element it did not take (false); `took`
    /// says whether elements came before it.
    @inline(__always)
    mutating func skipNumbersToClose(took: inout Bool) -> Bool {
        let b = base, e = end
        var p = pos
        while p < e {
            let start = p
            if b[p] == 0x2D { p += 1 }
            guard p < e else { break }
            let lead = b[p]
            if lead == 0x30 {
                p += 1
            } else if lead &- 0x31 < 9 {
                p = JSONScanner.skipDigits(b, p + 1, e)
            } else {
                p = start
                break
            }
            if p < e && b[p] == 0x2E {
                p += 1
                let digits = p
                p = JSONScanner.skipDigits(b, p, e)
                if p == digits { p = start; break }
            }
            if p < e && (b[p] | 0x20) == 0x65 {
                p += 1
                if p < e && (b[p] == 0x2B || b[p] == 0x2D) { p += 1 }
                let digits = p
                p = JSONScanner.skipDigits(b, p, e)
                if p == digits { p = start; break }
            }
            guard p < e else { p = start; break }
            let next = b[p]
            if next == 0x2C { p += 1; took = true; continue }
            if next == 0x5D { pos = p + 1; return true }
            p = start
            break
        }
        pos = p
        return false
    }

    /// From just after an array's '[': passes its closing ']' by counting brackets, eight bytes at a
    /// time (true). False, with the position unchanged, when a string or an object comes first or
    /// the line ends: the checked path takes over and says what is wrong.
    mutating func skipArrayByBrackets() -> Bool {
        let b = base, e = end
        var p = pos
        var depth = 1
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        // High bit of the first byte of `v` that is zero (later bytes may be flagged wrongly).
        @inline(__always) func zeroByte(_ v: UInt64) -> UInt64 { (v &- ones) & ~v & highs }
        while p < e {
            if p + 8 <= e {
                let w = UInt64(littleEndian: UnsafeRawPointer(b + p).loadUnaligned(as: UInt64.self))
                let folded = w | 0x2020_2020_2020_2020  // '[' and '{' → '{', ']' and '}' → '}'
                let hits = zeroByte(folded ^ 0x7B7B_7B7B_7B7B_7B7B) | zeroByte(folded ^ 0x7D7D_7D7D_7D7D_7D7D)
                    | zeroByte(w ^ 0x2222_2222_2222_2222)
                if hits == 0 { p += 8; continue }
                p += hits.trailingZeroBitCount >> 3
            }
            switch b[p] {
            case 0x5B: depth += 1
            case 0x5D:
                depth -= 1
                if depth == 0 { pos = p + 1; return true }
            case 0x22, 0x7B, 0x7D: return false
            default: break
            }
            p += 1
        }
        return false
    }

    /// The index of the first byte at or after `p` (before `e`) that is not an ASCII digit, eight
    /// bytes at a time: a digit run ends without a branch per byte.
    @inline(__always)
    static func skipDigits(_ b: UnsafePointer<UInt8>, _ start: Int, _ e: Int) -> Int {
        var p = start
        while p + 8 <= e {
            let word = UInt64(littleEndian: UnsafeRawPointer(b + p).loadUnaligned(as: UInt64.self))
            let a = word ^ 0x3030_3030_3030_3030  // digits become bytes 0...9
            // High bit of each byte set where a > 9 (no carry between bytes: a & 0x7F + 0x76 ≤ 0xF5).
            let notDigit = (((a & 0x7F7F_7F7F_7F7F_7F7F) &+ 0x7676_7676_7676_7676) | a) & 0x8080_8080_8080_8080
            if notDigit != 0 { return p + notDigit.trailingZeroBitCount >> 3 }
            p += 8
        }
        while p < e && b[p] &- 0x30 < 10 { p += 1 }
        return p
    }

    /// Checks and passes over a number without converting it.
    public mutating func skipNumber() throws {
        skipSpace()
        let start = pos
        var p = pos
        if p < end && base[p] == 0x2D { p += 1 }
        guard p < end, base[p] &- 0x30 < 10 else { throw fail("expected a number", at: start) }
        if base[p] == 0x30 {
            p += 1
            if p < end && base[p] &- 0x30 < 10 { throw fail("leading zero in a number", at: start) }
        } else {
            while p < end && base[p] &- 0x30 < 10 { p += 1 }
        }
        if p < end && base[p] == 0x2E {
            p += 1
            let fracStart = p
            while p < end && base[p] &- 0x30 < 10 { p += 1 }
            if p == fracStart { throw fail("expected a digit after '.'", at: p) }
        }
        if p < end && (base[p] | 0x20) == 0x65 {
            p += 1
            if p < end && (base[p] == 0x2B || base[p] == 0x2D) { p += 1 }
            let expStart = p
            while p < end && base[p] &- 0x30 < 10 { p += 1 }
            if p == expStart { throw fail("expected a digit in the exponent", at: p) }
        }
        pos = p
    }
}

/// An object key packed into three words (keys up to 24 bytes; longer keys never equal a
/// known key), so decoders compare keys with a few integer compares instead of building Strings.
public struct JSONKey: Equatable, Hashable, CustomStringConvertible {
    @usableFromInline var a: UInt64 = 0, b: UInt64 = 0, c: UInt64 = 0
    @usableFromInline var count: Int

    /// The key spelled by `bytes` (the UTF-8 of an unescaped key).
    @inlinable
    public init(bytes: UnsafeBufferPointer<UInt8>) {
        count = bytes.count
        guard count <= 24 else {
            // Marked as long, so it matches nothing known.
            count = 25 + bytes.count
            return
        }
        var words: (UInt64, UInt64, UInt64) = (0, 0, 0)
        if let source = bytes.baseAddress, count > 0 {
            withUnsafeMutableBytes(of: &words) { $0.baseAddress!.copyMemory(from: source, byteCount: count) }
        }
        a = UInt64(littleEndian: words.0)
        b = UInt64(littleEndian: words.1)
        c = UInt64(littleEndian: words.2)
    }

    @inlinable
    init(a: UInt64, b: UInt64, c: UInt64, count: Int) {
        self.a = a
        self.b = b
        self.c = c
        self.count = count
    }

    /// Inlinable, so that a decoder in another module compares keys in registers.
    @inlinable
    public static func == (lhs: JSONKey, rhs: JSONKey) -> Bool {
        lhs.a == rhs.a && lhs.b == rhs.b && lhs.c == rhs.c && lhs.count == rhs.count
    }

    /// A key from a literal; keys of the format are at most 24 bytes.
    public init(_ s: StaticString) {
        precondition(s.utf8CodeUnitCount <= 24, "run-file keys are at most 24 bytes")
        self.init(bytes: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    public var description: String {
        guard count <= 24 else { return "<\(count - 25)-byte key>" }
        var bytes: [UInt8] = []
        for i in 0..<count {
            let w = i < 8 ? a : (i < 16 ? b : c)
            bytes.append(UInt8(truncatingIfNeeded: w >> UInt64((i & 7) * 8)))
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
