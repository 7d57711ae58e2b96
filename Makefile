# Static, reproducible build with the version stamped in.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: build test e2e check demo
build:
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o bootstrap ./cmd/bootstrap

test:
	go test ./...

e2e:
	BOOTSTRAP_E2E=1 go test -tags e2e -count=1 ./...

check:
	gofmt -l $$(git ls-files '*.go')
	go vet ./... && go vet -tags e2e ./...
	staticcheck ./... && staticcheck -tags e2e ./...

demo:
	go run ./cmd/bootstrap demo
