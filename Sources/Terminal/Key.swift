import CNCurses

/// A key press (or a resize), decoded from the terminal.
public enum Key: Hashable, Sendable {
    case character(Character)
    case up, down, left, right
    case shiftUp, shiftDown, shiftLeft, shiftRight
    case tab, backTab, enter, escape, backspace
    case home, end, pageUp, pageDown
    case function(Int)
    /// Ctrl plus a letter (lower-case), other than Tab/Enter.
    case control(Character)
    /// The terminal changed size.
    case resize
    /// A key code this decoder does not name.
    case unknown(Int)
}

/// Turns ncurses' `wget_wch` results into `Key`s. Pure, so it is tested without a terminal.
public enum KeyDecoder {
    /// `code` is the wide character or key code; `isKeyCode` is true when wget_wch said KEY_CODE_YES.
    public static func decode(code: Int, isKeyCode: Bool) -> Key {
        if isKeyCode {
            switch Int32(code) {
            case gf_key_up(): return .up
            case gf_key_down(): return .down
            case gf_key_left(): return .left
            case gf_key_right(): return .right
            case gf_key_sr(): return .shiftUp
            case gf_key_sf(): return .shiftDown
            case gf_key_sleft(): return .shiftLeft
            case gf_key_sright(): return .shiftRight
            case gf_key_btab(): return .backTab
            case gf_key_enter(): return .enter
            case gf_key_backspace(): return .backspace
            case gf_key_home(): return .home
            case gf_key_end(): return .end
            case gf_key_ppage(): return .pageUp
            case gf_key_npage(): return .pageDown
            case gf_key_resize(): return .resize
            default:
                for n in 1...12 where Int32(code) == gf_key_f(Int32(n)) { return .function(n) }
                return .unknown(code)
            }
        }
        switch code {
        case 9: return .tab
        case 10, 13: return .enter
        case 27: return .escape
        case 8, 127: return .backspace
        case 1...26: return .control(Character(Unicode.Scalar(UInt8(code) + 96)))
        default:
            guard let scalar = Unicode.Scalar(UInt32(truncatingIfNeeded: code)) else { return .unknown(code) }
            return .character(Character(scalar))
        }
    }
}
