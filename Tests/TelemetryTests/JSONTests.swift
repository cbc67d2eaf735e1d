import Foundation
import Testing
@testable import JSONCore
import RunFormat

private func parseNumber(_ text: String) throws -> Double {
    var bytes = Array(text.utf8)
    return try bytes.withUnsafeMutableBufferPointer { buf in
        var s = JSONScanner(UnsafeBufferPointer(buf))
        let d = try s.double()
        try s.expectEnd()
        return d
    }
}

private func parseValue(_ text: String) throws -> JSONValue {
    let bytes = Array(text.utf8)
    return try bytes.withUnsafeBufferPointer { buf in
        var s = JSONScanner(buf)
        let v = try s.value()
        try s.expectEnd()
        return v
    }
}

private func encode(_ v: JSONValue) -> String {
    var w = JSONWriter()
    w.value(v)
    return String(decoding: w.bytes, as: UTF8.self)
}

@Suite("JSON numbers")
struct JSONNumberTests {
    @Test("random doubles round-trip bit for bit through the writer and the fast parser")
    func randomRoundTrip() throws {
        var rng = TestRNG(seed: 42)
        var checked = 0
        for i in 0..<300_000 {
            let d: Double
            switch i % 3 {
            case 0: d = Double(bitPattern: rng.next())                          // any exponent
            case 1: d = Double(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())))  // float-derived
            default: d = Double.random(in: -1e4...1e4, using: &rng)
            }
            guard d.isFinite else { continue }
            var w = JSONWriter()
            w.double(d)
            let text = String(decoding: w.bytes, as: UTF8.self)
            let back = try parseNumber(text)
            #expect(back.bitPattern == d.bitPattern, "\(text) read back as \(back)")
            checked += 1
        }
        #expect(checked > 150_000)
    }

    @Test("the fast parser agrees with Double(String) on hand-picked and random decimal strings")
    func agreesWithStrtod() throws {
        var cases = ["0", "-0", "1", "0.1", "0.3", "1e23", "8.98846567431158e307", "1.7976931348623157e308",
                     "2.2250738585072014e-308", "2.2250738585072011e-308", "4.9e-324", "5e-324", "2.4703282292062327e-324",
                     "1e-400", "1e400", "9007199254740993", "9007199254740992", "123456789012345678901234567890",
                     "0.000000000000000000000000000001", "1.00000000000000011102230246251565404236316680908203125",
                     "7.2057594037927933e16", "3.0000000000000004", "1E5", "1e+5", "-1.5e-5", "100000000000000000000000",
                     "0.1000000000000000055511151231257827021181583404541015625", "2.5e-3", "1.7976931348623158e308"]
        var rng = TestRNG(seed: 7)
        for _ in 0..<100_000 {
            let digits = Int.random(in: 1...19, using: &rng)
            var m = ""
            for k in 0..<digits { m.append(Character(String(k == 0 ? Int.random(in: 1...9, using: &rng) : Int.random(in: 0...9, using: &rng)))) }
            cases.append("\(m)e\(Int.random(in: -340...310, using: &rng))")
        }
        for text in cases {
            let expected = Double(text)!
            let got = try parseNumber(text)
            #expect(got.bitPattern == expected.bitPattern, "\(text): got \(got), Double(String) says \(expected)")
        }
    }

    @Test("NaN and infinities are written as null and null reads as NaN")
    func nonFinite() throws {
        for d in [Double.nan, .infinity, -.infinity] {
            var w = JSONWriter()
            w.double(d)
            #expect(String(decoding: w.bytes, as: UTF8.self) == "null")
        }
        #expect(try parseNumber("null").isNaN)
    }

    @Test("integral doubles are written without a fraction")
    func integral() {
        var w = JSONWriter()
        w.beginArray(); w.double(85); w.double(-3); w.double(-0.0); w.double(1e20); w.double(0.5); w.endArray()
        #expect(String(decoding: w.bytes, as: UTF8.self) == "[85,-3,-0,1e+20,0.5]")
    }

    @Test("malformed numbers are refused", arguments: ["01", "-", "1.", ".5", "1e", "1e+", "+1", "0x10", "--1", "1.e5", "NaN", "Infinity"])
    func malformed(_ text: String) {
        #expect(throws: JSONSyntaxError.self) { try parseNumber(text) }
    }
}

@Suite("JSON scanner and writer")
struct JSONScannerTests {
    @Test("values round-trip through the writer and the scanner")
    func roundTrip() throws {
        let v = Fixtures.header().config
        let text = encode(v)
        #expect(try parseValue(text) == v)
        #expect(text.contains("\\\"") && text.contains("\\n") && text.contains("é"))
    }

    @Test("escapes and surrogate pairs decode")
    func escapes() throws {
        #expect(try parseValue(#""a\u00e9\ud83d\ude00\/\b\f\r\t""#) == .string("aé😀/\u{8}\u{c}\r\t"))
        let control = encode(.string("\u{1}\u{7f}"))
        #expect(control == #""\u0001\u007f""#)
        #expect(try parseValue(control) == .string("\u{1}\u{7f}"))
    }

