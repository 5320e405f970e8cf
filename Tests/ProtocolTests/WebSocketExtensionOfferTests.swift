import Testing

@testable import Protocol

@Suite struct WebSocketExtensionOfferTests {
    typealias Offer = WebSocketExtensionOffer
    typealias P = WebSocketExtensionOffer.Parameter

    @Test func browserOffer() {
        #expect(Offer.parse("permessage-deflate; client_max_window_bits") == [Offer(name: "permessage-deflate", parameters: [P("client_max_window_bits")])])
    }

    @Test func severalOffersAndExtensionsInOrder() {
        let parsed = Offer.parse("x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=10;client_no_context_takeover ,permessage-deflate")
        #expect(
            parsed == [
                Offer(name: "x-webkit-deflate-frame"),
                Offer(name: "permessage-deflate", parameters: [P("server_max_window_bits", "10"), P("client_no_context_takeover")]),
                Offer(name: "permessage-deflate")
            ])
    }

    @Test func quotedValuesAreUnescapedAndMayHoldCommas() {
        #expect(Offer.parse(#"permessage-deflate; client_max_window_bits="10""#)[0].parameters == [P("client_max_window_bits", "10")])
        #expect(Offer.parse(#"a; p="1\0""#)[0].parameters == [P("p", "10")])
        // A comma inside quotes does not split the list; the value is no token, so the element is malformed.
        let parsed = Offer.parse(#"a; p="x,y", b"#)
        #expect(parsed.count == 2)
        #expect(parsed[0].name == "a" && !parsed[0].isWellFormed)
        #expect(parsed[1] == Offer(name: "b"))
    }

    @Test func whitespaceAroundSeparatorsAndEmptyElements() {
        #expect(Offer.parse(" , a ;\tp = 1 ; q ,, ") == [Offer(name: "a", parameters: [P("p", "1"), P("q")])])
        #expect(Offer.parse("") == [])
    }

    @Test func malformedElementsAreMarkedNotDropped() {
        for text in ["a;", "a; =1", "a; p=", "a; p=\"\"", "a; p=\"1", "a b", "a; p=1 2", "=x", "a; p=\"x y\""] {
            let parsed = Offer.parse(text)
            #expect(parsed.count == 1 && !parsed[0].isWellFormed, "\(text)")
        }
        // The next element after a malformed one is still read.
        #expect(Offer.parse("a; =1, permessage-deflate").last == Offer(name: "permessage-deflate"))
    }

    @Test func fieldsAreConcatenated() {
        let headers = HTTPHeaders([HTTPHeader("Sec-WebSocket-Extensions", "a"), HTTPHeader("Host", "h"), HTTPHeader("sec-websocket-extensions", "b; x")])
        #expect(Offer.parse(headers) == [Offer(name: "a"), Offer(name: "b", parameters: [P("x")])])
    }

    @Test func nameMatchIgnoresCase() {
        #expect(Offer.parse("PerMessage-Deflate")[0].hasName("permessage-deflate"))
    }
}

@Suite struct PerMessageDeflateTests {
    func negotiate(_ value: String, settings: PerMessageDeflateSettings = .init()) -> String? {
        PerMessageDeflate.negotiate(HTTPHeaders([HTTPHeader("Sec-WebSocket-Extensions", value)]), settings: settings)?.responseValue
    }

    static let base = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

    // C39 (a): the browser offer is accepted; client_max_window_bits comes back with a value.
    @Test func c39aBrowserOffer() {
        #expect(negotiate("permessage-deflate; client_max_window_bits") == Self.base + "; client_max_window_bits=15")
    }

    // C39 (b): no client_max_window_bits in the response when it was not offered.
    @Test func c39bPlainOffer() {
        let response = negotiate("permessage-deflate")
        #expect(response == Self.base)
        #expect(response?.contains("client_max_window_bits") == false)
    }

    // C39 (c): an offered client window is echoed, never raised.
    @Test func c39cClientWindowValue() {
        #expect(negotiate("permessage-deflate; client_max_window_bits=10") == Self.base + "; client_max_window_bits=10")
        #expect(negotiate(#"permessage-deflate; client_max_window_bits="8""#) == Self.base + "; client_max_window_bits=8")
    }

