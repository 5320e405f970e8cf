// libFuzzer entry point for the JWT verifier (Sources/Gateway/Auth/JWT.swift). Built by Fuzz/run.sh from the
// Runtime sources and the Auth files JWT needs, compiled as one module named `Runtime` (their
// `import Runtime` is then ignored) because a SwiftPM-built Gateway cannot be linked into a libFuzzer binary.
// Two paths per input:
//  1. the bytes as a token, against an HS256 secret and an ES256 public key: any outcome but a crash;
//  2. the bytes as `header NUL claims` (or claims alone, under {"alg":"HS256","typ":"JWT"}), base64url-encoded
//     and HMAC-signed with the configured secret, so the claims checks run on arbitrary JSON: a correctly
//     signed token must never come back as a signature or encoding failure.
import COpenSSL

private let secret = Array("fuzz-secret-0123456789abcdef-0123456789".utf8)
// A public key only (no private half exists anywhere): lets ES256 tokens reach EVP_DigestVerify.
private let es256PEM = Array(
    """
    -----BEGIN PUBLIC KEY-----
    MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEfpFMp4JGmhmJpC/dEQjv9I+wygqh
    PanaTp0jnbVbFsyt6WipulMMgn8XTdzzXmRnXFTVq/b+OWEMYaVc9qY0aQ==
    -----END PUBLIC KEY-----

    """.utf8)

private let verifier: JWTVerifier = {
    let ec = try! JWTPublicKey(pem: es256PEM, kid: "ec")
    let keys = try! JWTKeySet(secret: secret, publicKeys: [ec])
    return JWTVerifier(keys: keys, issuer: nil, audience: nil, leewaySeconds: 30)
}()
private let audienceVerifier: JWTVerifier = {
    let keys = try! JWTKeySet(secret: secret, publicKeys: [])
    return JWTVerifier(keys: keys, issuer: "https://issuer.example", audience: "switchboard", leewaySeconds: 30)
}()
private let now = 1_800_000_000.0

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJWT(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))

    // 1. Raw token.
    _ = try? verifier.verify(String(decoding: bytes, as: UTF8.self), now: now)

    // 2. Signed header and claims.
    let header: ArraySlice<UInt8>
    let claims: ArraySlice<UInt8>
    if let nul = bytes.firstIndex(of: 0) {
        header = bytes[..<nul]
        claims = bytes[(nul + 1)...]
    } else {
        header = ArraySlice("{\"alg\":\"HS256\",\"typ\":\"JWT\"}".utf8)
        claims = bytes[...]
    }
    let signingInput = Base64URL.encode(header) + "." + Base64URL.encode(claims)
    let token = signingInput + "." + Base64URL.encode(hs256(Array(signingInput.utf8)))
    for v in [verifier, audienceVerifier] {
        do {
            let identity = try v.verify(token, now: now)
            _ = identity
        } catch {
            // With the standard header and a non-empty claims part the token is well formed and correctly
            // signed: only a claims failure (JSON, types, times, issuer, audience) may refuse it.
            let standardHeader = !bytes.contains(0)
            if standardHeader, !claims.isEmpty, token.utf8.count <= JWTVerifier.maxTokenBytes {
                switch error {
                case .badSignature, .algorithmNone, .unsupportedAlgorithm, .algorithmNotAllowed, .unknownKey, .unsupportedCriticalHeader:
                    preconditionFailure("a correctly signed HS256 token was refused for its signature or header: \(error)")
                case .malformed(let why) where !why.hasPrefix("claims set"):
                    preconditionFailure("a well-encoded token was refused as \(why)")
                default:
                    break
                }
            }
        }
    }

    // The JWS R||S to DER conversion on its own (ES256/ES384 signature sizes and odd ones).
    if !bytes.isEmpty, bytes.count % 2 == 0 { _ = JWTVerifier.ecdsaDER(fromRaw: bytes) }
    return 0
}

/// HMAC-SHA-256 through OpenSSL's one-shot `HMAC` (the same primitive the verifier uses).
private func hs256(_ input: [UInt8]) -> [UInt8] {
    var mac = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
    var length: UInt32 = 0
    _ = secret.withUnsafeBytes { key in
        input.withUnsafeBytes { data in
            HMAC(EVP_sha256(), key.baseAddress, Int32(key.count), data.bindMemory(to: UInt8.self).baseAddress, data.count, &mac, &length)
        }
    }
    return Array(mac.prefix(Int(length)))
}
