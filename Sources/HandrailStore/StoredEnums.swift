public import HandrailCore
public import Postgres

// The domain's enums as the database stores them: a value the enum does not know is a
// decoding error (`PostgresEnum`), never a default.
extension ActorKind: PostgresEnum {}
extension AlertStatus: PostgresEnum {}
extension DecisionKind: PostgresEnum {}
extension DecisionOutcome: PostgresEnum {}
extension IncidentEventType: PostgresEnum {}
extension IncidentRole: PostgresEnum {}
extension IncidentState: PostgresEnum {}
extension IntegrationKind: PostgresEnum {}
extension Role: PostgresEnum {}
extension Severity: PostgresEnum {}
extension StepOutcome: PostgresEnum {}
extension AlertOutcome.Result: PostgresEnum {}
extension AlertOutcome.IncidentResult: PostgresEnum {}
extension PostmortemState: PostgresEnum {}
extension PostmortemSection: PostgresEnum {}
extension DestinationKind: PostgresEnum {}
extension EscalationStep.Target: PostgresEnum {}
extension NotificationEvent: PostgresEnum {}
extension NotificationState: PostgresEnum {}
extension EscalationKind: PostgresEnum {}
