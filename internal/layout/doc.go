// Package layout holds the tests that keep mailfront's architecture honest
// (ARCHITECTURE.md, "Packages"): which package may import which, and why; and that
// every package has one doc comment saying what it does, what it does not,
// and which RFCs it follows where it speaks a protocol.
//
// It does not hold code: nothing imports it.
package layout
