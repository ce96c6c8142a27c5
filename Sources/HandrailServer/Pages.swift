import Foundation
import HTTPTypes
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
        var values = Self.fields(model)
        if let user = context.user {
            values["user"] = Self.fields(
                Visitor(username: user.username, displayName: user.displayName, role: user.role.rawValue, isAdmin: user.role >= .admin)
            )
        }
        if let session = context.sessionToken { values["csrf_token"] = Secrets.csrfToken(session: session) }
        values["page_time"] = ["zone": PageTime.current.zone, "source": PageTime.current.source.rawValue]
        guard let html = library.render(values, withTemplate: template) else {
            logger.error("template missing or failed to render", metadata: ["template": "\(template)"])
            throw APIError(.internalServerError, "a page template is missing; the server log has the details")
        }
        return Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: html)))
    }
}

extension Pages {
    /// A view model as a page's template reads it: its stored properties by snake_case name
    /// (`incidentTitle` → `incident_title`).
    static func fields(_ model: any PageModel) -> [String: Any] { TemplateValues.fields(model, naming: .snakeCase) }
}

/// A struct a template reads: a page's view model, or a section of a document.
protocol TemplateModel {}

/// A page's view model: a struct of what its template shows, built by one function and
/// tested without a server. `Pages.fields` hands it to Mustache.
protocol PageModel: TemplateModel, Sendable {}

/// Values as Mustache reads them: each `TemplateModel` a dictionary of its stored properties,
/// made with one Mirror. (Mustache's own lookup makes a Mirror for every name it reads: a busy
/// week's handoff spent 125 ms there, 45 ms so; see DocumentRenderer.handoff.)
/// A missing optional (`nil as Any`) becomes NSNull, which renders as nothing and is false in
/// a section (Mustache would print "nil"), and stops the lookup from climbing to an outer
/// value of the same name.
enum TemplateValues {
    enum Naming {
        /// As declared (`decidedBy`): the document templates' names.
        case asDeclared
        /// `decidedBy` → `decided_by`: the page templates' names.
        case snakeCase
    }

    static func fields(_ model: any TemplateModel, naming: Naming) -> [String: Any] {
        var out: [String: Any] = [:]
        for child in Mirror(reflecting: model).children {
            guard let label = child.label else { continue }
            out[naming == .snakeCase ? snake(label) : label] = present(child.value, naming: naming)
        }
        return out
    }

    static func present(_ value: Any, naming: Naming) -> Any {
        // Most values are text or numbers: casting to a protocol is the slow part, skip it.
        if value is String || value is Int || value is Int64 || value is Bool { return value }
        if let optional = value as? any OptionalValue {
            guard let wrapped = optional.wrappedValue else { return NSNull() }
            return present(wrapped, naming: naming)
        }
        if let model = value as? any TemplateModel { return fields(model, naming: naming) }
        if let array = value as? [Any] { return array.map { present($0, naming: naming) } }
        return value
    }

    /// `decidedBy` → `decided_by` (names are ASCII, with no runs of capitals).
    static func snake(_ name: String) -> String {
        var out = ""
        for c in name.unicodeScalars {
            if ("A"..."Z").contains(c) {
                out += "_"
                out.unicodeScalars.append(Unicode.Scalar(UInt8(c.value + 32)))
            } else {
                out.unicodeScalars.append(c)
            }
        }
        return out
    }
}

protocol OptionalValue { var wrappedValue: Any? { get } }
extension Optional: OptionalValue {
    var wrappedValue: Any? { self.map { $0 as Any } }
}

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
