import LatchkeyCore
import LatchkeyMail
import LatchkeyStore

/// Stripe's webhook events turned into people and access, each event once. The signature is
/// checked by the endpoint before anything here runs (`StripeSignature`).
public enum StripeEvents {
    /// What an event came to: a line for the log and the audit trail, and the mail to send after answering.
    public struct Outcome: Sendable {
        /// What was done, e.g. `granted course to ana@example.com`.
        public let summary: String
        /// Queued welcome emails.
        public let mailIDs: [Int64]
    }

    /// An event that cannot be worked now; Stripe is answered with an error and retries it.
    public struct Failure: Error, CustomStringConvertible {
        /// Why, for the log.
        public let description: String
        /// True when the event itself is wrong (400); false when the site must be fixed first (500).
        public let badEvent: Bool
    }

    static let actor = Support.Actor("stripe")

    /// Works `event` (Stripe's JSON) unless its id was worked before. `lineItems` fetches a
    /// Checkout Session's price and product ids when `stripe.api_key` is set.
    public static func handle(_ event: JSONValue, services: Services, now: Int64,
                              lineItems: (String) throws -> [String] = { _ in [] }) throws -> Outcome {
        guard let id = event["id"]?.string, id.hasPrefix("evt_"), id.count <= 255, let type = event["type"]?.string,
              let object = event["data"]?["object"], case .object = object else {
            throw Failure(description: "not a Stripe event (id, type and data.object are required)", badEvent: true)
        }
        let db = services.db
        if try !db.query("SELECT 1 FROM stripe_event WHERE event_id = ?", [.text(id)]).isEmpty {
            return Outcome(summary: "\(id) was already worked", mailIDs: [])
        }
        // Anything that needs the network is done before the transaction, which must stay short.
        let plan = try Plan(type: type, object: object, config: services.config, lineItems: lineItems)
        if case .grant = plan.action { try services.mailer.prepare([.welcome]) }
        return try db.write {
            // A second delivery racing this one finds the row and does nothing.
            try db.execute("INSERT OR IGNORE INTO stripe_event (event_id, type, received_at, outcome) VALUES (?, ?, ?, '')", [.text(id), .text(type), .int(now)])
            guard db.changes == 1 else { return Outcome(summary: "\(id) was already worked", mailIDs: []) }
            let outcome = try plan.apply(services: services, now: now)
            try db.execute("UPDATE stripe_event SET outcome = ? WHERE event_id = ?", [.text(outcome.summary), .text(id)])
            try db.audit(AuditEvent(actor: actor.name, action: "stripe.event", detail: "\(id) \(type): \(outcome.summary)"), now: now)
            return outcome
        }
    }

    /// What one event asks for, read from its object.
    struct Plan {
        enum Action { case grant, revoke, nothing(String) }
        var action: Action
        var offers: [String] = []
        var email = "", name = "", customer: String?, sources: [String] = []

        init(type: String, object: JSONValue, config: SiteConfig, lineItems: (String) throws -> [String]) throws {
            let map = config.stripe.offers
            func mapped(_ ids: [String]) -> [String] { ids.compactMap { map[$0] } }
            let metadata = object["metadata"]?["latchkey_offers"]?.string.map {
                $0.split(separator: ",").map { String($0).trimmed }.filter { !$0.isEmpty }
            } ?? []
            customer = object["customer"]?.string
            switch type {
            case "checkout.session.completed", "checkout.session.async_payment_succeeded":
                let status = object["payment_status"]?.string ?? ""
                guard type.hasSuffix("succeeded") || status == "paid" || status == "no_payment_required" else {
                    action = .nothing("payment \(status.isEmpty ? "not complete" : status); waiting for async_payment_succeeded")
                    return
                }
                action = .grant
                offers = metadata
                if offers.isEmpty, let link = object["payment_link"]?.string { offers = mapped([link]) }
                if offers.isEmpty, !config.stripe.apiKey.isEmpty, let session = object["id"]?.string { offers = mapped(try lineItems(session)) }
                email = object["customer_details"]?["email"]?.string ?? object["customer_email"]?.string ?? ""
                name = object["customer_details"]?["name"]?.string ?? ""
                sources = [object["payment_intent"]?.string, object["subscription"]?.string].compactMap { $0 }
            case "customer.subscription.deleted":
                action = .revoke
                let items = object["items"]?["data"]?.array ?? []
                offers = metadata + mapped(items.flatMap { [$0["price"]?["id"]?.string, $0["price"]?["product"]?.string].compactMap { $0 } })
                sources = [object["id"]?.string].compactMap { $0 }
            case "charge.refunded":
                guard config.stripe.revokeOnRefund else { action = .nothing("stripe.revoke_on_refund is off"); return }
                guard object["refunded"] == .bool(true) else { action = .nothing("partly refunded; access kept"); return }
                action = .revoke
                offers = metadata
                sources = [object["payment_intent"]?.string].compactMap { $0 }
            default:
                action = .nothing("not an event Latchkey acts on")
            }
            if case .grant = action, offers.isEmpty { action = .nothing("nothing in it is mapped to an offer (stripe.offers, metadata.latchkey_offers)") }
        }

