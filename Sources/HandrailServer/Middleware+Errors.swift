import Foundation
import HandrailCore
public import Hummingbird
import Logging
import NIOCore
import Postgres

/// Turns errors into answers a client can use, and keeps the details in the log.
///
/// - Errors that know their status (`HTTPResponseError`) pass through.
/// - A database that is not available right now answers 503 with `Retry-After`, so
///   alert senders (Alertmanager retries 5xx) deliver again.
/// - Anything else answers a generic 500; the full error goes to the log.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            if let field = Self.nulInURI(request) {
                throw APIError(.badRequest, "must not contain NUL characters (%00)", field: field)
            }
            return try await next(request, context)
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, "the body is too large", field: "body")
        } catch let error as HTTPError where error.status == .notFound && AccessMiddleware.wantsJSON(request) {
            // No route matched (Handrail's own handlers answer with APIError): say so in JSON.
            throw APIError(.notFound, "no such endpoint: \(request.method) \(request.uri.path) (the API is described at /openapi.yaml)")
        } catch let error as any HTTPResponseError {
            throw error
        } catch let error as ValidationError {
            throw APIError(.badRequest, error.message, field: error.field)
        } catch let error as ConflictError {
            throw APIError(.conflict, error.message, field: error.field)
        } catch let error as PostgresError where error.isTransient {
            logger.warning("database unavailable", metadata: ["error": "\(String(reflecting: error))", "path": "\(request.uri.path)"])
            throw APIError(.serviceUnavailable, "the database is not available right now; retry later", headers: [.retryAfter: "5"])
        } catch let error as PostgresError where error.isBadValue {
            // A value no check named before PostgreSQL refused it: still the client's input.
            logger.notice("a value the database cannot store", metadata: ["error": "\(String(reflecting: error))", "path": "\(request.uri.path)"])
            throw APIError(.badRequest, "a value is out of range, too long or holds a character the database cannot store")
        } catch {
            logger.error("request failed", metadata: ["error": "\(String(reflecting: error))", "path": "\(request.uri.path)"])
            throw APIError(.internalServerError, "internal error; the server log has the details")
        }
    }
}

extension ErrorMiddleware {
    /// The query parameter (or `path`) whose decoded text holds a NUL character, if any.
    static func nulInURI(_ request: Request) -> String? {
        let uri = request.uri
        guard uri.description.range(of: "%00", options: .caseInsensitive) != nil else { return nil }
        if uri.path.utf8.contains(0) || (uri.path.removingPercentEncoding ?? "").utf8.contains(0) { return "path" }
        for (name, value) in uri.queryParameters where name.utf8.contains(0) || value.utf8.contains(0) {
            return String(String(name).prefix(40))
        }
        return "query"
    }
}

extension PostgresError {
    /// PostgreSQL refused a value itself (class 22, data exception: out of range, too long,
    /// an unsupported Unicode escape; 54000, an index row too large), or the driver refused to
    /// send one (a NUL byte).
    var isBadValue: Bool {
        if kind == .invalidParameter { return true }
        guard let state = sqlState else { return false }
        return state.hasPrefix("22") || state == "54000"
    }
}

/// An error answered as JSON: `{"error": {"message": …, "field": …}}`.
public struct APIError: HTTPResponseError, CustomStringConvertible {
    public let status: HTTPResponse.Status
    public let message: String
    /// The request field the error is about, when there is one.
    public let field: String?
    public let headers: HTTPFields

    public init(_ status: HTTPResponse.Status, _ message: String, field: String? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers
    }

    public var description: String { "\(status.code) \(message)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        // Paths in messages read as written ("/api/v1/…", not "\/api\/v1\/…").
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        let data = try encoder.encode(APIErrorBody(error: .init(message: message, field: field)))
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// The JSON shape of every API error.
struct APIErrorBody: Codable {
    struct Detail: Codable {
        let message: String
        let field: String?
    }
    let error: Detail
}