    @Test("invalid JSON is refused with a position", arguments: [
        "{", "{\"a\":1,}", "[1,2,]", "{\"a\" 1}", "{a:1}", "\"abc", "\"a\tb\"", "\"\\x\"", "\"\\ud800\"", "\"\\udc00x\"",
        "tru", "nul", "[1 2]", "{\"a\":1}}", "'a'", "[", "\u{1}", "{\"a\":1,\"b\"}",
    ])
    func invalid(_ text: String) {
        #expect(throws: JSONSyntaxError.self) { try parseValue(text) }
    }

    @Test("skipping checks the same syntax as parsing, with and without the number-array fast path", arguments: [
        "[]", "[ ]", "[1]", "[1,2.5,-3e-09,0.25]", "[1 ,2]", "[1,2 ]", "[ 1,2]", "[[1,2],[3]]", "[[],[[]]]",
        "[1,\"a\",{\"k\":[0]},true,null]", "{\"a\":[1.5e+3,-0],\"b\":{}}", "[0,-0.0,1E5]",
        "[1,]", "[,1]", "[01]", "[1,01]", "[-]", "[1.]", "[1e]", "[1,2", "[1 2]", "[1,.5]", "[1,+1]", "[1,2}", "[1]]",
        "[1,2,\"x]", "[[1,2],[3,]]", "{\"a\":[1,2,]}", "{\"a\":[1e5.2]}",
    ])
    func skipMatchesParse(_ text: String) {
        let bytes = Array(text.utf8)
        let parsed = (try? parseValue(text)) != nil
        bytes.withUnsafeBufferPointer { buffer in
            var s = JSONScanner(buffer)
            let skipped = (try? s.skipValue()) != nil && (try? s.expectEnd()) != nil
            #expect(skipped == parsed, "\(text): skip \(skipped), parse \(parsed)")
        }
    }

    @Test("the eight-bytes-at-a-time digit run agrees with a byte-by-byte scan for every byte value")
    func digitRuns() {
        for stop in 0...255 {
            for length in 0..<20 {
                var bytes = [UInt8](repeating: UInt8(ascii: "7"), count: 24)
                if length < bytes.count { bytes[length] = UInt8(stop) }
                bytes.withUnsafeBufferPointer { b in
                    var expected = 0
                    while expected < b.count && b[expected] &- 0x30 < 10 { expected += 1 }
                    #expect(JSONScanner.skipDigits(b.baseAddress!, 0, b.count) == expected, "byte \(stop) at \(length)")
                }
            }
        }
    }

    @Test("invalid UTF-8 inside a string is refused")
    func invalidUTF8() {
        let bytes: [UInt8] = [0x22, 0x61, 0xC3, 0x28, 0x22]
        #expect(throws: JSONSyntaxError.self) {
            try bytes.withUnsafeBufferPointer { buf in var s = JSONScanner(buf); _ = try s.string() }
        }
    }

    @Test("nesting deeper than the limit is refused, not a stack overflow")
    func depth() {
        let text = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONSyntaxError.self) { try parseValue(text) }
        let ok = String(repeating: "[", count: 60) + String(repeating: "]", count: 60)
        #expect((try? parseValue(ok)) != nil)
    }

    @Test("integers: exact, range-checked, no fractions where an integer is expected")
    func integers() throws {
        func int(_ t: String) throws -> Int {
            let b = Array(t.utf8)
            return try b.withUnsafeBufferPointer { var s = JSONScanner($0); return try s.int() }
        }
        #expect(try int("9223372036854775807") == Int.max)
        #expect(try int("-9223372036854775808") == Int.min)
        #expect(throws: JSONSyntaxError.self) { try int("9223372036854775808") }
        #expect(throws: JSONSyntaxError.self) { try int("1.5") }
        #expect(throws: JSONSyntaxError.self) { try int("1e3") }
    }

    @Test("number arrays: the fast path accepts spaces and nulls and refuses malformed arrays")
    func numberArrays() throws {
        func parse(_ t: String) throws -> [Double] {
            let b = Array(t.utf8)
            return try b.withUnsafeBufferPointer { buf in
                var s = JSONScanner(buf)
                var out: [Double] = []
                try s.doubleArray(into: &out)
                try s.expectEnd()
                return out
            }
        }
        #expect(try parse("[]") == [])
        #expect(try parse("[ ]") == [])
        #expect(try parse("[1,2.5, -3e2 ,4]") == [1, 2.5, -300, 4])
        #expect(try parse("[null,1]")[0].isNaN)
        for bad in ["[1,]", "[,1]", "[1 2]", "[1", "[1,2", "[1;2]", "1,2]", "[01]"] {
            #expect(throws: JSONSyntaxError.self, "\(bad)") { try parse(bad) }
        }
    }

    @Test("keys longer than 24 bytes never match a known key")
    func longKeys() {
        let a = Array("attention_mass_by_head_and_more".utf8)
        let k = a.withUnsafeBufferPointer { JSONKey(bytes: $0) }
        #expect(k != JSONKey("attention_mass_by_head"))
    }
}
