# mmsgate. `make run` runs the whole system on this machine; `make test` runs
# every test, installing and starting what they need.
SHELL        := /bin/bash
GO           ?= go
BIN          := $(CURDIR)/.bin
RIE          := $(BIN)/aws-lambda-rie
STATICCHECK  := $(BIN)/staticcheck
NODE_DEPS    := node_modules/.package-lock.json
# Lambda build: static, arm64 (template Architectures), no RPC shim.
LAMBDA_ENV   := CGO_ENABLED=0 GOOS=linux GOARCH=arm64
# VERSION: pkg/version's, from the git tag v<semver> on the commit (git describe),
# else the source's own (a -dev version); docs/deploy.md#versions-and-upgrades.
VERSION      ?= $(shell git describe --tags --match 'v[0-9]*' --exact-match 2>/dev/null | sed 's/^v//')
LAMBDA_FLAGS := -tags lambda.norpc -trimpath -ldflags "-s -w$(if $(VERSION), -X github.com/mmsgate/mmsgate/pkg/version.Version=$(VERSION))"
ARTIFACTS_DIR ?= $(CURDIR)/.aws-sam/build/$@
FUZZTIME     ?= 30s
EVENTS       ?= events/sqs
STACK_ENV    ?= default
PYTHON       ?= python3
MOTO_VERSION    := 5.2.1
CFNLINT_VERSION := 1.51.0
SAMTRANSLATOR_VERSION := 1.110.0
PY_TOOLS     := $(BIN)/.python-tools-$(MOTO_VERSION)-$(CFNLINT_VERSION)-$(SAMTRANSLATOR_VERSION)
SUDO         := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# sam local on Linux: host.docker.internal (env.json's host) resolves only when added.
SAM_LOCAL_FLAGS ?= $(if $(filter Linux,$(shell uname -s)),--add-host host.docker.internal:host-gateway)

.PHONY: deploy-rehearsal
.PHONY: run dev test bench fuzz lint deps tools clients build invoke deploy sam-build sam-invoke sam-api stand-ins soak clean \
        build-SendMmsFunction build-PostbackFunction build-ReceiptCheckFunction build-ScheduleSweepFunction

## run: the whole system on one machine (simulator, dynalite, moto, emulators); EVENTS= a file or folder of
##      SQS events, bare requests, JSON arrays of requests or JSON lines (default events/sqs)
run: deps $(PY_TOOLS) $(RIE)
	$(GO) run ./cmd/mmsgate-local -events $(EVENTS)

## dev: mmsgate as a local service on fixed ports until Ctrl-C (PERSIST=1 keeps state in .run/dev-state)
dev: deps $(PY_TOOLS) $(RIE)
	$(GO) build -o $(BIN)/mmsgate-local ./cmd/mmsgate-local
	exec $(BIN)/mmsgate-local -dev $(if $(PERSIST),-persist .run/dev-state)

## test: every test, the ones that need local services included. Installs Debian's AWS CLI and boto3
##       only in CI (CI=true); elsewhere their tests skip unless `make clients` was run
test: deps $(PY_TOOLS) $(if $(filter true,$(CI)),clients) $(RIE)
	@$(CLIENTS_CHECK) || echo "make test: skipping the client tests of Debian's awscli and python3-boto3 (internal/devtest: TestDev's aws CLI and boto3 subtests), not installed; \`make clients\` installs them"
	@# 1. The unit tests (-short: memdb, in-process stand-ins) under the race
	@# detector, with only Go and a C compiler on PATH (TestShortNeedsOnlyGo
	@# built with -race runs them so). 2. Every test against the real local
	@# services, without -race (with it the suite outgrows 10 minutes on 2
	@# cores; run beside step 1 it took longer than after it). 3. The
	@# 500-request soak on its own, after: it measures timing windows (in
	@# doubt, postback retries) that other tests beside it skew.
	$(GO) test -race -count=1 -v -run '^TestShortNeedsOnlyGo$$' .
	$(GO) test -count=1 -skip '^TestSoak$$|^TestShortNeedsOnlyGo$$' ./...
	$(GO) test -count=1 -v -run '^TestSoak$$' ./internal/soak/
	$(GO) run ./cmd/mmsgate-local -events events/sqs -quiet

## bench: the benchmarks of BENCHMARKS.md, as one table
bench: deps $(RIE)
	$(GO) build -o .bin/mmsgate-bench ./cmd/mmsgate-bench
	.bin/mmsgate-bench

## soak: the reliability soak (SOAK_N requests, default 10000); `make test` runs a 500-request one
soak: deps $(RIE)
	$(GO) run ./cmd/mmsgate-soak -n $${SOAK_N:-10000}

## fuzz: each fuzz target for $(FUZZTIME)
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test $$pkg -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME); \
	  done; done

## lint: gofmt, go vet, staticcheck, go mod tidy, cfn-lint (what `sam validate --lint` runs), no build output in git
lint: $(STATICCHECK) $(PY_TOOLS)
	$(GO) test -count=1 ./internal/tracked/
	$(BIN)/cfn-lint template.yaml
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	$(STATICCHECK) ./...
	$(GO) mod tidy -diff

deps: $(NODE_DEPS)

$(NODE_DEPS): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts

tools: $(RIE) $(STATICCHECK) $(PY_TOOLS)

