import Foundation
import PackagePlugin

/// Generates, before each build, the Swift source that puts data into the binary itself
/// (scripts/embed.sh does the work and rewrites a file only when its contents change):
/// - target Corpus: `DefaultCorpus.swift`, the bytes of Sources/Corpus/Resources/default-corpus.txt
///   (the one source of the corpus) as a string literal, so no resource bundle sits beside the binary;
/// - target BuildInfo: `BuildInfo.swift`, the commit the binary is built from (`$GRADFLOW_COMMIT`, else
///   `git rev-parse` when the package is a git checkout, else unknown: a tarball builds too).
@main
struct Embed: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let kind: String
        switch target.name {
        case "Corpus": kind = "corpus"
        case "BuildInfo": kind = "build-info"
        default: return []
        }
        let output = context.pluginWorkDirectoryURL.appendingPathComponent(kind)
        let package = context.package.directoryURL
        return [.prebuildCommand(
            displayName: "Embedding \(kind) into \(target.name)",
            executable: URL(fileURLWithPath: "/bin/sh"),
            arguments: [package.appendingPathComponent("scripts/embed.sh").path, kind, package.path, output.path],
            outputFilesDirectory: output)]
    }
}
