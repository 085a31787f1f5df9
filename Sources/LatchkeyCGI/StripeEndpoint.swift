import LatchkeyAccounts
import LatchkeyCore
import LatchkeyMail

/// `stripe`: Stripe's webhook events (SPEC §11). The signature is checked before anything
/// else; a bad one is 400 and nothing changes. The answer never waits for mail.
enum StripeEndpoint {
    /// Largest event read: Stripe's are a few KiB; a Checkout Session with many fields ~20 KiB.
    static let maxBodyBytes = 512 * 1024

    static func handle(_ context: Context) throws -> Reply {
        do {
            return try answer(context)
        } catch let failure as StripeEvents.Failure {
            CGIApp.log("stripe", failure.badEvent ? "refused" : "error", failure.description)
            return Reply(APIProblem(failure.badEvent ? 400 : 500, failure.description).response)
        } catch {
            let problem = APIProblem.from(error)
            CGIApp.log("stripe", problem.status >= 500 ? "error" : "refused", "\(error)")
            return Reply(problem.response)
        }
    }

    static func answer(_ context: Context) throws -> Reply {
        try context.request.require(["POST"])
        let config = context.config
        guard !config.stripe.webhookSecret.isEmpty else { throw APIProblem(404, "stripe.webhook_secret is not set in the site config") }
        let body = try FormData.readBytes(context.request, limit: maxBodyBytes)
        context.body.read = true
        do {
            try StripeSignature.verify(header: context.request.stripeSignature ?? "", body: body, secret: config.stripe.webhookSecret,
                                       now: context.now, tolerance: config.stripe.tolerance.seconds)
        } catch let failure as StripeSignature.Failure {
            throw APIProblem(400, failure.description)
        }
        guard let event = try? JSONValue.parse(body) else { throw APIProblem(400, "the body is not JSON") }
        let outcome = try StripeEvents.handle(event, services: try context.services(), now: context.now) { session in
            try StripeClient.lineItemIDs(session: session, config: config)
        }
        let answer = CGIResponse(status: 200, headers: [("Content-Type", "application/json")],
                                 body: Array((JSONOut.object(["received": .bool(true), "outcome": .string(outcome.summary)]).text + "\n").utf8))
        return Reply(answer, after: outcome.mailIDs.isEmpty ? nil : .deliver(outcome.mailIDs))
    }
}
