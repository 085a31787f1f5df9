"""A small html.parser-based reader for generated pages: elements, forms, links, text."""
from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

URL_ATTRIBUTES = ("src", "href", "action", "formaction", "poster", "data", "cite", "background",
                  "srcset", "imagesrcset", "ping", "manifest", "longdesc", "usemap", "codebase")


@dataclass
class Form:
    attrs: dict
    inputs: list = field(default_factory=list)  # attrs dicts of <input>, <select>, <textarea>, <button>

    @property
    def action(self) -> str:
        return self.attrs.get("action") or ""

    @property
    def method(self) -> str:
        return (self.attrs.get("method") or "get").lower()

    def field(self, name: str) -> dict | None:
        for attrs in self.inputs:
            if attrs.get("name") == name:
                return attrs
        return None

    @property
    def names(self) -> list[str]:
        return [a.get("name") for a in self.inputs if a.get("name")]


class Page(HTMLParser):
    """Parses one HTML document. `elements` is every start tag as (tag, attrs), in order."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict]] = []
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._skip = 0
        self._in_title = False
        self.title = ""
        self.text_parts: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = {k: (v if v is not None else "") for k, v in attrs}
        self.elements.append((tag, attrs))
        if tag == "form":
            self._form = Form(attrs)
            self.forms.append(self._form)
        elif tag in ("input", "select", "textarea", "button") and self._form is not None:
            self._form.inputs.append(dict(attrs, _tag=tag))
        elif tag in ("script", "style"):
            self._skip += 1
        elif tag == "title":
            self._in_title = True

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        elif not self._skip:
            self.text_parts.append(data)

    # --- queries ----------------------------------------------------------------------------
    @property
    def text(self) -> str:
        """Visible body text, whitespace collapsed."""
        return " ".join(" ".join(self.text_parts).split())

    def find_all(self, tag: str) -> list[dict]:
        return [attrs for t, attrs in self.elements if t == tag]

    @property
    def lang(self) -> str | None:
        html = self.find_all("html")
        return html[0].get("lang") if html else None

    def links(self) -> list[str]:
        return [attrs["href"] for attrs in self.find_all("a") if "href" in attrs]

    def url_values(self):
        """Every (tag, attribute, value) that holds a URL."""
        for tag, attrs in self.elements:
            for name in URL_ATTRIBUTES:
                if name in attrs:
                    value = attrs[name]
                    if name in ("srcset", "imagesrcset"):
                        for candidate in value.split(","):
                            parts = candidate.split()
                            if parts:
                                yield tag, name, parts[0]
                    elif name == "ping":
                        for part in value.split():
                            yield tag, name, part
                    else:
                        yield tag, name, value
            if tag == "meta" and attrs.get("http-equiv", "").lower() == "refresh":
                content = attrs.get("content", "")
                if "url=" in content.lower():
                    yield tag, "content", content[content.lower().index("url=") + 4:].strip(" '\"")

    def form_posting_to(self, endpoint_path: str) -> Form | None:
        for form in self.forms:
            if form.action == endpoint_path:
                return form
        return None


def load(path: Path) -> Page:
    return Page(Path(path).read_text(encoding="utf-8"))
