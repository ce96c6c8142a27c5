import Foundation
import HandrailCore
import Hummingbird
import NIOCore

extension Request {
    /// The whole body, refused with 413 past `limit` bytes (nothing beyond is read).
    mutating func collectBody(limit: Int) async throws -> ByteBuffer {
        if let length = headers[.contentLength].flatMap({ Int($0) }), length > limit { throw Self.tooLarge(limit) }
        do {
            return try await collectBody(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw Self.tooLarge(limit)
        }
    }

    /// A JSON body's first value that PostgreSQL could not store (a `\u0000` in a string,
    /// named by its path), looked for only when the body spells one (`1e999` fails to decode
    /// as a Swift number on its own).
    static func unstorable(_ body: Data) -> ValidationError? {
        guard body.range(of: Data(#"\u0000"#.utf8)) != nil, let value = try? JSONParser.parse(body) else { return nil }
        return value.unstorable(at: "")
    }

    static func tooLarge(_ limit: Int) -> APIError {
        APIError(.contentTooLarge, "the body is larger than \(limit >> 10) KiB", field: "body")
    }

    /// Decodes a JSON body when there is one; nil for an empty body (optional bodies).
    func decodeOptionalJSON<T: Decodable>(_ type: T.Type, context: HandrailRequestContext) async throws -> T? {
        var request = self
        let body = try await request.collectBody(limit: 1 << 20)
        guard body.readableBytes > 0 else { return nil }
        return try await request.decodeJSON(type, context: context)
    }

    /// Decodes a JSON body (at most 1 MiB), naming the field at fault when it cannot.
    func decodeJSON<T: Decodable>(_ type: T.Type, context: HandrailRequestContext) async throws -> T {
        var request = self
        let buffer = try await request.collectBody(limit: 1 << 20)
        let data = Data(buffer.readableBytesView)
        if let bad = Self.unstorable(data) { throw APIError(.badRequest, bad.message, field: bad.field) }
        do {
            return try context.requestDecoder.decode(T.self, from: data)
        } catch let DecodingError.keyNotFound(key, detail) {
            throw APIError(.badRequest, "is required", field: fieldPath(detail.codingPath + [key]))
        } catch let DecodingError.typeMismatch(expected, detail) {
            throw APIError(.badRequest, "must be \(jsonTypeName(expected))", field: fieldPath(detail.codingPath))
        } catch let DecodingError.valueNotFound(expected, detail) {
            throw APIError(.badRequest, "must be \(jsonTypeName(expected)), not null", field: fieldPath(detail.codingPath))
        } catch let DecodingError.dataCorrupted(detail) {
            if detail.codingPath.isEmpty { throw APIError(.badRequest, "the body is not valid JSON") }
            throw APIError(.badRequest, "is invalid", field: fieldPath(detail.codingPath))
        }
    }
}

/// `settings.maxAge` → `settings.max_age`, as the client wrote it.
func fieldPath(_ path: [any CodingKey]) -> String {
    path.map { key in
        if let index = key.intValue { return "[\(index)]" }
        return key.stringValue.reduce(into: "") { out, c in
            if c.isUppercase { out += "_" + c.lowercased() } else { out.append(c) }
        }
    }.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
}

func jsonTypeName(_ type: Any.Type) -> String {
    switch type {
    case is String.Type: "a string"
    case is Int.Type, is Double.Type: "a number"
    case is Bool.Type: "true or false"
    default: "a \(type)"
    }
}
