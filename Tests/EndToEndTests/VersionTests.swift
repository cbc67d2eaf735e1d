import Foundation
import TestSupport
import Testing

/// `gradflow --version` and the build information behind it (issue 13, bug 6).
@Suite struct VersionTests {
    /// The package's root folder (this file is Tests/EndToEndTests/VersionTests.swift).
    static let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test("--version prints the version and, in a git checkout, the commit the binary was built from")
    func versionLine() throws {
        let binary = try #require(EndToEnd.binary, "gradflow binary not found next to the test bundle (set GRADFLOW_BINARY)")
        let result = ChildProcess.run(binary.path, ["--version"])
        #expect(result.status == 0)
        let line = result.output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(line.range(of: #"^\d+\.\d+\.\d+( \(commit [0-9a-f]{7,40}(-dirty)?\))?$"#, options: .regularExpression) != nil,
                "unexpected --version output: \(line)")
        if let git = ChildProcess.which("git"), ProcessInfo.processInfo.environment["GRADFLOW_COMMIT"] == nil {
            let head = ChildProcess.run(git, ["-C", Self.package.path, "rev-parse", "--short=12", "HEAD"])
            if head.status == 0 {
                let commit = head.output.trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(line.contains("(commit \(commit)"), "built from \(commit): \(line)")
            }
        }
    }

    @Test("the build information: $GRADFLOW_COMMIT wins; outside a git checkout the commit is unknown")
    func buildInfoScript() throws {
        let fm = FileManager.default
        let dir = fm.temporaryDirectory.appendingPathComponent("gradflow-buildinfo-\(UUID().uuidString)")
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: dir) }
        let script = Self.package.appendingPathComponent("scripts/embed.sh").path
        // A folder that is no git checkout, as a source tarball unpacks.
        let tarball = dir.appendingPathComponent("src").path, out = dir.appendingPathComponent("out").path
        try fm.createDirectory(atPath: tarball, withIntermediateDirectories: true)
        var result = ChildProcess.run("/bin/sh", [script, "build-info", tarball, out])
        #expect(result.status == 0, "\(result.output)")
        let generated = try String(contentsOfFile: out + "/BuildInfo.swift", encoding: .utf8)
        #expect(generated.contains("public static let commit: String? = nil"), "\(generated)")
        result = ChildProcess.run("/usr/bin/env", ["GRADFLOW_COMMIT=0123abc", "/bin/sh", script, "build-info", tarball, out])
        #expect(result.status == 0, "\(result.output)")
        let injected = try String(contentsOfFile: out + "/BuildInfo.swift", encoding: .utf8)
        #expect(injected.contains("public static let commit: String? = \"0123abc\""), "\(injected)")
    }
}
