// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Sieve",
    products: [
        .executable(name: "sieve", targets: ["sieve"]),
        .executable(name: "sieve-run", targets: ["sieve-run"]),
        .library(name: "SieveCore", targets: ["SieveCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // Runs on the board: C kernels and OS shims, and the Embedded-clean Swift core.
        .target(
            name: "CSieveKernels",
            path: "Sources/CSieveKernels",
            cSettings: [.unsafeFlags(["-O3", "-fno-strict-aliasing"])],
            linkerSettings: [.linkedLibrary("m"), .linkedLibrary("pthread")]
        ),
        .target(name: "SieveCore", dependencies: ["CSieveKernels"], path: "Sources/SieveCore"),
        .target(name: "SieveRun", dependencies: ["SieveCore", "CSieveKernels"], path: "Sources/SieveRun"),
        .executableTarget(name: "sieve-run", dependencies: ["SieveRun", "CSieveKernels"], path: "Sources/sieve-run"),
        // Host only.
        .systemLibrary(name: "CZlib", path: "Tools/CZlib"),
        .systemLibrary(name: "CCrypto", path: "Tools/CCrypto"),
        .systemLibrary(name: "COpenBLAS", path: "Tools/COpenBLAS"),
        .target(name: "CImageDecode", path: "Tools/CImageDecode",
                linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png16")]),
        // -ffp-contract=off: the float depthwise conv multiplies then adds, as the Swift executor did.
        .target(name: "CQuantizeKernels", dependencies: ["CSieveKernels"], path: "Tools/CQuantizeKernels", cSettings: [.unsafeFlags(["-O3", "-fno-strict-aliasing", "-ffp-contract=off"])]),
        .target(
            name: "SieveQuantize",
            dependencies: ["SieveCore", "SieveRun", "CSieveKernels", "CQuantizeKernels", "CZlib", "CCrypto", "COpenBLAS", "CImageDecode", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            path: "Tools/SieveQuantize",
            exclude: ["onnx-subset.proto", "generate-proto.sh"]
        ),
        .target(name: "SieveTune", dependencies: ["SieveCore", "SieveQuantize"], path: "Tools/SieveTune"),
        .executableTarget(
            name: "sieve",
            dependencies: ["SieveCore", "SieveQuantize", "SieveTune", "SieveRun", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Tools/sieve"
        ),
        .target(name: "CAllocationCounter", path: "Tests/CAllocationCounter"),
        .target(name: "SieveTestSupport", path: "Tests/SieveTestSupport"),
        .testTarget(name: "SieveCoreTests", dependencies: ["SieveCore", "CAllocationCounter", "SieveTestSupport"], path: "Tests/SieveCoreTests"),
        .testTarget(name: "SieveTuneTests", dependencies: ["SieveTune", "SieveCore", "SieveQuantize"], path: "Tests/SieveTuneTests"),
        .testTarget(name: "SieveRunTests", dependencies: ["SieveRun", "CAllocationCounter", "CSieveKernels"], path: "Tests/SieveRunTests"),
        .testTarget(name: "SieveQuantizeTests", dependencies: ["SieveQuantize", "SieveCore", "SieveTestSupport"], path: "Tests/SieveQuantizeTests"),
    ],
    swiftLanguageModes: [.v5]
)
