// Package layout holds the tests that keep mailfront's architecture honest
// (ARCHITECTURE.md, "Packages"): which package may import which, and why;
// and that every package has one doc comment saying what it does, what it
// does not, and which RFCs it follows where it speaks a protocol.
//
// It also keeps the documents in step with the code: ARCHITECTURE.md's
// package table must list the same packages and imports as the rules
// here, every test ARCHITECTURE.md names must exist, its invariant table
// must give each invariant a test or mark it planned, and every relative
// link in the repository's Markdown must lead to a file, and for an
// #anchor to a heading, that exists.
//
// It does not hold code: nothing imports it.
package layout
