import Foundation

/// Finds themes by name or path: `--theme NAME|PATH`.
///
/// A name is looked up as `NAME.theme` in the user's directory
/// (`$XDG_CONFIG_HOME/gradflow/themes`, default `~/.config/gradflow/themes`), then in the bundled
/// directory (the repository's `themes/`, when the executable knows where it is), then among the
/// themes embedded in this module. A value with a `/` or ending in `.theme` is a path.
public struct ThemeLoader: Sendable {
    public var userDirectory: URL?
    public var bundledDirectory: URL?

    public init(userDirectory: URL?, bundledDirectory: URL?) {
        self.userDirectory = userDirectory
        self.bundledDirectory = bundledDirectory
    }

    /// The user directory from the environment: $XDG_CONFIG_HOME/gradflow/themes or ~/.config/….
    public init(environment: [String: String] = ProcessInfo.processInfo.environment, bundledDirectory: URL? = nil) {
        var base: URL?
        if let xdg = environment["XDG_CONFIG_HOME"], !xdg.isEmpty {
            base = URL(fileURLWithPath: xdg)
        } else if let home = environment["HOME"], !home.isEmpty {
            base = URL(fileURLWithPath: home).appendingPathComponent(".config")
        }
        self.init(userDirectory: base?.appendingPathComponent("gradflow/themes"), bundledDirectory: bundledDirectory)
    }

    /// Loads one theme. Errors name the file and line, or list the names that exist.
    public func load(_ nameOrPath: String) throws -> Theme {
        if nameOrPath.contains("/") || nameOrPath.hasSuffix(".theme") {
            let url = URL(fileURLWithPath: nameOrPath)
            return try Self.read(url, name: url.deletingPathExtension().lastPathComponent)
        }
        for dir in [userDirectory, bundledDirectory].compactMap({ $0 }) {
            let url = dir.appendingPathComponent(nameOrPath + ".theme")
            if FileManager.default.fileExists(atPath: url.path) { return try Self.read(url, name: nameOrPath) }
        }
        if let text = BuiltinThemes.text[nameOrPath] {
            return try ThemeParser.parse(text, name: nameOrPath, file: "<built-in \(nameOrPath)>")
        }
        throw ThemeError(file: nameOrPath, line: nil,
                         message: "no such theme; available: \(availableNames().joined(separator: ", "))")
    }

    /// Built-in names first (in cycling order), then user and bundled themes not among them.
    public func availableNames() -> [String] {
        var names = BuiltinThemes.names
        for dir in [userDirectory, bundledDirectory].compactMap({ $0 }) {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
            for f in files.sorted() where f.hasSuffix(".theme") {
                let n = String(f.dropLast(6))
                if !names.contains(n) { names.append(n) }
            }
        }
        return names
    }

    /// The themes `t` cycles through, starting with the chosen one. Themes that fail to load are
    /// skipped here (the chosen one's error is thrown).
    public func catalog(selected: String?) throws -> [Theme] {
        let first = try load(selected ?? "default")
        var out = [first]
        for n in availableNames() where n != first.name {
            if let t = try? load(n) { out.append(t) }
        }
        return out
    }

    private static func read(_ url: URL, name: String) throws -> Theme {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw ThemeError(file: url.path, line: nil, message: "cannot read: \(error.localizedDescription)")
        }
        return try ThemeParser.parse(text, name: name, file: url.path)
    }
}