# moto's server (SQS, Secrets Manager) and cfn-lint, pinned, as .bin/moto_server and
# .bin/cfn-lint: from $(PYTHON) when it has them, else installed by pip (into a
# virtualenv in .bin/venv where the system Python refuses pip, as Ubuntu 24.04's does).
PY_CHECK := import sys, importlib.metadata as m, flask; sys.exit(m.version("moto") != "$(MOTO_VERSION)" or m.version("cfn-lint") != "$(CFNLINT_VERSION)" or m.version("aws-sam-translator") != "$(SAMTRANSLATOR_VERSION)")
PY_PKGS  := 'moto[server]==$(MOTO_VERSION)' 'cfn-lint==$(CFNLINT_VERSION)' 'aws-sam-translator==$(SAMTRANSLATOR_VERSION)'
$(PY_TOOLS):
	@mkdir -p $(BIN)
	@set -e; py=$$(command -v $(PYTHON)); \
	if ! $$py -c '$(PY_CHECK)' 2>/dev/null; then \
	  echo "pip install $(PY_PKGS)"; \
	  if ! $$py -m pip install --quiet $(PY_PKGS) 2>/dev/null; then \
	    $$py -m venv $(BIN)/venv && py=$(BIN)/venv/bin/python && $$py -m pip install --quiet $(PY_PKGS); fi; \
	  $$py -c '$(PY_CHECK)'; fi; \
	printf '#!/bin/sh\nexec %s -c "import sys; from moto.server import main; sys.argv[0] = \\"moto_server\\"; sys.exit(main())" "$$@"\n' "$$py" > $(BIN)/moto_server; \
	printf '#!/bin/sh\nexec %s -c "import sys; from cfnlint.runner import main; sys.argv[0] = \\"cfn-lint\\"; sys.exit(main())" "$$@"\n' "$$py" > $(BIN)/cfn-lint; \
	printf '#!/bin/sh\nexec %s "$$@"\n' "$$py" > $(BIN)/python-tools; \
	chmod +x $(BIN)/moto_server $(BIN)/cfn-lint $(BIN)/python-tools
	@touch $@

## clients: Debian's AWS CLI and boto3 (SQS query protocol) for the client tests, through apt-get when
##          it is there and they are not (the tests say why they skip otherwise)
CLIENTS_CHECK := [ -x /usr/bin/aws ] && /usr/bin/python3 -c 'import boto3' 2>/dev/null
clients:
	@if $(CLIENTS_CHECK); then :; \
	elif command -v apt-get >/dev/null && { [ -z "$(SUDO)" ] || sudo -n true 2>/dev/null; }; then \
	  echo "apt-get install awscli python3-boto3"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq awscli python3-boto3 >/dev/null \
	    || echo "clients: apt-get could not install awscli python3-boto3; the client tests will skip"; \
	else echo "clients: no apt-get (or no root); the Debian client tests will skip"; fi

$(RIE): go.mod
	$(GO) build -o $@ github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie

$(STATICCHECK): go.mod
	$(GO) build -o $@ honnef.co/go/tools/cmd/staticcheck

## deploy-rehearsal: template.yaml deployed on moto's CloudFormation as `sam deploy` would (SAM transform by the
##      pinned translator), run end to end as deployed, updated and deleted; every AWS call checked against its role
deploy-rehearsal: $(PY_TOOLS) $(RIE)
	$(GO) run ./cmd/mmsgate-rehearsal -python $(BIN)/python-tools
	@# Broken copies of the template must fail, naming the resource and the reason.
	MMSGATE_REHEARSAL=$(BIN)/python-tools $(GO) test -count=1 -run '^TestBrokenTemplate' ./internal/rehearsal/

## build-<LogicalId>: what `sam build` calls (BuildMethod: makefile)
build-SendMmsFunction:
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/send-mms

build-PostbackFunction:
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/postback

build-ReceiptCheckFunction:
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/receipt-check

build-ScheduleSweepFunction:
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/schedule-sweep

build: build-SendMmsFunction build-PostbackFunction build-ReceiptCheckFunction build-ScheduleSweepFunction

## invoke FN=send-mms|postback EVENT=file: one function under the Runtime Interface Emulator
invoke: deps $(RIE)
	$(GO) run ./cmd/mmsgate-local -invoke $(FN) -event $(EVENT)

## deploy: for people with the SAM CLI and AWS credentials
deploy:
	sam build --build-in-source
	sam deploy --config-env $(STACK_ENV)

## stand-ins: the simulator and AWS stand-ins on env.json's fixed ports, for sam local (BIND=0.0.0.0 for Docker on Linux)
stand-ins: deps $(PY_TOOLS)
	$(GO) run ./cmd/mmsgate-local -stand-ins

## sam-invoke / sam-api: the SAM CLI's local mode (needs Docker), pointed at local stand-ins by env.json
sam-build:
	sam build --build-in-source
sam-invoke: sam-build
	sam local invoke $(or $(FN),SendMmsFunction) -e $(or $(EVENT),events/sqs/batch-mixed.json) --env-vars env.json $(SAM_LOCAL_FLAGS)
sam-api: sam-build
	sam local start-api --env-vars env.json $(SAM_LOCAL_FLAGS)

clean:
	rm -rf .aws-sam .run
