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
            return try await next(request, context)
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, "the body is too large", field: "body")
        } catch let error as any HTTPResponseError {
            throw error
        } catch let error as ValidationError {
            throw APIError(.badRequest, error.message, field: error.field)
        } catch let error as ConflictError {
            throw APIError(.conflict, error.message, field: error.field)
        } catch let error as PostgresError where error.isTransient {
            logger.warning("database unavailable", metadata: ["error": "\(String(reflecting: error))", "path": "\(request.uri.path)"])
            throw APIError(.serviceUnavailable, "the database is not available right now; retry later", headers: [.retryAfter: "5"])
        } catch {
            logger.error("request failed", metadata: ["error": "\(String(reflecting: error))", "path": "\(request.uri.path)"])
            throw APIError(.internalServerError, "internal error; the server log has the details")
        }
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
        let data = try JSONEncoder().encode(APIErrorBody(error: .init(message: message, field: field)))
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
