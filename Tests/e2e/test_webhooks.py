"""Outbound events (SPEC §11): every change a site's other systems care about is POSTed, signed
the Standard Webhooks way, to each `webhooks` endpoint that wants it; recorded in the change's
own transaction, sent after the answer (by the CGI's after-response worker, or by the command
line as it finishes), retried with backoff when the endpoint fails, never sent twice once
acknowledged, and stopped by a 410 Gone until a retry by hand succeeds.

A receiver in this process (webhooksink.py) records each request and checks its signature with
the `standardwebhooks` library, not with the product's code, so a signature Latchkey gets wrong
in the same way it checks it would still fail here. Changes are made the ways a site makes
them: the JSON API and Stripe's checkout events through a real Apache, and the command line.
"""
from __future__ import annotations

import datetime
import json
import time

import pytest
import stripe

from lkserver import add_customer, admin_ok, free_port, poll, run_latchkey, site_sql, wait_site_idle
from maildir import Mailbox
from servers import running
from webhooksink import WebhookSink

STRIPE_SECRET = "whsec_stripe_test_secret_for_webhooks"
SCOPES = "people:read,people:write,access:write"
EVENTS = {"person.created", "access.granted", "access.revoked", "password.changed", "person.disabled",
          "person.deleted", "mail.failed"}
_serial = iter(range(1, 10**6))


def new_secret() -> str:
    result = run_latchkey("webhook", "secret")
    assert result.returncode == 0 and result.stdout.startswith("whsec_"), result
    return result.stdout.strip()


def unique(prefix: str) -> str:
    return f"{prefix}{next(_serial)}@example.com"


# --- the shared site: one Apache, two endpoints (everything; only access.granted) ------------------
@pytest.fixture(scope="module")
def sinks(latchkey_path):
    everything, granted = WebhookSink(new_secret()), WebhookSink(new_secret(), path="/granted")
    with everything, granted:
        yield everything, granted
        everything.check()
        granted.check()


@pytest.fixture(scope="module")
def server(sinks):
    everything, granted = sinks
    config = {"webhooks": [{"url": everything.url, "secret": everything.secret, "events": []},
                           {"url": granted.url, "secret": granted.secret, "events": ["access.granted"]}],
              "stripe": {"webhook_secret": STRIPE_SECRET}}
    with running("apache", config, offer="gold") as srv:
        srv.api_key = admin_ok(srv.site, "api-key", "add", "crm", "--scopes", SCOPES).stdout.strip()
        yield srv


