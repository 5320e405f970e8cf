import COpenSSL
import Foundation
import Runtime

/// Why a token was refused. Every case answers 401 before an upgrade and close 4002 after one; ``reason``
/// is the short text sent (it names the rule, never key material).
public enum JWTError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Over ``JWTVerifier/maxTokenBytes`` bytes (refused before any decoding).
    case tooLarge(limit: Int)
    /// Not three base64url parts, a part that is not strict base64url, or a header/claims set that is not a
    /// JSON object (RFC 7515 §7.1, RFC 7519 §7.2).
    case malformed(String)
    /// `alg: none`: an unsecured JWS (RFC 7515 §A.5) is never accepted.
    case algorithmNone
    /// `alg` names an algorithm this gateway does not implement, or is missing.
    case unsupportedAlgorithm(String)
    /// `alg` is one we implement but no configured key verifies (e.g. HS256 with only public keys, which is
    /// how the RSA-public-key-as-HMAC-secret attack is refused).
    case algorithmNotAllowed(JWSAlgorithm)
    /// The header's `kid` names no configured key (RFC 7515 §4.1.4).
    case unknownKey(kid: String)
    /// The signature does not verify, or has the wrong length for `alg`.
    case badSignature
    /// The header has `crit` (RFC 7515 §4.1.11): no extension is understood here, so the token must be refused.
    case unsupportedCriticalHeader
    /// `exp` + leeway is in the past (RFC 7519 §4.1.4).
    case expired
    /// `nbf` − leeway is in the future (RFC 7519 §4.1.5).
    case notYetValid
    /// `iat` − leeway is in the future (RFC 7519 §4.1.6).
    case issuedInFuture
    /// `iss` is missing or differs from `--jwt-issuer` (RFC 7519 §4.1.1).
    case wrongIssuer
    /// `aud` is missing or does not contain `--jwt-audience` (RFC 7519 §4.1.3).
    case wrongAudience
    /// A required claim is absent (`sub`).
    case missingClaim(String)
    /// A claim has the wrong JSON type (e.g. `exp` a string, `rooms` not an array of strings).
    case invalidClaim(String)

    /// Short text for the 401 body, the close reason and logs, e.g. "token expired".
    public var reason: String {
        switch self {
        case .tooLarge(let limit): "token over \(limit) bytes"
        case .malformed(let why): "malformed token: \(why)"
        case .algorithmNone: "alg none is not accepted"
        case .unsupportedAlgorithm(let alg): "unsupported alg '\(alg.utf8.count <= 16 ? alg : String(alg.prefix(16)))'"
        case .algorithmNotAllowed(let alg): "alg \(alg.rawValue) is not configured"
        case .unknownKey: "unknown kid"
        case .badSignature: "bad signature"
        case .unsupportedCriticalHeader: "crit header is not supported"
        case .expired: "token expired"
        case .notYetValid: "token not yet valid"
        case .issuedInFuture: "token issued in the future"
        case .wrongIssuer: "wrong issuer"
        case .wrongAudience: "wrong audience"
        case .missingClaim(let c): "missing claim '\(c)'"
        case .invalidClaim(let c): "invalid claim '\(c)'"
        }
    }

    /// Same as ``reason``.
    public var description: String { reason }

    /// A short label for metrics and logs: "expired", "bad_signature", ….
    public var label: String {
        switch self {
        case .tooLarge: "too_large"
        case .malformed: "malformed"
        case .algorithmNone: "alg_none"
        case .unsupportedAlgorithm: "unsupported_alg"
        case .algorithmNotAllowed: "alg_not_allowed"
        case .unknownKey: "unknown_kid"
        case .badSignature: "bad_signature"
        case .unsupportedCriticalHeader: "crit"
        case .expired: "expired"
        case .notYetValid: "not_yet_valid"
        case .issuedInFuture: "iat_future"
        case .wrongIssuer: "wrong_issuer"
        case .wrongAudience: "wrong_audience"
        case .missingClaim: "missing_claim"
        case .invalidClaim: "invalid_claim"
        }
    }
}

