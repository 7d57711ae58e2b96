// Package testbed holds the test bed of bootstrap: an IMDSv2 emulator with
// fault injection (so the boot-time wait, token handling and role-credential
// paths can be tested against the protocol real EC2 speaks, including its
// failure modes), and a tiny read-only object store for the offline demo.
//
// Everything listens on 127.0.0.1 only and is stopped by Close.
// Tests of the S3 credential path use a real MinIO (package
// internal/testbed/minio), because only that checks signatures, session
// tokens and policies.
package testbed
