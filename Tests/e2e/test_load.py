"""Under load: 64 concurrent clients for a bounded time, mixed forgot, reset, login and
session traffic through one real Apache, with the integrations in the mix: API clients creating
people and granting access (each POST with its own Idempotency-Key, some sent again, some by
another client at the same time), and signed Stripe checkout events (some delivered again, as
Stripe does). No 5xx, no "database is locked" reaching anyone, and everything accounted for in
the database afterwards: every token and email, every person the API created with their grant,
every Stripe event worked exactly once with its buyer given access and one welcome email, and
every outbound event (webhooks, to a receiver in this process) acknowledged exactly once.

LOAD_SECONDS (default 60) and LOAD_CLIENTS (default 64) bound it; LOAD_NEW_PEOPLE (default 300)
bounds about how many people the API and Stripe create in all (then they only send again), so the
outbound events to check stay a bounded number however fast the machine is."""
import http.client
import itertools
import json
import os
import random
import threading
import time
import urllib.parse

import pytest
import stripe

from lkserver import admin_ok, integrity_check, poll, run_latchkey, site_sql, wait_site_idle
from webhooksink import WebhookSink

CLIENTS = int(os.environ.get("LOAD_CLIENTS", "64"))
SECONDS = float(os.environ.get("LOAD_SECONDS", "60"))
CUSTOMERS = 20
NEW_PEOPLE = int(os.environ.get("LOAD_NEW_PEOPLE", "300"))
PASSWORD = "load-test-password"
STRIPE_SECRET = "whsec_load_test_stripe_endpoint_secret"
KINDS = ["forgot", "forgot-unknown", "reset", "login", "login-wrong", "session", "session",
         "api", "api-replay", "stripe", "stripe-replay"]


@pytest.fixture
def sink(latchkey_path):
    with WebhookSink(run_latchkey("webhook", "secret").stdout.strip()) as receiver:
        yield receiver


def stripe_headers(payload: str) -> dict:
    """Stripe's signature over `payload` as of now, as Stripe signs each delivery (again)."""
    stamp = int(time.time())
    signature = stripe.WebhookSignature._compute_signature(f"{stamp}.{payload}", STRIPE_SECRET)
    return {"Content-Type": "application/json", "Stripe-Signature": f"t={stamp},v1={signature}"}


def checkout_event(n: int) -> tuple[str, str, str]:
    """(event id, buyer, payload) of a paid Checkout Session for the members offer."""
    event_id, buyer = f"evt_load_{n}", f"buyer{n}@example.com"
    payload = json.dumps({"id": event_id, "object": "event", "type": "checkout.session.completed", "created": int(time.time()),
                          "data": {"object": {"id": f"cs_load_{n}", "object": "checkout.session", "payment_status": "paid",
                                              "customer": f"cus_load_{n}", "customer_details": {"email": buyer, "name": f"Buyer {n}"},
                                              "metadata": {"latchkey_offers": "members"}, "payment_intent": f"pi_load_{n}"}}})
    return event_id, buyer, payload


