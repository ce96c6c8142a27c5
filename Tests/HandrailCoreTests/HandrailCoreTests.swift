// Pure domain tests (no database) for HandrailCore: alert normalisation, grouping keys,
// the incident state machine, runbook parsing and matching land here with their issues.
import HandrailCore
import Testing
