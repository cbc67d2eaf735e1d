// swift-tools-version:6.0
import PackageDescription

import Foundation

/// Release builds of the numeric targets drop bounds checks and target the CPU's vector units
/// (AVX2 + FMA on x86-64, `-target-cpu haswell`), which is what lets the kernels vectorise
/// (docs/PERFORMANCE.md has the measurements). Set GRADFLOW_PORTABLE=1 when building a binary
/// for x86-64 machines without AVX2.
let portable = ProcessInfo.processInfo.environment["GRADFLOW_PORTABLE"] == "1"
#if arch(x86_64)
let cpuFlags: [String] = portable ? [] : ["-target-cpu", "haswell"]
#else
let cpuFlags: [String] = []
#endif
let fastMath: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-wmo"] + cpuFlags, .when(configuration: .release)),
]

let package = Package(
    name: "gradflow",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "gradflow", targets: ["gradflow"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        // No pkgConfig here: ncursesw's pkg-config flags (-D_DEFAULT_SOURCE -D_XOPEN_SOURCE=600) are
        // ones SwiftPM refuses with a warning; the module map links ncursesw and the shim defines what
        // the wide-character API needs (scripts/setup.sh installs the package).
        .systemLibrary(name: "CNCurses"),

        .systemLibrary(name: "CMPI", pkgConfig: "ompi", providers: [.apt(["libopenmpi-dev"])]),

        .plugin(name: "Embed", capability: .buildTool()),

        .target(name: "Kernels", dependencies: ["CBLAS"], swiftSettings: fastMath),
        .target(name: "Refinement", swiftSettings: fastMath),
        .target(name: "Model", dependencies: ["Kernels"], swiftSettings: fastMath),
        // A strict streaming JSON scanner and writer with exact decimal → double conversion; knows
        // nothing of runs.
        .target(name: "JSONCore"),
        // The run format (docs/FORMAT.md): records, field tables, codec — the contract; it
        // re-exports JSONCore.
        .target(name: "RunFormat", dependencies: ["JSONCore", "Refinement"]),
        // Records in motion: the bus, the recorder, replay, the catalog; it re-exports RunFormat.
        .target(name: "Telemetry", dependencies: ["RunFormat", "Refinement"]),
        // Byte data and synthetic tasks: what the trainer reads batches from (docs/ARCHITECTURE.md §6).
        .target(
            name: "Corpus",
            dependencies: ["Model"],
            // The corpus is compiled into the binary by the Embed plugin (DefaultCorpus.swift), not
            // copied into a resource bundle beside it.
            exclude: ["Resources/default-corpus.txt"],
            swiftSettings: fastMath,
            plugins: ["Embed"]
        ),
        // The loop, the run state, AdamW, checkpoints, twins, the guard; it re-exports Corpus.
        .target(name: "Training", dependencies: ["Kernels", "Model", "Refinement", "Telemetry", "Corpus"], swiftSettings: fastMath),
        .target(name: "DataParallel", dependencies: ["CMPI", "Training", "Telemetry", "Refinement"], swiftSettings: fastMath),
        // The flags of `gradflow train` that make a run, declared once: train, studies and bench parse them.
        .target(name: "RunFlags", dependencies: [
            "Training", "Refinement", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .target(name: "Evaluation", dependencies: ["Training", "RunFlags", "Model", "Kernels", "Refinement", "Telemetry"]),
        .target(name: "Terminal", dependencies: ["CNCurses"]),
        .target(name: "BuildInfo", plugins: ["Embed"]),   // the commit for --version
        // The dashboard's colours: roles, the built-in themes, theme files and their loader.
        .target(name: "Themes", dependencies: ["Terminal"]),
        .target(name: "Dashboard", dependencies: ["Telemetry", "Terminal", "Themes", "Refinement"]),
        .executableTarget(
            name: "gradflow",
            dependencies: [
                "Kernels", "Model", "Refinement", "Training", "Telemetry", "Terminal", "Themes", "Dashboard", "Evaluation",
                "DataParallel", "BuildInfo", "RunFlags",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // Helpers shared by the test targets (child processes); not a test target itself.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels"]),
        .testTarget(name: "ModelTests", dependencies: ["Model", "Kernels"]),
        .testTarget(name: "RefinementTests", dependencies: ["Refinement"]),
        .testTarget(name: "CorpusTests", dependencies: ["Corpus", "Model"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Model", "Refinement", "Telemetry"]),
        // JSONTests (JSONCore) stay here: they share the fixtures' config value and test RNG.
        .testTarget(name: "TelemetryTests", dependencies: ["Telemetry", "RunFormat", "JSONCore", "Refinement"]),
        .testTarget(name: "ThemesTests", dependencies: ["Themes", "Terminal"]),
        .testTarget(name: "DashboardTests", dependencies: ["Dashboard", "Telemetry", "Terminal", "Themes", "Refinement"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "Training", "Telemetry"]),
        .testTarget(name: "EndToEndTests", dependencies: ["Telemetry", "Refinement", "TestSupport"]),
        .testTarget(name: "DataParallelTests", dependencies: ["DataParallel", "Telemetry", "TestSupport"]),
        // The executable's own definitions (train's flags) against the study file.
        .testTarget(name: "GradflowTests", dependencies: ["gradflow", "Evaluation", "RunFlags", "Training"]),
    ],
    swiftLanguageModes: [.v5]
)
