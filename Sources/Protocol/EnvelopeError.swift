/// A client frame that could not be turned into a ``ClientRequest``; answer it with
/// ``Envelope/error(_:message:id:extra:)`` and keep the connection open.
public struct EnvelopeError: Error, Equatable, Sendable {
    /// What went wrong, e.g. ``ErrorCode/badRequest``.
    public var code: ErrorCode
    /// Short human text naming the problem, e.g. "field 'room' must be a string".
    public var message: String
    /// The frame's `id` when it had a valid one, to echo back.
    public var id: JSONFragment?

    /// An error with `code`, `message` and optional `id`.
    public init(code: ErrorCode, message: String, id: JSONFragment? = nil) {
        self.code = code
        self.message = message
        self.id = id
    }
}
