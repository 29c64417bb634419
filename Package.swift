// swift-tools-version:6.0
import PackageDescription

/// How the two installed binaries are linked. lld instead of gold, for two things gold cannot do:
/// no export of every symbol (the driver's default; 1.2 MB of .dynsym, 2.9 MB of .dynstr and
/// their hash table, all paged in at start) and packed relative relocations (DT_RELR: the 3.3 MB
/// .rela.dyn shrinks to kilobytes). Measured on mlcredd's idle RSS and `mlcred run`'s start;
/// still position-independent (ASLR stays on).
let lean: [LinkerSetting] = [
    .unsafeFlags(["-use-ld=lld", "-Xlinker", "--no-export-dynamic", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"], .when(platforms: [.linux])),
]

let package = Package(
    name: "mlcred",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "mlcredd", targets: ["mlcredd"]),
        .executable(name: "mlcred", targets: ["mlcred"]),
        .library(name: "MLCredClient", targets: ["MLCredClient"]),
        // For the fuzz targets in Fuzz/ (a package of their own, built with sanitizers): a package
        // can only depend on another's products.
        .library(name: "MLCredAPI", targets: ["MLCredAPI"]),
        .library(name: "MLCredCrypto", targets: ["MLCredCrypto"]),
        .library(name: "MLCredStore", targets: ["MLCredStore"]),
        .library(name: "MLCredVault", targets: ["MLCredVault"]),
        .library(name: "MLCredPolicy", targets: ["MLCredPolicy"]),
        .library(name: "MLCredTOML", targets: ["MLCredTOML"]),
        .library(name: "MLCredProviders", targets: ["MLCredProviders"]),
        .library(name: "MLCredBroker", targets: ["MLCredBroker"]),
        .library(name: "MLCredDaemon", targets: ["MLCredDaemon"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        // libsodium, the system library (Debian: libsodium-dev).
        .systemLibrary(
            name: "CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"])]
        ),
        // Linux system calls Swift cannot reach directly (SO_PEERCRED's struct, prctl).
        .target(name: "CLinux"),
        // Keys in guarded memory, AEAD, Argon2id, BLAKE2b, Ed25519: the only importer of CSodium.
        .target(name: "MLCredCrypto", dependencies: ["CSodium"]),
        // Wire types shared by the daemon and the thin client: FoundationEssentials only.
        .target(name: "MLCredAPI"),
        // Schema, migrations, records, the group-commit writer, the audit table: the only importer of GRDB;
        // the fleet store on PostgreSQL (SPEC §12) beside SQLite, behind one SQLSession protocol.
        .target(
            name: "MLCredStore",
            dependencies: [
                "MLCredCrypto", "MLCredAPI", .product(name: "GRDB", package: "GRDB.swift"),
                // SQLite's C API, for the statements of the request path (SQLiteSession).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The vault: root key lifecycle, sealed secrets, the keyed audit chain.
        .target(name: "MLCredVault", dependencies: ["MLCredCrypto", "MLCredStore", "MLCredAPI"]),
        // TOML 1.0.0, read in Swift with line numbers for every key: no C++ parser whose asserts
        // input can reach (docs/fuzzing.md), and no dependency.
        .target(name: "MLCredTOML"),
        // Parse, validate and evaluate role policies (pure: no I/O beyond reading the policy files).
        .target(name: "MLCredPolicy", dependencies: ["MLCredAPI", "MLCredTOML"]),
        // Turn a secret + grant into a lease; renew; revoke. One file per provider behind one protocol.
        .target(
            name: "MLCredProviders",
            dependencies: [
                "MLCredCrypto", "MLCredPolicy", "MLCredAPI",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Tokens, credentials and leases: policy decisions, issuance, revocation, expiry.
        .target(name: "MLCredBroker", dependencies: ["MLCredVault", "MLCredStore", "MLCredPolicy", "MLCredProviders", "MLCredCrypto", "MLCredAPI"]),
        // Socket server, peer attestation, routes.
        .target(
            name: "MLCredDaemon",
            dependencies: [
                "MLCredVault", "MLCredAPI", "CLinux", "MLCredBroker", "MLCredPolicy", "MLCredStore", "MLCredCrypto",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The thin client: Unix socket, HTTP/1.1, JSON. FoundationEssentials and POSIX only.
        .target(name: "MLCredClient", dependencies: ["MLCredAPI"]),
        .executableTarget(
            name: "mlcredd",
            dependencies: [
                "MLCredDaemon", "MLCredPolicy", "MLCredAPI", "MLCredStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            linkerSettings: lean
        ),
        .executableTarget(
            name: "mlcred",
            dependencies: [
                "MLCredClient", "MLCredAPI", "CLinux", "MLCredPolicy",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            linkerSettings: lean
        ),
        // The benchmark driver behind scripts/bench (not installed).
        .executableTarget(
            name: "mlcred-bench",
            dependencies: ["MLCredClient", "MLCredAPI", "MLCredStore", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .testTarget(name: "MLCredAPITests", dependencies: ["MLCredAPI"]),
        .testTarget(name: "MLCredCryptoTests", dependencies: ["MLCredCrypto"]),
        .testTarget(name: "MLCredClientTests", dependencies: ["MLCredClient"]),
        .testTarget(name: "MLCredPolicyTests", dependencies: ["MLCredPolicy"]),
        .testTarget(name: "MLCredTOMLTests", dependencies: ["MLCredTOML"], exclude: ["toml-test"]),
        .testTarget(
            name: "MLCredDaemonTests",
            dependencies: [
                "MLCredDaemon", "MLCredBroker", "MLCredAPI", "MLCredStore", "MLCredVault", "MLCredCrypto", "MLCredPolicy", "MLCredProviders",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "MLCredProvidersTests", dependencies: ["MLCredProviders", "MLCredCrypto", "MLCredPolicy", "MLCredAPI"]),
        .testTarget(name: "MLCredStoreTests", dependencies: ["MLCredStore", "MLCredCrypto", "MLCredAPI",
                                                            .product(name: "PostgresNIO", package: "postgres-nio")]),
        .testTarget(name: "MLCredVaultTests", dependencies: ["MLCredVault", "MLCredStore", "MLCredCrypto", "MLCredAPI"]),
    ],
    swiftLanguageModes: [.v6]
)
