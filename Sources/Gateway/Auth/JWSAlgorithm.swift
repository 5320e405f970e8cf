import COpenSSL
import Runtime

/// A JWS signature algorithm this gateway verifies (RFC 7518 §3.1). `none` is deliberately absent: an
/// unsecured JWS (RFC 7515 §A.5) is never accepted.
public enum JWSAlgorithm: String, Sendable, CaseIterable {
    /// HMAC with SHA-256, SHA-384, SHA-512 (RFC 7518 §3.2): verified with the `--jwt-secret`.
    case hs256 = "HS256"
    case hs384 = "HS384"
    case hs512 = "HS512"
    /// RSASSA-PKCS1-v1_5 with SHA-256/384/512 (RFC 7518 §3.3): verified with an RSA public key of at least 2,048 bits.
    case rs256 = "RS256"
    case rs384 = "RS384"
    case rs512 = "RS512"
    /// ECDSA P-256 with SHA-256 and P-384 with SHA-384 (RFC 7518 §3.4): verified with an EC public key on that curve.
    case es256 = "ES256"
    case es384 = "ES384"

    /// The key family an algorithm needs. Keeping families apart is what stops the "HMAC keyed with the RSA
    /// public key" confusion attack: an HS token is only ever checked against the shared secret.
    public enum Family: Sendable { case hmac, rsa, ecdsa }

    /// The key family of this algorithm.
    public var family: Family {
        switch self {
        case .hs256, .hs384, .hs512: .hmac
        case .rs256, .rs384, .rs512: .rsa
        case .es256, .es384: .ecdsa
        }
    }

    /// Bytes of the digest, and of an HMAC tag.
    var digestLength: Int {
        switch self {
        case .hs256, .rs256, .es256: 32
        case .hs384, .rs384, .es384: 48
        case .hs512, .rs512: 64
        }
    }

    /// The digest, fetched from OpenSSL's default provider once (immutable, shared across threads).
    var digest: OpaquePointer? {
        switch self {
        case .hs256, .rs256, .es256: Digests.sha256
        case .hs384, .rs384, .es384: Digests.sha384
        case .hs512, .rs512: Digests.sha512
        }
    }

    /// ES*: bytes of each of R and S in the JWS signature (RFC 7518 §3.4: 32 for P-256, 48 for P-384).
    var ecCoordinateLength: Int { self == .es384 ? 48 : 32 }
}

/// Pre-fetched digests: OpenSSL 3's implicit fetch (`EVP_sha256()`) looks the algorithm up on every use.
enum Digests {
    nonisolated(unsafe) static let sha256: OpaquePointer? = EVP_MD_fetch(nil, "SHA256", nil)
    nonisolated(unsafe) static let sha384: OpaquePointer? = EVP_MD_fetch(nil, "SHA384", nil)
    nonisolated(unsafe) static let sha512: OpaquePointer? = EVP_MD_fetch(nil, "SHA512", nil)
}
