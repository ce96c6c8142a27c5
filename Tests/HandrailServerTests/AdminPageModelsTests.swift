import Foundation
import HandrailCore
import Testing

@testable import HandrailServer

/// The admin and account pages' view models.
@Suite struct AdminPageModelsTests {
    static func person(_ name: String, _ role: Role) -> User {
        User(
            id: name.count,
            username: name,
            displayName: name.capitalized,
            email: nil,
            role: role,
            disabled: false,
            mustChangePassword: false,
            createdAt: Date()
        )
    }

    @Test func thePeoplePageMarksTheVisitorAndOffersResponderForNewPeople() {
        let page = UsersPage([Self.person("ada", .admin), Self.person("ben", .responder)], me: "ada", secret: nil, error: nil)
        #expect(page.users.map(\.me) == [true, false])
        #expect(page.users[1].roles.filter(\.selected).map(\.value) == ["responder"])
        #expect(page.roles.filter(\.selected).map(\.value) == ["responder"])
        #expect(Pages.fields(page)["secret"] == .null, "no secret shown unless one was just made")
    }

    @Test func theAuditLogLinksToOlderEntriesOnlyWhenThisPageIsFull() {
        let entries = (1...3).reversed().map {
            AuditEntry(
                id: $0,
                at: Date(),
                actor: "ada",
                action: "user.create",
                target: "ben",
                detail: ["role": "lead", "by": "cli"],
                remoteAddress: nil
            )
        }
        let full = AuditPage(entries, limit: 3)
        #expect(full.older == "/admin/audit?before=1")
        #expect(full.entries.first?.detail == "by=cli, role=lead")
        #expect(AuditPage(Array(entries.prefix(2)), limit: 3).older == nil)
    }

    @Test func theTokensPageLinksToAdministrationOnlyForAdmins() {
        #expect(!TokensPage([], user: Self.person("ben", .lead), secret: nil, error: nil).navAdmin)
        #expect(TokensPage([], user: Self.person("ada", .admin), secret: ShownSecret(label: "API token ci", value: "hr_x"), error: nil).navAdmin)
    }
}
