import Foundation
import HandrailCore
import Hummingbird
import Logging
import Mustache

/// The web UI's pages, rendered from `templates/*.html.mustache` (editable without
/// recompiling; loaded at start). Values are HTML-escaped by Mustache.
struct Pages: Sendable {
    let library: MustacheLibrary
    let logger: Logger

    /// Loads every `.mustache` file of the templates folder.
    static func load(from directory: URL, logger: Logger) async throws -> Pages {
        // The document templates in the same folder declare their own content type.
        DocumentRenderer.registerContentTypes()
        do {
            return Pages(library: try await MustacheLibrary(directory: directory.path), logger: logger)
        } catch {
            throw StartupError(description: "cannot load the templates in \(directory.path): \(error)")
        }
    }

    /// Renders a page for a (possibly anonymous) visitor.
    func render(_ template: String, status: HTTPResponse.Status = .ok, _ values: [String: Any], context: HandrailRequestContext) throws -> Response {
        var values = values
        if let user = context.user {
            values["user"] = [
                "username": user.username, "display_name": user.displayName, "role": user.role.rawValue,
            ]
        }
        if let session = context.sessionToken { values["csrf_token"] = Secrets.csrfToken(session: session) }
        guard let html = library.render(values, withTemplate: template) else {
            logger.error("template missing or failed to render", metadata: ["template": "\(template)"])
            throw APIError(.internalServerError, "a page template is missing; the server log has the details")
        }
        return Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: html)))
    }
}

/// Security headers: on every response `nosniff`; on HTML pages a Content-Security-Policy
/// with no inline script (nor style), no framing, and a strict referrer policy.
struct SecurityHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    static var contentSecurityPolicy: String {
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
            + "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers[.init("X-Content-Type-Options")!] = "nosniff"
        if response.headers[.contentType]?.hasPrefix("text/html") == true {
            response.headers[.contentSecurityPolicy] = Self.contentSecurityPolicy
            response.headers[.init("Referrer-Policy")!] = "same-origin"
            response.headers[.init("X-Frame-Options")!] = "DENY"
            response.headers[.cacheControl] = "no-store"
        }
        return response
    }
}
