"""Stripe's webhook events through a real Apache (SPEC §11), built as Stripe builds them and
signed with the official `stripe` library's own header generator: a paid Checkout Session
creates the buyer from `customer_details`, grants the mapped offers and sends the welcome
email after the answer; a replayed event does nothing twice; a bad or stale signature is a 400
that changes nothing; a cancelled subscription and a refund revoke what they granted and end
the buyer's sessions. The line-items fallback talks to a loopback stand-in for Stripe's API
(the real one is not reachable from here), which checks the key arrives as Stripe expects.
"""
from __future__ import annotations

import base64
import contextlib
import http.server
import json
import threading
import time

import pytest
import stripe

import maildir as mail
from lkserver import admin_ok, site_dump, site_sql
from servers import running

SECRET = "whsec_test_4eC39HqLyjWDarjtT1zdp7dc"
CONFIG = {"site_name": "Acme Academy",
          "stripe": {"webhook_secret": SECRET, "revoke_on_refund": True,
                     "offers": {"plink_1Gold": "gold", "price_1Monthly": "gold", "prod_Silver": "silver"}}}
STATE = ("person", "access_grant", "mail", "reset_token", "session", "stripe_event", "stripe_customer", "stripe_grant")
_serial = iter(range(1, 10**6))


@pytest.fixture(scope="module")
def server(latchkey_path):
    with running("apache", CONFIG, offer="gold") as srv:
        admin_ok(srv.site, "offer", "add", "silver", "--name", "Silver")
        yield srv


