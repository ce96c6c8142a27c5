import Foundation
import HandrailCore
import HandrailStore
import Logging
import ServiceLifecycle

/// Every replica's watch over gates that wait too long: a gate past its wait limit with
/// nobody deciding raises the alert `CanaryGateWaiting` from the controller's key, through
/// ingestion like any alert (so it opens or joins an incident, attaches the
/// canary-gate-waiting runbook and reaches the on-call); once someone decides (or the
/// release is rolled back) the alert clears. The fingerprint is the gate's, so replicas
/// that raise the same gate at once make one alert, and a replica that dies between
/// raising and remembering only resends it.
struct GateWatch: Service {
    let gates: GateStore
    let ingest: IngestStore
    let catalog: RunbookCatalog
    let publicURL: String?
    let logger: Logger
    var poll: Duration = .seconds(15)

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await tick()
                    try? await Task.sleep(for: poll)
                } catch {
                    logger.error("cannot watch waiting gates", metadata: ["error": "\(String(reflecting: error))"])
                    try? await Task.sleep(for: poll * 2)
                }
            }
        }
    }

    /// One look: raises and clears what is due. The tests call it.
    func tick() async throws {
        let (raise, clear) = try await gates.overdue()
        if raise.isEmpty && clear.isEmpty { return }
        let runbooks = try await catalog.candidates()
        for o in raise {
            _ = try await ingest.ingest(Delivery(integration: o.integration, source: .canary, alerts: [alert(o, .firing)], runbooks: runbooks))
            try await gates.markOverdue(gate: o.gate, cleared: false)
            logger.notice("a canary gate waited past its limit", metadata: ["gate": "\(o.gate)", "release": "\(o.release.target)"])
        }
        for o in clear {
            _ = try await ingest.ingest(Delivery(integration: o.integration, source: .canary, alerts: [alert(o, .resolved)], runbooks: []))
            try await gates.markOverdue(gate: o.gate, cleared: true)
        }
    }

    func alert(_ o: GateStore.Overdue, _ status: AlertStatus) -> NormalizedAlert {
        let stage = "\(o.stage.rawValue)\(o.stage == .confirmTrafficIncrease ? " #\(o.step)" : "")"
        return NormalizedAlert(
            source: .canary,
            fingerprint: "handrail-gate-\(o.gate)",
            status: status,
            labels: [
                "alertname": "CanaryGateWaiting", "namespace": o.release.namespace, "rollout": o.release.name,
                "checksum": o.release.checksum, "stage": stage, "gate": String(o.gate), "metric": "minutes_waiting",
            ],
            annotations: [
                "summary": "\(o.release.target) at \(o.release.checksum) has waited \(OutcomeProposal.duration(o.waited)) for a decision on \(stage)",
                "description": "Open the gate to decide: \(publicURL ?? "")/gates/\(o.gate)",
            ],
            endsAt: status == .resolved ? Date() : nil,
            value: Double(o.waited / 60)
        )
    }
}