/// Verifies JWS-compact JWTs (RFC 7519 §7.2, RFC 7515 §5.2) with OpenSSL's EVP API and turns the claims into
/// an ``AuthIdentity``.
///
/// Order of checks: size, three strict base64url parts, header JSON, `crit`, `alg` (never `none`, only one
/// a configured key verifies), key by `kid`, signature (HMAC compared in constant time; RSA PKCS#1 v1.5 and
/// ECDSA through `EVP_DigestVerify`, the JWS `R||S` signature converted to DER first), then — only once the
/// signature holds — the claims: `exp`, `nbf`, `iat` (each with the leeway), `iss`, `aud`, `sub`, the rooms
/// and publish claims. `aud` is checked only when an audience is configured; `exp` is optional (RFC 7519
/// §4.1.4) but, when present, bounds the session.
public struct JWTVerifier: Sendable {
    /// Largest token accepted, in bytes (16 KiB): bigger ones are refused before decoding. A token in a
    /// header is already bounded by `--max-head-size`; this bounds the `auth` op.
    public static let maxTokenBytes = 16 * 1024

    /// The keys; they also decide the allowed algorithms.
    public let keys: JWTKeySet
    /// Required `iss`, nil for no check.
    public var issuer: String?
    /// Required member of `aud`, nil for no check.
    public var audience: String?
    /// Seconds of clock skew tolerated on `exp`, `nbf` and `iat` (`--jwt-leeway`, default 30 s).
    public var leewaySeconds: Double
    /// Claim listing joinable room patterns (`--rooms-claim`, default "rooms").
    public var roomsClaim: String
    /// Claim listing publishable room patterns (`--publish-claim`, default "publish").
    public var publishClaim: String
    /// Whether a token must carry a numeric `exp` (`--jwt-require-exp`, default on): a token that never
    /// expires would outlive every revocation, so it is refused with "missing claim 'exp'".
    public var requireExp: Bool

    /// A verifier over `keys` with the given claim checks.
    public init(
        keys: JWTKeySet, issuer: String? = nil, audience: String? = nil, leewaySeconds: Double = 30,
        roomsClaim: String = "rooms", publishClaim: String = "publish", requireExp: Bool = true
    ) {
        self.requireExp = requireExp
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leewaySeconds = leewaySeconds
        self.roomsClaim = roomsClaim
        self.publishClaim = publishClaim
    }

    /// Verifies `token` at `now` (Unix seconds). Errors: ``JWTError``.
    public func verify(_ token: String, now: Double) throws(JWTError) -> AuthIdentity {
        let bytes = Array(token.utf8)
        guard bytes.count <= Self.maxTokenBytes else { throw .tooLarge(limit: Self.maxTokenBytes) }
        guard !bytes.isEmpty else { throw .malformed("empty") }
        var dots: [Int] = []
        for (i, b) in bytes.enumerated() where b == UInt8(ascii: ".") {
            dots.append(i)
            if dots.count > 2 { throw .malformed("more than three parts") }
        }
        guard dots.count == 2 else { throw .malformed("expected header.payload.signature") }
        let headerPart = bytes[0..<dots[0]]
        let payloadPart = bytes[(dots[0] + 1)..<dots[1]]
        let signaturePart = bytes[(dots[1] + 1)...]
        guard !headerPart.isEmpty, !payloadPart.isEmpty else { throw .malformed("empty header or payload") }

        guard let headerBytes = Base64URL.decode(bytes: headerPart) else { throw .malformed("header is not base64url") }
        let header = try Self.jsonObject(headerBytes, "header")
        if header["crit"] != nil { throw .unsupportedCriticalHeader }
        guard let algValue = header["alg"] else { throw .unsupportedAlgorithm("") }
        guard let algName = algValue as? String else { throw .malformed("alg is not a string") }
        if algName.lowercased() == "none" { throw .algorithmNone }
        guard let alg = JWSAlgorithm(rawValue: algName) else { throw .unsupportedAlgorithm(algName) }
        guard keys.allowedAlgorithms.contains(alg) else { throw .algorithmNotAllowed(alg) }
        var kid: String?
        if let k = header["kid"] {
            guard let s = k as? String else { throw .malformed("kid is not a string") }
            kid = s
        }
        guard let signature = Base64URL.decode(bytes: signaturePart), !signature.isEmpty else {
            throw .malformed("signature is not base64url")
        }
        let signingInput = bytes[0..<dots[1]]
        try verifySignature(alg: alg, kid: kid, signingInput: signingInput, signature: signature)

        guard let payloadBytes = Base64URL.decode(bytes: payloadPart) else { throw .malformed("payload is not base64url") }
        let claims = try Self.jsonObject(payloadBytes, "claims set")
        return try identity(from: claims, now: now)
    }

