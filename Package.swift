// swift-tools-version:6.0
import PackageDescription

// Switchboard: a WebSocket gateway cluster. No package dependencies: the Swift 6 toolchain
// plus three C libraries from Debian (OpenSSL 3, hiredis 0.14 and zlib), wrapped as system libraries.
let package = Package(
    name: "switchboard",
    products: [
        .executable(name: "switchboard", targets: ["switchboard"]),
        .executable(name: "switchboard-bench", targets: ["switchboard-bench"]),
        .library(name: "Protocol", targets: ["Protocol"]),
        .library(name: "ClusterBus", targets: ["ClusterBus"]),
        .library(name: "Runtime", targets: ["Runtime"]),
        .library(name: "TLS", targets: ["TLS"]),
        .library(name: "Gateway", targets: ["Gateway"])
    ],
    targets: [
        // Linux headers Glibc's module does not re-export (epoll, eventfd, uio, TCP options).
        .systemLibrary(name: "CLinux"),
        // OpenSSL 3 (libssl, libcrypto): SHA-1 for Sec-WebSocket-Accept, HMAC/RSA/ECDSA for JWT, TLS termination.
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        // hiredis 0.14.1 (its RESP reader only: the sockets are ours). pkg-config name "hiredis"; it is not passed to SwiftPM
        // because its .pc carries `-D_FILE_OFFSET_BITS=64`, which SwiftPM drops with a warning.
        // The headers live in /usr/include/hiredis and the module map links -lhiredis.
        .systemLibrary(
            name: "CHiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        // zlib (libz): raw DEFLATE for permessage-deflate (RFC 7692). Sans-I/O, so Protocol may use it.
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .target(name: "Protocol", dependencies: ["COpenSSL", "CZlib"]),
        // The I/O runtime every other I/O module stands on: epoll loops, timer wheel, sockets and transports,
        // byte buffers, clocks, counters and histograms. Knows nothing about WebSocket, rooms or Redis.
        .target(name: "Runtime", dependencies: ["CLinux"]),
        // TLS termination behind the transport seam: certificates (SNI, reload) and a non-blocking OpenSSL transport.
        .target(name: "TLS", dependencies: ["Runtime", "COpenSSL", "CLinux"]),
        .target(name: "ClusterBus", dependencies: ["Protocol", "Runtime", "TLS", "CHiredis", "CLinux"]),
        // Console/: the operator console's page, styles and scripts, compiled into the binary (no files to deploy).
        .target(
            name: "Gateway", dependencies: ["Protocol", "Runtime", "TLS", "ClusterBus", "CLinux", "COpenSSL"],
            resources: [.embedInCode("Console")]),
        .target(name: "SwitchboardClient", dependencies: ["Protocol", "Runtime", "CLinux"]),
        .executableTarget(name: "switchboard", dependencies: ["Gateway"]),
        .executableTarget(name: "switchboard-bench", dependencies: ["Protocol", "Runtime", "CLinux", "SwitchboardClient", "TLS"]),
        .testTarget(name: "ProtocolTests", dependencies: ["Protocol", "CZlib"]),
        .testTarget(name: "RuntimeTests", dependencies: ["Runtime"]),
        // Test fixtures both test targets start (a real Redis Cluster on loopback).
        .target(name: "TestSupport", dependencies: ["Runtime"], path: "Tests/TestSupport"),
        .testTarget(
            name: "GatewayTests",
            dependencies: ["Protocol", "Runtime", "TLS", "ClusterBus", "Gateway", "CLinux", "switchboard", "SwitchboardClient", "TestSupport"]),
        .testTarget(name: "ClusterBusTests", dependencies: ["ClusterBus", "Runtime", "Protocol", "switchboard", "TestSupport"]),
        // The load generator's parsers (switchboard-bench is an executable: `@testable import switchboard_bench`).
        .testTarget(name: "BenchTests", dependencies: ["switchboard-bench", "Protocol"])
    ]
)
