import HandrailCore
import Testing

/// Runbook placeholders read the incident's labels where the runbook is shown.
@Suite struct PlaceholdersTests {
    let labels = ["model": "credit-risk-v7", "namespace": "ml", "hostile": "<img src=x onerror=alert(1)> **bold** `tick`"]

    @Test func dollarBracedAndColonPlaceholdersReadTheLabels() {
        let html = "<p>Roll back <code>$model</code> in ${namespace}, then check :model on the dashboard.</p>"
        let filled = Placeholders.fillHTML(html, labels: labels)
        #expect(filled.contains("<code>credit-risk-v7</code> in ml, then check credit-risk-v7 on the dashboard."), "\(filled)")
        #expect(Placeholders.fillText("Pause the canary of $model", labels: labels) == "Pause the canary of credit-risk-v7")
    }

    @Test func unknownPlaceholdersStayVisibleAndMarked() {
        let filled = Placeholders.fillHTML("<p>Scale $replicas pods of :service</p>", labels: labels)
        #expect(filled.contains(#"<mark class="placeholder" title="no label replicas on this incident">$replicas</mark>"#), "\(filled)")
        #expect(filled.contains("of :service"), "an unknown :name is left as written, unmarked")
        #expect(Placeholders.fillText("Scale $replicas", labels: labels) == "Scale $replicas")
    }

    @Test func valuesAreTextNeverMarkupAndNeverBuildALink() {
        let filled = Placeholders.fillHTML(
            #"<p>Model $hostile; see <a href="https://grafana.example/d?m=$model">the dashboard</a>.</p>"#,
            labels: labels
        )
        #expect(!filled.contains("<img"), "\(filled)")
        #expect(filled.contains("&lt;img src=x onerror=alert(1)&gt; **bold** `tick`"), "\(filled)")
        #expect(filled.contains(#"href="https://grafana.example/d?m=$model""#), "attributes are left as the runbook wrote them")
    }

    @Test func colonsThatAreNotPlaceholdersAreLeftAlone() {
        let text = "At 10:42 see http://host:model/x, Note:model, :model: and the path /:model/"
        let filled = Placeholders.fillText(text, labels: labels)
        #expect(filled == text, "\(filled)")
        #expect(Placeholders.fillText("(:model)", labels: labels) == "(credit-risk-v7)")
    }
}
