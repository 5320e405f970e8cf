import COpenSSL
import Foundation
import Runtime

/// A key file or secret that cannot be used; the message names the key and the reason.
public struct JWTKeyError: Error, CustomStringConvertible, Sendable, Equatable {
    /// One line, e.g. "/etc/keys/a.pem: not a PEM public key".
    public let description: String
    init(_ description: String) { self.description = description }
}

/// One PEM public key (SubjectPublicKeyInfo, `-----BEGIN PUBLIC KEY-----`) held as an OpenSSL `EVP_PKEY`.
///
/// Accepted: RSA of at least 2,048 bits (RFC 7518 §3.3), EC on P-256 or P-384 (RFC 7518 §3.4). The key is
/// immutable after loading, and OpenSSL allows concurrent verification with one `EVP_PKEY`, hence Sendable.
public final class JWTPublicKey: @unchecked Sendable {
    /// What the key can verify.
    public enum Kind: Sendable, Equatable {
        /// RSA with a modulus of `bits` bits: RS256, RS384, RS512.
        case rsa(bits: Int)
        /// EC on P-256 (prime256v1): ES256.
        case p256
        /// EC on P-384 (secp384r1): ES384.
        case p384
    }

    /// The `kid` this key answers to (RFC 7515 §4.1.4), nil when it was configured without one.
    public let kid: String?
    /// The key's type and size.
    public let kind: Kind
    /// `EVP_PKEY *`, freed in deinit.
    let pkey: OpaquePointer

    /// Parses PEM text. Errors: not a PEM public key, an unsupported type or curve, RSA under 2,048 bits.
    public init(pem: [UInt8], kid: String?, name: String = "key") throws(JWTKeyError) {
        guard !pem.isEmpty, pem.count < 1 << 20 else { throw JWTKeyError("\(name): empty or oversized key file") }
        let key: OpaquePointer? = pem.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PUBKEY(bio, nil, nil, nil)
        }
        ERR_clear_error()
        guard let key else { throw JWTKeyError("\(name): not a PEM public key (expected -----BEGIN PUBLIC KEY-----)") }
        let kind: Kind
        switch EVP_PKEY_get_base_id(key) {
        case EVP_PKEY_RSA:
            let bits = Int(EVP_PKEY_get_bits(key))
            guard bits >= 2048 else {
                EVP_PKEY_free(key)
                throw JWTKeyError("\(name): RSA key of \(bits) bits; RFC 7518 §3.3 requires at least 2048")
            }
            kind = .rsa(bits: bits)
        case EVP_PKEY_EC:
            var buf = [CChar](repeating: 0, count: 64)
            var len = 0
            _ = EVP_PKEY_get_group_name(key, &buf, buf.count, &len)
            let group = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            switch group {
            case "prime256v1", "P-256": kind = .p256
            case "secp384r1", "P-384": kind = .p384
            default:
                EVP_PKEY_free(key)
                throw JWTKeyError("\(name): EC curve '\(group)' is not supported (P-256 for ES256, P-384 for ES384)")
            }
        default:
            EVP_PKEY_free(key)
            throw JWTKeyError("\(name): only RSA and EC (P-256, P-384) public keys are supported")
        }
        self.pkey = key
        self.kid = kid
        self.kind = kind
    }

    /// Reads and parses the PEM file at `path`. Errors: unreadable file, or as ``init(pem:kid:name:)``.
    public convenience init(path: String, kid: String?) throws(JWTKeyError) {
        guard let data = FileManager.default.contents(atPath: path) else { throw JWTKeyError("\(path): cannot read the key file") }
        try self.init(pem: [UInt8](data), kid: kid, name: path)
    }

    deinit { EVP_PKEY_free(pkey) }

    /// Whether this key verifies `alg` (RSA keys RS*, P-256 ES256, P-384 ES384).
    public func supports(_ alg: JWSAlgorithm) -> Bool {
        switch (kind, alg) {
        case (.rsa, .rs256), (.rsa, .rs384), (.rsa, .rs512), (.p256, .es256), (.p384, .es384): true
        default: false
        }
    }
}

/// The verification keys of a node: an optional HMAC secret (`--jwt-secret`) and PEM public keys
/// (`--jwt-public-key`, repeatable, `kid=path` for rotation). The algorithms a token may use follow from
/// the keys: HS256/384/512 with a secret, RS* with an RSA key, ES256 with a P-256 key, ES384 with a P-384 key.
public final class JWTKeySet: Sendable {
    /// The HMAC key bytes, nil without `--jwt-secret`.
    public let secret: [UInt8]?
    /// Public keys in configuration order.
    public let publicKeys: [JWTPublicKey]
    /// Every algorithm some configured key verifies.
    public let allowedAlgorithms: Set<JWSAlgorithm>

    /// Builds the set. Errors: a secret shorter than 32 bytes (RFC 7518 §3.2: an HMAC key must be at least as
    /// long as the SHA-256 output), duplicate `kid`s.
    public init(secret: [UInt8]?, publicKeys: [JWTPublicKey]) throws(JWTKeyError) {
        if let secret, secret.count < 32 {
            throw JWTKeyError("--jwt-secret: \(secret.count) bytes; RFC 7518 §3.2 requires at least 32 (256 bits) for HS256")
        }
        var seen = Set<String>()
        for k in publicKeys {
            if let kid = k.kid, !seen.insert(kid).inserted { throw JWTKeyError("--jwt-public-key: kid '\(kid)' given twice") }
        }
        self.secret = secret
        self.publicKeys = publicKeys
        var algs = Set<JWSAlgorithm>()
        if secret != nil { algs.formUnion([.hs256, .hs384, .hs512]) }
        for k in publicKeys { algs.formUnion(JWSAlgorithm.allCases.filter { k.supports($0) }) }
        self.allowedAlgorithms = algs
    }

    /// Keys to try for an asymmetric `alg` and the token's `kid`: a token with a `kid` is checked against the
    /// key with that `kid` and against keys configured without one; a token without `kid` against every key
    /// of the right type. Empty when no key fits.
    func candidates(for alg: JWSAlgorithm, kid: String?) -> [JWTPublicKey] {
        publicKeys.filter { key in
            guard key.supports(alg) else { return false }
            guard let kid, let keyKid = key.kid else { return true }
            return kid == keyKid
        }
    }

    /// Whether some key carries `kid`.
    func hasKey(kid: String) -> Bool { publicKeys.contains { $0.kid == kid } }

    /// Parses `--jwt-secret`: the UTF-8 bytes as given, or the decoded bytes after a `base64:` prefix.
    public static func secretBytes(_ text: String) throws(JWTKeyError) -> [UInt8] {
        guard text.hasPrefix("base64:") else { return Array(text.utf8) }
        let b64 = String(text.dropFirst(7))
        if let d = Data(base64Encoded: b64) { return [UInt8](d) }
        if let d = Base64URL.decode(b64) { return d }
        throw JWTKeyError("--jwt-secret: the text after 'base64:' is not Base64")
    }
}
