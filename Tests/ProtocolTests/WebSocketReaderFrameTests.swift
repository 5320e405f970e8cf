import Testing

@testable import Protocol

/// Every data frame is reported (so a caller can count continuations against a frame rate) and a
/// message's fragment count is bounded (issue 11, "every inbound frame counts").
@Suite struct WebSocketReaderFrameTests {
    /// What the reader reported, in order: data frame headers and events.
    enum Report: Equatable {
        case frame(Opcode, fin: Bool, length: UInt64, index: Int)
        case event(Event)
    }

    func run(_ pieces: [[UInt8]], maxFragments: Int = 1000, refuseFrame: Int? = nil) -> (reports: [Report], error: ProtocolError?) {
        var reader = WebSocketReader(role: .server, maxFragments: maxFragments)
        var reports: [Report] = []
        var frames = 0
        do {
            for piece in pieces {
                var copy = piece
                try copy.withUnsafeMutableBytes { raw in
                    try reader.feed(
                        raw,
                        onDataFrame: { frame in
                            frames += 1
                            reports.append(.frame(frame.opcode, fin: frame.fin, length: frame.payloadLength, index: frame.index))
                            return frames != refuseFrame
                        }
                    ) { event in
                        reports.append(.event(Event(event)))
                        return true
                    }
                }
            }
        } catch {
            return (reports, (error as! ProtocolError))
        }
        return (reports, nil)
    }

    @Test func everyDataFrameIsReportedBeforeItsPayloadInWireOrder() {
        let input =
            clientFrame(.text, "a", fin: false) + clientFrame(.ping, "p") + clientFrame(.continuation, "", fin: false)
            + clientFrame(.continuation, "b") + clientFrame(.binary, [7])
        let expected: [Report] = [
            .frame(.text, fin: false, length: 1, index: 1), .event(.ping(Array("p".utf8))),
            .frame(.continuation, fin: false, length: 0, index: 2), .frame(.continuation, fin: true, length: 1, index: 3),
            .event(.text("ab")), .frame(.binary, fin: true, length: 1, index: 1), .event(.binary([7]))
        ]
        for pieces in allSplits(input) {
            let (reports, error) = run(pieces)
            #expect(reports == expected, "split \(pieces.map(\.count).prefix(3))")
            #expect(error == nil)
        }
    }

    @Test func theOldFeedStillDeliversTheSameEvents() {
        let input = clientFrame(.text, "a", fin: false) + clientFrame(.continuation, "b")
        #expect(feed(input) == Outcome(events: [.text("ab")]))
    }

    @Test func aMessageMayHaveExactlyMaxFragments() {
        let five =
            clientFrame(.text, "a", fin: false) + (0..<3).flatMap { _ in clientFrame(.continuation, "", fin: false) }
            + clientFrame(.continuation, "z")
        let (reports, error) = run([five + five], maxFragments: 5)
        #expect(error == nil)
        #expect(reports.filter { if case .event = $0 { true } else { false } } == [.event(.text("az")), .event(.text("az"))])
        #expect(reports.compactMap { if case .frame(_, _, _, let i) = $0 { i } else { nil } } == [1, 2, 3, 4, 5, 1, 2, 3, 4, 5])
    }

    @Test func oneFragmentTooManyFailsWith1008AtEverySplit() {
        let six =
            clientFrame(.text, "a", fin: false) + (0..<4).flatMap { _ in clientFrame(.continuation, "", fin: false) }
            + clientFrame(.continuation, "z")
        for pieces in allSplits(six) {
            let (reports, error) = run(pieces, maxFragments: 5)
            #expect(error == .tooManyFragments(limit: 5))
            #expect(reports.count == 5, "the sixth frame is refused, not reported")
        }
        #expect(ProtocolError.tooManyFragments(limit: 5).closeCode == .policyViolation)
        #expect(ProtocolError.tooManyFragments(limit: 5).description == "message in more than 5 fragments")
    }

    /// The issue 11 reproduction: 20,000 empty continuations inside one message.
    @Test func twentyThousandEmptyContinuationsStopAtTheDefaultLimit() {
        var reader = WebSocketReader()
        #expect(reader.maxFragments == 1000)
        var input = clientFrame(.text, "x", fin: false)
        for _ in 0..<20_000 { input += clientFrame(.continuation, [], fin: false) }
        var frames = 0
        var thrown: ProtocolError?
        do {
            try input.withUnsafeMutableBytes { raw in
                try reader.feed(
                    raw,
                    onDataFrame: { _ in
                        frames += 1; return true
                    }
                ) { _ in true }
            }
        } catch {
            thrown = (error as! ProtocolError)
        }
        #expect(thrown == .tooManyFragments(limit: 1000))
        #expect(frames == 1000)
    }

    @Test func refusingAFrameStopsTheReaderForGood() {
        let input = clientFrame(.text, "one") + clientFrame(.text, "two") + clientFrame(.ping, "p")
        let (reports, error) = run([input, clientFrame(.text, "three")], refuseFrame: 2)
        #expect(error == nil)
        #expect(reports == [.frame(.text, fin: true, length: 3, index: 1), .event(.text("one")), .frame(.text, fin: true, length: 3, index: 1)])
    }

    @Test func fragmentLimitBelowOneMeansUnfragmentedOnly() {
        #expect(WebSocketReader(maxFragments: 0).maxFragments == 1)
        let (_, error) = run([clientFrame(.text, "a", fin: false) + clientFrame(.continuation, "b")], maxFragments: 0)
        #expect(error == .tooManyFragments(limit: 1))
        #expect(run([clientFrame(.text, "ab")], maxFragments: 0).error == nil)
    }
}