def api(server, method: str, path: str, body: dict | None = None):
    headers = {"Authorization": f"Bearer {server.api_key}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    return server.request(method, "/cgi-bin/api/v1" + path, body=None if body is None else json.dumps(body), headers=headers)


def webhook_log(site, *flags) -> list[dict]:
    return json.loads(admin_ok(site, "webhook", "log", "--json", *flags).stdout)


def about(person_id: int, email: str | None = None):
    """A `where` for WebhookSink.wait_for: events about this person (with `email`, only those
    naming that address, so an id given again after a deletion cannot match)."""
    def where(received) -> bool:
        person = received.data.get("person", {})
        return person.get("id") == person_id and (email is None or person.get("email") == email)
    return where


def settle(server) -> None:
    """Waits until the site's CGIs and after-response worker are done."""
    wait_site_idle(server.site, timeout=20)


def assert_recent(iso: str) -> None:
    when = datetime.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    assert abs(when.timestamp() - time.time()) < 120, iso


def assert_well_formed(received) -> None:
    """What every delivery must be, beyond a good signature."""
    assert received.headers.get("content-type") == "application/json", received.headers
    assert received.id.startswith("msg_"), received.id
    assert abs(int(received.headers["webhook-timestamp"]) - time.time()) < 60, received.headers
    assert set(received.event) == {"type", "timestamp", "data"}, received.event
    assert received.type in EVENTS, received.type
    assert_recent(received.event["timestamp"])


# --- 1. each change, from the API and from the command line ------------------------------------
def test_each_change_reaches_every_endpoint_that_wants_it_signed_and_once(server, sinks):
    everything, granted = sinks
    site = server.site
    address = unique("ada")
    created = api(server, "POST", "/people", {"email": address, "name": "Ada Lovelace"})
    assert created.status == 201, created.text
    person = json.loads(created.text)
    pid = person["id"]
    card = {"id": pid, "email": address, "name": "Ada Lovelace", "external_id": None}

    grant = api(server, "POST", f"/people/{pid}/access", {"offer": "gold"})
    assert grant.status == 200 and json.loads(grant.text)["granted"] is True, grant.text
    first = everything.wait_for(2, where=about(pid))
    assert sorted(r.type for r in first) == ["access.granted", "person.created"], [r.type for r in first]
    by_type = {r.type: r for r in first}
    assert by_type["person.created"].data == {"person": card, "kind": "contact"}
    assert by_type["access.granted"].data == {"person": card, "offer": "gold"}

    # The endpoint that asked for access.granted only got that one, under the same message id.
    only = granted.wait_for(1, where=about(pid))
    assert [(r.type, r.id) for r in only] == [("access.granted", by_type["access.granted"].id)]

    # Granting what is held changes nothing, so it is no event; revoking is one, revoking again is not.
    again = api(server, "POST", f"/people/{pid}/access", {"offer": "gold"})
    assert again.status == 200 and json.loads(again.text)["granted"] is False, again.text
    for _ in range(2):
        revoked = api(server, "DELETE", f"/people/{pid}/access/gold")
        assert revoked.status == 204, revoked.text
    everything.wait_for(3, where=about(pid))
    settle(server)
    mine = [r for r in everything.all() if about(pid)(r)]
    assert [r.type for r in mine[2:]] == ["access.revoked"]
    assert mine[2].data == {"person": card, "offer": "gold"}

    # The command line sends what it recorded before it exits: nothing to wait for.
    admin_ok(site, "access", "grant", address, "gold", "--no-email")
    admin_ok(site, "user", "set-password", address, input="a long enough passphrase\n")
    admin_ok(site, "user", "disable", address)
    mine = [r for r in everything.all() if about(pid)(r)]
    assert [r.type for r in mine[3:]] == ["access.granted", "password.changed", "person.disabled"], [r.type for r in mine]
    assert mine[4].data == {"person": card, "temporary": False}
    assert mine[5].data == {"person": card}
    admin_ok(site, "user", "delete", address, "--yes")
    deleted = everything.all()[-1]
    # A deletion says who, by id, and nothing more of the person.
    assert (deleted.type, deleted.data) == ("person.deleted", {"person": {"id": pid, "external_id": None}})

    mine = [r for r in everything.all() if about(pid)(r)]
    assert len(mine) == 7
    for received in mine + granted.all():
        assert_well_formed(received)
        assert received.acknowledged
    ids = [r.id for r in everything.all()]
    assert len(ids) == len(set(ids)), "a webhook-id came twice"
    assert [r.type for r in granted.all()] == ["access.granted"] * len(granted.all())
    assert len([r for r in granted.all() if about(pid)(r)]) == 2

    # Each is on record as acknowledged at the first attempt, one row per endpoint.
    rows = {(row["message_id"], row["url"]): row for row in webhook_log(site)}
    for received, sink in [(r, everything) for r in mine] + [(r, granted) for r in granted.all()]:
        row = rows[(received.id, sink.url)]
        assert (row["event"], row["status"], row["attempts"], row["last_status"], row["last_error"]) == \
            (received.type, "sent", 1, 200, ""), row
        assert row["sent_at"] and row["next_attempt_at"] is None, row
    stored = site_sql(site, f"SELECT payload FROM webhook_delivery WHERE message_id = '{deleted.id}'")
    assert [row["payload"].encode() for row in stored] == [deleted.body]


def test_a_person_created_through_the_api_is_announced_with_its_external_id(server, sinks):
    everything, _ = sinks
    address = unique("grace")
    created = api(server, "POST", "/people", {"email": address, "name": "Grace Hopper", "external_id": f"crm-{address}"})
    assert created.status == 201, created.text
    person = json.loads(created.text)
    assert person["external_id"] == f"crm-{address}"
    [event] = everything.wait_for(1, where=about(person["id"], address))
    assert event.type == "person.created"
    assert event.data["person"] == {"id": person["id"], "email": address, "name": "Grace Hopper",
                                    "external_id": f"crm-{address}"}, event.data


def test_a_deleted_persons_id_is_never_given_to_someone_else(make_site):
    """person.deleted tells receivers to erase their copy by id, and a delivery can arrive late
    (retries run for 24 h): if the id named someone new by then, the wrong person is erased."""
    with WebhookSink(new_secret()) as sink:
        site = make_site(webhooks=[{"url": sink.url, "secret": sink.secret, "events": ["person.created", "person.deleted"]}])
        admin_ok(site, "contact", "add", "old@example.com")
        admin_ok(site, "user", "delete", "old@example.com", "--yes")
        admin_ok(site, "contact", "add", "new@example.com")
        created_old, deleted, created_new = sink.all()
        assert (created_old.type, deleted.type, created_new.type) == ("person.created", "person.deleted", "person.created")
        assert deleted.data["person"]["id"] == created_old.data["person"]["id"]
        assert created_new.data["person"]["id"] != deleted.data["person"]["id"], (created_old.data, created_new.data)
        sink.check()


def test_a_failed_email_is_one_mail_failed_event_however_often_it_fails(make_site):
    with WebhookSink(new_secret()) as sink:
        site = make_site(webhooks=[{"url": sink.url, "secret": sink.secret, "events": ["mail.failed"]}],
                         mail={"transport": "sendmail:/bin/false"})
        admin_ok(site, "offer", "add", "gold", "--name", "Gold")
        added = admin_ok(site, "user", "add", "lin@example.com", "--offer", "gold")
        assert "could not be delivered" in added.stderr, added.stderr
        [mail] = site_sql(site, "SELECT id, person_id FROM mail")
        [event] = sink.all()
        assert event.type == "mail.failed" and event.acknowledged
        assert event.data == {"mail": {"id": mail["id"], "kind": "welcome", "recipient": "lin@example.com",
                                       "person_id": mail["person_id"], "error": "/bin/false exited with status 1"}}
        retried = site.latchkey("mail", "retry", str(mail["id"]))
        assert retried.returncode == 1, retried
        assert len(sink.all()) == 1, [r.type for r in sink.all()]
        sink.check()


# --- 2. an endpoint that fails, or is down, gets it later, once -------------------------------------
def test_a_500_is_retried_by_mail_deliver_after_5_s_and_acknowledged_once(latchkey_path):
    with WebhookSink(new_secret()) as sink:
        sink.answer(500)
        with running("apache", {"webhooks": [{"url": sink.url, "secret": sink.secret}]}, offer="gold") as server:
            site = server.site
            server.api_key = admin_ok(site, "api-key", "add", "crm", "--scopes", SCOPES).stdout.strip()
            created = api(server, "POST", "/people", {"email": "bob@example.com", "name": "Bob"})
            assert created.status == 201, created.text
            [failed] = sink.wait_for(1)
            settle(server)
            assert (failed.type, failed.status) == ("person.created", 500)
            [row] = webhook_log(site, "--failed")
            assert (row["message_id"], row["status"], row["attempts"], row["last_status"]) == (failed.id, "failed", 1, 500), row
            assert row["last_error"].startswith("HTTP 500"), row
            due = datetime.datetime.fromisoformat(row["next_attempt_at"].replace("Z", "+00:00")).timestamp()
            created_at = datetime.datetime.fromisoformat(row["created_at"].replace("Z", "+00:00")).timestamp()
            assert 4 <= due - created_at <= 7, row

            # Not yet due: cron sends nothing (checked only while that is still true by a margin).
            if time.time() < due - 1:
                early = admin_ok(site, "mail", "deliver")
                assert "webhooks: 0 sent, 0 failed, 1 waiting" in early.stdout, early.stdout
                assert len(sink.all()) == 1

            time.sleep(max(0.0, due - time.time()) + 1.1)
            late = admin_ok(site, "mail", "deliver")
            assert "webhooks: 1 sent, 0 failed, 0 waiting" in late.stdout, late.stdout
            first, second = sink.all()
            assert (second.id, second.body, second.status) == (first.id, first.body, 200)
            [row] = webhook_log(site)
            assert (row["status"], row["attempts"], row["last_status"], row["last_error"]) == ("sent", 2, 200, ""), row
            assert row["next_attempt_at"] is None

            # Acknowledged is the end of it: cron again, now and after a wait, sends nothing.
            admin_ok(site, "mail", "deliver")
            time.sleep(1.5)
            admin_ok(site, "mail", "deliver")
            assert len(sink.all()) == 2
            assert webhook_log(site, "--failed") == []
        sink.check()


def test_an_endpoint_that_is_down_loses_nothing(make_site):
    port = free_port()  # nothing listens there yet
    secret = new_secret()
    site = make_site(webhooks=[{"url": f"http://127.0.0.1:{port}/hook", "secret": secret}])
    added = admin_ok(site, "contact", "add", "cleo@example.com", "--name", "Cleo")
    assert "warning: 1 webhook deliveries failed" in added.stderr, added.stderr
    [row] = webhook_log(site, "--failed")
    assert (row["event"], row["status"], row["attempts"], row["last_status"]) == ("person.created", "failed", 1, None), row
    assert "connect" in row["last_error"].lower(), row
    assert row["next_attempt_at"] is not None
    due = datetime.datetime.fromisoformat(row["next_attempt_at"].replace("Z", "+00:00")).timestamp()

    with WebhookSink(secret, port=port) as sink:
        time.sleep(max(0.0, due - time.time()) + 1.1)
        admin_ok(site, "mail", "deliver")
        [received] = sink.all()
        assert received.id == row["message_id"] and received.acknowledged
        assert received.data["person"]["email"] == "cleo@example.com"
        assert [r["status"] for r in webhook_log(site)] == ["sent"]
        admin_ok(site, "mail", "deliver")
        assert len(sink.all()) == 1
        sink.check()


def test_a_slow_endpoint_does_not_hold_up_a_reset_email(latchkey_path):
    """Events go out after the answer through the same worker as mail: a reset requested while
    it is busy with a slow endpoint must still arrive as promptly as without webhooks."""
    with WebhookSink(new_secret()) as sink:
        with running("apache", {"webhooks": [{"url": sink.url, "secret": sink.secret, "events": ["person.created"]}]},
                     offer="gold") as server:
            site = server.site
            add_customer(site, "ivy@example.com", "ivy's long passphrase", offer="gold")
            server.api_key = admin_ok(site, "api-key", "add", "crm", "--scopes", SCOPES).stdout.strip()
            before = sink.arrivals
            sink.delay = 2.0
            for n in range(6):
                assert api(server, "POST", "/people", {"email": f"slow{n}@example.com"}).status == 201
            poll(lambda: sink.arrivals, done=lambda a: a >= before + 2, timeout=10, what="the second event in flight")
            asked = time.monotonic()
            answered = server.post("/cgi-bin/forgot", {"email": "ivy@example.com", "locale": "en"})
            assert answered.status == 303, answered.status
            Mailbox(site.var / "mail").wait_for(1, timeout=30, to="ivy@example.com")
            waited = time.monotonic() - asked
            sink.wait_for(before + 6, timeout=30)
            settle(server)
            assert waited < 5, f"the reset email came {waited:.1f} s after it was asked for, behind the webhook deliveries"
        sink.check()


# --- 3. 410 Gone ---------------------------------------------------------------------------------
def audit(site, action: str) -> list[dict]:
    return site_sql(site, f"SELECT actor, detail FROM audit WHERE action = '{action}' ORDER BY id")


def test_410_disables_the_endpoint_until_a_retry_by_hand_succeeds(make_site):
    with WebhookSink(new_secret()) as sink:
        sink.answer(410)
        site = make_site(webhooks=[{"url": sink.url, "secret": sink.secret}])
        admin_ok(site, "contact", "add", "dora@example.com")
        [gone] = sink.all()
        assert gone.status == 410
        [first] = webhook_log(site, "--failed")
        assert (first["status"], first["last_status"], first["next_attempt_at"]) == ("failed", 410, None), first
        assert [row["detail"] for row in audit(site, "webhook.disabled")] == [f"{sink.url} answered 410 Gone"]
        assert [row["url"] for row in site_sql(site, "SELECT substr(name, 18) AS url FROM setting WHERE name LIKE 'webhook.disabled %'")] == [sink.url]

        # What happens next is recorded, as failed, and not sent: not now, and not by cron.
        admin_ok(site, "contact", "add", "emil@example.com")
        later = webhook_log(site)[0]
        assert (later["event"], later["status"], later["attempts"], later["next_attempt_at"]) == \
            ("person.created", "failed", 0, None), later
        assert "410" in later["last_error"], later
        delivered = admin_ok(site, "mail", "deliver")
        assert "webhooks: 0 sent, 0 failed, 0 waiting" in delivered.stdout, delivered.stdout
        assert len(sink.all()) == 1

        # The endpoint is back: a retry by hand sends it and turns automatic delivery on again.
        retried = admin_ok(site, "webhook", "retry", str(later["id"]))
        assert retried.stdout == f"Delivery #{later['id']} sent: {sink.url} acknowledged it.\n", retried.stdout
        back = sink.all()[-1]
        assert (back.id, back.status, back.data["person"]["email"]) == (later["message_id"], 200, "emil@example.com")
        assert [row["detail"] for row in audit(site, "webhook.enabled")] == [sink.url]
        assert site_sql(site, "SELECT name FROM setting WHERE name LIKE 'webhook.disabled %'") == []
        assert [r["status"] for r in webhook_log(site)] == ["sent", "failed"]  # the one answered 410 waits for its own retry
        admin_ok(site, "contact", "add", "finn@example.com")
        assert [r.data["person"]["email"] for r in sink.acknowledged()] == ["emil@example.com", "finn@example.com"]
        admin_ok(site, "webhook", "retry", str(first["id"]))
        assert sink.all()[-1].id == first["message_id"] and sink.all()[-1].acknowledged
        assert len(sink.all()) == 4
        assert {r["status"] for r in webhook_log(site)} == {"sent"}
        sink.check()


def test_a_delivery_waiting_when_its_endpoint_answers_410_is_listed_as_failed(make_site):
    with WebhookSink(new_secret()) as sink:
        sink.answer(410)
        site = make_site(webhooks=[{"url": sink.url, "secret": sink.secret}])
        admin_ok(site, "offer", "add", "gold", "--name", "Gold")
        admin_ok(site, "user", "add", "gia@example.com", "--offer", "gold", "--no-email")  # person.created, access.granted
        assert [r.status for r in sink.all()] == [410]  # the second is not sent to a gone endpoint
        rows = webhook_log(site)
        assert [r["event"] for r in rows] == ["access.granted", "person.created"]
        assert all(r["next_attempt_at"] is None for r in rows), rows
        # Neither was acknowledged and neither will be sent without `webhook retry`: both are failed.
        assert [r["id"] for r in webhook_log(site, "--failed")] == [r["id"] for r in rows], \
            [(r["id"], r["event"], r["status"], r["attempts"], r["next_attempt_at"]) for r in rows]
        sink.check()


# --- 4. webhook retry refuses what it must not send ----------------------------------------------
def test_retry_refuses_an_acknowledged_delivery_and_an_unknown_one(server, sinks):
    everything, _ = sinks
    settle(server)
    admin_ok(server.site, "contact", "add", unique("hal"))
    sent = webhook_log(server.site)[0]
    assert sent["status"] == "sent", sent
    count = len(everything.all())
    for word, message in [(str(sent["id"]), f"error: delivery #{sent['id']} was already acknowledged "),
                          ("999999", "error: no webhook delivery #999999 (see latchkey webhook log)"),
                          ("abc", "error: ID is a delivery number from latchkey webhook log")]:
        result = server.site.latchkey("webhook", "retry", word)
        assert result.returncode == 1 and result.stdout == "", result
        assert result.stderr.count("\n") == 1 and result.stderr.startswith(message), result.stderr
    assert len(everything.all()) == count
    assert webhook_log(server.site)[0] == sent


# --- 5. the config refuses endpoints that would leak or could not be signed --------------------------
GOOD = "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZg=="  # 16 bytes


@pytest.mark.parametrize("entries, key", [
    ([{"url": "http://example.com/", "secret": GOOD}], "webhooks[0].url"),
    ([{"url": "ftp://127.0.0.1/", "secret": GOOD}], "webhooks[0].url"),
    ([{"url": "http://127.0.0.1.example.com/", "secret": GOOD}], "webhooks[0].url"),
    ([{"url": "http://localhost.example.com/", "secret": GOOD}], "webhooks[0].url"),
    ([{"url": "http://127.0.0.1:8080@example.com/", "secret": GOOD}], "webhooks[0].url"),
    ([{"url": "http://localhost:80@example.com/hook", "secret": GOOD}], "webhooks[0].url"),
    ([{"secret": GOOD}], "webhooks[0].url"),
    ([{"url": "https://hooks.example.com/a", "secret": GOOD}, {"url": "https://hooks.example.com/b", "secret": "whsec_MDEyMzQ1Njc="}],
     "webhooks[1].secret"),
    ([{"url": "https://hooks.example.com/", "secret": "MDEyMzQ1Njc4OWFiY2RlZg=="}], "webhooks[0].secret"),
    ([{"url": "https://hooks.example.com/", "secret": "whsec_not base64 at all!"}], "webhooks[0].secret"),
    ([{"url": "https://hooks.example.com/", "secret": ""}], "webhooks[0].secret"),
    ([{"url": "https://hooks.example.com/", "secret": GOOD, "events": ["person.updated"]}], "webhooks[0].events"),
    ([{"url": "https://hooks.example.com/", "secret": GOOD, "event": ["person.created"]}], "webhooks[0].event"),
])
def test_the_config_refuses_a_bad_endpoint_naming_the_key(make_site, entries, key):
    site = make_site()
    site.update_config(webhooks=entries)
    for command in (["offer", "list"], ["mail", "deliver"], ["webhook", "log"]):
        result = site.latchkey(*command)
        assert result.returncode == 1, (command, result)
        assert result.stderr.count("\n") == 1 and f": {key}" in result.stderr and result.stderr.startswith("error: "), result.stderr


@pytest.mark.parametrize("url", ["https://hooks.example.com/latchkey", "http://127.0.0.1:9/hook", "http://localhost:9/",
                                 "http://[::1]:9/hook", "http://127.0.0.2/"])
def test_the_config_takes_https_and_loopback_endpoints(make_site, url):
    site = make_site()
    site.update_config(webhooks=[{"url": url, "secret": GOOD, "events": ["access.granted", "mail.failed"]}])
    admin_ok(site, "offer", "list")


# --- 6. a Stripe checkout ----------------------------------------------------------------------------
def stripe_post(server, event: dict):
    payload = json.dumps(event)
    stamp = int(time.time())
    signature = stripe.WebhookSignature._compute_signature(f"{stamp}.{payload}", STRIPE_SECRET)
    return server.request("POST", "/cgi-bin/stripe", body=payload,
                          headers={"Content-Type": "application/json", "Stripe-Signature": f"t={stamp},v1={signature}"})


def checkout(n: int, address: str, name: str, offers: str = "gold") -> dict:
    return {"id": f"evt_wh_{n}", "object": "event", "type": "checkout.session.completed", "created": int(time.time()),
            "data": {"object": {"id": f"cs_test_{n}", "object": "checkout.session", "payment_status": "paid",
                                "customer": f"cus_wh_{n}", "customer_details": {"email": address, "name": name},
                                "metadata": {"latchkey_offers": offers}, "payment_intent": f"pi_wh_{n}"}}}


def test_a_stripe_checkout_announces_the_new_customer_and_their_access(server, sinks):
    everything, granted = sinks
    address, n = unique("buyer"), next(_serial)
    answered = stripe_post(server, checkout(n, address, "Byron Buyer"))
    assert answered.status == 200 and json.loads(answered.text)["received"] is True, answered.text
    [row] = site_sql(server.site, f"SELECT id FROM person WHERE email = '{address}'")
    pid = row["id"]
    events = everything.wait_for(2, where=about(pid, address))
    by_type = {r.type: r for r in events}
    card = {"id": pid, "email": address, "name": "Byron Buyer", "external_id": None}
    assert by_type["person.created"].data == {"person": card, "kind": "customer"}
    assert by_type["access.granted"].data == {"person": card, "offer": "gold"}
    assert [r.id for r in granted.wait_for(1, where=about(pid, address))] == [by_type["access.granted"].id]
    assert site_sql(server.site, f"SELECT actor FROM audit WHERE action = 'access.granted' AND person_id = {pid}") == [{"actor": "stripe"}]

    # Stripe sends an event again when it is unsure it arrived: worked once, announced once.
    replay = stripe_post(server, checkout(n, address, "Byron Buyer"))
    assert replay.status == 200 and "already worked" in replay.text, replay.text
    settle(server)
    assert len([r for r in everything.all() if about(pid, address)(r)]) == 2
    assert len([r for r in granted.all() if about(pid, address)(r)]) == 1
    for received in events:
        assert_well_formed(received)
        assert received.acknowledged
