# Static, reproducible build with the version stamped in.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: build test unit check demo
build:
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o bootstrap ./cmd/bootstrap

unit:
	go test ./...

# Every suite, with set-up: the README's test command.
test:
	bash scripts/test.sh

check:
	gofmt -l $$(git ls-files '*.go')
	go vet ./... && go vet -tags e2e ./...
	staticcheck ./... && staticcheck -tags e2e ./...

demo:
	go run ./cmd/bootstrap demo
