// swift-tools-version:6.0
import PackageDescription

/// The libFuzzer targets of mlcred (docs/fuzzing.md). Built by scripts/fuzz with
/// `--sanitize fuzzer --sanitize address -Xswiftc -enable-testing` in a scratch directory of its
/// own: instrumentation reaches the library modules too (coverage guidance), and `@testable`
/// reaches the internal parsing entry points without making them public.
let fuzzTarget: [SwiftSetting] = [
    // No main of our own: libFuzzer's main calls LLVMFuzzerTestOneInput.
    .unsafeFlags(["-parse-as-library"]),
]

let package = Package(
    name: "mlcred-fuzz",
    dependencies: [
        .package(name: "mlcred", path: ".."),
        // The versions the root package resolved (scripts/fuzz copies its Package.resolved here).
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        // Reads typed values off the fuzzer's bytes; shared by the targets.
        .target(name: "FuzzSupport"),
        // One role file through the policy loader's per-file entry point, then the evaluator and the diff.
        .executableTarget(
            name: "fuzz-policy",
            dependencies: ["FuzzSupport", .product(name: "MLCredPolicy", package: "mlcred"), .product(name: "MLCredTOML", package: "mlcred")],
            swiftSettings: fuzzTarget
        ),
        // Raw bytes through NIO's HTTP/1.1 decoder and the daemon's HTTPConnectionHandler, the
        // request's path and query, the route table and the body decoders (JSONParser, Codable).
        .executableTarget(
            name: "fuzz-http",
            dependencies: [
                "FuzzSupport",
                .product(name: "MLCredDaemon", package: "mlcred"),
                .product(name: "MLCredBroker", package: "mlcred"),
                .product(name: "MLCredVault", package: "mlcred"),
                .product(name: "MLCredStore", package: "mlcred"),
                .product(name: "MLCredCrypto", package: "mlcred"),
                .product(name: "MLCredAPI", package: "mlcred"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: fuzzTarget
        ),
        // Token text: shape and checksum (TokenFormat), the base62 width, single-character typos.
        .executableTarget(
            name: "fuzz-token",
            dependencies: ["FuzzSupport", .product(name: "MLCredBroker", package: "mlcred")],
            swiftSettings: fuzzTarget
        ),
        // STS answers (success and error XML) through STSProtocol.parse.
        .executableTarget(
            name: "fuzz-sts",
            dependencies: ["FuzzSupport", .product(name: "MLCredProviders", package: "mlcred"), .product(name: "MLCredAPI", package: "mlcred")],
            swiftSettings: fuzzTarget
        ),
        // The masker of `mlcred run`: its source file lives in the mlcred executable target, which
        // cannot be imported, so Sources/fuzz-masker/OutputMasker.swift is a symlink to it.
        .executableTarget(
            name: "fuzz-masker",
            dependencies: ["FuzzSupport"],
            swiftSettings: fuzzTarget
        ),
    ],
    swiftLanguageModes: [.v6]
)