    // MARK: - Signature

    private func verifySignature(alg: JWSAlgorithm, kid: String?, signingInput: ArraySlice<UInt8>, signature: [UInt8]) throws(JWTError) {
        switch alg.family {
        case .hmac:
            guard let secret = keys.secret else { throw .algorithmNotAllowed(alg) }
            guard signature.count == alg.digestLength, Self.hmacMatches(alg, secret, signingInput, signature) else { throw .badSignature }
        case .rsa, .ecdsa:
            let candidates = keys.candidates(for: alg, kid: kid)
            guard !candidates.isEmpty else {
                if let kid { throw .unknownKey(kid: kid) }
                throw .algorithmNotAllowed(alg)
            }
            var der = signature
            if alg.family == .ecdsa {
                guard signature.count == 2 * alg.ecCoordinateLength, let d = Self.ecdsaDER(fromRaw: signature) else { throw .badSignature }
                der = d
            }
            for key in candidates where Self.digestVerify(alg, key, signingInput, der) { return }
            throw .badSignature
        }
    }

    private static func hmacMatches(_ alg: JWSAlgorithm, _ secret: [UInt8], _ input: ArraySlice<UInt8>, _ signature: [UInt8]) -> Bool {
        var mac = [UInt8](repeating: 0, count: 64)
        var macLength: UInt32 = 0
        let ok = secret.withUnsafeBytes { key in
            input.withUnsafeBytes { data in
                HMAC(alg.digest, key.baseAddress, Int32(key.count), data.bindMemory(to: UInt8.self).baseAddress, data.count, &mac, &macLength) != nil
            }
        }
        defer { ERR_clear_error() }
        guard ok, Int(macLength) == signature.count else { return false }
        return CRYPTO_memcmp(mac, signature, signature.count) == 0
    }

    private static func digestVerify(_ alg: JWSAlgorithm, _ key: JWTPublicKey, _ input: ArraySlice<UInt8>, _ signature: [UInt8]) -> Bool {
        guard let ctx = EVP_MD_CTX_new() else { return false }
        defer {
            EVP_MD_CTX_free(ctx)
            ERR_clear_error()
        }
        guard EVP_DigestVerifyInit(ctx, nil, alg.digest, nil, key.pkey) == 1 else { return false }
        return signature.withUnsafeBufferPointer { sig in
            input.withUnsafeBytes { data in
                EVP_DigestVerify(ctx, sig.baseAddress, sig.count, data.bindMemory(to: UInt8.self).baseAddress, data.count) == 1
            }
        }
    }

