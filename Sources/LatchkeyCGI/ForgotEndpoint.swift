import LatchkeyStore

/// `POST forgot`: the same answer for every address, sent before any look-up.
///
/// Nothing that depends on whether the address exists happens before the answer: the look-up,
/// throttle, token and mail all run in the detached worker afterwards, so a known and an
/// unknown address cannot be told apart by the answer or its timing.
enum ForgotEndpoint {
    static func handle(_ context: Context) throws -> Reply {
        try context.request.require(["POST"])
        try context.request.requireSameOrigin(context.config)
        let form = try context.form()
        let locale = context.locale(form["locale"])
        let email = Person.normalize(form["email"] ?? "")
        guard Person.isPlausibleEmail(email) else {
            return Reply(.redirect(to: context.pageURL("forgot", message: "invalid_email", locale: locale)))
        }
        return Reply(.redirect(to: context.pageURL("forgot-sent", locale: locale)),
                     after: .forgot(email: email, locale: locale, remoteAddr: context.request.remoteAddr))
    }
}
