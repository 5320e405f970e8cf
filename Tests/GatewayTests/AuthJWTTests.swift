import Foundation
import Runtime
import Testing

@testable import Gateway

/// Every JWT rule with real tokens signed by OpenSSL (HS256/384/512, RS256/384/512, ES256/384): RFC 7519 §7.2,
/// RFC 7515 §5.2, RFC 7518 §3.
@Suite struct AuthJWTTests {
    let keys = TestKeys.shared

    func verifier(
        secret: Bool = true, rsa: Bool = true, ec: Bool = true, kids: Bool = false,
        issuer: String? = nil, audience: String? = nil, leeway: Double = 30
    ) throws -> JWTVerifier {
        var pub: [JWTPublicKey] = []
        if rsa { pub.append(try JWTPublicKey(path: keys.rsaPublic, kid: kids ? "rsa-1" : nil)) }
        if ec {
            pub.append(try JWTPublicKey(path: keys.ecPublic, kid: kids ? "ec-1" : nil))
            pub.append(try JWTPublicKey(path: keys.ec384Public, kid: kids ? "ec384-1" : nil))
        }
        let set = try JWTKeySet(secret: secret ? Array(keys.secret.utf8) : nil, publicKeys: pub)
        return JWTVerifier(keys: set, issuer: issuer, audience: audience, leewaySeconds: leeway)
    }

    func error(_ v: JWTVerifier, _ token: String) -> JWTError? {
        do {
            _ = try v.verify(token, now: Date().timeIntervalSince1970)
            return nil
        } catch {
            return error
        }
    }

