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
        .systemLibrary(name: "CNCurses", pkgConfig: "ncursesw", providers: [.apt(["libncursesw5-dev"])]),
        .systemLibrary(name: "CMPI", pkgConfig: "ompi", providers: [.apt(["libopenmpi-dev"])]),

        .target(name: "Kernels", dependencies: ["CBLAS"], swiftSettings: fastMath),
        .target(name: "Refinement", swiftSettings: fastMath),
        .target(name: "Model", dependencies: ["Kernels", "Refinement"], swiftSettings: fastMath),
        .target(name: "Telemetry"),
        .target(
            name: "Training",
            dependencies: ["Kernels", "Model", "Refinement", "Telemetry"],
            resources: [.copy("Resources/default-corpus.txt")],
            swiftSettings: fastMath
        ),
        .target(name: "Distributed", dependencies: ["CMPI", "Training", "Telemetry"], swiftSettings: fastMath),
        .target(name: "Evaluation", dependencies: ["Training", "Model", "Refinement", "Telemetry"]),
        .target(name: "Terminal", dependencies: ["CNCurses"]),
        .target(name: "Dashboard", dependencies: ["Telemetry", "Terminal"]),
        .executableTarget(
            name: "gradflow",
            dependencies: [
                "Kernels", "Model", "Refinement", "Training", "Telemetry", "Terminal", "Dashboard", "Evaluation",
                "Distributed",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .testTarget(name: "KernelsTests", dependencies: ["Kernels"]),
        .testTarget(name: "ModelTests", dependencies: ["Model", "Kernels", "Refinement"]),
        .testTarget(name: "RefinementTests", dependencies: ["Refinement"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Model", "Refinement", "Telemetry"]),
        .testTarget(name: "TelemetryTests", dependencies: ["Telemetry"]),
        .testTarget(name: "DashboardTests", dependencies: ["Dashboard", "Telemetry", "Terminal"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "Training", "Telemetry"]),
        .testTarget(name: "EndToEndTests", dependencies: ["Telemetry"]),
        .testTarget(name: "DistributedTests", dependencies: ["Distributed", "Telemetry"]),
    ],
    swiftLanguageModes: [.v5]
)
