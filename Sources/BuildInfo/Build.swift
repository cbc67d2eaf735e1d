/// What the build knew about its own sources. The Embed build plugin adds `Build.commit`
/// (scripts/embed.sh writes it before every build); a module of its own, so that a new commit
/// recompiles this one file and relinks, not the executable's module.
public enum Build {}
