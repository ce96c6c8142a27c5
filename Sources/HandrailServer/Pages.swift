import Foundation
import HTTPTypes
import HandrailCore
import Hummingbird
import Logging

/// The web UI's pages, rendered from `templates/*.html.mustache` (editable without
/// recompiling; loaded at start) by `PageTemplate`. Values are HTML-escaped.
struct Pages: Sendable {
    let templates: PageTemplates
    let logger: Logger

    /// Loads every `.html.mustache` file of the templates folder.
    static func load(from directory: URL, logger: Logger) async throws -> Pages {
        do {
            return Pages(templates: try PageTemplates(directory: directory), logger: logger)
        } catch let error as StartupError {
            throw error
        } catch {
            throw StartupError(description: "cannot load the templates in \(directory.path): \(error)")
        }
    }

    /// The signed-in visitor, as the page header shows them.
    struct Visitor: PageModel {
        var username: String
        var displayName: String
        var role: String
        var isAdmin: Bool
    }

    /// Renders a page from its view model, with the visitor and the session's CSRF token
    /// (`user`, `csrf_token`) for the header and the forms.
    func render(_ template: String, status: HTTPResponse.Status = .ok, _ model: some PageModel, context: HandrailRequestContext) throws -> Response {
        guard case .object(var values) = Self.fields(model) else {
            throw APIError(.internalServerError, "a page could not be rendered; the server log has the details")
        }
        if let user = context.user {
            values["user"] = Self.fields(
                Visitor(username: user.username, displayName: user.displayName, role: user.role.rawValue, isAdmin: user.role >= .admin)
            )
        }
        if let session = context.sessionToken { values["csrf_token"] = .text(Secrets.csrfToken(session: session)) }
        values["page_time"] = .object(["zone": .text(PageTime.current.zone), "source": .text(PageTime.current.source.rawValue)])
        guard let html = templates.render(.object(values), template: template) else {
            logger.error("template missing", metadata: ["template": "\(template)"])
            throw APIError(.internalServerError, "a page template is missing; the server log has the details")
        }
        return Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: html)))
    }
}

extension Pages {
    /// A view model as a page's template reads it: its stored properties by snake_case name
    /// (`incidentTitle` → `incident_title`).
    static func fields(_ model: some PageModel) -> TemplateValue { TemplateEncoder.value(model) }
}

/// A page's view model: a struct of what its template shows, built by one function and
/// tested without a server. `Pages.fields` makes the template's values of it.
protocol PageModel: Sendable, Encodable {}

/// Security headers: on every response `nosniff`; on HTML pages a Content-Security-Policy
/// with no inline script (nor style), no framing, and a strict referrer policy.
/// Header names made once: making one checks and lowercases it, and this ran on every response.
enum SecurityHeaderNames {
    static let contentTypeOptions = HTTPField.Name("X-Content-Type-Options")!
    static let referrerPolicy = HTTPField.Name("Referrer-Policy")!
    static let frameOptions = HTTPField.Name("X-Frame-Options")!
}

struct SecurityHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    static var contentSecurityPolicy: String {
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
            + "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers[SecurityHeaderNames.contentTypeOptions] = "nosniff"
        if response.headers[.contentType]?.hasPrefix("text/html") == true {
            response.headers[.contentSecurityPolicy] = Self.contentSecurityPolicy
            response.headers[SecurityHeaderNames.referrerPolicy] = "same-origin"
            response.headers[SecurityHeaderNames.frameOptions] = "DENY"
            response.headers[.cacheControl] = "no-store"
        }
        return response
    }
}

/// Errors on pages are pages: a browser that asked for HTML gets the error page (status
/// kept, message generic and useful, nothing internal); API clients keep getting JSON.
struct PageErrorMiddleware: RouterMiddleware {
    typealias Context = HandrailRequestContext
    let pages: Pages

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as any HTTPResponseError {
            guard !AccessMiddleware.wantsJSON(request), request.headers[.accept]?.contains("text/html") == true else { throw error }
            let message = (error as? APIError)?.pageMessage ?? Self.message(error.status)
            var response = try pages.render(
                "error.html",
                status: error.status,
                ErrorPage(title: Self.title(error.status), message: message),
                context: context.signedOut
            )
            if let api = error as? APIError {
                for field in api.headers where field.name != .contentType { response.headers.append(field) }
            }
            return response
        }
    }

    static func title(_ status: HTTPResponse.Status) -> String {
        switch status.code {
        case 400: "That did not work"
        case 401: "Sign in first"
        case 403: "Not allowed"
        case 404: "Not found"
        case 409: "Already changed"
        case 413: "Too large"
        case 503: "Try again shortly"
        case 500...: "Something went wrong"
        default: status.reasonPhrase
        }
    }

    static func message(_ status: HTTPResponse.Status) -> String {
        switch status.code {
        case 404: "There is no page here."
        case 500...: "Handrail could not finish this. The server log has the details."
        default: status.reasonPhrase
        }
    }
}
