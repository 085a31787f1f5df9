/// The emails Latchkey sends; each has `email/NAME.txt` and `email/NAME.html` templates and
/// its subject at `email.KEY.subject` in the locale table.
public enum EmailKind: String, CaseIterable, Sendable {
    case reset
    case welcome
    case passwordChanged = "password-changed"
    case temporaryPassword = "temporary-password"
    case emailChanged = "email-changed"
    /// To the new address a customer gave on their account page: the link that confirms it.
    case confirmEmail = "confirm-email"
    /// To a new staff member (or one whose second factor was reset): the enrolment link.
    case staffEnrolment = "staff-enrolment"

    /// The section of the locale table that holds this email's strings.
    public var localeKey: String { String(rawValue.map { $0 == "-" ? "_" : $0 }) }
}
