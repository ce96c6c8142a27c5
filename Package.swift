// swift-tools-version: 6.2
import PackageDescription

/// Settings every Swift target shares: Swift 6 language mode (strict concurrency), the
/// upcoming features the hummingbird house style turns on, and no warnings: the project's own
/// targets build with none, and a new one fails the build.
let swiftSettings: [SwiftSetting] = [
    .treatAllWarnings(as: .error),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Handrail",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "handrail", targets: ["handrail"])
    ],
    dependencies: [
        // Without the default ConfigurationSupport trait: swift-configuration is not used here and
        // costs a minute of a cold build.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: ["FullFoundation"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    ],
    targets: [
        // C libraries from Debian packages, found through pkg-config.
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .systemLibrary(
            name: "CCmark",
            pkgConfig: "libcmark",
            providers: [.apt(["libcmark-dev"])]
        ),

        // The libpq wrapper: connections, pool, decoding, transactions, LISTEN/NOTIFY.
        .target(
            name: "Postgres",
            dependencies: [
                "CLibPQ",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The cmark wrapper: safe HTML and the document tree.
        .target(
            name: "Markdown",
            dependencies: ["CCmark"],
            swiftSettings: swiftSettings
        ),
        // The domain, without I/O.
        .target(
            name: "HandrailCore",
            dependencies: [
                "Markdown",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // All SQL, the migrator and the embedded-PostgreSQL launcher.
        .target(
            name: "HandrailStore",
            dependencies: [
                "HandrailCore",
                "Postgres",
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.embedInCode("SQL/resend.sql"), .embedInCode("SQL/ingest.sql")],
            swiftSettings: swiftSettings
        ),
        // HTTP: buildApplication, controllers, middleware.
        .target(
            name: "HandrailServer",
            dependencies: [
                "HandrailCore",
                "HandrailStore",
                "Postgres",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "handrail",
            dependencies: [
                "HandrailServer",
                "HandrailStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The measuring helpers of script/bench (bench-ceiling, bench-parse), outside the product.
        .executableTarget(
            name: "handrail-bench",
            dependencies: [
                "HandrailServer",
                "HandrailStore",
                "HandrailCore",
                "Postgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        // Shared test helpers: a fresh database per test, cloned from a migrated template.
        .target(
            name: "TestSupport",
            dependencies: [
                "Postgres", "HandrailStore", "HandrailCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PostgresTests",
            dependencies: ["Postgres", "TestSupport", "HandrailStore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MarkdownTests",
            dependencies: ["Markdown"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HandrailCoreTests",
            dependencies: ["HandrailCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HandrailStoreTests",
            dependencies: ["HandrailStore", "Postgres", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HandrailServerTests",
            dependencies: [
                "HandrailServer", "HandrailStore", "HandrailCore", "Postgres", "TestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
