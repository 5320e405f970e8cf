import Foundation
import Glibc
import Runtime

/// Peers whose forwarding headers (`X-Request-ID`, `X-Forwarded-For`) are believed: a list of IPv4
/// addresses and CIDR blocks (`--trusted-proxies 10.0.0.0/8,127.0.0.1`). Empty = trust no one.
public struct TrustedProxies: Sendable {
    private let blocks: [(network: UInt32, mask: UInt32)]

    /// Parses a comma list; nil when an entry is not `a.b.c.d` or `a.b.c.d/n` (0 ≤ n ≤ 32).
    public init?(_ list: String) {
        var blocks: [(UInt32, UInt32)] = []
        for raw in list.split(separator: ",") {
            let entry = raw.trimmingCharacters(in: .whitespaces)
            if entry.isEmpty { continue }
            let parts = entry.split(separator: "/", maxSplits: 1)
            guard let ip = TrustedProxies.ipv4(String(parts[0])) else { return nil }
            var bits = 32
            if parts.count == 2 {
                guard let b = Int(parts[1]), (0...32).contains(b) else { return nil }
                bits = b
            }
            let mask: UInt32 = bits == 0 ? 0 : ~UInt32(0) << UInt32(32 - bits)
            blocks.append((ip & mask, mask))
        }
        self.blocks = blocks
    }

    /// True when `address` (dotted quad) is inside one of the blocks.
    public func contains(_ address: String) -> Bool {
        guard !blocks.isEmpty, let ip = TrustedProxies.ipv4(address) else { return false }
        return blocks.contains { ip & $0.mask == $0.network }
    }

    public var isEmpty: Bool { blocks.isEmpty }

    static func ipv4(_ s: String) -> UInt32? {
        var addr = in_addr()
        guard inet_pton(AF_INET, s, &addr) == 1 else { return nil }
        return UInt32(bigEndian: addr.s_addr)
    }
}
