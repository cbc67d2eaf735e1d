import Foundation
import Terminal
import Testing
@testable import Themes

@Suite struct ThemeTests {
    @Test func missingKeysFallBackToTheDefault() throws {
        let t = try ThemeParser.parse("# only one\nfg = \"#102030\"\n", name: "x", file: "x.theme")
        #expect(t[.fg] == .rgb(0x10, 0x20, 0x30))
        #expect(t[.zone_bad] == Theme.default[.zone_bad])
    }

    @Test func indicesUnquotedValuesAndComments() throws {
        let t = try ThemeParser.parse("dim = 244   \n  title = \"default\" # the terminal's own\n", name: "x", file: "x.theme")
        #expect(t[.dim] == .indexed(244))
        #expect(t[.title] == .default)
    }

    @Test func unknownKeyNamesFileAndLine() {
        do {
            _ = try ThemeParser.parse("fg = \"#ffffff\"\n\nborderr = \"#000000\"\n", name: "x", file: "themes/x.theme")
            Issue.record("expected an error")
        } catch let e as ThemeError {
            #expect(e.file == "themes/x.theme")
            #expect(e.line == 3)
            #expect(e.description.hasPrefix("themes/x.theme:3: unknown key 'borderr'"))
        } catch { Issue.record("wrong error \(error)") }
    }

    @Test(arguments: ["#12345", "#gggggg", "256", "-1", "red", ""])
    func badColourNamesFileAndLine(value: String) {
        do {
            _ = try ThemeParser.parse("# c\nzone_calm = \"\(value)\"\n", name: "x", file: "my.theme")
            Issue.record("expected an error for \(value)")
        } catch let e as ThemeError {
            #expect(e.line == 2)
            #expect(e.description.contains("my.theme:2: bad colour"))
        } catch { Issue.record("wrong error \(error)") }
    }

    @Test func embeddedThemesEqualTheFiles() throws {
        for name in BuiltinThemes.names {
            let url = repositoryRoot.appendingPathComponent("themes/\(name).theme")
            let file = try String(contentsOf: url, encoding: .utf8)
            #expect(BuiltinThemes.text[name] == file, "themes/\(name).theme changed: run scripts/embed-themes.sh")
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: repositoryRoot.appendingPathComponent("themes").path)
        #expect(Set(files.filter { $0.hasSuffix(".theme") }.map { String($0.dropLast(6)) }) == Set(BuiltinThemes.names))
    }

    @Test func builtInThemesDefineEveryKey() throws {
        for name in BuiltinThemes.names {
            _ = try ThemeParser.parse(BuiltinThemes.text[name]!, name: name, file: name, fallback: nil)
        }
    }

    @Test func loaderFindsUserThemesByNameAndPaths() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gradflow-theme-\(UUID().uuidString)")
        let user = dir.appendingPathComponent("gradflow/themes")
        try FileManager.default.createDirectory(at: user, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "fg = \"#010203\"\n".write(to: user.appendingPathComponent("mine.theme"), atomically: true, encoding: .utf8)
        let loader = ThemeLoader(environment: ["XDG_CONFIG_HOME": dir.path])
        #expect(try loader.load("mine")[.fg] == .rgb(1, 2, 3))
        #expect(try loader.load(user.appendingPathComponent("mine.theme").path).name == "mine")
        #expect(try loader.load("light").name == "light")
        #expect(loader.availableNames().contains("mine"))
        #expect(try loader.catalog(selected: "mono").map(\.name).prefix(2) == ["mono", "default"])
        #expect(throws: ThemeError.self) { try loader.load("nope") }
    }
}

/// The repository root (for themes/*.theme), from this file's path.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
