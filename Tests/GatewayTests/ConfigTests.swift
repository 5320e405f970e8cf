import Testing

@testable import Gateway

@Suite struct ConfigTests {
    @Test func helpShowsDefaultsInTheUnitsTheReadmeUses() {
        let help = Config.helpText
        func line(_ flag: String) -> String { help.split(separator: "\n").first { $0.hasPrefix("  --\(flag) ") }.map(String.init) ?? "" }
        #expect(line("history-ttl").hasSuffix("default 24h]"), "\(line("history-ttl"))")
        #expect(line("max-message-size").hasSuffix("default 1MiB]"), "\(line("max-message-size"))")
        #expect(line("max-head-size").hasSuffix("default 8KiB]"), "\(line("max-head-size"))")
        #expect(line("drain-window").hasSuffix("default 20s]"), "\(line("drain-window"))")
        #expect(!help.contains("000ms]") && !help.contains("48576B]"), "a default still in raw ms or bytes")
    }

    @Test func helpUnitsParseBackToTheSameValue() {
        for ms in [0, 1, 250, 999, 1000, 1500, 2050, 60_000, 90_000, 3_600_000, 86_400_000, 5_400_000] {
            let text = Config.formatDuration(milliseconds: ms)
            #expect(Config.parseDuration(text) == ms, "\(ms) -> \(text)")
        }
        for bytes in [0, 1, 512, 1000, 1024, 8192, 65_536, 1_048_576, 1_572_864, 1 << 30, 3 << 30] {
            let text = Config.formatSize(bytes: bytes)
            #expect(Config.parseSize(text) == bytes, "\(bytes) -> \(text)")
        }
        #expect(Config.formatDuration(milliseconds: 86_400_000) == "24h")
        #expect(Config.formatSize(bytes: 1_048_576) == "1MiB")
    }

    @Test func durationsAndSizesTakeUnits() {
        #expect(Config.parseDuration("250ms") == 250)
        #expect(Config.parseDuration("5s") == 5000)
        #expect(Config.parseDuration("2m") == 120_000)
        #expect(Config.parseDuration("1.5s") == 1500)
        #expect(Config.parseDuration("0") == 0)
        #expect(Config.parseDuration("3") == nil, "a bare number could mean seconds or milliseconds: refused")
        #expect(Config.parseDuration("-1s") == nil)
        #expect(Config.parseDuration("soon") == nil)
        #expect(Config.parseDuration("99999999999999999999s") == nil, "too large: refused, not a trap")
        #expect(Config.parseDuration("1e30ms") == nil)
        for odd in ["0x10s", "+5s", ".5s", "5.s", "-0s", "infs", "nanms", "1e3ms"] {
            #expect(Config.parseDuration(odd) == nil, "\(odd)")
        }
        #expect(Config.parseDuration("1.9ms") == 2, "rounded, not truncated")
        #expect(Config.parseDuration(" 5S") == 5000, "case and surrounding blanks do not matter")
        #expect(Config.parseSize("99999999999GiB") == nil)
        #expect(Config.parseSize("64KiB") == 65536)
        #expect(Config.parseSize("1MiB") == 1 << 20)
        #expect(Config.parseSize("512") == 512)
        #expect(Config.parseSize("lots") == nil)
    }

    @Test func flagsWinOverEnvironmentAndBadValuesNameTheFlag() throws {
        let c = try Config.parse(
            arguments: ["--port", "9000", "--ping-interval=1s"], environment: ["SWITCHBOARD_PORT": "7000", "SWITCHBOARD_WS_PATH": "/socket"])
        #expect(c.port == 9000)
        #expect(c.wsPath == "/socket")
        #expect(c.pingIntervalMs == 1000)
        #expect(throws: Config.Invalid.self) { try Config.parse(arguments: ["--threads", "0"], environment: [:]) }
        #expect(throws: Config.Invalid.self) { try Config.parse(arguments: ["--nope", "1"], environment: [:]) }
        #expect(throws: Config.Invalid.self) { try Config.parse(arguments: ["--max-message-size", "big"], environment: [:]) }
        let masked = try Config.parse(arguments: ["--api-key", "hunter2"], environment: [:]).loggable
        #expect(masked.first { $0.0 == "api-key" }?.1 == "***")
    }

    /// `--history-bytes`, `--max-history-memory`, `--analytics-bytes`: sizes with units, 0 turns the byte
    /// limit off, anything else that is not a size is refused naming the flag.
    @Test func memoryBudgetFlags() throws {
        let d = try Config.parse(arguments: [], environment: [:])
        #expect(d.historyBytes == 16 << 20 && d.maxHistoryMemory == 256 << 20 && d.analyticsBytes == 64 << 20)
        let c = try Config.parse(
            arguments: ["--history-bytes", "1MiB", "--max-history-memory=0", "--analytics-bytes", "512KiB"],
            environment: ["SWITCHBOARD_MAX_HISTORY_MEMORY": "1GiB"])
        #expect(c.historyBytes == 1 << 20 && c.maxHistoryMemory == 0 && c.analyticsBytes == 512 << 10)
        for flag in ["--history-bytes", "--max-history-memory", "--analytics-bytes"] {
            do {
                _ = try Config.parse(arguments: [flag, "-1"], environment: [:])
                Issue.record("\(flag) -1 was accepted")
            } catch {
                #expect(error.description.contains(flag), "\(error)")
            }
        }
    }
}
