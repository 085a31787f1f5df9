import LatchkeySite
import LatchkeyStore

/// Everything the staff console does, with the least role that may do it (SPEC §9). The server
/// checks this on every request, per action; the pages only hide what a role may not do. An
/// action on one person is named by the last part of its path (`/people/ID/end-sessions`).
enum ConsoleAction: String, CaseIterable {
    // viewer
    case search, view, failedMail, audit
    // support
    case reset, viewLink, welcome, retry, endSessions = "end-sessions", addContact, bulkReset
    // manager
    case create, setPassword = "set-password", setEmail = "set-email", grant, revoke, disable, enable
    // owner
    case delete, offers, staff

    /// The least role that may do it.
    var role: StaffMember.Role {
        switch self {
        case .search, .view, .failedMail, .audit: .viewer
        case .reset, .viewLink, .welcome, .retry, .endSessions, .addContact, .bulkReset: .support
        case .create, .setPassword, .setEmail, .grant, .revoke, .disable, .enable: .manager
        case .delete, .offers, .staff: .owner
        }
    }

    /// Setting a password, changing an address, deleting a person and every staff or offer
    /// change need a fresh second-factor code (`admin.step_up_window`).
    var needsStepUp: Bool { [.setPassword, .setEmail, .delete, .offers, .staff].contains(self) }

    /// Actions on one person, by the last part of their path (`/people/ID/NAME`).
    static let personActions = Dictionary(uniqueKeysWithValues: [ConsoleAction.reset, .welcome, .retry, .endSessions, .setPassword,
                                                                .setEmail, .grant, .revoke, .disable, .enable, .delete].map { ($0.rawValue, $0) })

    /// Its name in the string tables (`admin.actions.NAME`, `admin.confirm.NAME_title`).
    var localeKey: String { rawValue.replacingAll("-", with: "_") }

    /// Actions that take something away; their buttons look secondary, their confirmation warns.
    var isDestructive: Bool { [.delete, .disable, .revoke, .endSessions].contains(self) }

    /// True when `role` may do it.
    func allowed(for role: StaffMember.Role) -> Bool { role >= self.role }
}
