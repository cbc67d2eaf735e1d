import Foundation
import Testing
import Terminal
@testable import Dashboard

@Test func dumpForEyes() throws {
    let s = makeState()
    for (w, h) in [(150, 44), (80, 24), (120, 40), (200, 60)] {
        try screen(s, w, h).text.write(toFile: "/tmp/dash-\(w)x\(h).txt", atomically: true, encoding: .utf8)
    }
}
