// swift-tools-version: 6.0
// Latchkey: no Swift package dependencies; libsqlite3, libsodium and Nettle (HMAC-SHA1 for
// TOTP, which libsodium lacks) come from the system.
import PackageDescription

let package = Package(
    name: "Latchkey",
    products: [
        .executable(name: "latchkey", targets: ["latchkey"]),
        .executable(name: "latchkey-cgi", targets: ["latchkey-cgi"]),
    ],
    targets: [
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CSodium", providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "CNettle", providers: [.apt(["nettle-dev"])]),
        // Headers only (signalfd), part of libc.
        .systemLibrary(name: "CLinux"),
        .target(name: "LatchkeyCore", dependencies: ["CSodium", "CNettle"]),
        .target(name: "LatchkeyStore", dependencies: ["LatchkeyCore", "CSQLite"]),
        .target(name: "LatchkeySite", dependencies: ["LatchkeyCore"]),
        .target(name: "LatchkeyMail", dependencies: ["LatchkeyCore", "LatchkeyStore", "LatchkeySite"]),
        .target(name: "LatchkeyAccounts", dependencies: ["LatchkeyCore", "LatchkeyStore", "LatchkeySite", "LatchkeyMail"]),
        .target(name: "LatchkeyCGI", dependencies: ["CLinux", "LatchkeyCore", "LatchkeyStore", "LatchkeySite", "LatchkeyAccounts"]),
        .target(name: "LatchkeyAdmin", dependencies: ["CLinux", "LatchkeyCore", "LatchkeyStore", "LatchkeySite", "LatchkeyMail", "LatchkeyAccounts"]),
        .executableTarget(name: "latchkey", dependencies: ["LatchkeyAdmin"]),
        // hot-symbols.txt is the linker's order for the CGI's code and data (see the Makefile).
        .executableTarget(name: "latchkey-cgi", dependencies: ["LatchkeyCGI"], exclude: ["hot-symbols.txt"]),
        // libFuzzer targets (`make fuzz`); built normally they replay inputs given as files.
        .executableTarget(name: "fuzz-forms", dependencies: ["LatchkeyCGI"]),
        .executableTarget(name: "fuzz-templates", dependencies: ["LatchkeyCore"]),
        .executableTarget(name: "fuzz-fastcgi", dependencies: ["LatchkeyCGI"]),
        .testTarget(
            name: "LatchkeyTests",
            dependencies: ["LatchkeyCore", "LatchkeyStore", "LatchkeySite", "LatchkeyMail", "LatchkeyAccounts", "LatchkeyCGI", "LatchkeyAdmin"],
            exclude: []),
    ]
)
