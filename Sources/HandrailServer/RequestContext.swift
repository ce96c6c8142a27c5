public import Hummingbird

/// The request context every Handrail route sees.
public struct HandrailRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage

    public init(source: Source) {
        self.coreContext = .init(source: source)
    }
}