def test_mixed_traffic_from_64_clients_gets_no_5xx_and_loses_nothing(make_site, apache, sink):
    generous = {"count": 1_000_000, "window": "1h"}
    site = make_site(throttle={"forgot_per_address": generous, "forgot_per_ip": generous,
                               "login_failures_per_account": generous, "login_failures_per_ip": generous},
                     api={"rate_limit": generous}, stripe={"webhook_secret": STRIPE_SECRET},
                     webhooks=[{"url": sink.url, "secret": sink.secret}])
    site.latchkey("offer", "add", "members", "--name", "Members")
    api_key = admin_ok(site, "api-key", "add", "load", "--scopes", "people:write,access:write").stdout.strip()
    emails = [f"load{i}@example.com" for i in range(CUSTOMERS)]
    for email in emails:
        assert site.latchkey("user", "add", email, "--no-email", "--offer", "members").returncode == 0
        assert site.latchkey("user", "set-password", email, input=PASSWORD + "\n").returncode == 0
    links = [site.latchkey("user", "reset", email).stdout.splitlines()[1] for email in emails]
    site.chown_var()
    server = apache(site)
    tokens = [urllib.parse.urlparse(link).query for link in links]
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    api_json = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}

    counts, failures, lock = {}, [], threading.Lock()
    serial = itertools.count(1)
    budget = itertools.count(1)  # each new person the API or Stripe creates takes one; past NEW_PEOPLE they only replay
    # Each API POST by its Idempotency-Key: path, body and every answer it got (status, body, replayed).
    api_posts: dict[str, dict] = {}
    api_people: dict[str, int] = {}  # address → id, from a 2xx that created or found them
    api_granted: set[str] = set()
    stripe_events: dict[str, tuple[str, str]] = {}  # event id → (buyer, payload), recorded before it is first sent
    deadline = time.monotonic() + SECONDS

    def post_api(path: str, body: dict, idempotency_key: str):
        """One API POST, its answer kept under its Idempotency-Key; returns (status, body)."""
        with lock:
            api_posts.setdefault(idempotency_key, {"path": path, "body": body, "answers": []})
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        try:
            connection.request("POST", path, json.dumps(body), {**api_json, "Idempotency-Key": idempotency_key})
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        with lock:
            api_posts[idempotency_key]["answers"].append((response.status, data, response.getheader("Idempotent-Replayed")))
        return response.status, data

    def api_client(rng: random.Random) -> list[tuple[str, int, bytes]]:
        """Creates a person and grants them the offer, sometimes sending each POST twice."""
        n = next(serial)
        address = f"api{n}@example.com"
        status, data = post_api("/cgi-bin/api/v1/people", {"email": address, "name": f"API {n}"}, f"create-{n}")
        answers = [("api-create", status, data)]
        if status != 201:
            return answers
        if rng.random() < 0.3:
            answers.append(("api-create-again",) + post_api("/cgi-bin/api/v1/people", {"email": address, "name": f"API {n}"}, f"create-{n}"))
        person_id = json.loads(data)["id"]
        with lock:
            api_people[address] = person_id
        status, data = post_api(f"/cgi-bin/api/v1/people/{person_id}/access", {"offer": "members"}, f"grant-{n}")
        answers.append(("api-grant", status, data))
        if status == 200:
            with lock:
                api_granted.add(address)
        if rng.random() < 0.3:
            answers.append(("api-grant-again",) + post_api(f"/cgi-bin/api/v1/people/{person_id}/access", {"offer": "members"}, f"grant-{n}"))
        return answers

    def client(seed: int):
        rng = random.Random(seed)
        cookie = None
        while time.monotonic() < deadline:
            kind = rng.choice(KINDS)
            if kind in ("api", "stripe") and next(budget) > NEW_PEOPLE:
                kind += "-replay"
            email = rng.choice(emails)
            try:
                if kind == "api" or (kind == "api-replay" and not api_posts):
                    kind = "api"
                    answers = api_client(rng)
                elif kind == "api-replay":  # another client's POST again, perhaps while it is still running
                    with lock:
                        idempotency_key, post = rng.choice(list(api_posts.items()))
                    answers = [(kind,) + post_api(post["path"], post["body"], idempotency_key)]
                if kind.startswith("api"):
                    with lock:
                        for name, status, data in answers:
                            counts[(name, status)] = counts.get((name, status), 0) + 1
                            if status >= 300 or b"locked" in data:
                                failures.append((name, status, data[:200]))
                    continue
                connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
                if kind.startswith("stripe"):
                    with lock:
                        if kind == "stripe" or not stripe_events:
                            event_id, buyer, payload = checkout_event(next(serial))
                            stripe_events[event_id] = (buyer, payload)
                        else:
                            buyer, payload = rng.choice(list(stripe_events.values()))
                    connection.request("POST", "/cgi-bin/stripe", payload, stripe_headers(payload))
                elif kind.startswith("forgot"):
                    address = email if kind == "forgot" else f"nobody{rng.randrange(10**6)}@example.com"
                    connection.request("POST", "/cgi-bin/forgot", urllib.parse.urlencode({"email": address}), form)
                elif kind == "reset":
                    connection.request("GET", "/cgi-bin/reset?" + rng.choice(tokens))
                elif kind.startswith("login"):
                    password = PASSWORD if kind == "login" else "wrong-password"
                    connection.request("POST", "/cgi-bin/login", urllib.parse.urlencode({"email": email, "password": password}), form)
                else:
                    connection.request("GET", "/cgi-bin/session", headers={"Cookie": cookie} if cookie else {})
                response = connection.getresponse()
                body = response.read()
                if kind == "login" and response.status == 303:
                    cookie = next((v.split(";")[0] for k, v in response.getheaders() if k.lower() == "set-cookie"
                                   and v.startswith("lk_session=")), cookie)
                connection.close()
                with lock:
                    counts[(kind, response.status)] = counts.get((kind, response.status), 0) + 1
                    if response.status >= 500 or b"locked" in body or (kind.startswith("stripe") and response.status != 200):
                        failures.append((kind, response.status, body[:200]))
            except (OSError, http.client.HTTPException) as error:
                with lock:
                    failures.append((kind, "no answer", repr(error)))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(SECONDS + 120)
    wait_site_idle(site, timeout=60)

    total = sum(counts.values())
    print(f"\n{total} requests from {CLIENTS} clients in {SECONDS:.0f} s: "
          + ", ".join(f"{kind} {status}×{n}" for (kind, status), n in sorted(counts.items(), key=str)))
    assert not failures, (failures[:10], server.error_log()[-3000:])
    assert total > CLIENTS, "the load never ran"
    assert "database is locked" not in server.error_log()
    assert integrity_check(site) == "ok"

    # Every known-address forgot request issued (or re-used) a token and queued a mail that was
    # delivered: one reset mail per request, none stuck.
    known_forgot = counts.get(("forgot", 303), 0)
    mails = site_sql(site, "SELECT status, count(*) AS n FROM mail WHERE kind = 'reset' GROUP BY status")
    by_status = {row["status"]: int(row["n"]) for row in mails}
    admin_resets = len(emails)
    assert by_status.get("sent", 0) == known_forgot + admin_resets, by_status
    assert set(by_status) == {"sent"}, by_status
    sent_events = site_sql(site, "SELECT count(*) AS n FROM audit WHERE action = 'reset.sent' AND actor = 'web'")
    assert int(sent_events[0]["n"]) == known_forgot

    # The API: every person a 2xx created exists, with the grant; the same Idempotency-Key got
    # the same answer every time, and only one of its requests did the work.
    for idempotency_key, post in api_posts.items():
        answers = post["answers"]
        assert len({(status, body) for status, body, _ in answers}) == 1, (idempotency_key, answers)
        assert [replayed for _, _, replayed in answers].count(None) == 1, (idempotency_key, answers)
        assert all(replayed in (None, "true") for _, _, replayed in answers), (idempotency_key, answers)
    assert api_people and set(api_people) == api_granted, "the API traffic never ran, or a grant failed"
    people = {row["email"]: row for row in site_sql(site, """
        SELECT p.email, p.id, p.kind, (SELECT count(*) FROM access_grant g JOIN offer o ON o.id = g.offer_id
               WHERE g.person_id = p.id AND o.slug = 'members' AND g.revoked_at IS NULL) AS grants
        FROM person p""")}
    for address, person_id in api_people.items():
        assert (people[address]["id"], people[address]["kind"], people[address]["grants"]) == (person_id, "customer", 1), people[address]
    assert len([a for a in people if a.startswith("api")]) == len(api_people)

    # Stripe: each distinct event id worked once, its buyer a customer with access.
    assert stripe_events, "the Stripe traffic never ran"
    worked = site_sql(site, "SELECT event_id, type, outcome FROM stripe_event")
    assert sorted(row["event_id"] for row in worked) == sorted(stripe_events)
    for row in worked:
        buyer = stripe_events[row["event_id"]][0]
        assert (row["type"], row["outcome"]) == ("checkout.session.completed", f"granted members to {buyer}"), row
        assert (people[buyer]["kind"], people[buyer]["grants"]) == ("customer", 1), people[buyer]
    assert len([a for a in people if a.startswith("buyer")]) == len(stripe_events)

    # One welcome email per new person, whoever made them and however often it was sent again.
    welcomes = site_sql(site, "SELECT recipient, status, count(*) AS n FROM mail WHERE kind = 'welcome' GROUP BY recipient, status")
    expected_welcomes = set(api_people) | {buyer for buyer, _ in stripe_events.values()}
    assert {(row["recipient"], row["status"], int(row["n"])) for row in welcomes} == {(a, "sent", 1) for a in expected_welcomes}
    files = len(list((site.var / "mail" / "new").iterdir()))
    assert files == known_forgot + admin_resets + len(expected_welcomes)

    # Outbound events: one person.created and one access.granted for each new person (and the
    # setup's password.changed), each acknowledged, each received exactly once. What the worker
    # could not send under load is sent by cron.
    def unsent():
        return site_sql(site, "SELECT id, status, attempts, last_error FROM webhook_delivery WHERE status != 'sent'")
    if unsent():
        poll(lambda: admin_ok(site, "mail", "deliver") and unsent(), done=lambda rows: not rows, timeout=30, interval=1,
             what="every webhook delivery sent")
    deliveries = site_sql(site, "SELECT message_id, event, payload, status, attempts FROM webhook_delivery")
    created = [json.loads(row["payload"])["data"]["person"]["email"] for row in deliveries if row["event"] == "person.created"]
    granted = [json.loads(row["payload"])["data"]["person"]["email"] for row in deliveries if row["event"] == "access.granted"]
    assert sorted(created) == sorted(granted) == sorted(set(emails) | expected_welcomes)
    assert {row["event"] for row in deliveries} == {"person.created", "access.granted", "password.changed"}
    assert len(deliveries) == 3 * len(emails) + 2 * len(expected_welcomes)
    received = [r.id for r in sink.all()]
    assert sorted(received) == sorted(row["message_id"] for row in deliveries), "a webhook was lost or received twice"
    sink.check()
    retried = sum(1 for row in deliveries if row["attempts"] > 1)
    print(f"{len(deliveries)} webhooks delivered ({retried} after a retry), {len(api_people)} people by the API, "
          f"{len(stripe_events)} Stripe checkouts")
