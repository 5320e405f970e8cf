import CLinux
import Foundation
import Gateway
import Glibc
import Runtime

// switchboard: one gateway node. Flags and their environment twins: `switchboard --help`.
let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.contains("--help") || arguments.contains("-h") {
    print(Config.helpText, terminator: "")
    exit(0)
}
if arguments.contains("--version") {
    print("switchboard \(switchboardVersion)")
    exit(0)
}
let config: Config
do {
    config = try Config.parse(arguments: arguments, environment: ProcessInfo.processInfo.environment)
} catch {
    FileHandle.standardError.write(Data("switchboard: \(error.description)\n".utf8))
    exit(2)
}
if let cpu = config.pinCPU, clinux_pin_to_cpu(Int32(cpu)) != 0 {
    FileHandle.standardError.write(Data("switchboard: cannot pin to CPU \(cpu)\n".utf8))
    exit(2)
}
let logger = Logger(level: config.logLevel, node: config.nodeID)
GatewayNode.blockSignals()
let node = GatewayNode(config: config, logger: logger, services: nil)
do {
    try node.start()
} catch {
    logger.error("startup failed", ["error": .string(error.description)])
    exit(1)
}
exit(node.runUntilSignalled())
