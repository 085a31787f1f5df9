# Latchkey. `make demo` runs the product, `make test` runs every test (see README.md).
# Fully static (no dynamic loader at start-up), and generic types' metadata reached through
# direct accessors rather than mangled names the runtime must demangle on first use. Each
# function and global gets its own section, and lld puts the functions a CGI runs side by side
# and the data it touches side by side (scripts/hot-symbols.py), so a request faults in a few
# 64 KiB windows of code and a few pages of data rather than one for every scattered symbol.
SWIFT_RELEASE = swift build -c release -Xswiftc -static-executable \
	-Xswiftc -Xfrontend -Xswiftc -disable-concrete-type-metadata-mangled-name-accessors \
	-Xswiftc -Xfrontend -Xswiftc -function-sections \
	-Xswiftc -use-ld=lld -Xlinker --symbol-ordering-file=$(CURDIR)/Sources/latchkey-cgi/hot-symbols.txt \
	-Xlinker --no-warn-symbol-ordering
CGIS = login logout forgot reset account session members admin api stripe confirm-email
PREFIX ?= /usr/local

.PHONY: build deps-build demo demo-stop test screenshots fuzz bench clean

build: deps-build
	python3 scripts/embed-site.py
	@# SwiftPM does not know the order file is an input of the link: a newer one relinks.
	@if [ Sources/latchkey-cgi/hot-symbols.txt -nt .build/release/latchkey-cgi ]; then rm -f .build/release/latchkey-cgi; fi
	$(SWIFT_RELEASE)
	@mkdir -p cgi-bin
	@for cgi in $(CGIS); do install -m 0755 .build/release/latchkey-cgi cgi-bin/$$cgi; done
	@echo "built .build/release/latchkey and cgi-bin/{$(shell echo $(CGIS) | tr ' ' ',')}"

# Debian packages the build needs; installed only when missing.
deps-build:
	@scripts/install-deps.sh build

demo: build
	scripts/demo.sh

demo-stop:
	scripts/demo.sh stop

test: build
	scripts/test.sh

screenshots: build
	scripts/install-deps.sh test
	python3 -m pytest -q Tests/e2e/test_screenshots.py

# FUZZ_SECONDS per target (default 60).
fuzz: deps-build
	scripts/fuzz.sh $(FUZZ_SECONDS)

bench: build
	scripts/install-deps.sh bench
	python3 scripts/bench.py

clean:
	rm -rf .build $(addprefix cgi-bin/,$(CGIS)) artifacts
