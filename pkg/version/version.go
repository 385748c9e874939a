// Package version is mmsgate's version, in one place: every function's log
// lines carry it (pkg/applog) and `mmsgate version` prints it. A release
// build sets it from its tag:
//
//	go build -ldflags "-X github.com/mmsgate/mmsgate/pkg/version.Version=1.2.3"
//
// (the Makefile's build targets do, from `git describe`). CHANGELOG.md says
// what each version changed and docs/deploy.md what an upgrade needs.
package version

// Version is a semantic version (https://semver.org) without a leading "v";
// a var, not a const, so that -ldflags -X can set it.
var Version = "0.3.0-dev"
