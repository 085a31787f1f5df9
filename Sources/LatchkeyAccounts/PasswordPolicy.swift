import LatchkeyCore
import LatchkeyStore

/// NIST 800-63B style rules: length bounds and not the email address; no composition rules.
public enum PasswordPolicy {
    /// The `messages.*` key of the first rule `password` breaks, or nil when it is acceptable.
    public static func problem(password: String, confirmation: String, email: String, config: SiteConfig) -> String? {
        let length = password.count
        if length < config.password.minLength { return "too_short" }
        if length > config.password.maxLength { return "too_long" }
        if password != confirmation { return "mismatch" }
        if Person.normalize(password) == Person.normalize(email) { return "same_as_email" }
        return nil
    }
}
