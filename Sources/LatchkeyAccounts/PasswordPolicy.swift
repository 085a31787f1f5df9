import LatchkeyCore
import LatchkeyStore

/// NIST 800-63B style rules: length bounds, not the email address, not on the blocklist and
/// not a word of the context (the site's name, the person's name, their email's local part);
/// no composition rules.
public enum PasswordPolicy {
    /// The `messages.*` key of the first rule `password` breaks, or nil when it is acceptable.
    /// `name` is the person's name, for the context words.
    public static func problem(password: String, confirmation: String, email: String, name: String = "",
                               config: SiteConfig) throws -> String? {
        let length = password.count
        if length < config.password.minLength { return "too_short" }
        if length > config.password.maxLength { return "too_long" }
        if password != confirmation { return "mismatch" }
        if Person.normalize(password) == Person.normalize(email) { return "same_as_email" }
        if try PasswordBlocklist.contains(password, config: config) { return "too_common" }
        if config.password.blocklist != "off", isContextWord(password, email: email, name: name, siteName: config.siteName) {
            return "too_common"
        }
        return nil
    }

    /// True when `password`, once its case, spaces and the digits and symbols at either end are
    /// set aside, is the site's name, the person's name or a part of it, or the email's local part:
    /// "AcmeAcademy2024!" on Acme Academy, "smith123" for Ann Smith.
    static func isContextWord(_ password: String, email: String, name: String, siteName: String) -> Bool {
        func core(_ text: String) -> String {
            let squeezed = text.lowercased().filter { !$0.isWhitespace }
            return String(squeezed.drop { !$0.isLetter }.reversed().drop { !$0.isLetter }.reversed())
        }
        let local = String(Person.normalize(email).split(separator: "@").first ?? "")
        var words = [siteName, name, local].map(core)
        words += name.split(whereSeparator: \.isWhitespace).map { core(String($0)) }
        words += local.split(whereSeparator: { !$0.isLetter }).map { core(String($0)) }
        let candidate = core(password)
        return !candidate.isEmpty && words.contains { $0.count >= 3 && $0 == candidate }
    }
}