    @Test(arguments: ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384"])
    func validTokenOfEveryAlgorithmVerifies(alg: String) throws {
        let v = try verifier()
        let id = try v.verify(TokenFactory.make(alg: alg), now: Date().timeIntervalSince1970)
        #expect(id.user == "alice")
        #expect(id.mayJoin("lobby") && id.mayJoin("user:alice") && id.mayJoin("stream:42"))
        #expect(!id.mayJoin("user:bob") && !id.mayJoin("stream:42:x") && !id.mayJoin("other"))
        #expect(id.mayPublish("lobby") && !id.mayPublish("stream:42"))
        #expect(id.expiresAt != nil)
    }

    @Test func expiredNotYetValidAndFutureIatAreRefusedOutsideTheLeeway() throws {
        let v = try verifier(leeway: 30)
        let now = TokenFactory.now
        #expect(error(v, TokenFactory.make(claims: TokenFactory.claims(exp: now - 3600))) == .expired)
        #expect(error(v, TokenFactory.make(alg: "ES256", claims: TokenFactory.claims(exp: now - 3600))) == .expired)
        #expect(error(v, TokenFactory.make(claims: TokenFactory.claims(exp: now - 10))) == nil, "inside the leeway")
        #expect(error(v, TokenFactory.make(claims: TokenFactory.claims(extra: ["nbf": now + 3600]))) == .notYetValid)
        #expect(error(v, TokenFactory.make(claims: TokenFactory.claims(extra: ["nbf": now + 10]))) == nil)
        #expect(error(v, TokenFactory.make(claims: TokenFactory.claims(extra: ["iat": now + 3600]))) == .issuedInFuture)
        #expect(error(v, TokenFactory.make(claims: TokenFactory.claims(extra: ["exp": "tomorrow"]))) == .invalidClaim("exp"))
        #expect(error(v, TokenFactory.make(claims: TokenFactory.claims(extra: ["exp": true]))) == .invalidClaim("exp"))
        let strict = try verifier(leeway: 0)
        #expect(error(strict, TokenFactory.make(claims: TokenFactory.claims(exp: now - 10))) == .expired)
    }

    @Test func wrongSignatureIsRefusedForEveryFamily() throws {
        let v = try verifier()
        for alg in ["HS256", "RS256", "ES256", "ES384"] {
            #expect(error(v, TokenFactory.tamperSignature(TokenFactory.make(alg: alg))) == .badSignature, "\(alg)")
        }
        // Signed with another key of the right type.
        #expect(error(v, TokenFactory.make(alg: "HS256", key: "another-secret-0123456789-abcdefghijkl")) == .badSignature)
        #expect(error(v, TokenFactory.make(alg: "RS256", key: keys.rsa2Private)) == .badSignature)
        // Claims changed after signing.
        let t = TokenFactory.make(alg: "ES256").split(separator: ".")
        let forged = t[0] + "." + TokenFactory.json(TokenFactory.claims(sub: "admin", rooms: ["**"])) + "." + t[2]
        #expect(error(v, String(forged)) == .badSignature)
        // An ECDSA signature of the wrong length (DER instead of R||S) never reaches OpenSSL as valid.
        #expect(error(v, String(t[0] + "." + t[1] + "." + TokenFactory.b64(Array(repeating: 7, count: 70)))) == .badSignature)
    }

    @Test func algNoneAndUnconfiguredAlgorithmsAreRefused() throws {
        let v = try verifier(secret: false)
        let body = TokenFactory.json(TokenFactory.claims())
        for none in ["none", "None", "NONE"] {
            #expect(error(v, TokenFactory.json(["alg": none]) + "." + body + ".") == .algorithmNone)
            #expect(error(v, TokenFactory.json(["alg": none]) + "." + body + ".c2ln") == .algorithmNone)
        }
        // HS256 with only public keys configured: refused before any HMAC is computed.
        #expect(error(v, TokenFactory.make(alg: "HS256")) == .algorithmNotAllowed(.hs256))
        // The classic confusion: HMAC keyed with the RSA public key's PEM text.
        let pem = try String(contentsOfFile: keys.rsaPublic, encoding: .utf8)
        #expect(error(v, TokenFactory.make(alg: "HS256", key: pem)) == .algorithmNotAllowed(.hs256))
        let withSecret = try verifier(secret: true)
        #expect(error(withSecret, TokenFactory.make(alg: "HS256", key: pem)) == .badSignature)
        // Algorithms we do not implement, and a missing alg.
        #expect(error(v, TokenFactory.json(["alg": "PS256"]) + "." + body + ".c2ln") == .unsupportedAlgorithm("PS256"))
        #expect(error(v, TokenFactory.json(["typ": "JWT"]) + "." + body + ".c2ln") == .unsupportedAlgorithm(""))
        #expect(error(v, TokenFactory.json(["alg": 256]) + "." + body + ".c2ln") == .malformed("alg is not a string"))
        // ES256 token while only an RSA key exists.
        let rsaOnly = try verifier(secret: false, rsa: true, ec: false)
        #expect(error(rsaOnly, TokenFactory.make(alg: "ES256")) == .algorithmNotAllowed(.es256))
        // ES384 signature presented as ES256 (wrong alg for the key size).
        let es384 = TokenFactory.make(alg: "ES384").split(separator: ".")
        let relabeled = TokenFactory.json(["alg": "ES256", "typ": "JWT"]) + "." + es384[1] + "." + es384[2]
        #expect(error(v, relabeled) == .badSignature)
    }

    @Test func kidSelectsTheKeyAndUnknownKidIsRefused() throws {
        let rsa1 = try JWTPublicKey(path: keys.rsaPublic, kid: "2024")
        let rsa2 = try JWTPublicKey(path: keys.rsa2Public, kid: "2025")
        let v = JWTVerifier(keys: try JWTKeySet(secret: nil, publicKeys: [rsa1, rsa2]))
        let now = Date().timeIntervalSince1970
        // Rotation: tokens from both keys verify while both are configured.
        #expect(try v.verify(TokenFactory.make(alg: "RS256", kid: "2024"), now: now).user == "alice")
        #expect(try v.verify(TokenFactory.make(alg: "RS256", kid: "2025", key: keys.rsa2Private), now: now).user == "alice")
        #expect(error(v, TokenFactory.make(alg: "RS256", kid: "2026")) == .unknownKey(kid: "2026"))
        // The kid picks the key: signed by key 1 but labelled with key 2's kid.
        #expect(error(v, TokenFactory.make(alg: "RS256", kid: "2025")) == .badSignature)
        // No kid: every key of the type is tried.
        #expect(try v.verify(TokenFactory.make(alg: "RS256", key: keys.rsa2Private), now: now).user == "alice")
        #expect(error(v, TokenFactory.make(alg: "RS256", header: ["kid": 7])) == .malformed("kid is not a string"))
        #expect(throws: JWTKeyError.self) { try JWTKeySet(secret: nil, publicKeys: [rsa1, try JWTPublicKey(path: keys.rsa2Public, kid: "2024")]) }
    }

    @Test func malformedTruncatedAndOversizedTokensAreRefused() throws {
        let v = try verifier()
        let good = TokenFactory.make(alg: "ES256")
        let parts = good.split(separator: ".").map(String.init)
        let cases: [(String, JWTError)] = [
            ("", .malformed("empty")),
            ("abc", .malformed("expected header.payload.signature")),
            ("a.b", .malformed("expected header.payload.signature")),
            ("a.b.c.d", .malformed("more than three parts")),
            (".\(parts[1]).\(parts[2])", .malformed("empty header or payload")),
            ("\(parts[0])!.\(parts[1]).\(parts[2])", .malformed("header is not base64url")),
            ("\(parts[0])=.\(parts[1]).\(parts[2])", .malformed("header is not base64url")),
            ("\(parts[0]).\(parts[1]).\(parts[2])+/", .malformed("signature is not base64url")),
            ("\(parts[0]).\(parts[1]).", .malformed("signature is not base64url")),
            ("\(TokenFactory.b64(Array("not json".utf8))).\(parts[1]).\(parts[2])", .malformed("header is not JSON")),
            ("\(TokenFactory.b64(Array("[1,2]".utf8))).\(parts[1]).\(parts[2])", .malformed("header is not a JSON object")),
            (String(good.dropLast(4)), .badSignature),
            (String(good.dropLast(5)), .malformed("signature is not base64url")),
            (String(good.prefix(good.count / 2)), .malformed("expected header.payload.signature")),
            (String(repeating: "a", count: 100 * 1024), .tooLarge(limit: JWTVerifier.maxTokenBytes)),
            (good + String(repeating: "A", count: 100 * 1024), .tooLarge(limit: JWTVerifier.maxTokenBytes))
        ]
        for (token, expected) in cases {
            #expect(error(v, token) == expected, "\(token.prefix(60))")
        }
        // Payload that is not JSON but correctly signed (only reachable with the key): still refused.
        let h = TokenFactory.json(["alg": "HS256"])
        let p = TokenFactory.b64(Array("nope".utf8))
        let sig = TokenFactory.b64(TokenFactory.hmac("HS256", keys.secret, h + "." + p))
        #expect(error(v, h + "." + p + "." + sig) == .malformed("claims set is not JSON"))
        // Random bytes in every position never crash the verifier.
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            var bytes = Array(good.utf8)
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0x20...0x7E, using: &rng)
            }
            if Bool.random(using: &rng) { bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &rng))) }
            _ = error(v, String(decoding: bytes, as: UTF8.self))
        }
    }

    @Test func critHeaderIssuerAudienceAndSubjectRules() throws {
        let v = try verifier(issuer: "https://issuer.example", audience: "switchboard")
        let ok = TokenFactory.claims(extra: ["iss": "https://issuer.example", "aud": ["other", "switchboard"]])
        #expect(error(v, TokenFactory.make(claims: ok)) == nil)
        #expect(error(v, TokenFactory.make(claims: TokenFactory.claims(extra: ["iss": "https://issuer.example", "aud": "switchboard"]))) == nil)
        #expect(error(v, TokenFactory.make(claims: ok, header: ["crit": ["exp"]])) == .unsupportedCriticalHeader)
        #expect(error(v, TokenFactory.make(claims: TokenFactory.claims(extra: ["iss": "evil", "aud": "switchboard"]))) == .wrongIssuer)
        #expect(error(v, TokenFactory.make(claims: TokenFactory.claims(extra: ["aud": "switchboard"]))) == .wrongIssuer)
        #expect(error(v, TokenFactory.make(claims: TokenFactory.claims(extra: ["iss": "https://issuer.example", "aud": "other"]))) == .wrongAudience)
        #expect(error(v, TokenFactory.make(claims: TokenFactory.claims(extra: ["iss": "https://issuer.example"]))) == .wrongAudience)
        let plain = try verifier()
        #expect(error(plain, TokenFactory.make(claims: TokenFactory.claims(extra: ["sub": nil]))) == .missingClaim("sub"))
        #expect(error(plain, TokenFactory.make(claims: TokenFactory.claims(extra: ["sub": ""]))) == .invalidClaim("sub"))
        #expect(error(plain, TokenFactory.make(claims: TokenFactory.claims(extra: ["sub": 42]))) == .invalidClaim("sub"))
        #expect(error(plain, TokenFactory.make(claims: TokenFactory.claims(extra: ["rooms": [1, 2]]))) == .invalidClaim("rooms"))
        #expect(error(plain, TokenFactory.make(claims: TokenFactory.claims(extra: ["publish": ["a": 1]]))) == .invalidClaim("publish"))
        // A token without exp (or with "exp": null) is refused by default (--jwt-require-exp); with the check off it
        // is accepted (RFC 7519 §4.1.4: optional) and never expires on the connection.
        #expect(error(plain, TokenFactory.make(claims: TokenFactory.claims(exp: nil))) == .missingClaim("exp"))
        #expect(error(plain, TokenFactory.make(claims: TokenFactory.claims(extra: ["exp": NSNull()]))) == .missingClaim("exp"))
        var lax = plain
        lax.requireExp = false
        #expect(try lax.verify(TokenFactory.make(claims: TokenFactory.claims(exp: nil)), now: Date().timeIntervalSince1970).expiresAt == nil)
        // No rooms claim: nothing may be joined.
        let bare = try plain.verify(TokenFactory.make(claims: TokenFactory.claims(extra: ["rooms": nil, "publish": nil])), now: Date().timeIntervalSince1970)
        #expect(!bare.mayJoin("lobby") && !bare.mayPublish("lobby"))
    }

    @Test func customClaimNames() throws {
        let set = try JWTKeySet(secret: Array(keys.secret.utf8), publicKeys: [])
        let v = JWTVerifier(keys: set, roomsClaim: "sb_rooms", publishClaim: "sb_pub")
        let t = TokenFactory.make(claims: TokenFactory.claims(rooms: [], publish: [], extra: ["sb_rooms": ["a:*"], "sb_pub": "a:1"]))
        let id = try v.verify(t, now: Date().timeIntervalSince1970)
        #expect(id.mayJoin("a:7") && !id.mayJoin("lobby") && id.mayPublish("a:1") && !id.mayPublish("a:2"))
    }

    @Test func keyLoadingRefusesWhatCannotBeUsedSafely() throws {
        #expect(throws: JWTKeyError.self) { try JWTPublicKey(path: keys.rsaSmallPublic, kid: nil) }  // RSA 1024
        #expect(throws: JWTKeyError.self) { try JWTPublicKey(path: keys.k1Public, kid: nil) }  // secp256k1
        #expect(throws: JWTKeyError.self) { try JWTPublicKey(path: keys.rsaPrivate, kid: nil) }  // a private key file
        #expect(throws: JWTKeyError.self) { try JWTPublicKey(path: "/nonexistent.pem", kid: nil) }
        #expect(throws: JWTKeyError.self) { try JWTPublicKey(pem: Array("garbage".utf8), kid: nil) }
        #expect(throws: JWTKeyError.self) { try JWTKeySet(secret: Array("short".utf8), publicKeys: []) }
        #expect(try JWTKeySet.secretBytes("base64:" + Data(repeating: 1, count: 32).base64EncodedString()) == Array(repeating: 1, count: 32))
        #expect(try JWTPublicKey(path: keys.ecPublic, kid: nil).kind == .p256)
        #expect(try JWTPublicKey(path: keys.ec384Public, kid: nil).kind == .p384)
        #expect(try JWTPublicKey(path: keys.rsaPublic, kid: nil).kind == .rsa(bits: 2048))
    }

    @Test func base64urlIsStrict() {
        #expect(Base64URL.decode("aGk") == Array("hi".utf8))
        #expect(Base64URL.decode("aGk=") == nil)
        #expect(Base64URL.decode("a") == nil)
        #expect(Base64URL.decode("a b") == nil)
        #expect(Base64URL.decode("-_8") == [0xFB, 0xFF])
        #expect(Base64URL.decode("+/8") == nil)
        #expect(Base64URL.encode([0xFB, 0xFF]) == "-_8")
    }

    @Test func roomPatterns() {
        func m(_ p: String, _ room: String, _ user: String = "alice") -> Bool { RoomPattern(p).matches(room, user: user) }
        #expect(m("lobby", "lobby") && !m("lobby", "Lobby") && !m("lobby", "lobby:x"))
        #expect(m("stream:*", "stream:1") && !m("stream:*", "stream") && !m("stream:*", "stream:1:2") && m("stream:*", "stream:"))
        #expect(m("*:chat", "team:chat") && !m("*:chat", "team:news"))
        #expect(m("org:7:**", "org:7:a") && m("org:7:**", "org:7:a:b") && !m("org:7:**", "org:7") && m("**", "anything:at:all"))
        #expect(m("user:{sub}", "user:alice") && !m("user:{sub}", "user:bob") && !m("user:{sub}", "user:alice:x"))
        #expect(m("dm:{sub}-*", "dm:alice-*") && !m("dm:{sub}-*", "dm:alice-bob"), "'*' inside a segment is literal")
        #expect(m("user:{sub}:inbox", "user:alice:inbox"))
        // A subject with ':' never matches a {sub} segment, so "a:b" cannot reach "user:a:b" (user a's room b).
        #expect(!m("user:{sub}", "user:a:b", "a:b"))
        #expect(!m("user:{sub}", "user:", ""))
    }
}