    // C39 (d): server_max_window_bits is accepted with the same value and used for compression.
    @Test func c39dServerWindow() {
        let headers = HTTPHeaders([HTTPHeader("Sec-WebSocket-Extensions", "permessage-deflate; server_max_window_bits=10")])
        let agreed = PerMessageDeflate.negotiate(headers)
        #expect(agreed?.responseValue == Self.base + "; server_max_window_bits=10")
        #expect(agreed?.serverMaxWindowBits == 10)
        #expect(
            negotiate("permessage-deflate; server_max_window_bits=9; client_max_window_bits") == Self.base
                + "; server_max_window_bits=9; client_max_window_bits=15")
        #expect(negotiate("permessage-deflate; server_max_window_bits=15") == Self.base + "; server_max_window_bits=15")
    }

    // C39 (e): window 8 for the server is declined (zlib has no 8-bit raw deflate), not refused.
    @Test func c39eServerWindow8IsDeclined() {
        #expect(negotiate("permessage-deflate; server_max_window_bits=8") == nil)
    }

    // C39 (f): the first acceptable offer wins.
    @Test func c39fSecondOfferAccepted() {
        #expect(
            negotiate("permessage-deflate; server_max_window_bits=8, permessage-deflate; client_max_window_bits") == Self.base + "; client_max_window_bits=15")
        #expect(
            negotiate("x-foo, permessage-deflate; foo, permessage-deflate; server_max_window_bits=12, permessage-deflate")
                == Self.base + "; server_max_window_bits=12")
    }

    // C39 (g): unknown, duplicated or out-of-range parameters decline the offer.
    @Test func c39gBadOffersAreDeclined() {
        for offer in [
            "permessage-deflate; foo=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=7",
            // More of §7.1.1 and §7.1.2:
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
            "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; server_max_window_bits=0x0f",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; client_max_window_bits=-9",
            "permessage-deflate; client_max_window_bits=",
            "permessage-deflate; server_no_context_takeover=1",
            #"permessage-deflate; client_no_context_takeover="""#,
            #"permessage-deflate; server_max_window_bits="1 0""#,
            "permessage-deflate;",
            "x-webkit-deflate-frame"
        ] {
            #expect(negotiate(offer) == nil, "\(offer)")
        }
    }

    @Test func parameterNamesIgnoreCase() {
        #expect(negotiate("Permessage-Deflate; Client_Max_Window_Bits=11; SERVER_NO_CONTEXT_TAKEOVER") == Self.base + "; client_max_window_bits=11")
        // Case-folded duplicates are duplicates.
        #expect(negotiate("permessage-deflate; client_no_context_takeover; CLIENT_NO_CONTEXT_TAKEOVER") == nil)
    }

    @Test func offersAcrossSeveralFields() {
        let headers = HTTPHeaders([
            HTTPHeader("Sec-WebSocket-Extensions", "permessage-deflate; bogus"),
            HTTPHeader("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits=12")
        ])
        #expect(PerMessageDeflate.negotiate(headers)?.clientMaxWindowBits == 12)
    }

    @Test func disabledOrAbsent() {
        #expect(negotiate("permessage-deflate", settings: .init(isEnabled: false)) == nil)
        #expect(PerMessageDeflate.negotiate(HTTPHeaders()) == nil)
        #expect(negotiate("x-other; a=1") == nil)
    }

    @Test func thresholdDecidesWhatIsCompressed() {
        let settings = PerMessageDeflateSettings(threshold: 100)
        #expect(!settings.shouldCompress(payloadLength: 99))
        #expect(settings.shouldCompress(payloadLength: 100))
        #expect(!PerMessageDeflateSettings(isEnabled: false, threshold: 0).shouldCompress(payloadLength: 5000))
    }

    @Test func responseHeaderGoesIntoTheHandshake() throws {
        let agreed = try #require(PerMessageDeflate.negotiate(HTTPHeaders([HTTPHeader("Sec-WebSocket-Extensions", PerMessageDeflate.clientOffer)])))
        let response = String(decoding: WebSocketHandshake(key: "dGhlIHNhbXBsZSBub25jZQ==").response(extraHeaders: [agreed.responseHeader]), as: UTF8.self)
        #expect(response.contains("\r\nSec-WebSocket-Extensions: " + Self.base + "; client_max_window_bits=15\r\n"))
    }

    @Test func compressionWindowForSmallWindowPeers() {
        let wide = PerMessageDeflate()
        #expect(wide.compressionWindowBits(payloadLength: 1 << 20) == 15)
        let narrow = PerMessageDeflate(serverMaxWindowBits: 10)
        #expect(narrow.compressionWindowBits(payloadLength: 1024) == 15)
        #expect(narrow.compressionWindowBits(payloadLength: 1025) == 10)
    }

    // Client side: what our own clients accept back.
    @Test func clientAcceptsOurResponses() throws {
        for offer in ["permessage-deflate; client_max_window_bits", "permessage-deflate; server_max_window_bits=9"] {
            let agreed = try #require(PerMessageDeflate.negotiate(HTTPHeaders([HTTPHeader("Sec-WebSocket-Extensions", offer)])))
            let back = try PerMessageDeflate.acceptResponse(HTTPHeaders([agreed.responseHeader]))
            #expect(back == agreed)
        }
        #expect(try PerMessageDeflate.acceptResponse(HTTPHeaders()) == nil)
    }

    @Test func clientRejectsBadResponses() {
        func reject(_ value: String) -> PerMessageDeflateResponseError? {
            do {
                _ = try PerMessageDeflate.acceptResponse(HTTPHeaders([HTTPHeader("Sec-WebSocket-Extensions", value)]))
                return nil
            } catch { return error }
        }
        #expect(reject("x-foo") == .unexpectedExtension)
        #expect(reject("permessage-deflate, permessage-deflate") == .unexpectedExtension)
        #expect(reject("permessage-deflate; client_max_window_bits") == .invalidParameter("client_max_window_bits"))
        #expect(reject("permessage-deflate; server_max_window_bits=16") == .invalidParameter("server_max_window_bits"))
        #expect(reject("permessage-deflate; foo") == .invalidParameter("foo"))
        #expect(reject("permessage-deflate; server_no_context_takeover; server_no_context_takeover") == .invalidParameter("server_no_context_takeover"))
    }
}