        func apply(services: Services, now: Int64) throws -> Outcome {
            switch action {
            case let .nothing(why): return Outcome(summary: why, mailIDs: [])
            case .grant: return try grant(services: services, now: now)
            case .revoke: return try revoke(services: services, now: now)
            }
        }

        func grant(services: Services, now: Int64) throws -> Outcome {
            let db = services.db
            guard Person.isPlausibleEmail(email) else {
                return Outcome(summary: "no usable customer_details.email: nobody created (grant by hand: latchkey access grant EMAIL OFFER)", mailIDs: [])
            }
            for slug in Set(offers) where try db.query("SELECT 1 FROM offer WHERE slug = ?", [.text(slug)]).isEmpty {
                throw Failure(description: "offer '\(slug)' does not exist (latchkey offer add \(slug) --name NAME); Stripe will retry", badEvent: false)
            }
            var person = try customer.flatMap { try StripeEvents.person(customer: $0, db: db) } ?? db.person(email: email)
            if person == nil {
                person = try Support.insert(email: email, name: name.hasControlCharacters ? "" : String(name.prefix(200)), kind: "customer",
                                            by: StripeEvents.actor, db: db, now: now)
            }
            guard let buyer = person else { return Outcome(summary: "no buyer", mailIDs: []) }
            if let customer { try db.execute("INSERT OR IGNORE INTO stripe_customer (customer_id, person_id) VALUES (?, ?)", [.text(customer), .int(buyer.id)]) }
            var granted: [String] = []
            for slug in offers.uniqued() {
                // Only what this purchase granted is remembered: a refund never takes away a grant staff made.
                guard try Access.grant(person: buyer, offer: slug, by: StripeEvents.actor.name, db: db, now: now) else { continue }
                granted.append(slug)
                for source in sources {
                    try db.execute("INSERT OR IGNORE INTO stripe_grant (source, person_id, offer) VALUES (?, ?, ?)", [.text(source), .int(buyer.id), .text(slug)])
                }
            }
            var mail: [Int64] = []
            if !granted.isEmpty, services.config.welcomeOnGrant, buyer.passwordHash == nil,
               let current = try db.person(id: buyer.id), Recovery.refusal(for: current) == nil {
                mail.append(try Recovery.sendLink(to: current, welcome: true, by: StripeEvents.actor.name, services: services, now: now).mailID)
            }
            let what = granted.isEmpty ? "already held \(offers.joined(separator: ", "))" : "granted \(granted.joined(separator: ", "))"
            return Outcome(summary: "\(what) to \(buyer.email)", mailIDs: mail)
        }

        func revoke(services: Services, now: Int64) throws -> Outcome {
            let db = services.db
            var targets: [(Int64, String)] = []
            for source in sources {
                targets += try db.query("SELECT person_id, offer FROM stripe_grant WHERE source = ?", [.text(source)]).map { ($0.int("person_id") ?? 0, $0.text("offer") ?? "") }
            }
            if let customer, let person = try StripeEvents.person(customer: customer, db: db) { targets += offers.map { (person.id, $0) } }
            var revoked: [String] = []
            for (personID, slug) in targets {
                guard let person = try db.person(id: personID), !revoked.contains("\(slug) from \(person.email)") else { continue }
                // Stripe takes away only what Stripe gave.
                let active = try !db.query("""
                    SELECT 1 FROM access_grant g JOIN offer o ON o.id = g.offer_id
                    WHERE g.person_id = ? AND o.slug = ? AND g.revoked_at IS NULL AND g.granted_by = ?
                    """, [.int(personID), .text(slug), .text(StripeEvents.actor.name)]).isEmpty
                guard active else { continue }
                try Access.revoke(person: person, offer: slug, by: StripeEvents.actor.name, db: db, now: now)
                revoked.append("\(slug) from \(person.email)")
            }
            return Outcome(summary: revoked.isEmpty ? "nothing granted by it is active" : "revoked " + revoked.joined(separator: ", "), mailIDs: [])
        }
    }

    /// The person Stripe customer `id` was remembered as.
    static func person(customer id: String, db: Database) throws -> Person? {
        guard let personID = try db.query("SELECT person_id FROM stripe_customer WHERE customer_id = ?", [.text(id)]).first?.int("person_id") else { return nil }
        return try db.person(id: personID)
    }
}

extension Array where Element: Hashable {
    /// The elements in order, each once.
    func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