    /// DER `ECDSA-Sig-Value` for a JWS ECDSA signature `R || S` (RFC 7518 §3.4), via `ECDSA_SIG_set0` and
    /// `i2d_ECDSA_SIG`; nil on an OpenSSL failure.
    static func ecdsaDER(fromRaw raw: [UInt8]) -> [UInt8]? {
        let n = raw.count / 2
        guard let sig = ECDSA_SIG_new() else { return nil }
        defer { ECDSA_SIG_free(sig) }
        let (r, s): (OpaquePointer?, OpaquePointer?) = raw.withUnsafeBufferPointer { p in
            (BN_bin2bn(p.baseAddress, Int32(n), nil), BN_bin2bn(p.baseAddress! + n, Int32(n), nil))
        }
        guard let r, let s else {
            BN_free(r)
            BN_free(s)
            return nil
        }
        guard ECDSA_SIG_set0(sig, r, s) == 1 else {
            BN_free(r)
            BN_free(s)
            return nil
        }
        let length = i2d_ECDSA_SIG(sig, nil)
        guard length > 0 else { return nil }
        var der = [UInt8](repeating: 0, count: Int(length))
        let written = der.withUnsafeMutableBufferPointer { buf -> Int32 in
            var p: UnsafeMutablePointer<UInt8>? = buf.baseAddress
            return i2d_ECDSA_SIG(sig, &p)
        }
        return written == length ? der : nil
    }

    // MARK: - Claims

    private func identity(from claims: [String: Any], now: Double) throws(JWTError) -> AuthIdentity {
        let exp = try Self.numericDate(claims, "exp")
        if exp == nil && requireExp { throw .missingClaim("exp") }
        if let exp, now > exp + leewaySeconds { throw .expired }
        if let nbf = try Self.numericDate(claims, "nbf"), now + leewaySeconds < nbf { throw .notYetValid }
        if let iat = try Self.numericDate(claims, "iat"), now + leewaySeconds < iat { throw .issuedInFuture }
        if let issuer {
            guard let iss = claims["iss"] as? String, iss == issuer else { throw .wrongIssuer }
        }
        if let audience {
            switch claims["aud"] {
            case let s as String: guard s == audience else { throw .wrongAudience }
            case let a as [Any]: guard a.contains(where: { ($0 as? String) == audience }) else { throw .wrongAudience }
            default: throw .wrongAudience
            }
        }
        guard let subValue = claims["sub"] else { throw .missingClaim("sub") }
        guard let sub = subValue as? String, !sub.isEmpty, sub.utf8.count <= 256 else { throw .invalidClaim("sub") }
        let rooms = try Self.patterns(claims, roomsClaim)
        let publish = try Self.patterns(claims, publishClaim)
        return AuthIdentity(user: sub, rooms: rooms, publish: publish, expiresAt: exp)
    }

    /// A NumericDate claim (RFC 7519 §2): a JSON number of seconds, never a boolean or a string.
    static func numericDate(_ claims: [String: Any], _ name: String) throws(JWTError) -> Double? {
        guard let v = claims[name], !(v is NSNull) else { return nil }
        guard let d = jsonNumber(v), d.isFinite else { throw .invalidClaim(name) }
        return d
    }

    /// A patterns claim: an array of strings, or one string; absent means none. At most 1,000 patterns.
    static func patterns(_ claims: [String: Any], _ name: String) throws(JWTError) -> [String] {
        guard let v = claims[name], !(v is NSNull) else { return [] }
        if let s = v as? String { return [s] }
        if let strings = v as? [String] {  // the usual case, in one cast
            guard strings.count <= 1000 else { throw .invalidClaim(name) }
            return strings
        }
        guard let a = v as? [Any], a.count <= 1000 else { throw .invalidClaim(name) }
        var out: [String] = []
        out.reserveCapacity(a.count)
        for e in a {
            guard let s = e as? String else { throw .invalidClaim(name) }
            out.append(s)
        }
        return out
    }

    static func jsonObject(_ bytes: [UInt8], _ what: String) throws(JWTError) -> [String: Any] {
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(bytes), options: [])
        } catch {
            throw .malformed("\(what) is not JSON")
        }
        guard let object = parsed as? [String: Any] else { throw .malformed("\(what) is not a JSON object") }
        return object
    }
}

/// The numeric value of a JSONSerialization number; nil for booleans (which are NSNumbers too on Linux)
/// and for anything else.
func jsonNumber(_ value: Any) -> Double? {
    guard let n = value as? NSNumber, !(value is String) else { return nil }
    if type(of: n) == booleanNumberClass { return nil }
    return n.doubleValue
}

private let booleanNumberClass: AnyClass = type(of: NSNumber(value: true))
