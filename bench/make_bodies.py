"""Writes Alertmanager webhook bodies, one per line: GROUPS groups of 10 firing alerts each
(distinct fingerprints), shaped as Alertmanager 0.25 sends them."""
import json
import sys

groups = int(sys.argv[1])
for g in range(groups):
    model = f"model-{g}"
    alerts = []
    for a in range(10):
        labels = {"alertname": "FeatureDriftHigh", "model": model, "feature": f"f{a}", "severity": "warning"}
        alerts.append({"status": "firing", "labels": labels,
                       "annotations": {"summary": f"PSI 0.1{a} on f{a}", "value": f"0.1{a}"},
                       "startsAt": "2026-11-22T09:00:00.000Z", "endsAt": "0001-01-01T00:00:00Z",
                       "generatorURL": "http://prometheus:9090/graph?g0.expr=psi", "fingerprint": f"{g:06x}{a:04x}bench"})
    print(json.dumps({"version": "4", "groupKey": f'{{}}:{{alertname="FeatureDriftHigh", model="{model}"}}', "truncatedAlerts": 0,
                      "status": "firing", "receiver": "handrail", "groupLabels": {"alertname": "FeatureDriftHigh", "model": model},
                      "commonLabels": {"alertname": "FeatureDriftHigh", "model": model}, "commonAnnotations": {},
                      "externalURL": "http://alertmanager:9093", "alerts": alerts}, separators=(",", ":")))
