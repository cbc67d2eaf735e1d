// Small number formatting for band extents and messages, without Foundation.

/// Formats `value` with at most `digits` decimals, dropping trailing zeros ("0.5", "4", "0.05").
func formatNumber(_ value: Double, digits: Int = 4) -> String {
    guard value.isFinite else { return "\(value)" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    let whole = Int(scaled / scale)
    var fraction = Int(scaled - Double(whole) * scale)
    var text = (value < 0 && scaled > 0 ? "-" : "") + String(whole)
    if fraction > 0 {
        var width = digits
        while fraction % 10 == 0 { fraction /= 10; width -= 1 }
        let digitsText = String(fraction)
        text += "." + String(repeating: "0", count: width - digitsText.count) + digitsText
    }
    return text
}

/// Formats an EMA beta as the dashboard shows it: 0.9 → ".90", 0.99 → ".99", 0.995 → ".995".
func formatBeta(_ beta: Double) -> String {
    var text = formatNumber(beta, digits: 4)
    if text.hasPrefix("0.") { text.removeFirst() }
    if text.count == 2 { text += "0" }  // ".9" → ".90"
    if text == "0" { text = ".00" }
    return text
}