def event(type_, obj, event_id=None):
    """An event as Stripe sends it (the fields Latchkey reads, and the ones around them)."""
    return {"id": event_id or f"evt_1Test{next(_serial):08d}", "object": "event", "api_version": "2024-06-20",
            "created": int(time.time()), "livemode": False, "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None}, "type": type_, "data": {"object": obj}}


def session(email, name="Ana Pérez", customer=None, **fields):
    n = next(_serial)
    obj = {"id": f"cs_test_a1{n:06d}", "object": "checkout.session", "mode": "payment", "status": "complete",
           "payment_status": "paid", "amount_total": 4900, "currency": "usd", "customer": customer or f"cus_Test{n:06d}",
           "customer_details": {"email": email, "name": name, "address": {"country": "FR"}, "phone": None},
           "payment_intent": f"pi_3Test{n:06d}", "subscription": None, "payment_link": None, "metadata": {}}
    obj.update(fields)
    return obj


def send(server, payload, secret=SECRET, timestamp=None, header=None):
    body = payload if isinstance(payload, str) else json.dumps(payload)
    signature = header if header is not None else stripe.WebhookSignature.generate_signature_header(body, secret, timestamp)
    return server.request("POST", "/cgi-bin/stripe", body=body.encode(),
                          headers={"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": signature,
                                   "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"})


def access(server, email):
    return [r["slug"] for r in site_sql(server.site, f"""
        SELECT o.slug FROM access_grant g JOIN offer o ON o.id = g.offer_id JOIN person p ON p.id = g.person_id
        WHERE p.email = '{email}' AND g.revoked_at IS NULL ORDER BY o.slug""")]


def buyer(n=None):
    return f"buyer-{n or next(_serial)}@example.com"


def test_a_paid_checkout_creates_the_buyer_grants_and_the_welcome_mail_lets_them_in(server):
    email = buyer()
    answer = send(server, event("checkout.session.completed", session(email.upper(), metadata={"latchkey_offers": "gold, silver"})))
    assert answer.status == 200 and answer.headers["content-type"] == "application/json", answer.text
    assert json.loads(answer.body)["received"] is True
    person = site_sql(server.site, f"SELECT name, kind FROM person WHERE email = '{email}'")
    assert person == [{"name": "Ana Pérez", "kind": "customer"}]
    assert access(server, email) == ["gold", "silver"]
    welcome = mail.Mailbox(server.site.var / "mail").wait_for(1, to=email)[-1]
    token = mail.reset_token(welcome, server.url)
    page = server.get(f"/cgi-bin/reset?token={token}")
    cookie = [h.split(";")[0] for h in page.all("set-cookie") if h.startswith("lk_reset=")][0]
    assert server.post("/cgi-bin/reset", {"new_password": "bought and paid for", "confirm_password": "bought and paid for", "locale": "en"},
                       headers={"Cookie": cookie}).status == 303
    login = server.post("/cgi-bin/login", {"email": email, "password": "bought and paid for", "locale": "en"})
    assert login.status == 303 and "/members/" in login.headers["location"]
    audit = site_sql(server.site, "SELECT actor, detail FROM audit WHERE action = 'stripe.event' ORDER BY id DESC LIMIT 1")
    assert audit[0]["actor"] == "stripe" and "granted gold, silver to " + email in audit[0]["detail"]


def test_a_replayed_event_is_worked_once(server):
    email = buyer()
    payload = event("checkout.session.completed", session(email, metadata={"latchkey_offers": "gold"}))
    assert send(server, payload).status == 200
    box = mail.Mailbox(server.site.var / "mail")
    box.wait_for(1, to=email)
    before = site_dump(server.site, *STATE)
    again = send(server, payload)
    assert again.status == 200 and "already worked" in json.loads(again.body)["outcome"]
    time.sleep(0.3)
    assert site_dump(server.site, *STATE) == before
    assert len([m for m in box.messages() if mail.recipient(m) == email]) == 1


@pytest.mark.parametrize("how", ["wrong secret", "body altered", "stale timestamp", "future timestamp", "no header", "no v1",
                                 "garbage header"])
def test_a_bad_signature_is_400_and_changes_nothing(server, how):
    email = buyer()
    body = json.dumps(event("checkout.session.completed", session(email, metadata={"latchkey_offers": "gold"})))
    header = None
    if how == "wrong secret":
        header = stripe.WebhookSignature.generate_signature_header(body, "whsec_someone_elses_secret")
    elif how == "body altered":
        header = stripe.WebhookSignature.generate_signature_header(body, SECRET)
        body = body.replace("buyer-", "victim-")
    elif how == "stale timestamp":
        header = stripe.WebhookSignature.generate_signature_header(body, SECRET, int(time.time()) - 301)
    elif how == "future timestamp":
        header = stripe.WebhookSignature.generate_signature_header(body, SECRET, int(time.time()) + 600)
    elif how == "no header":
        header = ""
    elif how == "no v1":
        header = "t=%d,v0=%s" % (time.time(), "0" * 64)
    else:
        header = "this is not a signature"
    before = site_dump(server.site, *STATE)
    answer = send(server, body, header=header)
    assert answer.status == 400 and answer.headers["content-type"] == "application/problem+json", answer.text
    assert site_dump(server.site, *STATE) == before
    assert "latchkey stripe: refused" in server.error_log()


def test_events_that_map_to_nothing_answer_200_and_change_nothing(server):
    before = site_dump(server.site, *STATE[:-3])
    for payload in [event("customer.created", {"id": "cus_X", "object": "customer", "email": buyer()}),
                    event("checkout.session.completed", session(buyer())),
                    event("checkout.session.completed", session(buyer(), payment_link="plink_unmapped"))]:
        answer = send(server, payload)
        assert answer.status == 200, answer.text
    assert site_dump(server.site, *STATE[:-3]) == before


def test_a_payment_link_is_mapped_through_stripe_offers(server):
    email = buyer()
    assert send(server, event("checkout.session.completed", session(email, payment_link="plink_1Gold"))).status == 200
    assert access(server, email) == ["gold"]


def test_an_async_payment_grants_only_once_it_has_succeeded(server):
    email = buyer()
    pending = session(email, payment_status="unpaid", metadata={"latchkey_offers": "silver"})
    assert send(server, event("checkout.session.completed", pending)).status == 200
    assert access(server, email) == [] and not site_sql(server.site, f"SELECT 1 FROM person WHERE email = '{email}'")
    assert send(server, event("checkout.session.async_payment_succeeded", dict(pending, payment_status="paid"))).status == 200
    assert access(server, email) == ["silver"]


def test_a_returning_buyer_is_found_by_address_and_then_by_stripe_customer(server):
    email = buyer()
    admin_ok(server.site, "user", "add", email, "--name", "Already Here", "--no-email")
    admin_ok(server.site, "user", "set-password", email, input="an older passphrase\n")
    box = mail.Mailbox(server.site.var / "mail")
    before = box.count()
    first = session(email, name="Different Name", customer="cus_Returning1", metadata={"latchkey_offers": "gold"})
    assert send(server, event("checkout.session.completed", first)).status == 200
    assert access(server, email) == ["gold"]
    assert site_sql(server.site, f"SELECT name FROM person WHERE email = '{email}'") == [{"name": "Already Here"}]
    # Stripe customer ids are remembered: a later checkout with another address is the same person.
    later = session("new-address@example.org", customer="cus_Returning1", metadata={"latchkey_offers": "silver"})
    assert send(server, event("checkout.session.completed", later)).status == 200
    assert access(server, email) == ["gold", "silver"]
    assert not site_sql(server.site, "SELECT 1 FROM person WHERE email = 'new-address@example.org'")
    time.sleep(0.3)
    assert box.count() == before, "someone with a password gets no welcome link"


def logged_in(server, email, password="the members passphrase"):
    admin_ok(server.site, "user", "set-password", email, input=password + "\n")
    login = server.post("/cgi-bin/login", {"email": email, "password": password, "locale": "en"})
    cookie = [h.split(";")[0] for h in login.all("set-cookie") if h.startswith("lk_session=")][0]
    assert server.get("/cgi-bin/session", headers={"Cookie": cookie}).status == 204
    return cookie


def test_a_cancelled_subscription_revokes_its_offer_and_ends_sessions(server):
    email = buyer()
    checkout = session(email, mode="subscription", payment_intent=None, subscription="sub_1Cancel", customer="cus_Sub1")
    checkout["metadata"] = {"latchkey_offers": "gold"}
    assert send(server, event("checkout.session.completed", checkout)).status == 200
    cookie = logged_in(server, email)
    subscription = {"id": "sub_1Cancel", "object": "subscription", "customer": "cus_Sub1", "status": "canceled",
                    "items": {"object": "list", "data": [{"id": "si_1", "object": "subscription_item",
                                                          "price": {"id": "price_1Monthly", "object": "price", "product": "prod_Course"}}]},
                    "metadata": {}}
    assert send(server, event("customer.subscription.deleted", subscription)).status == 200
    assert access(server, email) == []
    assert server.get("/cgi-bin/session", headers={"Cookie": cookie}).status == 401
    assert site_sql(server.site, f"SELECT actor FROM audit WHERE action = 'access.revoked' AND subject = '{email}'") == [{"actor": "stripe"}]


def test_a_subscription_found_only_by_its_price_is_revoked_too(server):
    email = buyer()
    assert send(server, event("checkout.session.completed", session(email, customer="cus_Price1", metadata={"latchkey_offers": "gold"}))).status == 200
    subscription = {"id": "sub_NeverSeen", "object": "subscription", "customer": "cus_Price1", "status": "canceled",
                    "items": {"object": "list", "data": [{"price": {"id": "price_1Monthly", "product": "prod_Course"}}]}}
    assert send(server, event("customer.subscription.deleted", subscription)).status == 200
    assert access(server, email) == []


def test_a_full_refund_revokes_what_the_payment_granted(server):
    email = buyer()
    checkout = session(email, metadata={"latchkey_offers": "silver"})
    assert send(server, event("checkout.session.completed", checkout)).status == 200
    admin_ok(server.site, "access", "grant", email, "gold", "--no-email")
    cookie = logged_in(server, email)
    charge = {"id": "ch_1", "object": "charge", "payment_intent": checkout["payment_intent"], "customer": checkout["customer"],
              "amount": 4900, "amount_refunded": 1000, "refunded": False}
    assert send(server, event("charge.refunded", charge)).status == 200
    assert access(server, email) == ["gold", "silver"], "a partial refund keeps access"
    assert send(server, event("charge.refunded", dict(charge, amount_refunded=4900, refunded=True))).status == 200
    assert access(server, email) == ["gold"], "only what that payment granted"
    assert server.get("/cgi-bin/session", headers={"Cookie": cookie}).status == 204, "still holds gold"


def test_a_refund_never_takes_away_what_staff_granted(server):
    email = buyer()
    admin_ok(server.site, "user", "add", email, "--no-email", "--offer", "gold")
    # They buy what they already hold (a gift from staff), then get their money back.
    checkout = session(email, metadata={"latchkey_offers": "gold"})
    assert send(server, event("checkout.session.completed", checkout)).status == 200
    refund = {"id": "ch_3", "object": "charge", "payment_intent": checkout["payment_intent"], "customer": checkout["customer"], "refunded": True}
    assert send(server, event("charge.refunded", refund)).status == 200
    cancelled = {"id": "sub_gift", "object": "subscription", "customer": checkout["customer"],
                 "items": {"data": [{"price": {"id": "price_1Monthly", "product": "prod_Course"}}]}}
    assert send(server, event("customer.subscription.deleted", cancelled)).status == 200
    assert access(server, email) == ["gold"]


def test_refunds_revoke_nothing_unless_the_site_asks(latchkey_path):
    config = {"stripe": dict(CONFIG["stripe"], revoke_on_refund=False)}
    with running("apache", config, offer="gold") as srv:
        email = buyer()
        checkout = session(email, metadata={"latchkey_offers": "gold"})
        assert send(srv, event("checkout.session.completed", checkout)).status == 200
        charge = {"id": "ch_2", "object": "charge", "payment_intent": checkout["payment_intent"], "refunded": True}
        assert send(srv, event("charge.refunded", charge)).status == 200
        assert access(srv, email) == ["gold"]


def test_an_offer_that_does_not_exist_yet_is_an_error_stripe_retries_and_then_works(server):
    email = buyer()
    payload = event("checkout.session.completed", session(email, metadata={"latchkey_offers": "platinum"}))
    before = site_dump(server.site, *STATE)
    failed = send(server, payload)
    assert failed.status == 500 and "platinum" in json.loads(failed.body)["detail"]
    assert site_dump(server.site, *STATE) == before, "not recorded as worked, so Stripe's retry is worked"
    admin_ok(server.site, "offer", "add", "platinum", "--name", "Platinum")
    assert send(server, payload).status == 200
    assert access(server, email) == ["platinum"]


def test_the_answer_does_not_wait_for_mail(latchkey_path, tmp_path):
    with running("apache", CONFIG, offer="gold") as srv:
        slow = srv.site.top / "slow-sendmail.sh"
        slow.write_text("#!/bin/sh\nsleep 3\ncat > /dev/null\n")
        slow.chmod(0o755)
        srv.site.update_config(mail={"transport": f"sendmail:{slow}", "from": "Acme <no-reply@example.com>"})
        started = time.monotonic()
        answer = send(srv, event("checkout.session.completed", session(buyer(), metadata={"latchkey_offers": "gold"})))
        elapsed = time.monotonic() - started
        assert answer.status == 200 and elapsed < 2.0, elapsed


def test_other_methods_and_an_unconfigured_site_are_refused(server, latchkey_path):
    assert server.get("/cgi-bin/stripe").status == 405
    with running("apache", {}, offer="gold") as bare:
        answer = send(bare, event("checkout.session.completed", session(buyer(), metadata={"latchkey_offers": "gold"})))
        assert answer.status == 404 and "stripe.webhook_secret" in json.loads(answer.body)["detail"]


class StripeStandIn(http.server.BaseHTTPRequestHandler):
    """Answers `GET /v1/checkout/sessions/{id}/line_items` as Stripe's API documents it."""
    seen: list = []

    def do_GET(self):
        StripeStandIn.seen.append((self.path, self.headers.get("Authorization")))
        body = json.dumps({"object": "list", "url": self.path.split("?")[0], "has_more": False,
                           "data": [{"id": "li_1", "object": "item", "quantity": 1,
                                     "price": {"id": "price_Other", "object": "price", "product": "prod_Silver"}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def stand_in():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StripeStandIn)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_without_metadata_the_line_items_are_fetched_with_the_api_key(latchkey_path):
    with stand_in() as api_base:
        config = {"stripe": dict(CONFIG["stripe"], api_key="rk_test_51LineItemsReader", api_base=api_base)}
        with running("apache", config, offer="silver") as srv:
            email = buyer()
            checkout = session(email)
            assert send(srv, event("checkout.session.completed", checkout)).status == 200
            assert access(srv, email) == ["silver"]
            path, authorization = StripeStandIn.seen[-1]
            assert path == f"/v1/checkout/sessions/{checkout['id']}/line_items?limit=100"
            assert authorization == "Basic " + base64.b64encode(b"rk_test_51LineItemsReader:").decode()


@pytest.mark.parametrize("kind", ["nginx", "lighttpd"])
def test_the_signature_header_reaches_the_endpoint_under_every_server(latchkey_path, kind):
    with running(kind, CONFIG, offer="gold") as srv:
        email = buyer()
        assert send(srv, event("checkout.session.completed", session(email, metadata={"latchkey_offers": "gold"}))).status == 200
        assert access(srv, email) == ["gold"]
        assert send(srv, event("checkout.session.completed", session(buyer(), metadata={"latchkey_offers": "gold"})), secret="whsec_wrong").status == 400
