/// Correctly rounded decimal → Double conversion for the run-file parser.
///
/// The reader must turn about a hundred million 17-digit numbers into Doubles in a couple of
/// seconds (1,000,000 step records in under 3 s). The C library's `strtod`, which `Double(String)`
/// wraps, takes roughly 100–200 ns per such number; this takes a few ns on the common path:
/// Clinger's fast path when the digits fit in 53 bits and the power of ten is exact, otherwise the
/// Eisel–Lemire algorithm (Lemire, "Number Parsing at a Gigabyte per Second", 2021; the table and
/// the steps are those of the fast_float library). Subnormal results and the rare ambiguous cases
/// return nil, and the caller falls back to `Double(String)`. Tests compare every path with
/// `Double(String)` bit for bit.
@usableFromInline
enum DecimalToDouble {
    /// Exact powers of ten representable as Double.
    @usableFromInline static let exactPowersOfTen: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ]

    /// The Double nearest to w × 10^q (ties to even), or nil when this fast method cannot decide.
    /// `w` holds at most 19 significant decimal digits.
    @inlinable
    static func value(w: UInt64, q: Int, negative: Bool) -> Double? {
        if w == 0 { return negative ? -0.0 : 0.0 }
        if w <= 1 << 53 && q >= -22 && q <= 22 {
            var d = Double(w)
            if q < 0 { d /= exactPowersOfTen[-q] } else { d *= exactPowersOfTen[q] }
            return negative ? -d : d
        }
        guard let d = eiselLemire(w: w, q: q) else { return nil }
        return negative ? -d : d
    }

    @inlinable
    static func eiselLemire(w: UInt64, q: Int) -> Double? {
        if q < -342 { return 0 }
        if q > 308 { return .infinity }
        let lz = w.leadingZeroBitCount
        let wn = w << UInt64(lz)
        let index = 2 * (q - powersOfFiveMinExponent)
        var (hi, lo) = wn.multipliedFullWidth(by: powersOfFive128[index])
        let precisionMask: UInt64 = UInt64.max >> 55
        if hi & precisionMask == precisionMask {
            let second = wn.multipliedFullWidth(by: powersOfFive128[index + 1]).high
            let (sum, overflow) = lo.addingReportingOverflow(second)
            lo = sum
            if overflow { hi &+= 1 }
        }
        if lo == UInt64.max && (q < -27 || q > 55) { return nil }
        let upperBit = Int(hi >> 63)
        let shift = upperBit + 64 - 52 - 3
        var mantissa = hi >> UInt64(shift)
        var power2 = (((152170 + 65536) * q) >> 16) + 63 + upperBit - lz + 1023
        if power2 <= 0 { return nil }  // subnormal: leave it to strtod
        if lo <= 1 && q >= -4 && q <= 23 && mantissa & 3 == 1 {
            if mantissa << UInt64(shift) == hi { mantissa &= ~1 }
        }
        mantissa += mantissa & 1
        mantissa >>= 1
        if mantissa >= 2 << 52 {
            mantissa = 1 << 52
            power2 += 1
        }
        mantissa &= ~(1 << 52)
        if power2 >= 0x7FF { return .infinity }
        return Double(bitPattern: UInt64(power2) << 52 | mantissa)
    }
}
