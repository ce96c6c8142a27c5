// The domain, without I/O. Grows with the incident, runbook and rotation issues.
public enum HandrailCore {
    /// The version reported by `handrail --version` and the server.
    public static let version = "0.1.0"
}
